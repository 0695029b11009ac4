-- tests/lua/process_name.lua — the workbench runs under its own name: the
-- executable re-runs itself once to fix library settings (host/cli/
-- process_tuning.h), and ps/top/OOM logs must still say "workbench", not
-- "exe" (issue 10, defect 11). Prints the kernel's name of this process.
local f = assert(io.open("/proc/self/comm"))
local comm = f:read("l")
f:close()
print("comm=" .. comm)
if comm ~= "workbench" then error("this process is named '" .. comm .. "', not 'workbench'") end
