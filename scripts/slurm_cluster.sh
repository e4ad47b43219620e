#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for CI and for developers.
#
#   bash scripts/slurm_cluster.sh install   # apt-get install munge, slurmctld, slurmd, slurm-client
#   bash scripts/slurm_cluster.sh start     # (re)start munged, slurmctld and slurmd; wait for an idle node
#   bash scripts/slurm_cluster.sh status    # the daemons, sinfo and squeue
#   bash scripts/slurm_cluster.sh stop      # cancel every job, stop the daemons
#
# Needs root (it writes /etc/slurm and runs the daemons directly, without
# systemd). Every job runs as whoever submits it, root in CI: Slurm lets root
# run jobs unless DisableRootJobs=YES, and the config says NO explicitly.
#
# Measured on 2026-12-02 with Debian 12's Slurm 22.05.8 on the project's 2-core,
# 23 GB machine (load 0.3 to 7: other work shared the cores), this config:
# - `install` took 5.5 s (apt's download cache warm); `start` 0.6 s from
#   stopped, 1.1 to 1.8 s as a restart, which leaves running jobs running.
# - `sbatch --wrap=hostname` runs: slurm-JOBID.out says the host name; 0.6 s
#   from sbatch until squeue no longer lists the job.
# - `srun -n 2 hostname` prints the host name twice (2 tasks) in 0.14 s.
# - `sbatch --array=0-2 -c 1` (3 one-CPU tasks, 5 s each): 2 start at once on
#   the 2 CPUs, the third 1 s after one of them ends. submitit's map_array and
#   `with executor.batch()` give the same: one array, all but the last task
#   with a job id of its own (SLURM_JOB_ID), SLURM_ARRAY_JOB_ID the array's.
# - `scontrol requeue JOBID` of a running batch job: it runs again, with the
#   same job id, from the top of its script, 12.0 s later (at load 0.4 and
#   at load 7 alike). Slurm holds a
#   requeued job until the old job's credential expires (AuthInfo's
#   cred_expire: 10 s here), then starts it at the next scheduling pass
#   (sched_interval: 2 s here). With Slurm's defaults (120 s, 60 s) the same
#   requeue took 174 s.
# - `scancel --signal=USR2 JOBID` signals every task of every job step and
#   their children (proctrack/linuxproc walks the process tree; a child with
#   no handler dies of it), not the batch script (add --full for that).
#   submitit's job._interrupt() sends SIGTERM, then USR2, the same way.
# - A process that outlives its parent (orphaned, reparented to init) is
#   lost to proctrack/linuxproc: it survives the job's end. Cgroups would
#   catch it; this cluster has none (see ProctrackType below).
# - No accounting: `sacct` prints "Slurm accounting storage is disabled" on
#   stderr and exits 1. submitit polls sacct, logs the failure as a warning,
#   and sees every job's state as UNKNOWN (tests/slurm_support.py says what
#   follows).
set -euo pipefail

readonly CONF_DIR=/etc/slurm
readonly LOG_DIR=/var/log/slurm
readonly RUN_DIR=/run/slurm
readonly CTLD_PID="$RUN_DIR/slurmctld.pid"
readonly SLURMD_PID="$RUN_DIR/slurmd.pid"
readonly MUNGE_KEY=/etc/munge/munge.key
readonly MUNGE_RUN=/run/munge
# Seconds `start` waits for the node to come up, and `stop` for the daemons to end.
readonly START_TIMEOUT_S="${SLURM_START_TIMEOUT_S:-90}"
readonly STOP_TIMEOUT_S=30

log() { echo "slurm_cluster: $*" >&2; }
die() { log "$*"; exit 1; }

require_root() {
  [ "$(id -u)" = 0 ] || die "run as root: it writes /etc/slurm and starts daemons"
}

# ---------------------------------------------------------------- install

cmd_install() {
  require_root
  local missing=0 program
  for program in slurmctld slurmd sbatch munged; do
    command -v "$program" >/dev/null || missing=1
  done
  [ "$missing" = 1 ] || return 0  # Already installed.
  export DEBIAN_FRONTEND=noninteractive
  local out
  out="$(mktemp)"
  # No recommends: they are two dozen optional plugins (HDF5, InfluxDB, ...).
  # apt's chatter goes to a file, shown only when something failed.
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends \
           munge slurmctld slurmd slurm-client; } >"$out" 2>&1; then
    cat "$out" >&2
    rm -f "$out"
    die "apt-get failed"
  fi
  rm -f "$out"
  log "installed $(dpkg-query -W -f='slurmctld ${Version}' slurmctld)"
}

# ---------------------------------------------------------------- helpers

# Whether the pid in file $1 is alive and runs the program named $2. A stale
# pid file (the machine or session was restarted) says nothing, and neither
# does a zombie: this machine's init may never reap the daemons it inherits.
alive() {
  local pid stat
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [ -n "$pid" ] || return 1
  stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
  # /proc/PID/stat: "PID (COMM) STATE ...".
  [ "$(echo "$stat" | cut -d' ' -f2)" = "($2)" ] && [ "$(echo "$stat" | cut -d' ' -f3)" != Z ]
}

# Sends SIGTERM to the daemon of pid file $1 (program $2) and waits for it to end.
stop_daemon() {
  local pid_file="$1" name="$2" pid polls=0
  alive "$pid_file" "$name" || { rm -f "$pid_file"; return 0; }
  pid="$(cat "$pid_file")"
  kill -TERM "$pid"
  while alive "$pid_file" "$name"; do
    if [ "$polls" -ge $((STOP_TIMEOUT_S * 5)) ]; then
      log "$name (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT_S}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 0.2
    polls=$((polls + 1))
  done
  rm -f "$pid_file"
}

munge_works() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }

print_logs() {
  local file
  for file in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" /var/log/munge/munged.log; do
    echo "----- last lines of $file" >&2
    tail -n 25 "$file" >&2 2>/dev/null || echo "(none)" >&2
  done
}

# ---------------------------------------------------------------- start

start_munge() {
  if [ ! -s "$MUNGE_KEY" ]; then
    # Debian's package writes a key at install time; a purge removes it.
    install -d -o munge -g munge -m 0700 /etc/munge
    dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none
    chown munge:munge "$MUNGE_KEY"
    chmod 0400 "$MUNGE_KEY"
  fi
  munge_works && return 0
  install -d -o munge -g munge -m 0755 "$MUNGE_RUN"
  # A munged that does not answer goes; so do the socket and pid file that a
  # killed one leaves, which make a new one refuse to start.
  stop_daemon "$MUNGE_RUN/munged.pid" munged
  rm -f "$MUNGE_RUN/munge.socket.2" "$MUNGE_RUN/munge.socket.2.lock" "$MUNGE_RUN/munged.pid"
  runuser -u munge -- munged
  local _
  for _ in $(seq 20); do
    munge_works && return 0
    sleep 0.5
  done
  print_logs
  die "munged does not answer"
}

# Writes slurm.conf for one node: this host, all of its CPUs, most of its memory.
write_conf() {
  local host cpus mem_mb
  host="$(hostname -s)"
  cpus="$(nproc)"
  # RealMemory must not exceed what slurmd finds, or the node is drained;
  # leave 1 GiB for the daemons and the system.
  mem_mb=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  install -d -m 0755 "$CONF_DIR"
  cat >"$CONF_DIR/slurm.conf" <<EOF
# Written by scripts/slurm_cluster.sh start: one node, no cgroups, no accounting.
ClusterName=harness
# No mail is sent (Debian's default MailProg is not installed).
MailProg=/bin/true
# Everything on loopback: this host is the controller and the only node.
SlurmctldHost=$host(127.0.0.1)
# The daemons run as root: a throwaway test cluster, and it spares chowns.
SlurmUser=root
SlurmdUser=root
DisableRootJobs=NO
AuthType=auth/munge
CredType=cred/munge
# A requeued job may not start before the old job's credential expires
# (120 s by default, 5 s at least): 10 s keeps a requeue quick yet leaves a
# step launch on a loaded 2-core machine plenty of time.
AuthInfo=cred_expire=10
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups (the machine may have no writable cgroup tree): processes are
# tracked through /proc and tasks are not bound to CPUs.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
# Cores are what jobs ask for; memory is not tracked (a job without --mem
# must not claim the whole node).
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Look at pending jobs every 2 s, not 60 s (main loop) and 30 s (backfill):
# a requeued job otherwise waits for the next pass after its hold ends.
SchedulerParameters=sched_interval=2,bf_interval=2
# Batch jobs may be requeued (submitit's preemption handling needs it).
JobRequeue=1
# Finished jobs stay visible to squeue/scontrol for 5 minutes.
MinJobAge=300
# Seconds between SIGTERM and SIGKILL at a time limit or scancel.
KillWait=5
# A node that went DOWN (for instance slurmd restarted) comes back by itself.
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

# Prints the node's state as sinfo sees it (idle, mixed, allocated, down*, ...).
node_state() { sinfo -h -o %T 2>/dev/null | head -n 1; }

# When the node's slurmd last registered, as scontrol prints it (2026-12-02T04:47:10).
slurmd_start_time() {
  scontrol show node "$(hostname -s)" 2>/dev/null \
    | sed -n 's/.*SlurmdStartTime=\([^ ]*\).*/\1/p'
}

# Waits until the node is up and its slurmd is the one started at or after
# $1 (a time as scontrol prints it): a restarted slurmctld reports the node's
# last known state at once, before the new slurmd has registered.
wait_for_node() {
  local since="$1" polls=0 state=""
  while [ "$polls" -lt $((START_TIMEOUT_S * 5)) ]; do
    state="$(node_state)"
    case "$state" in
      idle|mixed|allocated|completing)
        # ISO times compare as strings.
        [[ ! "$(slurmd_start_time)" < "$since" ]] && return 0 ;;
    esac
    sleep 0.2
    polls=$((polls + 1))
  done
  print_logs
  die "the node is not up after ${START_TIMEOUT_S}s (sinfo says '${state:-nothing}')"
}

cmd_start() {
  require_root
  command -v slurmctld >/dev/null || die "Slurm is not installed: run '$0 install' first"
  local warm=0
  alive "$CTLD_PID" slurmctld && warm=1
  install -d -m 0755 "$LOG_DIR" "$RUN_DIR" /var/spool/slurmctld /var/spool/slurmd
  start_munge
  # Restarting the daemons leaves running jobs alone: their slurmstepd
  # processes go on and the new slurmd finds them again.
  stop_daemon "$SLURMD_PID" slurmd
  stop_daemon "$CTLD_PID" slurmctld
  write_conf
  local since
  since="$(date +%Y-%m-%dT%H:%M:%S)"
  slurmctld
  slurmd
  wait_for_node "$since"
  if [ "$warm" = 0 ]; then
    # A cold start (after `stop`, or on a fresh boot) recovers the last
    # run's jobs from the state directory, ids and all; their processes are
    # gone, and Slurm would requeue them onto this run's 2 CPUs. Cancel
    # them. The state is kept rather than cleared (slurmctld -c) so that job
    # ids keep rising: a submitit folder never meets an old job's files.
    cancel_all_jobs
  fi
  log "up: node $(hostname -s), $(nproc) CPUs, state $(node_state)"
}

# ---------------------------------------------------------------- stop

cancel_all_jobs() {
  local ids waited=0
  ids="$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')"
  [ -n "${ids// /}" ] || return 0
  # shellcheck disable=SC2086  # One id per word.
  scancel $ids 2>/dev/null || true
  while [ -n "$(squeue -h -o %i 2>/dev/null)" ] && [ "$waited" -lt "$STOP_TIMEOUT_S" ]; do
    sleep 1
    waited=$((waited + 1))
  done
}

cmd_stop() {
  require_root
  if alive "$CTLD_PID" slurmctld; then
    cancel_all_jobs
  fi
  stop_daemon "$SLURMD_PID" slurmd
  stop_daemon "$CTLD_PID" slurmctld
  stop_daemon "$MUNGE_RUN/munged.pid" munged
  log "stopped"
}

# ---------------------------------------------------------------- status

# Exits 0 when all three daemons run, 1 otherwise.
cmd_status() {
  local name pid_file up=0
  for name in slurmctld slurmd; do
    pid_file="$RUN_DIR/$name.pid"
    if alive "$pid_file" "$name"; then
      echo "$name: running (pid $(cat "$pid_file"))"
    else
      echo "$name: not running"
      up=1
    fi
  done
  if munge_works; then echo "munged: running"; else echo "munged: not running"; up=1; fi
  if alive "$CTLD_PID" slurmctld; then
    sinfo
    squeue
  fi
  return "$up"
}

main() {
  case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
  esac
}

main "$@"
