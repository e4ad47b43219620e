#!/usr/bin/env bash
# A Slurm cluster on this machine, for CI and for developers: one node (the host
# itself), or several nodes, each its own network and UTS namespace, sharing a
# network filesystem.
#
#   bash scripts/slurm_cluster.sh install   # apt-get install munge, Slurm, sshd, sshfs, ip
#   bash scripts/slurm_cluster.sh start     # start what is not running; wait for idle nodes
#   bash scripts/slurm_cluster.sh status    # the daemons, sinfo and squeue
#   bash scripts/slurm_cluster.sh stop      # cancel every job, stop the daemons, undo the rest
#   bash scripts/slurm_cluster.sh kill-node NODE    # a power loss: SIGKILL all of a node at once
#   bash scripts/slurm_cluster.sh revive-node NODE  # the node boots again
#   bash scripts/slurm_cluster.sh on-node NODE CMD...  # runs CMD inside the node (its network,
#                                                      # host name and mounts)
#
# Needs root (it writes /etc/slurm, namespaces, a bridge and /etc/hosts, and
# runs the daemons directly, without systemd). Every job runs as whoever
# submits it, root in CI: Slurm lets root run jobs unless DisableRootJobs=YES,
# and the config says NO explicitly.
#
# SLURM_CLUSTER_NODES=N (or `start --nodes=N`) chooses the cluster:
# - 0, the default: one node, this host, on the loopback (its hostname, all CPUs).
# - N >= 1: nodes node1..nodeN. Each is a network namespace with a veth on a
#   bridge (host 10.213.0.1, node k 10.213.0.(10+k), named in /etc/hosts) and
#   its own UTS and mount namespaces: its own host name, its own slurmd, and
#   its own sshfs mount of SHARED_DIR at the same path. slurmctld, munged and
#   the sshd that serves SHARED_DIR run on the host, on the bridge's address.
#   The nodes have no route beyond the bridge: traffic stays between the host,
#   the nodes and each one's loopback. Each node has all of the host's CPUs
#   (jobs of 2 tasks fit one node) and an Nth of its memory.
# Every path and port has a variable (SLURM_CLUSTER_CONF_DIR and so on, below),
# so a second cluster can run beside the first. `start` writes them to
# CONF_DIR/cluster.env; the other commands read it, so SLURM_CONF (which
# Slurm's own commands read) is all a client needs to name a cluster:
#   SLURM_CONF=/etc/slurm-multi/slurm.conf bash scripts/slurm_cluster.sh kill-node node2
# A second `start` of a running cluster changes nothing that runs.
#
# One node, the host:
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
#
# Three nodes (SLURM_CLUSTER_NODES=3), measured on 2026-12-07 on the same
# machine (gVisor, load 3.5 to 7), beside a running one-node cluster: this one
# with its own conf, run, log, state and spool directories, ports, bridge and
# subnet, as the variables above allow.
# - `start` took 1.6 s from nothing (bridge, namespaces, sshd, sshfs mounts,
#   daemons, until all 3 nodes are idle); again on the running cluster 0.3 s,
#   every daemon left as it was (the same pids); with a changed config 0.9 s
#   (slurmctld and each slurmd restarted in place; jobs go on).
# - `srun -N3 -n3 hostname` prints node1, node2, node3 in 0.07 s; each node
#   sees only its own address and the bridge.
# - sshfs 3.7.3: link(2) onto an existing name fails with EEXIST, or with
#   EPERM when another node made the name an instant before (8 processes on 3
#   nodes racing for 30 names: one winner each, 204 EEXIST, 6 EPERM), and
#   st_nlink is 1 right after a successful link (each name its own inode). A
#   file replaced by rename, read on another node: 5 of 187 reads came back
#   cut short when the new file was longer than the one before (the client
#   caches sizes), none stale by more than 0.3 s.
# - `kill-node` of a node running one batch job (6 processes: slurmd, the
#   job's slurmstepd, script and sleep, sshfs, ...) took 0.03 to 0.17 s.
#   sinfo shows the node `allocated*` 12 to 17 s later, `down*` at 24 s
#   (SlurmdTimeout=5) or 29 to 30 s (SlurmdTimeout=10, the default here),
#   when the job goes back to pending (reason BeginTime: the old
#   credential's 10 s); it runs on another node 10 s later (35 s, and 40 to
#   41 s, after the kill), with SLURM_RESTART_COUNT=1 (unset in its first
#   run). The same with the node's link taken down before the kill (as
#   `kill-node` now does) or not. SlurmdTimeout=5 gains only 6 s and risks a
#   busy node's slurmd being taken for lost, so it stays 10.
# - `revive-node` took 0.3 s until the node was idle again; 1.3 s right
#   after a kill (sshfs's first connection is reset while sshd still holds
#   the old one, and it tries again a second later).
set -euo pipefail

# ---------------------------------------------------------------- settings

# The configuration directory: SLURM_CLUSTER_CONF_DIR, else SLURM_CONF's, else /etc/slurm.
if [ -n "${SLURM_CLUSTER_CONF_DIR:-}" ]; then
  CONF_DIR="$SLURM_CLUSTER_CONF_DIR"
elif [ -n "${SLURM_CONF:-}" ]; then
  CONF_DIR="$(dirname "$SLURM_CONF")"
else
  CONF_DIR=/etc/slurm
fi
readonly CONF_DIR
readonly CLUSTER_ENV="$CONF_DIR/cluster.env"
# What the last `start` chose fills in what the environment leaves unset.
RECORDED_NODES="$(sed -n 's/^: "${SLURM_CLUSTER_NODES:=\(.*\)}"$/\1/p' "$CLUSTER_ENV" \
                   2>/dev/null || true)"
readonly RECORDED_NODES="${RECORDED_NODES:-0}"  # A cluster started before cluster.env: one node.
if [ -f "$CLUSTER_ENV" ]; then
  # shellcheck source=/dev/null
  . "$CLUSTER_ENV"
fi
# Each variable, its default, and what it is (cluster.env lists the same).
readonly SETTINGS=(
  "SLURM_CLUSTER_NODES=0"                 # 0: the host is the one node; N: node1..nodeN
  "SLURM_CLUSTER_LOG_DIR=/var/log/slurm"
  "SLURM_CLUSTER_RUN_DIR=/run/slurm"      # pid files, sshd's keys and config
  "SLURM_CLUSTER_STATE_DIR=/var/spool/slurmctld"
  "SLURM_CLUSTER_SPOOL_DIR=/var/spool/slurmd"
  "SLURM_CLUSTER_CTLD_PORT=6817"
  "SLURM_CLUSTER_SLURMD_PORT=6818"
  "SLURM_CLUSTER_NODE_PREFIX=node"
  "SLURM_CLUSTER_SUBNET=10.213.0"         # a /24: the host .1, node k .(10+k)
  "SLURM_CLUSTER_BRIDGE=slurmbr0"
  "SLURM_CLUSTER_SSH_PORT=2222"           # sshd on the bridge's address
  "SLURM_CLUSTER_SHARED_DIR=/srv/slurm-shared"  # served by sshd, mounted by each node
  "SLURM_CLUSTER_SLURMD_TIMEOUT=10"       # seconds before a silent node is DOWN
)
for setting in "${SETTINGS[@]}"; do
  name="${setting%%=*}"
  [ -n "${!name:-}" ] || printf -v "$name" '%s' "${setting#*=}"
done
unset setting name
NODES="$SLURM_CLUSTER_NODES"
LOG_DIR="$SLURM_CLUSTER_LOG_DIR"
RUN_DIR="$SLURM_CLUSTER_RUN_DIR"
STATE_DIR="$SLURM_CLUSTER_STATE_DIR"
SPOOL_DIR="$SLURM_CLUSTER_SPOOL_DIR"
SHARED_DIR="$SLURM_CLUSTER_SHARED_DIR"
BRIDGE="$SLURM_CLUSTER_BRIDGE"
HOST_ADDR="$SLURM_CLUSTER_SUBNET.1"
readonly CONF="$CONF_DIR/slurm.conf"
readonly CTLD_PID="$RUN_DIR/slurmctld.pid"
readonly SLURMD_PID="$RUN_DIR/slurmd.pid"  # The one-node cluster's; node K's is slurmd.nodeK.pid.
readonly SSHD_PID="$RUN_DIR/sshd.pid"
readonly SSH_DIR="$RUN_DIR/ssh"
readonly MUNGE_KEY=/etc/munge/munge.key
readonly MUNGE_RUN=/run/munge
# Present while munged runs because this script started it: `stop` stops only such a munged.
readonly MUNGE_OURS="$RUN_DIR/munged.started-here"
# Ends the /etc/hosts lines of this cluster's nodes.
readonly HOSTS_MARK="# slurm_cluster.sh $CONF_DIR"
# Seconds `start` waits for the nodes to come up, and `stop` for the daemons to end.
readonly START_TIMEOUT_S="${SLURM_START_TIMEOUT_S:-90}"
readonly STOP_TIMEOUT_S=30
# Slurm's own commands, here and in the nodes, read this cluster's config.
export SLURM_CONF="$CONF"

log() { echo "slurm_cluster: $*" >&2; }
die() { log "$*"; exit 1; }

require_root() {
  [ "$(id -u)" = 0 ] || die "run as root: it writes $CONF_DIR and starts daemons"
}

multi() { [ "$NODES" -gt 0 ]; }

# The node names: node1 .. nodeN, or this host's name for the one-node cluster.
node_names() {
  if multi; then
    seq -f "$SLURM_CLUSTER_NODE_PREFIX%g" 1 "$NODES"
  else
    hostname -s
  fi
}

node_index() {  # node3 -> 3; fails for a name that is not one of this cluster's nodes.
  local k="${1#"$SLURM_CLUSTER_NODE_PREFIX"}"
  multi && [[ "$k" =~ ^[0-9]+$ ]] && [ "$k" -ge 1 ] && [ "$k" -le "$NODES" ] \
    || die "no node '$1' in this cluster (its nodes: $(node_names | tr '\n' ' '))"
  echo "$k"
}

node_addr() { echo "$SLURM_CLUSTER_SUBNET.$((10 + $(node_index "$1")))"; }
node_veth() { echo "$BRIDGE-$(node_index "$1")"; }  # The host's end (15 characters at most).

# ---------------------------------------------------------------- install

cmd_install() {
  require_root
  local missing=0 program
  for program in slurmctld slurmd sbatch munged sshd sshfs ip; do
    command -v "$program" >/dev/null || missing=1
  done
  [ "$missing" = 1 ] || return 0  # Already installed.
  export DEBIAN_FRONTEND=noninteractive
  local out
  out="$(mktemp)"
  # No recommends: they are two dozen optional plugins (HDF5, InfluxDB, ...).
  # apt's chatter goes to a file, shown only when something failed.
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends \
           munge slurmctld slurmd slurm-client openssh-server sshfs iproute2; } >"$out" 2>&1; then
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

slurmd_pid_file() {
  if multi; then echo "$RUN_DIR/slurmd.$1.pid"; else echo "$SLURMD_PID"; fi
}

slurmd_log_file() {
  if multi; then echo "$LOG_DIR/slurmd.$1.log"; else echo "$LOG_DIR/slurmd.log"; fi
}

print_logs() {
  local file files=("$LOG_DIR/slurmctld.log")
  for node in $(node_names); do files+=("$(slurmd_log_file "$node")"); done
  files+=(/var/log/munge/munged.log)
  for file in "${files[@]}"; do
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
  munge_works && return 0  # Another cluster's munged serves this one too.
  install -d -o munge -g munge -m 0755 "$MUNGE_RUN"
  # A munged that does not answer goes; so do the socket and pid file that a
  # killed one leaves, which make a new one refuse to start.
  stop_daemon "$MUNGE_RUN/munged.pid" munged
  rm -f "$MUNGE_RUN/munge.socket.2" "$MUNGE_RUN/munge.socket.2.lock" "$MUNGE_RUN/munged.pid"
  runuser -u munge -- munged
  local _
  for _ in $(seq 20); do
    if munge_works; then
      touch "$MUNGE_OURS"
      return 0
    fi
    sleep 0.5
  done
  print_logs
  die "munged does not answer"
}

# The NodeName lines: this host on the loopback with all of its CPUs and most
# of its memory, or nodeK at its bridge address with all CPUs and an Nth of it.
# RealMemory must not exceed what slurmd finds, or the node is drained; leave
# 1 GiB for the daemons and the system.
node_lines() {
  local mem_mb node
  mem_mb=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  if ! multi; then
    echo "NodeName=$(hostname -s) NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem_mb State=UNKNOWN"
    return
  fi
  for node in $(node_names); do
    echo "NodeName=$node NodeAddr=$(node_addr "$node") CPUs=$(nproc)" \
         "RealMemory=$((mem_mb / NODES)) State=UNKNOWN"
  done
}

# Writes slurm.conf to stdout.
print_conf() {
  local ctld_addr=127.0.0.1 per_node="" nodes lln="" what="one node"
  nodes="$(node_names | paste -sd,)"
  if multi; then
    ctld_addr="$HOST_ADDR"
    per_node=".%n"
    lln=" LLN=YES"
    what="$NODES nodes in namespaces"
  fi
  cat <<EOF
# Written by scripts/slurm_cluster.sh start: $what, no cgroups, no accounting.
ClusterName=harness
# No mail is sent (Debian's default MailProg is not installed).
MailProg=/bin/true
# The controller is this host (the name must be its own), on the loopback or
# the nodes' bridge.
SlurmctldHost=$(hostname -s)($ctld_addr)
SlurmctldPort=$SLURM_CLUSTER_CTLD_PORT
SlurmdPort=$SLURM_CLUSTER_SLURMD_PORT
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
StateSaveLocation=$STATE_DIR
# Each node's own (%n: its name) where there are several.
SlurmdSpoolDir=$SPOOL_DIR${per_node:+/%n}
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$RUN_DIR/slurmd$per_node.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd$per_node.log
SlurmctldDebug=info
SlurmdDebug=info
# A node that does not answer for this long is DOWN and its batch jobs are
# requeued (Slurm's default, 300 s, would keep a lost node's seed waiting).
SlurmdTimeout=$SLURM_CLUSTER_SLURMD_TIMEOUT
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
# Batch jobs may be requeued (submitit's preemption handling needs it, and a
# lost node's jobs are requeued by it).
JobRequeue=1
# Finished jobs stay visible to squeue/scontrol for 5 minutes.
MinJobAge=300
# Seconds between SIGTERM and SIGKILL at a time limit or scancel.
KillWait=5
# A node that went DOWN (slurmd restarted, a node lost and revived) comes
# back by itself once its slurmd registers.
ReturnToService=2
$(node_lines)
# LLN (least loaded nodes) spreads jobs over the nodes instead of filling one first.
PartitionName=debug Nodes=$nodes Default=YES MaxTime=INFINITE State=UP$lln
EOF
}

# Writes cluster.env: the settings `start` ran with, for the other commands.
write_cluster_env() {
  local setting name
  {
    echo "# Written by scripts/slurm_cluster.sh start: its settings, which the environment"
    echo "# overrides. Read by the script's other commands and by tests/slurm_support.py."
    for setting in "${SETTINGS[@]}"; do
      name="${setting%%=*}"
      printf ': "${%s:=%s}"\n' "$name" "${!name}"
    done
  } >"$CLUSTER_ENV"
}

# Prints "NODE STATE" for each node, as sinfo sees them (idle, mixed, down*, ...).
node_states() { sinfo -h -N -o '%N %T' 2>/dev/null | sort -u; }

# When node $1's slurmd last registered, as scontrol prints it (2026-12-02T04:47:10).
slurmd_start_time() {
  scontrol show node "$1" 2>/dev/null | sed -n 's/.*SlurmdStartTime=\([^ ]*\).*/\1/p'
}

# Waits until nodes $2... are up, each with a slurmd started at or after $1 (a
# time as scontrol prints it): a restarted slurmctld reports a node's last
# known state at once, before the new slurmd has registered.
wait_for_nodes() {
  local since="$1" polls=0 node state waiting
  shift
  while [ "$polls" -lt $((START_TIMEOUT_S * 5)) ]; do
    waiting=""
    for node in "$@"; do
      state="$(node_states | awk -v n="$node" '$1 == n {print $2}')"
      case "$state" in
        # ISO times compare as strings.
        idle|mixed|allocated|completing)
          [[ ! "$(slurmd_start_time "$node")" < "$since" ]] && continue ;;
      esac
      waiting="$waiting $node (${state:-unknown})"
    done
    [ -z "$waiting" ] && return 0
    sleep 0.2
    polls=$((polls + 1))
  done
  print_logs
  die "not up after ${START_TIMEOUT_S}s:$waiting"
}

start_slurmctld() { slurmctld -f "$CONF"; }

# ---------------------------------------------------------------- the nodes' network

# The bridge, with the controller's address.
make_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$HOST_ADDR/24" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
}

# Node $1's network namespace: a veth on the bridge, its address, its loopback.
make_netns() {
  local node="$1" veth
  veth="$(node_veth "$node")"
  [ -e "/run/netns/$node" ] || ip netns add "$node"
  if ! ip link show "$veth" >/dev/null 2>&1; then
    ip link add "$veth" type veth peer name eth0 netns "$node"
    ip -n "$node" addr add "$(node_addr "$node")/24" dev eth0
  fi
  ip link set "$veth" master "$BRIDGE" up
  ip -n "$node" link set eth0 up
  ip -n "$node" link set lo up
}

# The nodes' names in /etc/hosts (rewritten in place: it may be a bind mount).
write_hosts() {
  local kept node
  kept="$(grep -vF "$HOSTS_MARK" /etc/hosts || true)"
  {
    echo "$kept"
    for node in "$@"; do echo "$(node_addr "$node") $node $HOSTS_MARK"; done
  } >/etc/hosts
}

# ---------------------------------------------------------------- the shared filesystem

# An sshd on the bridge's address that serves SHARED_DIR over SFTP to the key
# in SSH_DIR (root's only: the jobs run as root), and nothing else.
start_sshd() {
  install -d -m 0755 "$SHARED_DIR"
  install -d -m 0700 "$SSH_DIR"
  [ -s "$SSH_DIR/host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$SSH_DIR/host_key"
  [ -s "$SSH_DIR/client_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$SSH_DIR/client_key"
  cp "$SSH_DIR/client_key.pub" "$SSH_DIR/authorized_keys"
  local old_config
  old_config="$(cat "$SSH_DIR/sshd_config" 2>/dev/null || true)"
  cat >"$SSH_DIR/sshd_config" <<EOF
# Written by scripts/slurm_cluster.sh: serves $SHARED_DIR to the nodes over SFTP.
ListenAddress $HOST_ADDR:$SLURM_CLUSTER_SSH_PORT
HostKey $SSH_DIR/host_key
PidFile $SSHD_PID
AuthorizedKeysFile $SSH_DIR/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
# A lost node's connection ends after 15 s of silence, not TCP's hours.
ClientAliveInterval 5
ClientAliveCountMax 3
Subsystem sftp internal-sftp
EOF
  if alive "$SSHD_PID" sshd; then
    # A new config is read on SIGHUP; the nodes' connections go on.
    [ "$old_config" = "$(cat "$SSH_DIR/sshd_config")" ] || kill -HUP "$(cat "$SSHD_PID")"
    return 0
  fi
  install -d -m 0755 /run/sshd  # Debian's sshd needs its privilege separation directory.
  /usr/sbin/sshd -f "$SSH_DIR/sshd_config" -E "$LOG_DIR/sshd.log"
}

# Stops sshd and its sessions (each node's sshfs connection): sshd leaves its
# sessions running when it ends.
stop_sshd() {
  local sessions=""
  if alive "$SSHD_PID" sshd; then
    sessions="$(ps -o pid= --ppid "$(cat "$SSHD_PID")" || true)"
  fi
  stop_daemon "$SSHD_PID" sshd
  # shellcheck disable=SC2086  # One pid per word.
  [ -z "${sessions// /}" ] || kill -TERM $sessions 2>/dev/null || true
}

# sshfs's options: the client's default caching, as users meet it.
sshfs_options() {
  local options=(
    "IdentityFile=$SSH_DIR/client_key" "port=$SLURM_CLUSTER_SSH_PORT" BatchMode=yes
    ConnectTimeout=10 StrictHostKeyChecking=no UserKnownHostsFile=/dev/null LogLevel=ERROR)
  (IFS=,; echo "${options[*]}")
}

# ---------------------------------------------------------------- a node's processes

# The pids of every process in node $1's network namespace (zombies have none).
node_pids() { ip netns pids "$1" 2>/dev/null || true; }

# Boots node $1: in its network namespace, new UTS and mount namespaces with
# its host name and its own sshfs mount of SHARED_DIR (at the same path), then
# its slurmd. Everything the node runs descends from here and shares them.
# sshfs tries again for a while: a node revived soon after it was killed may
# meet sshd still holding its old connection (reset, until sshd's
# ClientAlive check drops it), as a rebooted machine would.
boot_node() {
  local node="$1"
  nsenter --net="/run/netns/$node" unshare --uts --mount --propagation private -- \
    sh -ec 'hostname "$1"
            tries=0
            until sshfs -o "$2" "root@$3:$4" "$4"; do
              tries=$((tries + 1))
              [ "$tries" -lt 30 ] || { echo "sshfs: no mount after $tries tries" >&2; exit 1; }
              sleep 1
            done
            exec slurmd -f "$5"' \
    sh "$node" "$(sshfs_options)" "$HOST_ADDR" "$SHARED_DIR" "$CONF"
}

# SIGKILLs every process of node $1 at once: each is stopped first (so that
# none can react to another's death or fork a new one unseen), then all are
# killed. Prints how many.
kill_node_processes() {
  local node="$1" pids stopped=" " pid new=1
  while [ "$new" = 1 ]; do  # Until a look finds nothing that is not stopped yet.
    new=0
    for pid in $(node_pids "$node"); do
      case "$stopped" in *" $pid "*) continue ;; esac
      kill -STOP "$pid" 2>/dev/null || true
      stopped="$stopped$pid "
      new=1
    done
  done
  pids="$(echo $stopped)"
  # shellcheck disable=SC2086  # One pid per word.
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
  local polls=0
  while [ -n "$(node_pids "$node")" ] && [ "$polls" -lt $((STOP_TIMEOUT_S * 5)) ]; do
    sleep 0.2
    polls=$((polls + 1))
  done
  [ -z "$(node_pids "$node")" ] || die "node $node still has processes: $(node_pids "$node")"
  echo "$pids" | wc -w
}

# ---------------------------------------------------------------- start

cmd_start() {
  require_root
  command -v slurmctld >/dev/null || die "Slurm is not installed: run '$0 install' first"
  [[ "$NODES" =~ ^[0-9]+$ ]] || die "SLURM_CLUSTER_NODES must be a count, not '$NODES'"
  if multi; then
    command -v sshfs >/dev/null && command -v sshd >/dev/null \
      || die "sshd or sshfs is missing: run '$0 install' first"
  fi
  local warm=0 conf_changed=0 node
  alive "$CTLD_PID" slurmctld && warm=1
  if [ "$warm" = 1 ] && [ "$RECORDED_NODES" != "$NODES" ]; then
    die "a cluster of $RECORDED_NODES nodes (0: the host alone) runs from $CONF_DIR; stop it" \
        "first (SLURM_CLUSTER_NODES=$RECORDED_NODES $0 stop), then start $NODES"
  fi
  install -d -m 0755 "$CONF_DIR" "$LOG_DIR" "$RUN_DIR" "$STATE_DIR" "$SPOOL_DIR"
  start_munge
  if [ "$(print_conf)" != "$(cat "$CONF" 2>/dev/null)" ]; then
    print_conf >"$CONF"
    conf_changed=1
  fi
  write_cluster_env
  if multi; then
    start_nodes "$warm" "$conf_changed"
  else
    start_host_node
  fi
  if [ "$warm" = 0 ]; then
    # A cold start (after `stop`, or on a fresh boot) recovers the last
    # run's jobs from the state directory, ids and all; their processes are
    # gone, and Slurm would requeue them onto this run's CPUs. Cancel
    # them. The state is kept rather than cleared (slurmctld -c) so that job
    # ids keep rising: a submitit folder never meets an old job's files.
    cancel_all_jobs
  fi
  log "up: $(node_states | tr '\n' ' ')($(nproc) CPUs each)"
}

# The one-node cluster: (re)starts both daemons. Restarting them leaves
# running jobs alone: their slurmstepd processes go on and the new slurmd
# finds them again.
start_host_node() {
  stop_daemon "$SLURMD_PID" slurmd
  stop_daemon "$CTLD_PID" slurmctld
  local since
  since="$(date +%Y-%m-%dT%H:%M:%S)"
  start_slurmctld
  slurmd -f "$CONF"
  wait_for_nodes "$since" "$(hostname -s)"
}

# The nodes: the bridge, sshd, slurmctld, then each node not running yet (a
# running node is left alone unless the config changed: then its slurmd
# restarts in the node's namespaces, and its jobs go on).
start_nodes() {
  local warm="$1" conf_changed="$2" since node pid booted=()
  since="$(date +%Y-%m-%dT%H:%M:%S)"
  make_bridge
  for node in $(node_names); do make_netns "$node"; done
  write_hosts $(node_names)
  start_sshd
  if [ "$conf_changed" = 1 ] || [ "$warm" = 0 ]; then
    stop_daemon "$CTLD_PID" slurmctld
    start_slurmctld
  fi
  for node in $(node_names); do
    if alive "$(slurmd_pid_file "$node")" slurmd; then
      [ "$conf_changed" = 1 ] || continue
      stop_daemon "$(slurmd_pid_file "$node")" slurmd
      pid="$(node_pids "$node" | head -n 1)"
      nsenter --target "$pid" --net --uts --mount -- slurmd -f "$CONF"
    else
      # Half a node (its slurmd died alone): power it off, then boot it.
      [ -z "$(node_pids "$node")" ] || kill_node_processes "$node" >/dev/null
      boot_node "$node"
    fi
    booted+=("$node")
  done
  [ "${#booted[@]}" = 0 ] || wait_for_nodes "$since" "${booted[@]}"
  wait_for_nodes 0 $(node_names)
}

# ---------------------------------------------------------------- nodes lost and back

# A power loss: the node's link goes down first, so that no process of it says
# goodbye (a killed process's sockets would otherwise send FIN or RST to its
# peers, which a lost node never does), then every process dies at once.
cmd_kill_node() {
  require_root
  local node="${1:?usage: $0 kill-node NODE}" count
  node_index "$node" >/dev/null
  ip link set "$(node_veth "$node")" down
  count="$(kill_node_processes "$node")"
  rm -f "$(slurmd_pid_file "$node")"
  log "killed node $node: its link down, $count processes SIGKILLed at once"
}

cmd_revive_node() {
  require_root
  local node="${1:?usage: $0 revive-node NODE}" since
  node_index "$node" >/dev/null
  [ -z "$(node_pids "$node")" ] || die "node $node is running; kill-node it first"
  since="$(date +%Y-%m-%dT%H:%M:%S)"
  make_netns "$node"  # Its link up again.
  boot_node "$node"
  wait_for_nodes "$since" "$node"
  log "revived node $node"
}

# Runs a command in node $1's namespaces (network, host name, mounts).
cmd_on_node() {
  require_root
  local node="${1:?usage: $0 on-node NODE COMMAND...}" pid
  shift
  node_index "$node" >/dev/null
  pid="$(alive "$(slurmd_pid_file "$node")" slurmd && cat "$(slurmd_pid_file "$node")")" \
    || die "node $node is down (revive-node brings it back)"
  exec nsenter --target "$pid" --net --uts --mount --wd="$PWD" -- "$@"
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
  local node
  if alive "$CTLD_PID" slurmctld; then
    cancel_all_jobs
  fi
  if multi; then
    for node in $(node_names); do
      [ -z "$(node_pids "$node")" ] || kill_node_processes "$node" >/dev/null
      rm -f "$(slurmd_pid_file "$node")"
      # The pair goes with either end; the namespace may outlive its name for
      # a while (a killed process's TCP connection), the veth must not.
      ! ip link show "$(node_veth "$node")" >/dev/null 2>&1 || ip link del "$(node_veth "$node")"
      [ ! -e "/run/netns/$node" ] || ip netns del "$node"
    done
    ! ip link show "$BRIDGE" >/dev/null 2>&1 || ip link del "$BRIDGE"
    write_hosts
    stop_sshd
  else
    stop_daemon "$SLURMD_PID" slurmd
  fi
  stop_daemon "$CTLD_PID" slurmctld
  if [ -e "$MUNGE_OURS" ]; then
    stop_daemon "$MUNGE_RUN/munged.pid" munged
    rm -f "$MUNGE_OURS"
  fi
  log "stopped"
}

# ---------------------------------------------------------------- status

# Exits 0 when every daemon runs, 1 otherwise.
cmd_status() {
  local node pid_file up=0
  if alive "$CTLD_PID" slurmctld; then
    echo "slurmctld: running (pid $(cat "$CTLD_PID"))"
  else
    echo "slurmctld: not running"
    up=1
  fi
  for node in $(node_names); do
    pid_file="$(slurmd_pid_file "$node")"
    if alive "$pid_file" slurmd; then
      echo "slurmd $node: running (pid $(cat "$pid_file"))"
    else
      echo "slurmd $node: not running"
      up=1
    fi
  done
  if multi; then
    if alive "$SSHD_PID" sshd; then
      echo "sshd: running on $HOST_ADDR:$SLURM_CLUSTER_SSH_PORT, serving $SHARED_DIR"
    else
      echo "sshd: not running"
      up=1
    fi
  fi
  if munge_works; then echo "munged: running"; else echo "munged: not running"; up=1; fi
  if alive "$CTLD_PID" slurmctld; then
    sinfo
    squeue
  fi
  return "$up"
}

main() {
  local command="${1:-}"
  shift || true
  if [ "$command" = start ] && [[ "${1:-}" == --nodes=* ]]; then
    NODES="${1#--nodes=}"
    SLURM_CLUSTER_NODES="$NODES"
    shift
  fi
  case "$command" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    kill-node) cmd_kill_node "$@" ;;
    revive-node) cmd_revive_node "$@" ;;
    on-node) cmd_on_node "$@" ;;
    *) echo "usage: $0 install|start [--nodes=N]|stop|status|kill-node NODE|revive-node NODE|on-node" \
            "NODE COMMAND..." >&2
       exit 2 ;;
  esac
}

main "$@"
