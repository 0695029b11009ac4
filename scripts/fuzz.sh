#!/usr/bin/env bash
# scripts/fuzz.sh — a bounded libFuzzer run of every fuzz target of
# tests/fuzz (tests/fuzz/README.md): configures build-fuzz/ with clang and
# -DWB_FUZZ=ON, builds the targets (ASan + UBSan, every UBSan report fatal,
# LeakSanitizer on), then runs each one for FUZZ_SECONDS over its checked-in
# seed corpus (tests/fuzz/corpus/<target>/, read only: new inputs go to a
# scratch folder that is deleted afterwards). Prints per target the
# executions done and the corpus size reached; exits non-zero when a
# target crashes, leaks, hits UB, times out on one input or runs out of
# memory — the input that did it is kept in build-fuzz/fuzz-artifacts/
# (add it to tests/fuzz/make_corpus.py as regress-<what> with the fix).
#
# Environment:
#   FUZZ_SECONDS   seconds per target (default 30)
#   FUZZ_PARALLEL  targets run at once (default: CPUs, at most 4)
#   FUZZ_TARGETS   space-separated subset (default: all)
#   FUZZ_BUILD_DIR build folder (default build-fuzz)
#   CC_FUZZ        the clang to use (default clang)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
build="${FUZZ_BUILD_DIR:-$repo/build-fuzz}"
seconds="${FUZZ_SECONDS:-30}"
cpus="$(nproc)"
parallel="${FUZZ_PARALLEL:-$(( cpus < 4 ? cpus : 4 ))}"
clang="${CC_FUZZ:-clang}"
all_targets="fuzz_safetensors fuzz_idx fuzz_cifar fuzz_png fuzz_run_json fuzz_run_args fuzz_plugin_desc"
targets="${FUZZ_TARGETS:-$all_targets}"

# the longest input each target mutates up to (a CIFAR record is 3073 bytes)
max_len() {
    case "$1" in
        fuzz_idx|fuzz_cifar) echo 8192 ;;
        fuzz_run_args) echo 1024 ;;
        fuzz_plugin_desc) echo 2048 ;;
        *) echo 4096 ;;
    esac
}

start=$(date +%s)
command -v "$clang" >/dev/null || { echo "fuzz.sh: $clang not found (libFuzzer needs clang)" >&2; exit 2; }
echo "fuzz.sh: configuring $build ($clang, WB_FUZZ=ON)"
mkdir -p "$build"
cmake -S "$repo" -B "$build" -DCMAKE_C_COMPILER="$clang" -DCMAKE_BUILD_TYPE=Release -DWB_FUZZ=ON -DWB_WERROR=ON \
      -DWB_ENABLE_CUDA=OFF -DWB_CUDA_EMU=OFF -DWB_DNNL=OFF >"$build/fuzz-configure.log" 2>&1 \
    || { cat "$build/fuzz-configure.log" >&2; exit 2; }
echo "fuzz.sh: building the fuzz targets"
cmake --build "$build" --target fuzz_targets -j"$cpus" >"$build/fuzz-build.log" 2>&1 \
    || { tail -50 "$build/fuzz-build.log" >&2; exit 2; }
built=$(date +%s)
echo "fuzz.sh: built in $((built - start)) s; fuzzing ${seconds} s per target, $parallel at a time"

scratch="$(mktemp -d "${TMPDIR:-/tmp}/wb_fuzz_run.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

run_target() {
    local t="$1" fresh="$scratch/$1"
    mkdir -p "$fresh"
    local dict=()
    [ -f "$repo/tests/fuzz/$t.dict" ] && dict=(-dict="$repo/tests/fuzz/$t.dict")
    # fresh (writable) first: libFuzzer adds new inputs to the first folder only
    local rc=0
    "$build/fuzz/$t" "$fresh" "$repo/tests/fuzz/corpus/$t" "${dict[@]}" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$t")" \
        -artifact_prefix="$artifacts/$t-" -print_final_stats=1 >"$scratch/$t.log" 2>&1 || rc=$?
    echo "$rc" >"$scratch/$t.rc"
}

running=0
for t in $targets; do
    [ -x "$build/fuzz/$t" ] || { echo "fuzz.sh: no target $t in $build/fuzz" >&2; exit 2; }
    run_target "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$parallel" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait || true

failed=0
printf '%-18s %12s %8s %7s  %s\n' target executions exec/s corpus result
for t in $targets; do
    log="$scratch/$t.log"
    rc="$(cat "$scratch/$t.rc" 2>/dev/null || echo 99)"
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    units="$(grep -o 'corp: [0-9]*' "$log" | tail -1 | sed 's/corp: //')"
    if [ "$rc" = 0 ]; then
        result=ok
    else
        result="FAILED (exit $rc)"
        failed=1
    fi
    printf '%-18s %12s %8s %7s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${units:-?}" "$result"
    if [ "$rc" != 0 ]; then
        echo "---- $t: the end of its log ($log) ----"
        grep -E "ERROR|SUMMARY|Test unit written|runtime error|==[0-9]+==" "$log" | head -20 || true
        tail -30 "$log"
        echo "----"
    fi
done
echo "fuzz.sh: $(( $(date +%s) - start )) s in all (build $((built - start)) s)"
if [ "$failed" != 0 ]; then
    echo "fuzz.sh: a target failed; the inputs are in $artifacts" >&2
    exit 1
fi
