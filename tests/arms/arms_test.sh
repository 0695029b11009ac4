#!/bin/bash
# tests/arms/arms_test.sh — wb.arms end to end on tests/lua/arms_toy.lua (a
# 2-D teacher as the shared setup, arms a, b, c; each arm's run appends its
# name to OUT/ran.txt, the setup to OUT/setup.txt, so a case counts what ran
# in which process). One case per CTest test:
#
#   jobs_failure   --jobs 2 with arm b failing: the parent fails naming the arm,
#                  its exit status and its log; a and c finish and keep results
#   single_arm     arm=NAME alone: refused until the setup exists (arm=setup
#                  makes it), then runs that arm only, writes its result, and
#                  the report code does not run
#   resume_skips   a re-run with resume=OUT runs only the arm whose result is
#                  missing (and nothing at all when none is); without resume
#                  every arm runs again
#   table          workbench table FILE.lua: the report again, identical; a
#                  missing result or one of other arguments is an error naming it
#   stop           SIGTERM to a --jobs parent: the workers get it, checkpoint,
#                  the parent exits 75; resume=OUT finishes the job
#   slurm          --slurm through tests/arms/fake_sbatch.sh: three jobs chained
#                  by afterok, the scripts in OUT/slurm, the same table as in
#                  one process; resubmission (a submission always resumes) submits only the
#                  missing arm, and nothing when every arm has a result;
#                  ntasks=2 runs each arm under srun
#   divergence_sweep_slurm  the study's smoke profile through the fake Slurm:
#                  the table of the in-process run (the 5th argument), digit
#                  for digit
#
# Run: bash tests/arms/arms_test.sh WORKBENCH SOURCE_DIR WORK_DIR CASE [TABLE.csv]
set -u
wb=$1 src=$2 work=$3 case=$4
toy=$src/tests/lua/arms_toy.lua
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL ($case): $*" >&2; exit 1; }
# lines of a file, sorted and joined ("a b c"); "" for a missing file
ran() { [ -f "$1" ] && sort "$1" | tr '\n' ' ' | sed 's/ $//'; }
expect_in() { grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "'$2' not in $1"; }; }
expect_not_in() { ! grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "'$2' in $1"; }; }
run() { # run LOG ARGS...: the workbench's status; its output in LOG
  local log=$1
  shift
  "$wb" "$@" >"$log" 2>&1
}

case $case in
jobs_failure)
  out=$work/out
  run "$work/run.log" run "$toy" out="$out" fail=b --jobs 2 && fail "a failing arm must fail the run"
  expect_in "$work/run.log" "arm 'b': exit status 1, log $out/arms/b.log"
  expect_in "$work/run.log" "1 of 3 arms failed"
  expect_in "$out/arms/b.log" "arms_toy: arm b fails on purpose"
  [ -f "$out/arms/a.json" ] && [ -f "$out/arms/c.json" ] || fail "the other arms' results are missing"
  [ ! -f "$out/arms/b.json" ] || fail "the failed arm left a result"
  [ ! -f "$out/table.csv" ] || fail "the report ran although an arm failed"
  [ "$(ran "$out/ran.txt")" = "a b c" ] || fail "ran '$(ran "$out/ran.txt")', want every arm once"
  for arm in a b c; do # the teacher trained once, by the parent
    expect_in "$out/arms/$arm.log" "runs/teacher finished before (20 steps): loaded, not trained again"
  done
  ;;
single_arm)
  out=$work/out
  run "$work/early.log" run "$toy" out="$out" arm=a && fail "arm=a without a setup must fail"
  expect_in "$work/early.log" "runs/teacher' has no finished checkpoint"
  expect_in "$work/early.log" "arm=setup"
  run "$work/setup.log" run "$toy" out="$out" arm=setup || { cat "$work/setup.log"; fail "arm=setup failed"; }
  expect_in "$work/setup.log" "setup done"
  [ ! -e "$out/ran.txt" ] || fail "arm=setup ran an arm"
  run "$work/a.log" run "$toy" out="$out" arm=a || { cat "$work/a.log"; fail "arm=a failed"; }
  expect_in "$work/a.log" "loaded, not trained again"
  expect_in "$work/a.log" "arm 'a' done: $out/arms/a.json"
  expect_not_in "$work/a.log" "report written"
  [ "$(ran "$out/ran.txt")" = "a" ] || fail "ran '$(ran "$out/ran.txt")', want only a"
  [ -f "$out/arms/a.json" ] && [ ! -e "$out/arms/b.json" ] && [ ! -e "$out/table.csv" ] || fail "arm=a wrote more than its result"
  run "$work/nosuch.log" run "$toy" out="$out" arm=nosuch && fail "arm=nosuch must fail"
  expect_in "$work/nosuch.log" "arm=nosuch: no such arm (arms: a, b, c"
  ;;
resume_skips)
  out=$work/out
  run "$work/fresh.log" run "$toy" out="$out" --jobs 2 || { cat "$work/fresh.log"; fail "fresh run failed"; }
  expect_in "$work/fresh.log" "3 arms on 2 local workers"
  [ "$(ran "$out/ran.txt")" = "a b c" ] || fail "fresh run ran '$(ran "$out/ran.txt")'"
  cp "$out/table.csv" "$work/table.first.csv"
  rm "$out/arms/b.json" "$out/ran.txt"
  run "$work/resume.log" run "$toy" out="$out" resume="$out" --jobs 2 || { cat "$work/resume.log"; fail "resume failed"; }
  expect_in "$work/resume.log" "2 of 3 arms have a result"
  expect_in "$work/resume.log" "1 arm on 1 local worker"
  [ "$(ran "$out/ran.txt")" = "b" ] || fail "resume ran '$(ran "$out/ran.txt")', want only b"
  cmp "$out/table.csv" "$work/table.first.csv" || fail "the resumed table differs"
  rm "$out/ran.txt"
  setups=$(wc -l <"$out/setup.txt")
  run "$work/again.log" run "$toy" out="$out" resume="$out" --jobs 2 || { cat "$work/again.log"; fail "second resume failed"; }
  expect_in "$work/again.log" "3 of 3 arms have a result"
  [ ! -e "$out/ran.txt" ] || fail "a complete experiment re-ran '$(ran "$out/ran.txt")'"
  [ "$(wc -l <"$out/setup.txt")" -eq "$setups" ] || fail "a complete experiment made its setup again"
  run "$work/inproc.log" run "$toy" out="$out" resume="$out" || fail "in-process resume failed"
  [ ! -e "$out/ran.txt" ] || fail "an in-process resume re-ran '$(ran "$out/ran.txt")'"
  run "$work/fresh2.log" run "$toy" out="$out" --jobs 2 || fail "fresh re-run failed"
  [ "$(ran "$out/ran.txt")" = "a b c" ] || fail "a fresh re-run (no resume) ran '$(ran "$out/ran.txt")', want every arm"
  ;;
table)
  out=$work/out
  run "$work/run.log" run "$toy" out="$out" --jobs 2 || { cat "$work/run.log"; fail "run failed"; }
  mv "$out/table.csv" "$work/table.run.csv"
  run "$work/table.log" table "$toy" out="$out" || { cat "$work/table.log"; fail "workbench table failed"; }
  cmp "$out/table.csv" "$work/table.run.csv" || fail "workbench table built another table"
  # a report-only argument (the spec's report_args) re-reads the same results
  run "$work/label.log" table "$toy" out="$out" mmd_label=MMD2 || { cat "$work/label.log"; fail "a report_args key must not need new results"; }
  head -1 "$out/table.csv" | grep -q "MMD2" || fail "mmd_label=MMD2 did not reach the table: $(head -1 "$out/table.csv")"
  [ "$(tail -n +2 "$out/table.csv")" = "$(tail -n +2 "$work/table.run.csv")" ] || fail "mmd_label changed the numbers"
  run "$work/other.log" table "$toy" out="$out" steps=7 && fail "results of other arguments must not make a table"
  expect_in "$work/other.log" "was written for another configuration (steps=(unset), now 7)"
  rm "$out/arms/c.json"
  run "$work/missing.log" table "$toy" out="$out" && fail "a missing result must fail workbench table"
  expect_in "$work/missing.log" "no result for 1 of 3 arms: 'c' (no $out/arms/c.json)"
  run "$work/jobs.log" table "$toy" out="$out" jobs=2 && fail "jobs= must not apply to workbench table"
  expect_in "$work/jobs.log" "key 'jobs' does not apply to \`workbench table\`"
  ;;
stop)
  out=$work/out
  "$wb" run "$toy" out="$out" steps=600 --jobs 2 >"$work/run.log" 2>&1 &
  parent=$!
  for _ in $(seq 1 200); do # both workers started (their logs exist), or the run is over
    [ -f "$out/arms/a.log" ] && [ -f "$out/arms/b.log" ] && break
    kill -0 $parent 2>/dev/null || break
    sleep 0.05
  done
  sleep 0.5
  kill -TERM $parent
  wait $parent
  rc=$?
  [ $rc -eq 75 ] || { cat "$work/run.log"; fail "exit status $rc after SIGTERM, want 75"; }
  expect_in "$work/run.log" "stopped by a signal"
  [ ! -e "$out/table.csv" ] || fail "the report ran after a stop"
  expect_in "$out/arms/a.log" "SIGTERM" # the worker's own stop, with its checkpoint
  run "$work/resume.log" run "$toy" out="$out" steps=600 resume="$out" --jobs 2 || { cat "$work/resume.log"; fail "resume after the stop failed"; }
  expect_in "$out/arms/a.log" "resuming $out/runs/a from step"
  [ -f "$out/table.csv" ] || fail "no table after the resume"
  ;;
slurm)
  out=$work/out
  export FAKE_SLURM_DIR=$work/slurm-state WB_SBATCH="bash $src/tests/arms/fake_sbatch.sh"
  run "$work/inproc.log" run "$toy" out="$work/inproc" || { cat "$work/inproc.log"; fail "in-process run failed"; }
  run "$work/submit.log" run "$toy" out="$out" --slurm "--partition=debug --time=0:10:00" ||
    { cat "$work/submit.log"; fail "submission failed"; }
  expect_in "$work/submit.log" "setup  job 1001"
  expect_in "$work/submit.log" "arms   job 1002       3 array tasks"
  expect_in "$work/submit.log" "table  job 1003"
  expect_in "$work/submit.log" "squeue -j 1001,1002,1003"
  for f in setup arms table; do [ -f "$out/slurm/$f.sbatch" ] || fail "no $out/slurm/$f.sbatch"; done
  expect_in "$FAKE_SLURM_DIR/calls.log" "sbatch --parsable --partition=debug --time=0:10:00 $out/slurm/setup.sbatch"
  expect_in "$FAKE_SLURM_DIR/calls.log" "--dependency=afterok:1001 $out/slurm/arms.sbatch"
  expect_in "$FAKE_SLURM_DIR/calls.log" "--dependency=afterok:1002 $out/slurm/table.sbatch"
  expect_in "$out/slurm/arms.sbatch" "#SBATCH --array=0-2"
  [ "$(grep -c '^1002 ' "$FAKE_SLURM_DIR/tasks.log")" -eq 3 ] || fail "want 3 array tasks"
  [ "$(grep -c ' 0$' "$FAKE_SLURM_DIR/tasks.log")" -eq 5 ] || { cat "$FAKE_SLURM_DIR/tasks.log"; fail "a job failed"; }
  [ "$(ran "$out/ran.txt")" = "a b c" ] || fail "the array ran '$(ran "$out/ran.txt")'"
  expect_in "$out/slurm/table-1003.log" "report written"
  cmp "$out/table.csv" "$work/inproc/table.csv" || fail "the Slurm table differs from the in-process one"
  # resubmission (the same command: a submission always resumes): only what has no result
  rm "$out/arms/b.json" "$out/ran.txt" "$out/table.csv"
  run "$work/again.log" run "$toy" out="$out" --slurm "" || { cat "$work/again.log"; fail "resubmission failed"; }
  expect_in "$work/again.log" "1 array task, each logging to $out/arms/<arm>.log: b"
  expect_in "$out/slurm/arms.sbatch" "#SBATCH --array=0-0"
  [ "$(ran "$out/ran.txt")" = "b" ] || fail "the resubmission ran '$(ran "$out/ran.txt")'"
  cmp "$out/table.csv" "$work/inproc/table.csv" || fail "the resubmitted table differs"
  calls=$(wc -l <"$FAKE_SLURM_DIR/calls.log")
  run "$work/complete.log" run "$toy" out="$out" --slurm "" || fail "a complete resubmission failed"
  expect_in "$work/complete.log" "every arm has a result: nothing to submit"
  [ "$(wc -l <"$FAKE_SLURM_DIR/calls.log")" -eq "$calls" ] || fail "a complete experiment was submitted"
  # MPI arms: srun in every array task
  export PATH=$src/tests/arms/bin:$PATH
  run "$work/mpi.log" run "$toy" out="$work/mpi" --slurm "" ntasks=2 || { cat "$work/mpi.log"; fail "ntasks=2 failed"; }
  expect_in "$work/mpi/slurm/arms.sbatch" "#SBATCH --ntasks=2"
  [ "$(grep -c "arms_toy.lua out=$work/mpi resume=$work/mpi arm=" "$FAKE_SLURM_DIR/srun.log")" -eq 3 ] || fail "want 3 arms under srun"
  cmp "$work/mpi/table.csv" "$work/inproc/table.csv" || fail "the MPI-wired table differs"
  ;;
divergence_sweep_slurm)
  # the smoke profile through the fake Slurm; $5: the table of the same
  # study run in one process (CTest experiment_divergence_sweep_smoke)
  out=$work/out
  export FAKE_SLURM_DIR=$work/slurm-state WB_SBATCH="bash $src/tests/arms/fake_sbatch.sh"
  run "$work/submit.log" run "$src/experiments/divergence_sweep.lua" profile=smoke out="$out" cache="$work/cache" \
    --slurm "" || { cat "$work/submit.log"; fail "submission failed"; }
  expect_in "$work/submit.log" "16 array tasks"
  [ "$(grep -c ' 0$' "$FAKE_SLURM_DIR/tasks.log")" -eq 18 ] || { cat "$FAKE_SLURM_DIR/tasks.log"; fail "a job failed"; }
  "$wb" run "$src/tests/lua/compare_tables.lua" a="$5" b="$out/table.csv" tol=0 || fail "the Slurm table differs"
  ;;
*)
  fail "unknown case"
  ;;
esac
echo "arms_test $case: ok"
