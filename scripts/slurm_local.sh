#!/usr/bin/env bash
# scripts/slurm_local.sh — a self-contained one-node Slurm cluster on this
# machine, everything (munge key and socket, slurm.conf, state, spool, pid
# and log files) in one folder DIR; nothing outside it is read or written
# but the Debian packages' binaries and plugins (slurm-wlm, munge).
#
#   scripts/slurm_local.sh start [DIR] [--owner PID]
#       generates a munge key, starts munged, writes DIR/slurm.conf for this
#       machine (`slurmd -C`; free ports), starts slurmctld and slurmd and
#       waits (bounded) until the node is idle; prints `export ...` lines
#       for the clients (as `env` does). DIR defaults to a new
#       /tmp/wb-slurm.XXXXXX. A cluster still running in DIR is stopped
#       first. --owner PID: a detached watchdog stops the cluster when PID
#       exits, even by SIGKILL (a test killed by its time limit).
#   scripts/slurm_local.sh stop [DIR]
#       cancels every job, `scontrol shutdown`, then ends slurmctld, slurmd,
#       their job steps and munged by pid file and by marker (bounded waits,
#       then SIGKILL); fails, listing them, if any process is left.
#   scripts/slurm_local.sh status [DIR]    daemons, node state; 0 when up
#   scripts/slurm_local.sh env [DIR]       export SLURM_CONF=... lines
#   scripts/slurm_local.sh procs [DIR]     the live processes of the cluster
# (DIR defaults to $SLURM_LOCAL_DIR, as `env` exports it.)
#
# By hand:  scripts/slurm_local.sh start /tmp/slurm && eval "$(scripts/slurm_local.sh env /tmp/slurm)"
#           sbatch --wrap hostname; squeue; ...; scripts/slurm_local.sh stop /tmp/slurm
#
# Exit status: 0 ok; 77 with a line "SKIP: <daemon> cannot start here:
# <reason>" when this environment cannot run the daemons (not root, a binary
# missing); 2 usage; 1 any other failure, naming the daemon and showing the
# last lines of its log.
#
# Environment: SLURM_LOCAL_TIMEOUT (s, default 30) bounds each wait for a
# daemon; SLURM_LOCAL_PORT (first of two consecutive ports; default random).
set -uo pipefail

SKIP=77
timeout_s=${SLURM_LOCAL_TIMEOUT:-30}
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
marker_var=WB_SLURM_LOCAL_DAEMON # set in the daemons' environment (slurmstepd inherits it)
unset "$marker_var"
PATH=$PATH:/usr/sbin:/sbin # the daemons, for users whose PATH lacks sbin

say() { echo "slurm_local: $*" >&2; }
starting=0 # set once start has launched something: a failure then stops it all
die() { say "$*"; [ $starting = 1 ] && { starting=0; do_stop; }; exit 1; }
skip() { echo "SKIP: $1 cannot start here: $2"; exit $SKIP; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---- processes, from /proc (no procps needed) ------------------------------
# state letter of PID, empty when gone
proc_state() {
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  st=${st##*) }
  echo "${st%% *}"
}
alive() { local s; s=$(proc_state "$1"); [ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]; }
pid_of() { local p; p=$(cat "$dir/$1.pid" 2>/dev/null) && [[ $p =~ ^[0-9]+$ ]] && echo "$p"; }

# every live process of the cluster in $dir: marked daemons (and slurmstepd,
# which inherits the mark), processes whose command line names the cluster's
# files, and everything in the sessions and subtrees of those; never this
# script, its ancestors or its session
cluster_procs() {
  local p d stat rest ppid sid me_sid c cl
  local -A par=() ses=() hit=() hitses=() mine=()
  me_sid=$(awk '{ sub(/.*\) /, ""); print $4 }' /proc/$$/stat)
  p=$$
  while [ -n "$p" ] && [ "$p" != 0 ]; do
    mine[$p]=1
    p=$(awk '{ sub(/.*\) /, ""); print $2 }' "/proc/$p/stat" 2>/dev/null)
  done
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    stat=$(cat "$d/stat" 2>/dev/null) || continue
    rest=${stat##*) }
    set -- $rest
    [ "$1" = Z ] || [ "$1" = X ] && continue
    ppid=$2 sid=$4
    par[$p]=$ppid ses[$p]=$sid
    [ -n "${mine[$p]:-}" ] && continue
    cl=()
    mapfile -d "" -t cl 2>/dev/null <"$d/cmdline"
    c=" ${cl[*]} "
    if [[ $c == *" -f $dir/slurm.conf "* || $c == *" $dir/spool/"* || $c == *" --socket=$dir/munge.socket "* ]] ||
       grep -qzxF "$marker_var=$dir" "$d/environ" 2>/dev/null; then
      hit[$p]=1
      [ "$sid" != "$me_sid" ] && hitses[$sid]=1
    fi
  done
  local changed=1
  while [ $changed = 1 ]; do
    changed=0
    for p in "${!par[@]}"; do
      [ -n "${hit[$p]:-}" ] || [ -n "${mine[$p]:-}" ] && continue
      if [ -n "${hit[${par[$p]}]:-}" ] || [ -n "${hitses[${ses[$p]}]:-}" ]; then hit[$p]=1; changed=1; fi
    done
  done
  for p in "${!hit[@]}"; do alive "$p" && echo "$p"; done | sort -n
}

show_procs() {
  local p
  for p in "$@"; do
    printf '  %s %s\n' "$p" "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-150)"
  done
}

# wait up to $1 s until none of the given pids lives
wait_gone() {
  local limit=$1 t0 p any
  shift
  t0=$(date +%s)
  while :; do
    any=0
    for p in "$@"; do alive "$p" && any=1; done
    [ $any = 0 ] && return 0
    [ $(( $(date +%s) - t0 )) -ge "$limit" ] && return 1
    sleep 0.2
  done
}

log_tail() { # daemon: last lines of its log and of what it printed
  local f
  for f in "$dir/$1.log" "$dir/$1.stderr"; do
    [ -s "$f" ] && { echo "---- last lines of $f"; tail -n 25 "$f"; }
  done >&2
}

fail_daemon() { # daemon message
  say "$1 failed to start: $2"
  log_tail "$1"
  [ $starting = 1 ] && { starting=0; do_stop; }
  exit 1
}

# ---- arguments -------------------------------------------------------------
cmd=${1:-}
[ $# -gt 0 ] && shift
dir="" owner=""
while [ $# -gt 0 ]; do
  case $1 in
    --owner) owner=${2:-}; shift 2 || { echo "slurm_local: --owner needs a PID" >&2; exit 2; } ;;
    -*) echo "slurm_local: unknown option $1" >&2; exit 2 ;;
    *) [ -z "$dir" ] || { echo "slurm_local: one DIR only" >&2; exit 2; }; dir=$1; shift ;;
  esac
done
case $cmd in
  start|stop|status|env|procs|_watch) ;;
  *) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
if [ -z "$dir" ]; then
  if [ "$cmd" = start ]; then
    dir=$(mktemp -d /tmp/wb-slurm.XXXXXX) || die "cannot create a folder in /tmp"
  elif [ -n "${SLURM_LOCAL_DIR:-}" ]; then
    dir=$SLURM_LOCAL_DIR
  else
    echo "slurm_local: $cmd: give DIR (or set SLURM_LOCAL_DIR)" >&2; exit 2
  fi
fi
if [ "$cmd" = start ]; then mkdir -p "$dir" || die "cannot create $dir"; fi
[ -d "$dir" ] && dir=$(cd "$dir" && pwd -P)
conf=$dir/slurm.conf
export SLURM_CONF=$conf

env_lines() {
  printf 'export SLURM_CONF=%q\n' "$conf"
  printf 'export SLURM_LOCAL_DIR=%q\n' "$dir"
}

ctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }

# ---- stop --------------------------------------------------------------------
do_stop() {
  local t0 p pids left
  t0=$(now)
  # the watchdog, unless it is what runs this stop
  p=$(pid_of watchdog) && [ "$p" != $$ ] && alive "$p" && kill "$p" 2>/dev/null
  if [ -f "$conf" ] && command -v scontrol >/dev/null && alive "$(pid_of slurmctld || echo 0)" && ctld_up; then
    # jobs first: slurmd's shutdown leaves running job steps alive
    pids=$(squeue -h -o %i 2>/dev/null | sort -u)
    if [ -n "$pids" ]; then
      scancel $pids 2>/dev/null
      local t1; t1=$(date +%s)
      while [ -n "$(squeue -h -o %i 2>/dev/null)" ] && [ $(( $(date +%s) - t1 )) -lt 10 ]; do sleep 0.3; done
    fi
    scontrol shutdown >/dev/null 2>&1
  fi
  pids=()
  for p in slurmctld slurmd; do p=$(pid_of $p) && pids+=("$p"); done
  wait_gone 10 "${pids[@]}" || kill "${pids[@]}" 2>/dev/null
  wait_gone 3 "${pids[@]}"
  # everything else of the cluster but munged (slurmstepd, slurmscriptd, job
  # processes; daemons that did not end): TERM, then KILL
  local m; m=$(pid_of munged || echo 0)
  mapfile -t left < <(cluster_procs | grep -vx "$m")
  if [ ${#left[@]} -gt 0 ]; then
    kill "${left[@]}" 2>/dev/null
    wait_gone 3 "${left[@]}" || { kill -9 "${left[@]}" 2>/dev/null; wait_gone 3 "${left[@]}"; }
  fi
  if alive "$m"; then
    kill "$m" 2>/dev/null
    wait_gone 5 "$m" || { kill -9 "$m" 2>/dev/null; wait_gone 3 "$m"; }
  fi
  mapfile -t left < <(cluster_procs)
  if [ ${#left[@]} -gt 0 ]; then
    kill -9 "${left[@]}" 2>/dev/null
    wait_gone 3 "${left[@]}"
    mapfile -t left < <(cluster_procs)
  fi
  rm -f "$dir/up"
  if [ ${#left[@]} -gt 0 ]; then
    say "stop: processes of the cluster in $dir are still alive:"
    show_procs "${left[@]}" >&2
    return 1
  fi
  say "stopped the cluster in $dir ($(elapsed "$t0") s)"
}

# ---- start -------------------------------------------------------------------
preflight() {
  local b
  [ "$(id -u)" = 0 ] || skip slurmd "needs root (SlurmUser=root; slurmd starts jobs as their users), running as uid $(id -u)"
  for b in munged:munge slurmctld:slurmctld slurmd:slurmd scontrol:slurm-client sinfo:slurm-client \
           sbatch:slurm-client squeue:slurm-client scancel:slurm-client; do
    command -v "${b%%:*}" >/dev/null 2>&1 ||
      skip "$( case ${b%%:*} in munged|slurmctld|slurmd) echo "${b%%:*}" ;; *) echo "the Slurm clients" ;; esac)" \
           "${b%%:*} not found (Debian package ${b#*:}; scripts/deps.sh installs slurm-wlm and munge)"
  done
  [ -r /proc/self/stat ] || skip slurmd "/proc is not mounted"
}

# ports in use: every local port in /proc/net/tcp{,6} (any state)
used_ports() {
  local f _ local_addr
  for f in /proc/net/tcp /proc/net/tcp6; do
    [ -r "$f" ] || continue
    while read -r _ local_addr _; do
      [[ $local_addr == *:* ]] && echo $(( 16#${local_addr##*:} ))
    done < <(tail -n +2 "$f")
  done | sort -un
}

pick_ports() {
  local used p
  used=" $(used_ports | tr '\n' ' ') "
  if [ -n "${SLURM_LOCAL_PORT:-}" ] && [ "${attempt:-1}" = 1 ]; then
    ctld_port=$SLURM_LOCAL_PORT slurmd_port=$((SLURM_LOCAL_PORT + 1))
    return
  fi
  for _ in $(seq 50); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    [[ $used == *" $p "* || $used == *" $((p + 1)) "* ]] && continue
    ctld_port=$p slurmd_port=$((p + 1))
    return
  done
  die "no two free consecutive TCP ports found"
}

node_conf() { # NodeName line from slurmd -C (this machine's CPUs, sockets, cores, threads, memory)
  local out kv k v cpus=1 boards=1 spb=1 cps=1 tpc=1 mem=1
  out=$(slurmd -C 2>&1 | head -n 1) || true
  [[ $out == NodeName=* ]] || { echo "'slurmd -C' gave no node line: $out"; return 1; }
  for kv in $out; do
    k=${kv%%=*} v=${kv#*=}
    case $k in
      CPUs) cpus=$v ;; Boards) boards=$v ;; SocketsPerBoard) spb=$v ;;
      CoresPerSocket) cps=$v ;; ThreadsPerCore) tpc=$v ;; RealMemory) mem=$v ;;
    esac
  done
  echo "NodeName=$node NodeHostname=$node NodeAddr=127.0.0.1 CPUs=$cpus Sockets=$((boards * spb)) CoresPerSocket=$cps ThreadsPerCore=$tpc RealMemory=$mem State=UNKNOWN"
}

write_conf() {
  cat >"$conf" <<EOF
# written by scripts/slurm_local.sh on $(date -u +%FT%TZ): a one-node cluster in $dir
ClusterName=wblocal
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$dir/plugstack.conf
TmpFS=$dir/tmp
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1
MailProg=/bin/true
FirstJobId=1000
MinJobAge=300
SlurmctldTimeout=10
SlurmdTimeout=10
MessageTimeout=10
InactiveLimit=0
KillWait=3
BatchStartTimeout=10
$node_line
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munged() {
  local rc key=$dir/munge.key
  rm -f "$dir"/munge.socket* "$dir/munged.pid" "$key"
  if command -v mungekey >/dev/null 2>&1; then
    (umask 077; mungekey -c -k "$key" >"$dir/munged.stderr" 2>&1) || fail_daemon munged "mungekey -c -k $key failed"
  else
    (umask 077; dd if=/dev/urandom of="$key" bs=128 count=1 status=none) || fail_daemon munged "cannot write $key"
  fi
  chmod 0400 "$key"; chown "$(id -u):$(id -g)" "$key" # owned by the user munged runs as (this one)
  local args=(--socket="$dir/munge.socket" --key-file="$key" --pid-file="$dir/munged.pid"
              --log-file="$dir/munged.log" --seed-file="$dir/munged.seed")
  env "$marker_var=$dir" munged "${args[@]}" </dev/null >>"$dir/munged.stderr" 2>&1
  rc=$?
  if [ $rc != 0 ] && grep -q -e '--force' "$dir/munged.stderr" "$dir/munged.log" 2>/dev/null; then
    say "munged refused to start without --force (see below); starting it with --force"
    log_tail munged
    env "$marker_var=$dir" munged --force "${args[@]}" </dev/null >>"$dir/munged.stderr" 2>&1
    rc=$?
  fi
  [ $rc = 0 ] || fail_daemon munged "munged exited with status $rc"
  local t0; t0=$(date +%s)
  until munge -n -S "$dir/munge.socket" 2>/dev/null | unmunge -S "$dir/munge.socket" >/dev/null 2>&1; do
    alive "$(pid_of munged || echo 0)" || fail_daemon munged "munged died"
    [ $(( $(date +%s) - t0 )) -ge "$timeout_s" ] && fail_daemon munged "no credential round trip on $dir/munge.socket within $timeout_s s"
    sleep 0.2
  done
}

# 0 up, 1 died, 2 its port was taken (retry with others)
start_slurmctld() {
  local rc t0 p
  rm -f "$dir/slurmctld.pid"
  env "$marker_var=$dir" slurmctld -f "$conf" </dev/null >>"$dir/slurmctld.stderr" 2>&1
  rc=$?
  [ $rc = 0 ] || fail_daemon slurmctld "slurmctld -f $conf exited with status $rc"
  t0=$(date +%s)
  until ctld_up; do
    sleep 0.2
    p=$(pid_of slurmctld)
    if { [ -n "$p" ] && ! alive "$p"; } || { [ -z "$p" ] && [ $(( $(date +%s) - t0 )) -ge 10 ]; }; then
      grep -q 'Address already in use' "$dir/slurmctld.log" 2>/dev/null && return 2
      fail_daemon slurmctld "slurmctld died"
    fi
    [ $(( $(date +%s) - t0 )) -ge "$timeout_s" ] && fail_daemon slurmctld "not answering 'scontrol ping' within $timeout_s s"
  done
}

start_slurmd() {
  local rc t0 p state
  rm -f "$dir/slurmd.pid"
  env "$marker_var=$dir" slurmd -f "$conf" -N "$node" </dev/null >>"$dir/slurmd.stderr" 2>&1
  rc=$?
  [ $rc = 0 ] || fail_daemon slurmd "slurmd -f $conf -N $node exited with status $rc"
  t0=$(date +%s)
  while :; do
    state=$(sinfo -h -n "$node" -o %T 2>/dev/null | head -n 1)
    [ "$state" = idle ] && break
    p=$(pid_of slurmd)
    if { [ -n "$p" ] && ! alive "$p"; } || { [ -z "$p" ] && [ $(( $(date +%s) - t0 )) -ge 10 ]; }; then
      grep -q 'Address already in use' "$dir/slurmd.log" 2>/dev/null && return 2
      fail_daemon slurmd "slurmd died"
    fi
    if [ $(( $(date +%s) - t0 )) -ge "$timeout_s" ]; then
      say "node $node: $(scontrol show node "$node" 2>&1 | grep -E 'State=|Reason=' | tr -s ' ' | tr '\n' ' ')"
      fail_daemon slurmd "node $node not idle within $timeout_s s (sinfo says '${state:-nothing}')"
    fi
    sleep 0.2
  done
}

do_start() {
  local t0 attempt rc
  t0=$(now)
  preflight
  [ ${#dir} -le 64 ] || die "DIR $dir is too long: Unix socket paths in it (munge, slurmstepd) must stay under 108 bytes; use a folder of at most 64 characters"
  [[ $dir =~ ^[A-Za-z0-9/._+-]+$ ]] || die "DIR $dir: only letters, digits and / . _ + - (slurm.conf has no quoting)"
  # munged wants every folder above its socket searchable by all
  local up=$dir
  while [ "$up" != / ]; do
    up=$(dirname "$up")
    [ "$up" = / ] || [ "$(( 8#$(stat -c %a "$up") & 1 ))" = 1 ] ||
      die "$up is not searchable by others (mode $(stat -c %a "$up")): munged refuses a socket below it; choose a DIR elsewhere (e.g. under /tmp)"
  done
  if [ -n "$(cluster_procs)" ]; then
    say "a cluster is still running in $dir: stopping it first"
    do_stop || die "cannot stop the old cluster in $dir"
  fi
  node=$(hostname -s 2>/dev/null || uname -n)
  node=${node%%.*}
  [ -n "$node" ] || die "no host name"
  chmod 0755 "$dir"
  rm -rf "$dir/state" "$dir/spool" "$dir/tmp" "$dir"/*.log "$dir"/*.stderr "$dir"/*.pid "$dir/up"
  mkdir -p "$dir/state" "$dir/spool" "$dir/tmp"
  : >"$dir/plugstack.conf"
  node_line=$(node_conf) || { say "slurmd failed to start: $node_line"; exit 1; }
  starting=1
  start_munged
  for attempt in 1 2 3; do
    pick_ports
    write_conf
    rm -rf "$dir/state"/*
    start_slurmctld
    rc=$?
    if [ $rc = 2 ]; then say "port $ctld_port was taken; trying others"; continue; fi
    start_slurmd
    rc=$?
    if [ $rc = 2 ]; then
      say "port $slurmd_port was taken; trying others"
      scontrol shutdown >/dev/null 2>&1
      wait_gone 10 "$(pid_of slurmctld || echo 0)"
      continue
    fi
    break
  done
  [ $rc = 0 ] || { do_stop; die "no free ports after 3 attempts"; }
  starting=0
  date +%s >"$dir/up"
  if [ -n "$owner" ]; then
    local launcher=nohup
    command -v setsid >/dev/null && launcher=setsid
    $launcher "$self" _watch "$dir" --owner "$owner" </dev/null >>"$dir/watchdog.log" 2>&1 &
  fi
  say "cluster up in $dir: node $node ($(grep -o 'CPUs=[0-9]*' "$conf"), ports $ctld_port/$slurmd_port), $(elapsed "$t0") s"
  env_lines
}

do_watch() { # stop the cluster once $owner has exited
  echo $$ >"$dir/watchdog.pid"
  while alive "$owner" && [ -e "$dir/up" ]; do sleep 1; done
  [ -e "$dir/up" ] || exit 0
  say "owner $owner has exited: stopping the cluster in $dir"
  do_stop
}

do_status() {
  local d p rc=0
  for d in munged slurmctld slurmd; do
    p=$(pid_of $d)
    if [ -n "$p" ] && alive "$p"; then echo "$d: running (pid $p)"; else echo "$d: not running"; rc=1; fi
  done
  if [ $rc = 0 ] && ctld_up; then
    sinfo 2>&1
  else
    rc=1
  fi
  return $rc
}

case $cmd in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  env) [ -f "$conf" ] || die "no cluster in $dir (no slurm.conf)"; env_lines ;;
  procs) cluster_procs ;;
  _watch) [[ $owner =~ ^[0-9]+$ ]] || exit 2; do_watch ;;
esac
