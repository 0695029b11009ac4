#!/bin/bash
# tests/arms/fake_sbatch.sh — a stand-in for Slurm's sbatch, for the wb.arms
# tests (WB_SBATCH="bash tests/arms/fake_sbatch.sh"): it records each call
# in $FAKE_SLURM_DIR/calls.log and runs the job script at once, before it
# returns, so jobs run in the order they are submitted — which honours
# afterok dependencies, as long as a job whose dependency failed does not
# run (it is recorded as never run, and so is everything after it, as Slurm
# would leave them pending). Understood: --parsable (prints the job id, as
# always), --dependency=afterok:ID[:ID...], and from the command line or the
# script's #SBATCH lines --array=A-B, --output=PATTERN (%j, %A, %a),
# --chdir=DIR; every other option is only recorded. Array tasks run one
# after the other with SLURM_ARRAY_JOB_ID, SLURM_ARRAY_TASK_ID,
# SLURM_JOB_ID set. Each task's exit status goes to
# $FAKE_SLURM_DIR/tasks.log ("JOB TASK STATUS").
set -u
state=${FAKE_SLURM_DIR:?fake sbatch: set FAKE_SLURM_DIR}
mkdir -p "$state"
echo "sbatch $*" >>"$state/calls.log"

deps="" script="" array="" output="" chdir=""
take() { # an option of the command line or of an #SBATCH line
  case $1 in
    --dependency=afterok:*) deps=${1#--dependency=afterok:} ;;
    --dependency=*) echo "fake sbatch: only afterok dependencies: $1" >&2; exit 1 ;;
    --array=*) array=${1#--array=} ;;
    --output=*) output=${1#--output=} ;;
    --chdir=*) chdir=${1#--chdir=} ;;
  esac
}
for a in "$@"; do
  case $a in
    -*) take "$a" ;;
    *) script=$a ;;
  esac
done
[ -f "$script" ] || { echo "fake sbatch: no job script '$script'" >&2; exit 1; }
while read -r line; do
  case $line in
    "#SBATCH "*) take "${line#\#SBATCH }" ;;
  esac
done <"$script"

id=$(( $(cat "$state/next_id" 2>/dev/null || echo 1000) + 1 ))
echo "$id" >"$state/next_id"
echo "$id $script" >>"$state/jobs.log"

for d in ${deps//:/ }; do
  if [ "$(cat "$state/$d.status" 2>/dev/null)" != ok ]; then
    echo never >"$state/$id.status"
    echo "$id"
    exit 0
  fi
done

status=ok
run_task() { # task index or "" ; the output file pattern expanded
  local task=$1 out=${output:-slurm-%j.out}
  out=${out//%j/$id}
  out=${out//%A/$id}
  out=${out//%a/$task}
  (
    [ -n "$chdir" ] && cd "$chdir"
    export SLURM_JOB_ID=$id
    if [ -n "$task" ]; then export SLURM_ARRAY_JOB_ID=$id SLURM_ARRAY_TASK_ID=$task; fi
    bash "$script" >"$out" 2>&1
  )
  local rc=$?
  echo "$id ${task:--} $rc" >>"$state/tasks.log"
  [ $rc -eq 0 ] || status=failed
}
if [ -n "$array" ]; then
  lo=${array%-*} hi=${array#*-}
  for ((i = lo; i <= hi; i++)); do run_task "$i"; done
else
  run_task ""
fi
echo "$status" >"$state/$id.status"
echo "$id"
