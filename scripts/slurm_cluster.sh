#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for testing kdlib's slurm executor
# (`python -m kdlib jobs PROFILE --executor slurm`, see `make slurm-check`).
#
#   scripts/slurm_cluster.sh start    install slurm-wlm and munge if missing (Debian, as root),
#                                     start munged, slurmctld and slurmd on localhost, wait until
#                                     the node is idle, print `sinfo`; idempotent
#   scripts/slurm_cluster.sh stop     stop the daemons this script started (by their pid files)
#   scripts/slurm_cluster.sh status   the daemons, `sinfo` and `squeue`
#
# The configuration goes where the SLURM and munge clients look by default
# (/etc/slurm/slurm.conf, /etc/munge/munge.key, /run/munge), so that `sbatch`, `sinfo`
# and submitit need no environment variable; the state, pid files and logs go to
# $KDLIB_SLURM_STATE (default /tmp/kdlib-slurm). An /etc/slurm/slurm.conf that this script
# did not write is never overwritten: `start` then fails and says so.
#
# The node is this host (NodeName=$(hostname), address 127.0.0.1) with the CPUs and memory
# `slurmd -C` detects; no cgroups are needed (ProctrackType=proctrack/linuxproc,
# TaskPlugin=task/none) and memory is not a consumable resource (CR_CPU), so jobs that ask
# for one CPU each run side by side. There is no accounting database: submitit's `sacct`
# polls fail (it says "Bypassing sacct error") and it finds each job's result by its file.
set -euo pipefail

STATE=${KDLIB_SLURM_STATE:-/tmp/kdlib-slurm}
CONF=/etc/slurm/slurm.conf
KEY=/etc/munge/munge.key
MUNGE_RUN=/run/munge
MUNGE_LOG=/var/log/munge/munged.log
MARK="# written by kdlib scripts/slurm_cluster.sh"
HOST=$(hostname -s)
WAIT_S=${KDLIB_SLURM_WAIT_S:-90}   # how long `start` waits for the node to be idle

log() { echo "[slurm-cluster] $*"; }

# The daemons' logs, then the reason, on stderr; exit 1.
fail() {
  {
    echo "[slurm-cluster] ---- logs of the daemons (last 40 lines each) ----"
    for f in "$MUNGE_LOG" "$STATE/slurmctld.log" "$STATE/slurmd.log"; do
      if [ -s "$f" ]; then echo "== $f"; tail -n 40 "$f"; fi
    done
    if command -v sinfo >/dev/null; then
      echo "== sinfo -R"; timeout 10 sinfo -R 2>&1 || true
    fi
    echo "error: the one-node SLURM cluster did not start: $*"
  } >&2
  exit 1
}

# pid in pid file $1 if that process runs, else nothing (exit 1).
running() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# --- packages ----------------------------------------------------------------------------------

install_packages() {
  local missing=()
  command -v munged >/dev/null || missing+=(munge)
  if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
     || ! command -v sbatch >/dev/null; then
    missing+=(slurm-wlm)
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null || [ "$(id -u)" != 0 ]; then
    fail "${missing[*]} not installed, and this is not root on a Debian-like system" \
         "(install them: apt-get install slurm-wlm munge)"
  fi
  log "installing ${missing[*]} (apt-get)"
  # as .ci/run does for chromium: first from the current package lists, then after an update
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >"$STATE/apt.log" 2>&1 \
    || { apt-get update -q >>"$STATE/apt.log" 2>&1 \
         && apt-get install -y -q "${missing[@]}" >>"$STATE/apt.log" 2>&1; } \
    || { tail -n 30 "$STATE/apt.log" >&2; fail "apt-get install ${missing[*]} failed"; }
  local cmd
  for cmd in munged slurmctld slurmd sbatch; do
    command -v "$cmd" >/dev/null || fail "apt-get installed ${missing[*]} but $cmd is missing"
  done
}

# --- munge -------------------------------------------------------------------------------------

start_munge() {
  local pid
  if pid=$(running "$MUNGE_RUN/munged.pid"); then
    log "munged runs (pid $pid)"
  else
    if [ ! -s "$KEY" ]; then
      log "writing a random 1024-byte munge key to $KEY"
      install -d -m 0700 -o munge -g munge "$(dirname "$KEY")"
      dd if=/dev/urandom of="$KEY" bs=1024 count=1 status=none
    fi
    chown munge:munge "$KEY"
    chmod 0400 "$KEY"
    install -d -m 0755 -o munge -g munge "$MUNGE_RUN"
    install -d -m 0700 -o munge -g munge /var/lib/munge /var/log/munge
    # as the munge user, which owns the key (its log: $MUNGE_LOG); --force: start even if a
    # stale socket is left, or a folder's permissions do not satisfy munged's checks
    runuser -u munge -- munged --force --key-file="$KEY" --socket="$MUNGE_RUN/munge.socket.2" \
      || fail "munged did not start"
    log "munged started (pid $(cat "$MUNGE_RUN/munged.pid"))"
  fi
  munge -n | unmunge >/dev/null 2>"$STATE/unmunge.err" \
    || fail "munge cannot encode and decode a credential: $(cat "$STATE/unmunge.err")"
}

# --- slurm.conf --------------------------------------------------------------------------------

write_conf() {
  local node tmp
  # this node as slurmd detects it: NodeName=... CPUs=... RealMemory=...
  node=$(slurmd -C 2>/dev/null | grep '^NodeName=') || fail "slurmd -C did not describe this node"
  node=$(echo "$node" | sed -E "s/^NodeName=[^ ]+/NodeName=$HOST/")
  tmp=$(mktemp)
  cat >"$tmp" <<EOF
$MARK; the one-node cluster of kdlib's CI
ClusterName=kdlib
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_RUN/munge.socket.2
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
StateSaveLocation=$STATE/slurmctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
  if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    rm -f "$tmp"
    fail "$CONF exists and was not written by this script: is this a real cluster? Use it" \
         "directly (sinfo) or move that file away"
  fi
  CONF_CHANGED=0
  if ! { [ -f "$CONF" ] && cmp -s "$tmp" "$CONF"; }; then
    install -D -m 0644 "$tmp" "$CONF"
    CONF_CHANGED=1   # running daemons must restart to read it
    log "wrote $CONF"
  fi
  rm -f "$tmp"
}

# --- start / stop / status ---------------------------------------------------------------------

stop_slurm() {
  local name pid
  for name in slurmd slurmctld; do
    if pid=$(running "$STATE/$name.pid"); then
      kill "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      log "stopped $name (pid $pid)"
    fi
  done
}

start() {
  local pid state
  mkdir -p "$STATE/slurmctld" "$STATE/slurmd"
  install_packages
  start_munge
  write_conf
  if [ "$CONF_CHANGED" = 1 ]; then stop_slurm; fi
  if pid=$(running "$STATE/slurmctld.pid"); then
    log "slurmctld runs (pid $pid)"
  else
    slurmctld || fail "slurmctld did not start"
    log "slurmctld started"
  fi
  if pid=$(running "$STATE/slurmd.pid"); then
    log "slurmd runs (pid $pid)"
  else
    slurmd || fail "slurmd did not start"
    log "slurmd started"
  fi
  # wait until the node is idle (or busy with jobs: mixed, allocated)
  for _ in $(seq "$WAIT_S"); do
    state=$(timeout 10 sinfo -h -n "$HOST" -o %t 2>/dev/null || true)
    case "$state" in
      idle|mix|mixed|alloc|allocated) break ;;
    esac
    running "$STATE/slurmctld.pid" >/dev/null || fail "slurmctld exited"
    running "$STATE/slurmd.pid" >/dev/null || fail "slurmd exited"
    sleep 1
  done
  case "$state" in
    idle|mix|mixed|alloc|allocated) ;;
    *) fail "node $HOST is '${state:-not listed}' after ${WAIT_S} s, not idle" ;;
  esac
  # a job through the whole chain: munge, slurmctld, slurmd, a job step on the node
  timeout 60 srun --quiet -N1 -n1 hostname >"$STATE/srun.out" 2>&1 \
    || fail "node $HOST is '$state' but \`srun hostname\` failed: $(cat "$STATE/srun.out")"
  log "the cluster is up (srun hostname: $(cat "$STATE/srun.out")):"
  sinfo
}

stop() {
  local pid
  stop_slurm
  if pid=$(running "$MUNGE_RUN/munged.pid"); then
    kill "$pid"
    log "stopped munged (pid $pid)"
  fi
}

status() {
  local name pid file rc=0
  for name in munged slurmctld slurmd; do
    file=$STATE/$name.pid
    [ "$name" = munged ] && file=$MUNGE_RUN/munged.pid
    if pid=$(running "$file"); then
      echo "$name: running (pid $pid)"
    else
      echo "$name: not running"; rc=1
    fi
  done
  if [ "$rc" = 0 ]; then
    timeout 10 sinfo || rc=1
    timeout 10 squeue || rc=1
  fi
  return "$rc"
}

mkdir -p "$STATE"
case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
