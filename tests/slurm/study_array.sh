#!/usr/bin/env bash
# tests/slurm/study_array.sh — a study run through Slurm gives the table of
# the same study run in one process. On a one-node cluster of its own
# (scripts/slurm_local.sh, in a fresh folder under /tmp):
#   (a) starts the cluster (SKIP, status 77, where it cannot run)
#   (b) runs experiments/divergence_sweep.lua profile=smoke out=W/inproc
#   (c) submits the same with --slurm "--partition=debug" out=W/slurm (a setup
#       job, one array task per arm, an afterok table job) and waits for the
#       job ids it printed — every integer on an output line that mentions
#       "job", and in W/slurm/slurm/jobs.txt when that exists, kept when the
#       cluster knows them — then until the queue is empty; every job must
#       end COMPLETED with exit 0:0
#   (d) compares W/inproc/table.csv with W/slurm/table.csv
#       (tests/lua/compare_tables.lua, relative tolerance STUDY_TOL, default
#       1e-6; both runs share the feature-classifier cache and use one
#       thread, so the cells are expected equal), the wall-clock columns
#       (headers ending in " s", "(s)" or naming seconds: "train s") excluded
#   (e) stops the cluster (EXIT trap, and the cluster's watchdog if this
#       script is killed), checking that no daemon is left
# W is BUILD_DIR/slurm_study, kept for inspection.
#
# usage: study_array.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
[ $# = 2 ] || { echo "usage: study_array.sh BUILD_DIR SOURCE_DIR" >&2; exit 2; }
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd) || exit 2
wb=$build/workbench
sl=$src/scripts/slurm_local.sh
wait_jobs=$src/tests/slurm/wait_jobs.sh
study=$src/experiments/divergence_sweep.lua
work=$build/slurm_study
wait_s=${STUDY_WAIT:-200}  # seconds for the jobs; the test's TIMEOUT should be 300
tol=${STUDY_TOL:-1e-6}
started=0 cl="" cltmp=""

. "$src/tests/slurm/cluster_lib.sh"

finish() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ $started = 1 ]; then
    stop_cluster || rc=1
    mkdir -p "$work/cluster"
    cp "$cl"/*.log "$cl/slurm.conf" "$work/cluster/" 2>/dev/null
  fi
  [ -n "$cltmp" ] && rm -rf "$cltmp"
  [ $rc = 0 ] || [ $rc = 77 ] || echo "outputs, logs and the cluster's logs: $work"
  exit $rc
}
trap finish EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

[ -x "$wb" ] || fail "no workbench in $build"
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1

# ---- (a) the cluster -------------------------------------------------------------
t_all=$(now)
cltmp=$(mktemp -d /tmp/wb-slurm-study.XXXXXX) && chmod 755 "$cltmp" || fail "mktemp" # munged: searchable folders
cl=$cltmp/c
envs=$(bash "$sl" start "$cl" --owner $$)
rc=$?
[ $rc = 77 ] && { echo "$envs"; exit 77; }
started=1
[ $rc = 0 ] || fail "scripts/slurm_local.sh start exited with status $rc"
eval "$envs"
echo "cluster start: $(since "$t_all") s"

# one thread in both runs (and in the jobs, which inherit this environment)
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
common=(profile=smoke cache="$work/cache")

# ---- (b) in one process ------------------------------------------------------------
t=$(now)
"$wb" run "$study" "${common[@]}" out="$work/inproc" >"$work/inproc.log" 2>&1 ||
  { tail -n 30 "$work/inproc.log"; fail "the in-process run failed ($work/inproc.log)"; }
echo "in-process run: $(since "$t") s"

# ---- (c) through Slurm -------------------------------------------------------------
t=$(now)
"$wb" run "$study" "${common[@]}" out="$work/slurm" --slurm "--partition=debug" >"$work/submit.log" 2>&1 ||
  { cat "$work/submit.log"; fail "the --slurm submission failed"; }
cat "$work/submit.log"
candidates=$( { grep -i job "$work/submit.log"; cat "$work/slurm/slurm/jobs.txt" 2>/dev/null; } |
              grep -o '[0-9]\+' | sort -un)
ids=()
for j in $candidates; do
  # (known to the cluster; `scontrol show job 0` lists every job: hence the JobId match)
  scontrol show job -o "$j" 2>/dev/null | grep -qE "(^| )(Array)?JobId=$j( |$)" && ids+=("$j")
done
[ ${#ids[@]} -gt 0 ] || fail "no job id of this cluster in the submission's output (candidates: ${candidates:-none})"
echo "jobs: ${ids[*]}"
res=$(bash "$wait_jobs" -t "$wait_s" "${ids[@]}")
rc=$?
echo "$res"
[ $rc = 0 ] || {
  for f in "$work"/slurm/slurm/*.out "$work"/slurm/slurm/*.err; do [ -f "$f" ] && { echo "---- $f"; tail -n 15 "$f"; }; done
  fail "not every job COMPLETED with exit 0:0 (wait_jobs status $rc)"
}
# and any job the ids missed: the cluster is this test's alone
t1=$(date +%s)
while [ -n "$(squeue -h -o %i 2>/dev/null)" ]; do
  [ $(( $(date +%s) - t1 )) -ge 60 ] && { squeue; fail "jobs still queued after the ones printed ended"; }
  sleep 1
done
echo "through Slurm: $(since "$t") s"

# ---- (d) the same table --------------------------------------------------------------
[ -f "$work/slurm/table.csv" ] || fail "no $work/slurm/table.csv"
ignore=$(head -n 1 "$work/inproc/table.csv" | awk -F, '{
  for (i = 1; i <= NF; i++) {
    h = $i; gsub(/^"|"$/, "", h)
    if (h ~ /(^|[ (])s\)?$/ || h ~ /[Ss]econds/) { out = out (out == "" ? "" : ",") h }
  }
  print out }')
echo "compared without the wall-clock columns: ${ignore:-none}"
"$wb" run "$src/tests/lua/compare_tables.lua" a="$work/inproc/table.csv" b="$work/slurm/table.csv" \
  tol="$tol" ignore="${ignore:-none}" || fail "the tables differ"
echo "PASS: divergence_sweep through Slurm gives the in-process table ($(since "$t_all") s before the stop)"
