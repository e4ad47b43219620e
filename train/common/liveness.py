"""Whether a process is alive: the checks a claim's holder is judged by.

A process on this host is looked up in /proc (alive, a zombie, or a reused pid
whose start time differs); "this host" also means this pid namespace, since a
container on the same machine has pids of its own. A process in a Slurm job
elsewhere is judged by its job, as `squeue` reports it: its state, and how
often it was requeued (a job requeued after its node was lost runs again under
the same id, and its earlier run is gone). `slurm_job_id` and
`slurm_restart_count` are this process's own, which a claim records;
train/common/claims.py applies these checks to the records of its claims.
"""

import dataclasses
import os
import shutil
import subprocess

# The states of `squeue -o %T` in which a job's processes may still be alive.
SLURM_RUNNING_STATES = frozenset(
    {'RUNNING', 'COMPLETING', 'CONFIGURING', 'SUSPENDED', 'STOPPED', 'RESIZING'})
SQUEUE_TIMEOUT_SECONDS = 30.0
# What squeue says (exit status 1) of a job id it does not know: one that ended
# longer ago than the cluster's MinJobAge (5 minutes by default), or never was.
_UNKNOWN_JOB = 'Invalid job id specified'


@dataclasses.dataclass(frozen=True)
class SlurmJob:
  """A Slurm job as squeue sees it now."""
  states: frozenset[str]  # squeue's states of its lines; none once the job is forgotten.
  restarts: int | None  # How often it was requeued (the most of its lines); None if unknown.

  @property
  def running(self) -> bool:
    """Whether any process of the job may be alive."""
    return bool(self.states & SLURM_RUNNING_STATES)


def slurm_job(job_id: str) -> SlurmJob | None:
  """Slurm job `job_id` ('45' or '45_1') as squeue sees it; None if squeue cannot say.

  None when squeue is not installed, fails or times out. A job squeue does not
  know (ended more than MinJobAge ago) has no states; so does an empty answer.
  States such as PENDING or REQUEUED mean that no process of the job runs.
  """
  squeue = shutil.which('squeue')
  if squeue is None:
    return None
  try:
    done = subprocess.run([squeue, '-h', '-j', job_id, '-O', 'State:|,RestartCnt:|'],
                          capture_output=True, text=True, timeout=SQUEUE_TIMEOUT_SECONDS,
                          check=False)
  except (OSError, subprocess.SubprocessError):
    return None
  if done.returncode != 0:
    return SlurmJob(frozenset(), None) if _UNKNOWN_JOB in done.stderr else None
  lines = [line.split('|') for line in done.stdout.split()]
  restarts = [int(fields[1]) for fields in lines if len(fields) > 1 and fields[1].isdigit()]
  return SlurmJob(frozenset(fields[0] for fields in lines), max(restarts, default=None))


def _proc_stat(pid: int) -> list[str] | None:
  """Fields 3 on of /proc/<pid>/stat (state, ppid, ...); None if unreadable."""
  try:
    with open(f'/proc/{pid}/stat') as f:
      text = f.read()
  except OSError:
    return None
  # Field 2 is the command name in parentheses, which may hold spaces or ')'.
  return text[text.rfind(')') + 2:].split()


def process_start_time(pid: int) -> int | None:
  """When process `pid` started, in clock ticks after boot (field 22 of
  /proc/<pid>/stat); None where there is no /proc or it cannot be read."""
  fields = _proc_stat(pid)
  return int(fields[19]) if fields and len(fields) > 19 else None


def pid_namespace() -> str | None:
  """This process's pid namespace, e.g. 'pid:[4026531836]'; None if /proc does not say."""
  try:
    return os.readlink('/proc/self/ns/pid')
  except OSError:
    return None


def pid_alive(pid: int) -> bool:
  """Whether process `pid` on this host is alive (a zombie is not)."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    pass  # Someone else's process: alive.
  fields = _proc_stat(pid)
  return not (fields and fields[0] in ('Z', 'X'))


def slurm_job_id() -> str | None:
  """This process's Slurm job: 'ARRAYJOB_TASK' for an array task, else the job id."""
  array_job = os.environ.get('SLURM_ARRAY_JOB_ID')
  task = os.environ.get('SLURM_ARRAY_TASK_ID')
  if array_job and task:
    return f'{array_job}_{task}'
  return os.environ.get('SLURM_JOB_ID') or None


def slurm_restart_count() -> int | None:
  """How often this process's Slurm job was requeued before this run of it (Slurm
  sets SLURM_RESTART_COUNT from the first requeue on); None outside Slurm."""
  if slurm_job_id() is None:
    return None
  count = os.environ.get('SLURM_RESTART_COUNT', '0')
  return int(count) if count.isdigit() else None
