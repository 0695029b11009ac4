#!/usr/bin/env bash
# scripts/sanitize.sh — the whole CTest suite (the Lua smoke experiments and
# the PyTorch comparisons included) under AddressSanitizer, LeakSanitizer and
# UndefinedBehaviorSanitizer (issue 10, item 5; docs/testing.md).
#
# Configures and builds build-asan/ (-DWB_SANITIZE=ON: every C and C++
# object of libwb, the cuda-emu emulation, libwb_host, the plugins, the test
# fixtures, the workbench and the tests; -O1 -g with assertions on), runs
# every test there, and fails when a test fails OR when any process printed
# a sanitizer report. ASan's and LSan's reports go to files (log_path):
# some processes' stderr is never shown (a workbench a Python test runs),
# and a test that only matches a message (PASS_REGULAR_EXPRESSION) passes
# on the message whatever the exit status. UBSan's are looked for in the
# output CTest keeps of every test. Every report is printed at the end.
#
#   bash scripts/sanitize.sh [ctest arguments, e.g. -R test_lua]
#   WB_SANITIZE_BUILD_DIR=dir  another build folder (default build-asan)
#
# No test is excluded. Timeouts: tests/CMakeLists.txt multiplies every
# test's TIMEOUT by WB_SANITIZE_TIMEOUT_FACTOR (4) in this build; the
# kernels run scalar under the checks (vectorisation is lost), so the
# slowest tests take 5-20 times as long as in the normal build.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
start=$(date +%s)
bash scripts/deps.sh
build="${WB_SANITIZE_BUILD_DIR:-build-asan}"
case "$build" in /*) ;; *) build="$root/$build" ;; esac
# Debug with -O1: assertions stay on (the normal build keeps them too), -O1
# keeps the reports' stacks exact and is much faster than -O0. The CPU
# kernels keep their own -O3 (CMakeLists.txt), the emulation its -O2.
cmake -S . -B "$build" -DWB_SANITIZE=ON -DWB_WERROR=ON -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" >/dev/null
cmake --build "$build" -j"$(nproc)"
built=$(date +%s)

logs="$build/sanitizer-reports"
rm -rf "$logs"
mkdir -p "$logs"
supp="$root/tests/sanitizers"
# ASan's and UBSan's: stop at the first error, abort (a signal CTest
# reports as "Subprocess aborted"), write ASan's and LSan's reports to
# $logs/report.<pid> (UBSan's go to stderr: see the end).
common="halt_on_error=1:abort_on_error=1:log_path=$logs/report"
# detect_leaks: LeakSanitizer at every process's exit.
# detect_stack_use_after_return=0: GCC's default, stated because the
#   cuda-emu fibers are annotated for it (kernels/cuda/emu/emu.cc) and it
#   works there, but every CUDA thread then maps and unmaps a fake stack of
#   its own per block: the cuda-emu tests run 10 times slower (measured:
#   test_cuda_backend cuda-emu 0.9 s -> 9.4 s), past the CI budget. On the
#   CPU tests it costs nothing measurable.
# strict_string_checks: a string given to the C library is checked up to
#   its terminating NUL, not only as far as the call read.
# check_initialization_order: the C++ emulation's static initialisers.
# Options already in the environment come last, so they win (e.g.
# ASAN_OPTIONS=detect_stack_use_after_return=1 bash scripts/sanitize.sh).
export ASAN_OPTIONS="$common:detect_leaks=1:detect_stack_use_after_return=0:strict_string_checks=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="$common:print_stacktrace=1:report_error_type=1:suppressions=$supp/ubsan.supp${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

cd "$build"
rc=0
ctest --output-on-failure -j"$(nproc)" "$@" || rc=$?
cd "$root"

reports=("$logs"/report.*)
if [ -e "${reports[0]}" ]; then
  for r in "${reports[@]}"; do
    echo "==== sanitizer report ${r#"$root"/} ====" >&2
    cat "$r" >&2
  done
  echo "sanitize: ${#reports[@]} ASan/LSan report(s), listed above" >&2
  [ "$rc" -ne 0 ] || rc=1
fi
# UBSan's reports do not reach log_path: with GCC (12) libubsan is a
# runtime of its own beside libasan, and in a process that has both its
# reports go to stderr whatever log_path says (measured). Every one aborts
# its process; this catches those a test's verdict hides (a
# PASS_REGULAR_EXPRESSION test, a plugin probe's child, whose stderr is the
# test's) in the output CTest kept of every test.
ubsan_lines=$(grep -E '^[^ ]+:[0-9]+:[0-9]+: runtime error: ' "$build/Testing/Temporary/LastTest.log" || true)
if [ -n "$ubsan_lines" ]; then
  echo "==== UBSan reports in the tests' output ($build/Testing/Temporary/LastTest.log) ====" >&2
  echo "$ubsan_lines" >&2
  echo "sanitize: $(echo "$ubsan_lines" | wc -l) UBSan report(s), listed above" >&2
  [ "$rc" -ne 0 ] || rc=1
fi
end=$(date +%s)
echo "sanitize: build $((built - start)) s, tests $((end - built)) s, total $((end - start)) s; exit $rc" >&2
exit "$rc"
