#!/usr/bin/env bash
# tests/dp/ranks_agree.sh BUILD_DIR SOURCE_DIR PART — the runs of
# tests/dp/dp_runs.lua part=PART on 1 (no launcher), 2 and 4 ranks at the
# same global batch:
#   reduction = fast           the same parameters within float summation
#                              tolerance (st_close.py --rtol)
#   reduction = deterministic  bit-identical checkpoints and metrics (the
#                              wall-clock seconds aside), for 1, 2 and 4 ranks
# and a parameter divergence injected on one rank (WB_DP_TEST_DIVERGE) is
# caught by the hash check, naming the step.
set -u
build=$1 src=$2 part=${3:-2d}
. "$src/tests/dp/mpi_env.sh"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
wb="$build/workbench"
script="$src/tests/dp/dp_runs.lua"
close="/usr/bin/python3 $src/tests/dp/st_close.py"
fail() { echo "FAIL: $*"; exit 1; }
runs=$([ "$part" = images ] && echo "teacher kl" || echo "teacher kl dikl")
ranks=$([ "$part" = images ] && echo "2" || echo "2 4")
# Float summation tolerance. With fast reduction N ranks sum N shard
# gradients in MPI's order; one process summing the same N shards in shard
# order (reduction = deterministic, shards = N) differs only by that order
# (for N = 2 not at all): compared tightly. Against the unsharded single
# process the difference is also the shards' own GEMM sums, which Adam
# amplifies where a gradient is near zero (its step is ±lr whatever the
# size): the 2-D runs stay within 2e-3; the UNet's are compared to the
# sharded single process only.
for mode in fast deterministic; do
  "$wb" run "$script" part=$part reduction=$mode out="$out/$mode-1" >"$out/$mode-1.log" 2>&1 || { cat "$out/$mode-1.log"; fail "1 rank ($mode)"; }
  grep -q "^SKIP" "$out/$mode-1.log" && { cat "$out/$mode-1.log"; exit 77; }
  for n in $ranks; do
    $MPIRUN -np $n "$wb" run "$script" part=$part reduction=$mode out="$out/$mode-$n" >"$out/$mode-$n.log" 2>&1 \
      || { cat "$out/$mode-$n.log"; fail "$n ranks ($mode)"; }
    [ $mode = fast ] && { "$wb" run "$script" part=$part reduction=deterministic shards=$n out="$out/shards-$n" \
      >"$out/shards-$n.log" 2>&1 || { cat "$out/shards-$n.log"; fail "1 rank, $n shards"; }; }
    for r in $runs; do
      a=$out/$mode-1/$r b=$out/$mode-$n/$r
      if [ $mode = fast ]; then
        $close "$out/shards-$n/$r/checkpoint.safetensors" "$b/checkpoint.safetensors" --rtol 1e-4 --atol 1e-6 \
          || fail "$r: $n ranks vs 1 rank with $n shards ($mode)"
        if [ "$part" = 2d ]; then
          $close "$a/checkpoint.safetensors" "$b/checkpoint.safetensors" --rtol 2e-3 --atol 1e-5 || fail "$r: $n ranks vs 1 ($mode)"
        fi
      else
        $close "$a/checkpoint.safetensors" "$b/checkpoint.safetensors" --exact || fail "$r: $n ranks vs 1 ($mode)"
        strip() { sed -E 's/, "comm_seconds": [0-9.]+//; s/"seconds": [0-9.]+(, )?//' "$1"; }
        diff <(strip "$a/metrics.jsonl") <(strip "$b/metrics.jsonl") || fail "$r: metrics differ, $n ranks vs 1 ($mode)"
      fi
      grep -Eq "\"ranks\":[[:space:]]*$n" "$b/config.json" || fail "$r: config.json does not record $n ranks"
    done
    # rank 0 alone writes and prints
    [ "$(grep -c "dp runs done" "$out/$mode-$n.log")" = 1 ] || { cat "$out/$mode-$n.log"; fail "more than rank 0 printed"; }
  done
done
echo "agree: fast within tolerance, deterministic bit-identical ($part, 1 vs $ranks ranks)"

if [ "$part" = 2d ]; then
  # a rank whose parameters drift is caught at the next hash check (every 5 steps here)
  WB_DP_TEST_DIVERGE=1:7 $MPIRUN -np 2 "$wb" run "$script" part=2d out="$out/diverge" >"$out/diverge.log" 2>&1 \
    && fail "a diverged rank was not noticed"
  grep -q "teacher step 10: the parameters of rank 1 differ from rank 0's" "$out/diverge.log" \
    || { cat "$out/diverge.log"; fail "the hash check's error does not name the step"; }
  echo "hash check: $(grep -o "teacher step 10: the parameters of rank 1 differ[^(]*" "$out/diverge.log" | head -1)"
fi
echo PASS
