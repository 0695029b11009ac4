# tests/check_plugins_cwd.cmake — CTest plugins_cwd_opt_in (issue 10, defect
# 5): `workbench plugins` run from a folder holding plugins/<a good .so> must
# NOT load it by default (a script run from an untrusted folder would run
# foreign code), and must load it when WB_PLUGIN_PATH names the folder.
#   cmake -DWORKBENCH=<workbench> -DFIXTURE=<a good plugin .so> -DPLUGIN=<its name>
#         -DWORK=<scratch folder> -P check_plugins_cwd.cmake
foreach(v WORKBENCH FIXTURE PLUGIN WORK)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "check_plugins_cwd.cmake: -D${v}=... is required")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}/plugins")
file(COPY "${FIXTURE}" DESTINATION "${WORK}/plugins")

unset(ENV{WB_PLUGIN_PATH})
execute_process(COMMAND "${WORKBENCH}" plugins WORKING_DIRECTORY "${WORK}"
  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "workbench plugins failed (${rc}):\n${out}\n${err}")
endif()
string(FIND "${out}${err}" "${PLUGIN}" at)
if(NOT at EQUAL -1)
  message(FATAL_ERROR "./plugins was loaded without WB_PLUGIN_PATH naming it ('${PLUGIN}' listed):\n${out}\n${err}")
endif()
if(NOT out MATCHES "divergences \\(")
  message(FATAL_ERROR "the build's own plugins are missing from the listing:\n${out}\n${err}")
endif()

set(ENV{WB_PLUGIN_PATH} "plugins")
execute_process(COMMAND "${WORKBENCH}" plugins WORKING_DIRECTORY "${WORK}"
  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR NOT out MATCHES "${PLUGIN}")
  message(FATAL_ERROR "WB_PLUGIN_PATH=plugins did not load ./plugins (${rc}):\n${out}\n${err}")
endif()
file(REMOVE_RECURSE "${WORK}")
message(STATUS "./plugins: not loaded by default, loaded with WB_PLUGIN_PATH=plugins")
