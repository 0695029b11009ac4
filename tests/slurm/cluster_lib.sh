# tests/slurm/cluster_lib.sh — sourced by the tests that start their own
# one-node cluster (local_cluster.sh, study_array.sh): timing helpers, and
# stop_cluster, which stops the cluster in $cl (scripts/slurm_local.sh at
# $sl) and fails (returns 1) when any of its processes is left (none_left:
# pgrep on the cluster's files, and the daemons' marker, slurm_local.sh procs).
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
fail() { echo "FAIL: $*"; exit 1; }

# returns 1 (naming them) when processes of the cluster in $cl are alive
none_left() {
  local left p
  left=$( { command -v pgrep >/dev/null && pgrep -f -- "$cl/"; bash "$sl" procs "$cl"; } | sort -u)
  [ -z "$left" ] && return 0
  echo "FAIL: processes of the cluster left behind:"
  for p in $left; do echo "  $p $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"; done
  return 1
}

stop_cluster() {
  local rc=0 t
  t=$(now)
  bash "$sl" stop "$cl" || rc=1
  echo "cluster stop: $(since "$t") s"
  none_left || rc=1
  return $rc
}
