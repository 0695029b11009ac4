#!/usr/bin/env bash
# tests/slurm/wait_jobs.sh — waits (bounded) until the given Slurm jobs have
# left the queue, then prints one line per job record (every task of an
# array):  JOBID STATE EXIT REASON   e.g.  1001_2 FAILED 3:0 NonZeroExitCode
# A job pending on a dependency that can never be satisfied (an afterok job
# whose dependency failed: Slurm 22.05 keeps it PENDING with reason
# DependencyNeverSatisfied, it does not cancel it) counts as final, state
# NEVER_RUNS. A job id Slurm no longer knows (purged after MinJobAge, or
# never submitted) prints as "JOBID GONE - -".
#
# usage: wait_jobs.sh [-t SECONDS] JOBID...   (SLURM_CONF as for any client)
# Exit status: 0 every record COMPLETED with exit 0:0; 2 all final but not all
# so; 1 the time ran out (default 120 s; WAIT_JOBS_TIMEOUT), states printed,
# or no controller answers.
set -uo pipefail
limit=${WAIT_JOBS_TIMEOUT:-120}
if [ "${1:-}" = -t ]; then limit=$2; shift 2; fi
[ $# -gt 0 ] || { echo "usage: wait_jobs.sh [-t SECONDS] JOBID..." >&2; exit 2; }

final_state() {
  case $1 in
    COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|PREEMPTED|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|REVOKED|SPECIAL_EXIT) return 0 ;;
  esac
  return 1
}

# one line "ID STATE EXIT REASON" per record of job $1
records() {
  local out line id task state exitc reason
  out=$(timeout 30 scontrol show job -o "$1" 2>&1)
  if [ $? -ne 0 ] || [ -z "$out" ]; then
    if [[ $out == *"Invalid job id"* ]]; then echo "$1 GONE - -"
    elif [[ $out == *"Unable to contact slurm controller"* || $out == *"configuration file"* ]]; then echo "$1 DOWN - -"
    else echo "$1 UNKNOWN - scontrol:${out//[$'\n' ]/_}"; fi
    return
  fi
  while IFS= read -r line; do
    [[ $line == *JobId=* ]] || continue
    id=$(grep -o 'JobId=[0-9]*' <<<"$line" | head -n 1); id=${id#JobId=}
    task=$(grep -o 'ArrayTaskId=[^ ]*' <<<"$line"); task=${task#ArrayTaskId=}
    if [ -n "$task" ]; then
      id=$(grep -o 'ArrayJobId=[0-9]*' <<<"$line"); id=${id#ArrayJobId=}_$task
    fi
    state=$(grep -o 'JobState=[^ ]*' <<<"$line"); state=${state#JobState=}
    exitc=$(grep -o ' ExitCode=[^ ]*' <<<"$line"); exitc=${exitc# ExitCode=}
    reason=$(grep -o 'Reason=[^ ]*' <<<"$line"); reason=${reason#Reason=}
    [ "$state" = PENDING ] && [ "$reason" = DependencyNeverSatisfied ] && state=NEVER_RUNS
    echo "$id $state ${exitc:--} ${reason:--}"
  done <<<"$out"
}

jobs=("$@")
t0=$(date +%s)
while :; do
  lines=() done=1 ok=1
  for j in "${jobs[@]}"; do
    while read -r id state exitc reason; do
      lines+=("$id $state $exitc $reason")
      case $state in
        DOWN) echo "wait_jobs: no Slurm controller answers (SLURM_CONF=${SLURM_CONF:-unset})" >&2; exit 1 ;;
        GONE|NEVER_RUNS) ok=0 ;;
        COMPLETED) [ "$exitc" = 0:0 ] || ok=0 ;;
        *) final_state "$state" && ok=0 || done=0 ;;
      esac
    done < <(records "$j" | sort -V)
  done
  if [ $done = 1 ]; then
    printf '%s\n' "${lines[@]}"
    [ $ok = 1 ] && exit 0
    exit 2
  fi
  if [ $(( $(date +%s) - t0 )) -ge "$limit" ]; then
    echo "wait_jobs: still in the queue after $limit s:" >&2
    printf '%s\n' "${lines[@]}"
    exit 1
  fi
  sleep 0.5
done
