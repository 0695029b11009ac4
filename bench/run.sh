#!/usr/bin/env bash
# bench/run.sh — build (if needed) and run the MLP benchmarks of the workbench
# (bench_mlp) and of PyTorch (bench/torch_mlp.py, with the system interpreter
# /usr/bin/python3 and Debian's python3-torch) at each thread count, then
# print a table with the ratio torch/workbench (> 1: the workbench is faster).
#
#   bench/run.sh [BUILD_DIR]        default BUILD_DIR: <repo>/build
#   env: THREADS="1 2"  REPEATS=3  PYTHON=/usr/bin/python3
#        BENCH_ARGS=...  extra arguments for bench_mlp (e.g. --bench teacher)
#        TORCH_ARGS=...  extra arguments for torch_mlp.py
#        OMP_WAIT_POLICY  for torch's OpenMP pool; PASSIVE unless set. With
#                         the libgomp default (spinning) torch at 2 threads
#                         collapses (10-50x slower) whenever another process
#                         holds a core, as on a shared 2-core machine.
#
# Exits non-zero only when something fails to build or run, never because
# one side is slower. Without an importable torch the workbench side runs
# alone and the table says so.
set -u -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
build="${1:-$repo/build}"
threads="${THREADS:-1 2}"
repeats="${REPEATS:-3}"
python="${PYTHON:-/usr/bin/python3}"
omp_wait="${OMP_WAIT_POLICY:-PASSIVE}"

# ---- build (incremental: a no-op when up to date) ----------------------------
if [ ! -f "$build/CMakeCache.txt" ]; then
    echo "configuring $build" >&2
    cmake -S "$repo" -B "$build" >/dev/null || { echo "run.sh: cmake configure failed" >&2; exit 1; }
fi
if ! log="$(cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" 2>&1)"; then
    printf '%s\n' "$log" | tail -40 >&2
    echo "run.sh: build failed" >&2
    exit 1
fi
bench="$build/bench/bench_mlp"
[ -x "$bench" ] || { echo "run.sh: $bench missing after the build" >&2; exit 1; }

have_torch=0
if [ -x "$python" ] && "$python" -c "import torch" >/dev/null 2>&1; then
    have_torch=1
    torch_version="$("$python" -c "import torch; print(torch.__version__)")"
else
    echo "run.sh: torch is not importable by $python: running the workbench side alone" >&2
fi

# "bench ms" pairs out of the JSON lines
extract() { sed -n 's/.*"bench": "\([^"]*\)".*"ms_per_iter": \([0-9.eE+-]*\).*/\1 \2/p'; }

rows=()
status=0
for t in $threads; do
    echo "== threads $t: workbench" >&2
    if ! wb_out="$(OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "$bench" --repeats "$repeats" ${BENCH_ARGS:-})"; then
        echo "run.sh: bench_mlp failed at $t thread(s)" >&2
        status=1
        continue
    fi
    echo "$wb_out"
    th_out=""
    if [ "$have_torch" = 1 ]; then
        echo "== threads $t: torch $torch_version (OMP_WAIT_POLICY=$omp_wait)" >&2
        if ! th_out="$(OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t OMP_WAIT_POLICY=$omp_wait "$python" "$here/torch_mlp.py" \
                --threads "$t" --repeats "$repeats" ${TORCH_ARGS:-})"; then
            echo "run.sh: torch_mlp.py failed at $t thread(s)" >&2
            status=1
            th_out=""
        fi
        echo "$th_out"
    fi
    while read -r name ms; do
        [ -n "$name" ] || continue
        tms="$(printf '%s\n' "$th_out" | extract | awk -v n="$name" '$1 == n { print $2 }')"
        rows+=("$name $t $ms ${tms:-n/a}")
    done < <(printf '%s\n' "$wb_out" | extract)
done

[ "${#rows[@]}" -gt 0 ] || exit 1
echo
printf '%-14s %7s %14s %10s %16s\n' benchmark threads workbench_ms torch_ms torch/workbench
for r in "${rows[@]}"; do
    set -- $r
    if [ "$4" = "n/a" ]; then ratio="n/a"; else ratio="$(awk -v a="$4" -v b="$3" 'BEGIN { printf "%.2f", a / b }')"; fi
    printf '%-14s %7s %14.3f %10s %16s\n' "$1" "$2" "$3" "$4" "$ratio"
done
[ "$have_torch" = 1 ] || echo "(torch not importable by $python: workbench side only)"
exit "$status"
