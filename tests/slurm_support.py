"""What the tests that submit to Slurm share: whether a cluster is up, a
bounded wait for a submitit job, and a cluster's nodes to kill and revive.

scripts/slurm_cluster.sh starts a cluster of one node or of several, each node
its own namespaces with an sshfs mount of the shared directory (CI's .ci/run
starts 3). A test that needs it calls `require_slurm()` (or, for several
nodes, `require_nodes()`) first: without such a cluster it is skipped, unless
HARNESS_REQUIRE_SLURM=1 (CI), where it fails, so that CI cannot pass by
skipping them. SLURM_CONF names the cluster, as it does for Slurm's commands.

The cluster keeps no accounting, so `sacct` fails and submitit sees every job's
state as UNKNOWN: `job.done()` turns True only once the job has written its
result file, and `job.result()` waits forever for a job that died without one
(killed, cancelled, out of memory). `wait_for` bounds that wait and asks
`scontrol`, which knows a job until MinJobAge after its end, instead.
"""

import dataclasses
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import time

import pytest
import submitit

# The repository: jobs import the project's packages (and these tests) from it.
REPO = pathlib.Path(__file__).resolve().parent.parent
# sinfo's states of a node that can run jobs (a trailing '*' means not responding).
_UP_STATES = frozenset({'idle', 'mixed', 'allocated', 'completing'})
# scontrol's states of a job that will not run again (REQUEUED, PREEMPTED and
# the like are followed by PENDING).
ENDED_STATES = frozenset({'COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL',
                           'OUT_OF_MEMORY', 'BOOT_FAIL', 'DEADLINE'})
# Seconds a job that has ended may take to show its result file: submitit
# writes it before its process exits, so only a slow file system needs this.
_RESULT_GRACE_S = 15.0


def slurm_missing() -> str | None:
  """Why no Slurm cluster can run a job here, or None when one can."""
  if shutil.which('sbatch') is None:
    return 'sbatch is not on PATH (bash scripts/slurm_cluster.sh install, then start)'
  try:
    sinfo = subprocess.run(['sinfo', '-h', '-o', '%T'], capture_output=True, text=True,
                           timeout=30, check=False)
  except subprocess.TimeoutExpired:
    return 'sinfo did not answer within 30 s (is slurmctld hung?)'
  if sinfo.returncode != 0:
    return (f'sinfo failed: {sinfo.stderr.strip()} '
            '(bash scripts/slurm_cluster.sh start starts the cluster)')
  states = sinfo.stdout.split()
  if not _UP_STATES.intersection(states):
    return f'no Slurm node is up: sinfo says {states or "nothing"}'
  return None


def require_slurm() -> None:
  """Returns when a cluster is up; otherwise skips the test, or fails it in CI."""
  reason = slurm_missing()
  if reason is None:
    return
  if os.environ.get('HARNESS_REQUIRE_SLURM') == '1':
    pytest.fail(f'HARNESS_REQUIRE_SLURM=1 and {reason}', pytrace=False)
  pytest.skip(reason)


def executor(folder: str, **parameters) -> submitit.SlurmExecutor:
  """A SlurmExecutor on the `debug` partition: one task of one CPU unless told.

  The job runs this process's Python (sys.executable) in this process's
  working directory, and `python -m` puts that directory first on sys.path;
  PYTHONPATH makes the repository importable from wherever pytest started.
  `time` is the job's limit in minutes: a hang guard, never a deadline the
  work is meant to meet.
  """
  ex = submitit.SlurmExecutor(folder=folder)
  setup = [f'export PYTHONPATH={shlex.quote(str(REPO))}${{PYTHONPATH:+:$PYTHONPATH}}']
  ex.update_parameters(**{'partition': 'debug', 'nodes': 1, 'ntasks_per_node': 1,
                          'cpus_per_task': 1, 'time': 10, 'setup': setup, **parameters})
  return ex


def job_state(job_id: str) -> str:
  """scontrol's state of a job (RUNNING, PENDING, COMPLETED...), '' once forgotten."""
  show = subprocess.run(['scontrol', 'show', 'job', '-o', job_id], capture_output=True,
                        text=True, timeout=60, check=False)
  for field in show.stdout.split():
    if field.startswith('JobState='):
      return field.split('=', 1)[1]
  return ''


def _describe(job: submitit.Job) -> str:
  state = job_state(job.job_id)
  logs = '\n'.join(f'--- {p}\n{p.read_text()[-3000:]}' for p in
                   sorted(job.paths.folder.glob(f'{job.job_id}_*_log.*')))
  return f'job {job.job_id} (scontrol: {state or "unknown"})\n{logs}'


def wait_for(job: submitit.Job, timeout_s: float = 300.0) -> None:
  """Waits until every task of `job` has written its result, then returns.

  Fails the test, with the job's logs, when the job ended without results or
  is not done within `timeout_s` (then it is cancelled too).
  """
  deadline = time.monotonic() + timeout_s
  ended_at = None
  while not job.done():
    now = time.monotonic()
    if now > deadline:
      described = _describe(job)
      job.cancel(check=False)
      pytest.fail(f'not done within {timeout_s:.0f} s: {described}', pytrace=False)
    if ended_at is None and job_state(job.job_id) in ENDED_STATES:
      ended_at = now
    if ended_at is not None and now - ended_at > _RESULT_GRACE_S:
      pytest.fail(f'ended without a result: {_describe(job)}', pytrace=False)
    time.sleep(0.5)


# ---------------------------------------------------------------- several nodes

SCRIPT = REPO / 'scripts' / 'slurm_cluster.sh'
# A line of the cluster.env that scripts/slurm_cluster.sh start writes.
_SETTING = re.compile(r'^: "\$\{(\w+):=(.*)\}"$')


@dataclasses.dataclass(frozen=True)
class Nodes:
  """A cluster of several nodes started by scripts/slurm_cluster.sh."""
  names: list[str]  # node1, node2, ... as sinfo lists them.
  # A directory on the host that each node mounts at the same path over sshfs.
  shared_dir: str


def cluster_settings() -> dict[str, str]:
  """The settings the running cluster was started with (its cluster.env); {} if none."""
  conf = os.environ.get('SLURM_CONF', '/etc/slurm/slurm.conf')
  try:
    with open(os.path.join(os.path.dirname(conf), 'cluster.env')) as f:
      lines = f.read().splitlines()
  except OSError:
    return {}
  return dict(m.groups() for m in map(_SETTING.match, lines) if m)


def nodes_missing(count: int) -> str | None:
  """Why no cluster of `count` namespaced nodes can run a job here, or None."""
  reason = slurm_missing()
  if reason is not None:
    return reason
  settings = cluster_settings()
  if int(settings.get('SLURM_CLUSTER_NODES', '0')) < count:
    return (f'the cluster has no {count} nodes of their own (SLURM_CLUSTER_NODES=3 bash '
            'scripts/slurm_cluster.sh start starts them)')
  if os.geteuid() != 0:
    return 'killing and reviving nodes needs root'
  return None


def require_nodes(count: int = 3) -> Nodes:
  """The cluster's nodes; skips the test without them, or fails it in CI."""
  reason = nodes_missing(count)
  if reason is not None:
    if os.environ.get('HARNESS_REQUIRE_SLURM') == '1':
      pytest.fail(f'HARNESS_REQUIRE_SLURM=1 and {reason}', pytrace=False)
    pytest.skip(reason)
  settings = cluster_settings()
  names = [f"{settings['SLURM_CLUSTER_NODE_PREFIX']}{k}"
           for k in range(1, int(settings['SLURM_CLUSTER_NODES']) + 1)]
  return Nodes(names, settings['SLURM_CLUSTER_SHARED_DIR'])


def _script(*args: str) -> str:
  done = subprocess.run(['bash', str(SCRIPT), *args], capture_output=True, text=True,
                        timeout=300, check=False)
  assert done.returncode == 0, f'slurm_cluster.sh {" ".join(args)}: {done.stderr[-2000:]}'
  return done.stderr


def kill_node(name: str) -> None:
  """SIGKILLs every process of node `name` at once, as a power loss would."""
  _script('kill-node', name)


def kill_nodes(names: list[str]) -> None:
  """Kills the nodes `names` at the same moment (each `kill-node` takes 0.03 to
  0.17 s, and they run side by side)."""
  killers = [subprocess.Popen(['bash', str(SCRIPT), 'kill-node', name], text=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for name in names]
  said = [(name, k.communicate(timeout=300)[1], k.returncode)
          for name, k in zip(names, killers)]
  assert all(code == 0 for _, _, code in said), f'kill-node failed: {said}'


def revive_node(name: str) -> None:
  """Boots node `name` again and waits until Slurm has it back."""
  _script('revive-node', name)


def node_state(name: str) -> str:
  """sinfo's state of node `name` (idle, mixed, down*, ...)."""
  return subprocess.run(['sinfo', '-h', '-n', name, '-o', '%T'], capture_output=True,
                        text=True, timeout=60, check=False).stdout.strip()


def on_node(name: str, argv: list[str], **popen_args) -> subprocess.Popen:
  """Starts `argv` inside node `name` (its network, host name and sshfs mount)."""
  return subprocess.Popen(['bash', str(SCRIPT), 'on-node', name, *argv], cwd=REPO,
                          **popen_args)


def node_processes(name: str) -> dict[int, str]:
  """The processes that run on node `name` now: each one's command line, by pid
  (the nodes share the host's pid namespace, so these pids are the host's)."""
  pids = subprocess.run(['ip', 'netns', 'pids', name], capture_output=True, text=True,
                        timeout=60, check=False).stdout.split()
  commands = {}
  for pid in map(int, pids):
    try:
      with open(f'/proc/{pid}/cmdline', 'rb') as f:
        commands[pid] = f.read().replace(b'\0', b' ').decode(errors='replace').strip()
    except OSError:
      pass  # Ended since.
  return commands


def node_commands(name: str) -> list[str]:
  """The command lines of the processes that run on node `name` now."""
  return list(node_processes(name).values())


def job_queued(job_id: str) -> bool:
  """Whether squeue lists job `job_id` (of an array: any of its tasks) as pending,
  running or completing; a squeue that fails for another reason than a job it
  no longer knows counts as listing it."""
  listed = subprocess.run(['squeue', '-h', '-j', job_id, '-o', '%i'], capture_output=True,
                          text=True, timeout=60, check=False)
  if listed.returncode != 0:
    return 'Invalid job id' not in listed.stderr
  return bool(listed.stdout.strip())


def job_nodes(job_id: str) -> list[str]:
  """The nodes of a running job, in Slurm's order (task 0's first)."""
  listed = subprocess.run(['squeue', '-h', '-j', job_id, '-o', '%N'], capture_output=True,
                          text=True, timeout=60, check=False).stdout.strip()
  names = subprocess.run(['scontrol', 'show', 'hostnames', listed], capture_output=True,
                         text=True, timeout=60, check=False).stdout.split()
  return names
