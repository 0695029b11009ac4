#!/usr/bin/env bash
# bench/ddpmpp_cpu.sh — EDM's DDPM++ CIFAR-10 network (55.7 M parameters) on
# the CPU, the workbench against PyTorch side by side (issue 9, item 4):
#
#   unet_forward      D(x; σ) without gradients, batch 8 (what sampling costs
#                     per network evaluation);
#   unet_teacher_dsm  one DSM training step (forward, backward, Adam, EMA),
#                     batch 8;
#   sampling memory   one no-grad forward at batch 64 (the 64-image grid a
#                     teacher run renders), peak resident memory only.
#
# at 1 and 2 threads. This machine's timings drift by ±15 % from minute to
# minute (a shared virtual machine), so the two sides run INTERLEAVED, round
# after round (workbench, torch, workbench, torch, …), and the table gives
# the median and the range over ROUNDS rounds of each side's per-round
# median. Each benchmark is its own process, so its peak_rss_mb is that
# benchmark's. Both sides get the same OMP/OpenBLAS settings
# (OPENBLAS_CORETYPE as the workbench picks it, OMP_WAIT_POLICY=PASSIVE).
#
#   bench/ddpmpp_cpu.sh [BUILD_DIR]     env: ROUNDS=3 THREADS="1 2" PYTHON=/usr/bin/python3
#                                            FORWARD_ITERS=4 STEP_ITERS=3 SKIP_MEMORY=0
# Prints a Markdown table on stdout; the raw JSON lines go to stderr.
set -u -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
build="${1:-$repo/build}"
rounds="${ROUNDS:-3}"
threads="${THREADS:-1 2}"
python="${PYTHON:-/usr/bin/python3}"
wb="$build/bench/bench_unet"
[ -x "$wb" ] || { echo "ddpmpp_cpu.sh: $wb missing (build first)" >&2; exit 1; }
"$python" -c "import torch" 2>/dev/null || { echo "ddpmpp_cpu.sh: torch not importable by $python" >&2; exit 1; }

expect="$("$wb" --params-only --preset cifar10-ddpmpp | sed -n 's/.*"unet": \([0-9]*\), "classifier": \([0-9]*\), "gan_head": \([0-9]*\).*/\1,\2,\3/p')"
"$python" "$here/torch_unet.py" --params-only --preset cifar10-ddpmpp --expect-params "$expect" >&2 ||
    { echo "ddpmpp_cpu.sh: parameter counts differ: not comparable" >&2; exit 1; }
. "$here/blas_env.sh"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

field() { sed -n "s/.*\"$1\": \([0-9.eE+-]*\).*/\1/p" | head -1; }
# one_run SIDE THREADS BENCH BATCH WARMUP ITERS -> "ms rss" (or "fail")
one_run() {
    local side="$1" t="$2" bench="$3" batch="$4" warm="$5" iters="$6" out
    local args=(--preset cifar10-ddpmpp --bench "$bench" --teacher-batch "$batch" --warmup "$warm" --iters "$iters"
                --threads "$t")
    if [ "$side" = wb ]; then
        out="$(OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t "$wb" "${args[@]}" 2>/dev/null | grep "\"bench\": \"unet_")"
    else
        out="$(OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t "$python" "$here/torch_unet.py" "${args[@]}" \
                   --expect-params "$expect" 2>/dev/null | grep "\"bench\": \"unet_")"
    fi
    echo "$side t=$t $bench B=$batch: $out" >&2
    [ -n "$out" ] || { echo fail; return; }
    echo "$(printf '%s' "$out" | field ms_per_iter) $(printf '%s' "$out" | field peak_rss_mb)"
}
# median and range of a list of numbers
stats() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {m = NR % 2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2;
          printf "%.0f (%.0f–%.0f)", m, v[1], v[NR]}'; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print NR % 2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

echo "| benchmark | threads | workbench ms, median (range) | torch ms, median (range) | torch/workbench | peak MB workbench | peak MB torch |"
echo "|---|---|---|---|---|---|---|"
for t in $threads; do
    for spec in "forward 8 1 ${FORWARD_ITERS:-4}" "teacher 8 2 ${STEP_ITERS:-3}"; do
        set -- $spec
        bench="$1" batch="$2" warm="$3" iters="$4"
        wms=() tms=() wrss=() trss=()
        for r in $(seq "$rounds"); do
            read -r ms rss <<<"$(one_run wb "$t" "$bench" "$batch" "$warm" "$iters")"
            [ "$ms" != fail ] && wms+=("$ms") && wrss+=("$rss")
            read -r ms rss <<<"$(one_run torch "$t" "$bench" "$batch" "$warm" "$iters")"
            [ "$ms" != fail ] && tms+=("$ms") && trss+=("$rss")
        done
        [ "${#wms[@]}" -gt 0 ] && [ "${#tms[@]}" -gt 0 ] || { echo "| unet_$bench | $t | failed | | | | |"; continue; }
        ratio="$(awk -v a="$(median "${tms[@]}")" -v b="$(median "${wms[@]}")" 'BEGIN { printf "%.2f", a / b }')"
        name="unet_forward"; [ "$bench" = teacher ] && name="unet_teacher_dsm"
        echo "| $name (B $batch) | $t | $(stats "${wms[@]}") | $(stats "${tms[@]}") | $ratio | $(median "${wrss[@]}") | $(median "${trss[@]}") |"
    done
done
if [ "${SKIP_MEMORY:-0}" != 1 ]; then
    t="${threads##* }"
    read -r wms wrss <<<"$(one_run wb "$t" forward 64 0 1)"
    read -r tms trss <<<"$(one_run torch "$t" forward 64 0 1)"
    echo "| sampling memory: unet_forward (B 64), one run | $t | $wms | $tms | – | $wrss | $trss |"
fi
