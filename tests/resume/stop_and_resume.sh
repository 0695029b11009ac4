#!/usr/bin/env bash
# tests/resume/stop_and_resume.sh — a stopped run, resumed, ends exactly as
# one that never stopped (issue 10). For each stop step K the script
# tests/resume/arms.lua is run with WB_STOP_AT_STEP=K (a stop request, as
# SIGTERM would make, during step K of every training run) and re-run with
# resume=DIR until it finishes: each invocation finishes the run it
# resumes, skips the finished ones and stops the next one at K. Then every
# checkpoint must equal the uninterrupted run's tensor for tensor
# (st_same.py) and every metrics.jsonl line for line (wall-clock seconds
# aside), and each stopped invocation must have exited with status 75 and a
# message naming the checkpoint and how to resume.
#
# usage: stop_and_resume.sh WORKBENCH OUT_DIR PART K [K ...]
#   PART: 2d | images (see arms.lua)
set -euo pipefail
wb=$1 out=$2 part=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
[ -x "$py" ] || py=python3
rm -rf "$out"
mkdir -p "$out"

if ! "$wb" run "$here/arms.lua" part="$part" out="$out/ref" >"$out/ref.log" 2>&1; then
  cat "$out/ref.log"
  exit 1
fi
if grep -q '^SKIP:' "$out/ref.log"; then
  cat "$out/ref.log"
  exit 0
fi

same_runs() { # the reference's runs against those in $1
  local dir=$1 bad=0
  for ck in "$out"/ref/*/checkpoint.safetensors; do
    run=$(basename "$(dirname "$ck")")
    if ! "$py" "$here/st_same.py" "$ck" "$dir/$run/checkpoint.safetensors" >"$out/cmp.txt"; then
      echo "FAIL: $dir/$run: checkpoint differs from the uninterrupted run: $(cat "$out/cmp.txt")"
      bad=1
    fi
    if ! diff <(sed -E 's/"seconds": [0-9.]+//' "$out/ref/$run/metrics.jsonl") \
              <(sed -E 's/"seconds": [0-9.]+//' "$dir/$run/metrics.jsonl") >"$out/diff.txt"; then
      echo "FAIL: $dir/$run: metrics.jsonl differs from the uninterrupted run:"
      head -5 "$out/diff.txt"
      bad=1
    fi
  done
  return $bad
}

fail=0
for k in "$@"; do
  dir="$out/stop$k"
  stops=0
  for attempt in 1 2 3 4 5 6; do
    extra=()
    [ "$attempt" -gt 1 ] && extra=(resume="$dir")
    set +e
    WB_STOP_AT_STEP=$k "$wb" run "$here/arms.lua" part="$part" out="$dir" "${extra[@]}" >"$dir.log" 2>&1
    rc=$?
    set -e
    if [ $rc -eq 0 ]; then break; fi
    if [ $rc -ne 75 ]; then
      echo "FAIL: stop at $k, invocation $attempt: exit status $rc (want 75 or 0):"
      cat "$dir.log"
      exit 1
    fi
    if ! grep -q "stopped by SIGTERM after step $k of .*checkpoint written to .*resume" "$dir.log"; then
      echo "FAIL: stop at $k: the message does not say where the checkpoint is and how to resume:"
      cat "$dir.log"
      exit 1
    fi
    stops=$((stops + 1))
  done
  if [ $rc -ne 0 ]; then
    echo "FAIL: stop at $k: not finished after $attempt invocations"
    exit 1
  fi
  if same_runs "$dir"; then
    echo "ok: stopped at step $k in each of $stops runs, resumed: every checkpoint and metrics.jsonl as uninterrupted"
  else
    fail=1
  fi
done
exit $fail
