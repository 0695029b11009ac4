#!/usr/bin/env bash
# tests/resume/signals.sh — real signals on a running workbench (issue 10):
#   SIGTERM mid-run   the step finishes, a checkpoint is written, exit 75 with
#                     how to resume; resume=DIR then ends as an uninterrupted run
#   SIGINT twice      the second exits at once (status 130); the last periodic
#                     checkpoint is whole, and resuming from it ends the same
#   SIGKILL           nothing runs at all; the last periodic checkpoint
#                     (checkpoint_every) is the resume point, same end
# Each result is compared with an uninterrupted run (st_same.py, metrics.jsonl
# without wall-clock seconds).
#
# usage: signals.sh WORKBENCH OUT_DIR
set -uo pipefail
wb=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
[ -x "$py" ] || py=python3
rm -rf "$out"
mkdir -p "$out"
arms=("$here/arms.lua" part=long)

"$wb" run "${arms[@]}" out="$out/ref" >"$out/ref.log" 2>&1 || { cat "$out/ref.log"; exit 1; }

lines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }
wait_lines() { # file n: until the file has n lines (at most 60 s)
  for _ in $(seq 600); do
    [ "$(lines "$1")" -ge "$2" ] && return 0
    sleep 0.1
  done
  echo "FAIL: $1 never reached $2 lines"
  return 1
}
same() { # dir: every run as in the reference
  for run in teacher kl; do
    "$py" "$here/st_same.py" "$out/ref/$run/checkpoint.safetensors" "$1/$run/checkpoint.safetensors" >"$out/cmp.txt" ||
      { echo "FAIL: $1/$run checkpoint: $(cat "$out/cmp.txt")"; return 1; }
    diff -q <(sed -E 's/"seconds": [0-9.]+//' "$out/ref/$run/metrics.jsonl") \
            <(sed -E 's/"seconds": [0-9.]+//' "$1/$run/metrics.jsonl") >/dev/null ||
      { echo "FAIL: $1/$run/metrics.jsonl differs from the uninterrupted run"; return 1; }
  done
}
resume() { # dir: resume=dir must finish
  "$wb" run "${arms[@]}" out="$1" resume="$1" >"$1.resume.log" 2>&1 ||
    { echo "FAIL: resume of $1:"; cat "$1.resume.log"; return 1; }
  grep -q "resuming $1/kl from step" "$1.resume.log" ||
    { echo "FAIL: resume of $1 did not continue the kl run:"; cat "$1.resume.log"; return 1; }
}

# -- SIGTERM -----------------------------------------------------------------------
d=$out/term
"$wb" run "${arms[@]}" out="$d" >"$d.log" 2>&1 &
pid=$!
wait_lines "$d/kl/metrics.jsonl" 5 || exit 1
kill -TERM $pid
wait $pid
rc=$?
[ $rc -eq 75 ] || { echo "FAIL: SIGTERM: exit status $rc, want 75"; cat "$d.log"; exit 1; }
grep -q "stopped by SIGTERM after step .* checkpoint written to $d/kl/checkpoint.safetensors .*resume=$d/kl" "$d.log" ||
  { echo "FAIL: SIGTERM: message"; cat "$d.log"; exit 1; }
resume "$d" && same "$d" || exit 1
echo "ok: SIGTERM at $(grep -o 'after step [0-9]* of [0-9]*' "$d.log"): exit 75, resumed, same as uninterrupted"

# -- SIGINT, twice -----------------------------------------------------------------------
d=$out/int2
"$wb" run "${arms[@]}" out="$d" checkpoint_every=100 >"$d.log" 2>&1 &
pid=$!
wait_lines "$d/kl/metrics.jsonl" 15 || exit 1   # step 300: checkpoints at 100, 200, 300
kill -INT $pid
kill -INT $pid
wait $pid
rc=$?
case $rc in
  130) how="second SIGINT: exit 130 at once" ;;
  75) how="both SIGINTs within one step: the first one's checkpoint, exit 75" ;;
  *) echo "FAIL: SIGINT twice: exit status $rc, want 130"; cat "$d.log"; exit 1 ;;
esac
resume "$d" && same "$d" || exit 1
echo "ok: SIGINT twice ($how): the checkpoint was whole, resumed, same as uninterrupted"

# -- SIGKILL -----------------------------------------------------------------------
d=$out/kill
"$wb" run "${arms[@]}" out="$d" checkpoint_every=250 >"$d.log" 2>&1 &
pid=$!
wait_lines "$d/kl/metrics.jsonl" 30 || exit 1   # step 600: a checkpoint at 500
kill -KILL $pid
wait $pid
resume "$d" && same "$d" || exit 1
echo "ok: SIGKILL near step 600: resumed from the last periodic checkpoint (step 500), same as uninterrupted"
exit 0
