#!/usr/bin/env bash
# tests/slurm/local_cluster.sh — a real one-node Slurm cluster on localhost
# (scripts/slurm_local.sh), started and stopped by this test in a fresh
# temporary folder:
#   chain A  setup job -> 3-task array (--dependency=afterok:setup), each task
#            writes task_<SLURM_ARRAY_TASK_ID>.txt -> final job
#            (--dependency=afterok:array) concatenating them: every job
#            COMPLETED with exit 0:0, the files, and the order (the tasks
#            after the setup, the final job after every task: an append-only
#            log the jobs write and Slurm's start/end times)
#   chain B  the same with task 1 exiting 3: that task FAILED 3:0, and the
#            afterok job never runs — Slurm 22.05 keeps it PENDING with
#            reason DependencyNeverSatisfied (it is not cancelled unless
#            kill_invalid_depend is set; CANCELLED is accepted too); then
#            scancel makes it CANCELLED
# The daemons are stopped by an EXIT trap whatever happens, and by the
# cluster's watchdog (--owner) if this script is killed outright; the trap
# then checks with pgrep and by the daemons' marker that nothing is left.
# Exit 77 with "SKIP: ..." when this machine cannot run the daemons.
#
# usage: local_cluster.sh SOURCE_DIR
set -uo pipefail
src=$(cd "${1:?usage: local_cluster.sh SOURCE_DIR}" && pwd)
sl=$src/scripts/slurm_local.sh
wait_jobs=$src/tests/slurm/wait_jobs.sh
tmp=$(mktemp -d /tmp/wb-slurm-test.XXXXXX) && chmod 755 "$tmp" || exit 1 # munged: searchable folders above its socket
cl=$tmp/cluster
started=0

. "$src/tests/slurm/cluster_lib.sh"

finish() {
  local rc=$?
  trap - EXIT INT TERM HUP
  # stopped or not, nothing of the cluster may be left
  if [ $started = 1 ]; then stop_cluster || rc=1; else none_left || rc=1; fi
  if [ $rc = 0 ] || [ $rc = 77 ]; then
    rm -rf "$tmp"
  else
    echo "kept $tmp; the daemons' logs:"
    for f in "$cl"/*.log; do [ -f "$f" ] && { echo "---- $f"; tail -n 30 "$f"; }; done
  fi
  exit $rc
}
trap finish EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

t_all=$(now)
envs=$(bash "$sl" start "$cl" --owner $$)
rc=$?
[ $rc = 77 ] && { echo "$envs"; exit 77; }
started=1
[ $rc = 0 ] || fail "scripts/slurm_local.sh start exited with status $rc"
eval "$envs"
echo "cluster start: $(since "$t_all") s"
sinfo

# ---- the jobs ------------------------------------------------------------------
mkdir -p "$tmp/jobs" "$tmp/a" "$tmp/b"
cat >"$tmp/jobs/setup.sh" <<'EOF'
#!/bin/bash
echo "setup" >>"$OUT/order.log"
echo ready >"$OUT/setup.txt"
EOF
cat >"$tmp/jobs/task.sh" <<'EOF'
#!/bin/bash
[ -f "$OUT/setup.txt" ] || { echo "task $SLURM_ARRAY_TASK_ID: no setup.txt"; exit 1; }
echo "task $SLURM_ARRAY_TASK_ID" >"$OUT/task_$SLURM_ARRAY_TASK_ID.txt"
echo "task $SLURM_ARRAY_TASK_ID" >>"$OUT/order.log"
[ "$SLURM_ARRAY_TASK_ID" = "$FAIL_TASK" ] && exit 3
exit 0
EOF
cat >"$tmp/jobs/final.sh" <<'EOF'
#!/bin/bash
echo "final" >>"$OUT/order.log"
cat "$OUT/task_0.txt" "$OUT/task_1.txt" "$OUT/task_2.txt" >"$OUT/all.txt"
EOF

submit() { # chain-dir fail-task: prints "setup array final" job ids
  local o=$1 s a f
  local common=(--parsable --chdir="$tmp" --export="ALL,OUT=$o,FAIL_TASK=$2" -o "$o/%x.%j.out")
  s=$(sbatch "${common[@]}" -J setup "$tmp/jobs/setup.sh") || return 1
  a=$(sbatch "${common[@]}" -J task -a 0-2 --dependency="afterok:$s" "$tmp/jobs/task.sh") || return 1
  f=$(sbatch "${common[@]}" -J final --dependency="afterok:$a" "$tmp/jobs/final.sh") || return 1
  echo "$s $a $f"
}
t_jobs=$(now)
read -r a_setup a_array a_final < <(submit "$tmp/a" none) || fail "sbatch (chain A)"
read -r b_setup b_array b_final < <(submit "$tmp/b" 1) || fail "sbatch (chain B)"
[ -n "$b_final" ] || fail "sbatch printed no job ids"
echo "chain A: setup $a_setup, array $a_array, final $a_final; chain B: setup $b_setup, array $b_array, final $b_final"

# ---- chain A: everything completes, in order -------------------------------------
res=$(bash "$wait_jobs" -t 60 "$a_setup" "$a_array" "$a_final")
rc=$?
echo "$res"
[ $rc = 0 ] || fail "chain A: not every job COMPLETED with exit 0:0 (wait_jobs status $rc)"
[ "$(wc -l <<<"$res")" = 5 ] || fail "chain A: want 5 job records (setup, 3 tasks, final)"
for i in 0 1 2; do
  grep -qx "${a_array}_$i COMPLETED 0:0 None" <<<"$res" || fail "chain A: task $i"
  [ "$(cat "$tmp/a/task_$i.txt" 2>/dev/null)" = "task $i" ] || fail "chain A: task_$i.txt missing or wrong"
done
[ "$(cat "$tmp/a/all.txt" 2>/dev/null)" = "$(printf 'task 0\ntask 1\ntask 2')" ] || fail "chain A: all.txt is not the 3 task files in order"
order=$(cat "$tmp/a/order.log")
[ "$(head -n 1 <<<"$order")" = setup ] && [ "$(tail -n 1 <<<"$order")" = final ] &&
  [ "$(sed -n 2,4p <<<"$order" | sort | tr '\n' ,)" = "task 0,task 1,task 2," ] && [ "$(wc -l <<<"$order")" = 5 ] ||
  fail "chain A: the jobs ran in this order (want setup, the 3 tasks, final): $(tr '\n' ',' <<<"$order")"
# Slurm's own times agree (1 s resolution): each start at or after the end it depends on
epoch() { scontrol show job -o "$1" | grep -o " $2=[^ ]*" | cut -d= -f2 | while read -r t; do date -d "$t" +%s; done; }
setup_end=$(epoch "$a_setup" EndTime)
task_starts=$(epoch "$a_array" StartTime) task_ends=$(epoch "$a_array" EndTime)
final_start=$(epoch "$a_final" StartTime)
for t in $task_starts; do [ "$t" -ge "$setup_end" ] || fail "chain A: a task started ($t) before the setup job ended ($setup_end)"; done
for t in $task_ends; do [ "$final_start" -ge "$t" ] || fail "chain A: the final job started ($final_start) before a task ended ($t)"; done
echo "chain A: ok ($(since "$t_jobs") s since submission)"

# ---- chain B: a failing task; the afterok job never runs ---------------------------
res=$(bash "$wait_jobs" -t 60 "$b_setup" "$b_array")
rc=$?
echo "$res"
[ $rc = 2 ] || fail "chain B: want the array to end with a failed task (wait_jobs status 2), got status $rc"
grep -qx "${b_array}_1 FAILED 3:0 NonZeroExitCode" <<<"$res" || fail "chain B: task 1 is not FAILED with exit 3:0"
for i in 0 2; do grep -qx "${b_array}_$i COMPLETED 0:0 None" <<<"$res" || fail "chain B: task $i did not complete"; done
res=$(bash "$wait_jobs" -t 30 "$b_final")
echo "$res"
read -r _ state _ reason <<<"$res"
case $state in
  NEVER_RUNS) echo "chain B: the afterok job stays PENDING ($reason)" ;;
  CANCELLED) echo "chain B: the afterok job was cancelled ($reason)" ;;
  *) fail "chain B: the afterok job of a failed array is $state ($reason)" ;;
esac
[ ! -e "$tmp/b/all.txt" ] && ! grep -q final "$tmp/b/order.log" 2>/dev/null || fail "chain B: the afterok job ran"
if [ "$state" = NEVER_RUNS ]; then
  scancel "$b_final" || fail "scancel $b_final"
  res=$(bash "$wait_jobs" -t 30 "$b_final")
  echo "$res"
  [[ $res == "$b_final CANCELLED "* ]] || fail "chain B: after scancel the afterok job is not CANCELLED"
fi
echo "jobs: $(since "$t_jobs") s"
echo "PASS: one-node cluster, afterok chains ($(since "$t_all") s before the stop)"
