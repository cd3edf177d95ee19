#!/usr/bin/env bash
# A one-node SLURM cluster (munge + slurmctld + slurmd) on this machine, to try the cluster path of
# the pipeline (workflow/profiles/slurm) on a workstation and to test it in CI.
#
#   workflow/cluster/local-slurm.sh start  [DIR]   start it (does nothing when it already runs)
#   workflow/cluster/local-slurm.sh stop   [DIR]   stop the daemons it started
#   workflow/cluster/local-slurm.sh status [DIR]   exit 0 when the node accepts jobs
#
# DIR (default $LOCAL_SLURM_DIR, else /tmp/local-slurm) holds what the cluster writes: its
# slurm.conf, the munge key, state, spool, logs and pid files. Outside it, only two volatile
# paths under /run: munge's default socket /run/munge/munge.socket.2 (unless a munged already
# answers there, which is then used as it is), and /run/slurm/conf, where slurmd caches the
# configuration it fetched from slurmctld ("configless" SLURM). Every SLURM command on this
# machine (sbatch, squeue, scancel, sinfo, and srun inside jobs) finds the cluster there without
# any variable, so a machine that already has /etc/slurm/slurm.conf is refused.
#
# Needs root (slurmd starts each job as the user who submitted it) and Debian's packages
# slurm-wlm and munge (`apt-get install slurm-wlm munge`). No accounting daemon (slurmdbd):
# `sacct` has nothing to report, so Snakemake polls job states with `squeue` (the profile
# detects this), and MinJobAge keeps finished jobs visible to squeue for an hour. No cgroups:
# memory requests are scheduled but not enforced.
# Ports: $LOCAL_SLURM_CTLD_PORT (default 6817) and $LOCAL_SLURM_SLURMD_PORT (default 6818).
set -euo pipefail

command_name=${1:-start}
DIR=${2:-${LOCAL_SLURM_DIR:-/tmp/local-slurm}}
CTLD_PORT=${LOCAL_SLURM_CTLD_PORT:-6817}
SLURMD_PORT=${LOCAL_SLURM_SLURMD_PORT:-6818}
CONF="$DIR/slurm.conf"
# munge's default socket: slurmd authenticates its configuration request with it, before it
# could read another socket path from the configuration.
SOCKET=/run/munge/munge.socket.2
CONFIGLESS_CACHE=/run/slurm/conf

say() { echo "local-slurm: $*" >&2; }
die() { say "error: $*"; exit 1; }

pid_alive() {  # pid_alive FILE NAME: the process whose id FILE holds runs, and is NAME
  local pid
  [[ -s $1 ]] || return 1
  pid=$(cat "$1")
  [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]]
}

node_ready() {  # the node accepts jobs: idle or busy (not down, drained or unknown)
  local state
  state=$(SLURM_CONF="$CONF" sinfo --noheader --format=%t 2>/dev/null | head -n1) || return 1
  [[ $state =~ ^(idle|mix|alloc|comp)$ ]]
}

clients_see_it() {  # a command without SLURM_CONF (as in jobs) reaches this cluster
  [[ -f $CONFIGLESS_CACHE/slurm.conf ]] \
    && env -u SLURM_CONF sinfo --noheader --format=%P 2>/dev/null | grep -q '^main'
}

running() {
  [[ -f $CONF ]] && pid_alive "$DIR/run/slurmctld.pid" slurmctld && pid_alive "$DIR/run/slurmd.pid" slurmd \
    && node_ready && clients_see_it
}

munge_works() {
  munge --socket="$SOCKET" --no-input 2>/dev/null | unmunge --socket="$SOCKET" >/dev/null 2>&1
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2
  shift 2
  for _ in $(seq $((seconds * 4))); do
    if "$@"; then return 0; fi
    sleep 0.25
  done
  die "$what did not come up within ${seconds}s (logs in $DIR/log)"
}

write_config() {
  local host node_line memory
  host=$(hostname -s)
  # The node's hardware as slurmd itself sees it (CPUs, sockets, cores, threads, memory); the
  # memory offered to jobs leaves 1 GiB (at most a tenth) to the system.
  node_line=$(slurmd -C | head -n1)
  memory=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node_line")
  memory=$((memory - (memory / 10 < 1024 ? memory / 10 : 1024)))
  node_line=$(sed "s/RealMemory=[0-9]*/RealMemory=$memory/" <<<"$node_line")
  cat >"$CONF.tmp" <<EOF
# Written by workflow/cluster/local-slurm.sh: a one-node cluster for trying and testing the pipeline.
ClusterName=localslurm
SlurmctldHost=$host
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmctldParameters=enable_configless
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SwitchType=switch/none
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# Finished jobs stay visible to squeue for an hour (Snakemake reads their final state there).
MinJobAge=3600
KillWait=5
$node_line State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$CONF.tmp" "$CONF"
}

start_munge() {
  # A munged that answers already (this script's, from an earlier start, or the system's) is used.
  munge_works && return 0
  mkdir -p "$DIR/munge" "$(dirname "$SOCKET")"
  chmod 0700 "$DIR/munge"
  chmod 0755 "$(dirname "$SOCKET")"
  if [[ ! -s $DIR/munge/munge.key ]]; then
    mungekey --create --keyfile="$DIR/munge/munge.key" 2>/dev/null \
      || dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
  fi
  chmod 0600 "$DIR/munge/munge.key"
  munged --force --socket="$SOCKET" --key-file="$DIR/munge/munge.key" \
    --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" \
    --seed-file="$DIR/munge/munged.seed"
  wait_for 10 munged munge_works
}

start() {
  [[ $(id -u) -eq 0 ]] || die "run as root (slurmd starts each job as the user who submitted it)"
  local missing=()
  for tool in munge munged mungekey slurmctld slurmd sbatch squeue sinfo scontrol; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  ((${#missing[@]} == 0)) || die "missing ${missing[*]}: apt-get install slurm-wlm munge"
  [[ ! -e /etc/slurm/slurm.conf ]] \
    || die "/etc/slurm/slurm.conf exists: this machine has a SLURM of its own; use that one"
  if running; then
    say "already running (partition main, node $(hostname -s); files in $DIR)"
    return 0
  fi
  stop_daemons quiet
  mkdir -p "$DIR"/{state,spool,log,run}
  chmod 0755 "$DIR"
  write_config
  start_munge
  # -c: a clean start (no jobs or node states left from an earlier run in this folder).
  SLURM_CONF="$CONF" slurmctld -c
  wait_for 20 slurmctld pid_alive "$DIR/run/slurmctld.pid" slurmctld
  # Configless: slurmd fetches slurm.conf from slurmctld and caches it in /run/slurm/conf.
  env -u SLURM_CONF slurmd --conf-server "$(hostname -s):$CTLD_PORT"
  wait_for 30 "the node (slurmd)" node_ready
  wait_for 10 "the configuration cache $CONFIGLESS_CACHE" clients_see_it
  say "one-node cluster up: partition main, node $(hostname -s); files in $DIR"
}

stop_daemon() {  # stop_daemon NAME PIDFILE: stop the daemon this script started, by its id
  local pid
  pid_alive "$2" "$1" || { rm -f "$2"; return 0; }
  pid=$(cat "$2")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 40); do
    pid_alive "$2" "$1" || { rm -f "$2"; return 0; }
    sleep 0.25
  done
  say "$1 (pid $pid) did not stop on TERM; sending KILL"
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$2"
}

stop_daemons() {
  stop_daemon slurmd "$DIR/run/slurmd.pid"
  stop_daemon slurmctld "$DIR/run/slurmctld.pid"
  stop_daemon munged "$DIR/run/munged.pid"  # only a munged this script started
  # slurmd's configuration cache, when it points into this folder.
  if [[ -L $CONFIGLESS_CACHE && $(readlink "$CONFIGLESS_CACHE") == "$DIR"/* ]]; then
    rm -f "$CONFIGLESS_CACHE"
  fi
  [[ ${1:-} == quiet ]] || say "stopped (files kept in $DIR)"
}

case $command_name in
  start) start ;;
  stop) stop_daemons ;;
  status)
    if running; then
      say "running (partition main, node $(hostname -s); files in $DIR)"
    else
      say "not running"
      exit 1
    fi
    ;;
  *) die "usage: $0 start|stop|status [DIR]" ;;
esac
