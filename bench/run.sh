#!/usr/bin/env bash
# bench/run.sh — build (if needed) and run the benchmarks of the workbench
# (bench_mlp, bench_unet) and of PyTorch (bench/torch_mlp.py,
# bench/torch_unet.py, with the system interpreter /usr/bin/python3 and
# Debian's python3-torch) at each thread count, then print one table with the
# ratio torch/workbench (> 1: the workbench is faster).
#
#   bench/run.sh [BUILD_DIR]        default BUILD_DIR: <repo>/build
#   env: THREADS="1 2"  REPEATS=3  PYTHON=/usr/bin/python3
#        DEVICE=cpu|cuda  where both sides run (default cpu): bench_mlp/bench_unet
#                         --backend DEVICE, torch_*.py --device DEVICE
#        SUITES="mlp unet"  which benchmarks (mlp: teacher_dsm, distill_js;
#                           unet: unet_teacher_dsm, unet_distill_kl, unet_distill_dijs)
#        BENCH_ARGS=...  extra arguments for bench_mlp (e.g. --bench teacher)
#        TORCH_ARGS=...  extra arguments for torch_mlp.py
#        UNET_PRESET=cpu (or tiny, cifar10-ddpmpp)  UNET_WARMUP=3  UNET_ITERS=10
#        UNET_ARGS=...   extra arguments for bench_unet AND torch_unet.py (both
#                        take --bench teacher|kl|dijs|distill|all,
#                        --teacher-batch, --distill-batch)
#        OMP_WAIT_POLICY  for the OpenMP pools of torch and of the workbench's
#                         oneDNN convolutions; PASSIVE unless set. With the
#                         libgomp default (spinning) either side at 2 threads
#                         collapses (10-50x slower) whenever another process
#                         holds a core, as on a shared 2-core machine.
#        WB_CONV=auto|im2col|dnnl  the workbench's CPU convolution path
#                         (bench/README.md, "oneDNN vs BLAS convolution")
#        OPENBLAS_CORETYPE  OpenBLAS's kernel family, for BOTH sides; unset,
#                         the one the workbench picks (`workbench version`,
#                         host/cli/process_tuning.h), so torch's BLAS calls get
#                         the same kernels
#
# The table also has each side's peak resident memory (peak_rss_mb: the
# process's peak, so with one --bench per run it is that benchmark's).
#
# The UNet parameter counts of both sides are compared first (bench_unet
# --params-only, passed to torch_unet.py --expect-params); a mismatch is a
# failure (exit 1, loud message), since the timings would not compare.
# Otherwise exits non-zero only when something fails to build or run, never
# because one side is slower. Without an importable torch the workbench side
# runs alone and the table says so.
set -u -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
build="${1:-$repo/build}"
threads="${THREADS:-1 2}"
repeats="${REPEATS:-3}"
python="${PYTHON:-/usr/bin/python3}"
omp_wait="${OMP_WAIT_POLICY:-PASSIVE}"
suites="${SUITES:-mlp unet}"
device="${DEVICE:-cpu}"
case "$device" in
cpu | cuda) ;;
*) echo "run.sh: DEVICE is cpu or cuda, not '$device'" >&2; exit 2 ;;
esac
unet_preset="${UNET_PRESET:-cpu}"
unet_common="--preset $unet_preset --warmup ${UNET_WARMUP:-3} --iters ${UNET_ITERS:-10} ${UNET_ARGS:-}"

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
bench_unet="$build/bench/bench_unet"
for b in "$bench" "$bench_unet"; do
    [ -x "$b" ] || { echo "run.sh: $b missing after the build" >&2; exit 1; }
done

have_torch=0
if [ -x "$python" ] && "$python" -c "import torch" >/dev/null 2>&1; then
    have_torch=1
    torch_version="$("$python" -c "import torch; print(torch.__version__)")"
    if [ "$device" = cuda ] && ! "$python" -c "import torch; assert torch.cuda.is_available()" >/dev/null 2>&1; then
        echo "run.sh: DEVICE=cuda but torch $torch_version sees no CUDA device: running the workbench side alone" >&2
        have_torch=0
    fi
else
    echo "run.sh: torch is not importable by $python: running the workbench side alone" >&2
fi

# "bench ms" pairs out of the JSON lines; "bench MB" for the peak memory
extract() { sed -n 's/.*"bench": "\([^"]*\)".*"ms_per_iter": \([0-9.eE+-]*\).*/\1 \2/p'; }
extract_rss() { sed -n 's/.*"bench": "\([^"]*\)".*"peak_rss_mb": \([0-9.eE+-]*\).*/\1 \2/p'; }

# One BLAS kernel family for both sides (see the header).
. "$here/blas_env.sh"

rows=()
status=0

# The UNet on both sides must be the same network: compare parameter counts.
expect=""
case " $suites " in *" unet "*)
    if ! pc="$("$bench_unet" --params-only --preset "$unet_preset")"; then
        echo "run.sh: bench_unet --params-only failed" >&2
        exit 1
    fi
    expect="$(printf '%s\n' "$pc" | sed -n 's/.*"unet": \([0-9]*\), "classifier": \([0-9]*\), "gan_head": \([0-9]*\).*/\1,\2,\3/p')"
    echo "== unet parameters (workbench): denoiser,classifier,gan_head = $expect" >&2
    if [ "$have_torch" = 1 ] && ! "$python" "$here/torch_unet.py" --params-only --preset "$unet_preset" \
            --expect-params "$expect" >&2; then
        echo "run.sh: UNET PARAMETER COUNTS DIFFER between the workbench and torch_unet.py: not comparable" >&2
        exit 1
    fi
esac

# run_pair SUITE THREADS WB_CMD... -- TORCH_SCRIPT TORCH_ARGS...: both sides, rows appended
run_pair() {
    local suite="$1" t="$2" wb_out th_out="" name ms tms
    shift 2
    local wb_cmd=() th_cmd=()
    while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do wb_cmd+=("$1"); shift; done
    shift
    th_cmd=("$@")
    echo "== $suite, threads $t, $device: workbench" >&2
    if ! wb_out="$(OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t OMP_WAIT_POLICY=$omp_wait "${wb_cmd[@]}")"; then
        echo "run.sh: $(basename "${wb_cmd[0]}") failed at $t thread(s)" >&2
        status=1
        return
    fi
    echo "$wb_out"
    if [ "$have_torch" = 1 ]; then
        echo "== $suite, threads $t: torch $torch_version (OMP_WAIT_POLICY=$omp_wait)" >&2
        if ! th_out="$(OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t OMP_WAIT_POLICY=$omp_wait "$python" "${th_cmd[@]}")"; then
            echo "run.sh: $(basename "${th_cmd[0]}") failed at $t thread(s)" >&2
            status=1
            th_out=""
        fi
        echo "$th_out"
    fi
    local wrss trss
    while read -r name ms; do
        [ -n "$name" ] || continue
        tms="$(printf '%s\n' "$th_out" | extract | awk -v n="$name" '$1 == n { print $2 }')"
        wrss="$(printf '%s\n' "$wb_out" | extract_rss | awk -v n="$name" '$1 == n { print $2 }')"
        trss="$(printf '%s\n' "$th_out" | extract_rss | awk -v n="$name" '$1 == n { print $2 }')"
        rows+=("$name $t $ms ${tms:-n/a} ${wrss:-n/a} ${trss:-n/a}")
    done < <(printf '%s\n' "$wb_out" | extract)
}

for t in $threads; do
    for suite in $suites; do
        case "$suite" in
        mlp)
            # shellcheck disable=SC2086
            run_pair mlp "$t" "$bench" --backend "$device" --repeats "$repeats" ${BENCH_ARGS:-} \
                -- "$here/torch_mlp.py" --device "$device" --threads "$t" --repeats "$repeats" ${TORCH_ARGS:-} ;;
        unet)
            # shellcheck disable=SC2086
            run_pair unet "$t" "$bench_unet" --backend "$device" --threads "$t" $unet_common \
                -- "$here/torch_unet.py" --device "$device" --threads "$t" $unet_common --expect-params "$expect" ;;
        *)
            echo "run.sh: unknown suite '$suite' (mlp, unet)" >&2
            status=1 ;;
        esac
    done
done

[ "${#rows[@]}" -gt 0 ] || exit 1
echo
echo "device: $device"
printf '%-18s %7s %14s %10s %16s %12s %12s\n' benchmark threads workbench_ms torch_ms torch/workbench wb_peak_MB \
    torch_peak_MB
for r in "${rows[@]}"; do
    set -- $r
    if [ "$4" = "n/a" ]; then ratio="n/a"; else ratio="$(awk -v a="$4" -v b="$3" 'BEGIN { printf "%.2f", a / b }')"; fi
    printf '%-18s %7s %14.3f %10s %16s %12s %12s\n' "$1" "$2" "$3" "$4" "$ratio" "$5" "$6"
done
[ "$have_torch" = 1 ] || echo "(torch not importable by $python: workbench side only)"
exit "$status"
