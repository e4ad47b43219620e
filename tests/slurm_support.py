"""What the tests that submit to Slurm share: whether a cluster is up, and a
bounded wait for a submitit job.

scripts/slurm_cluster.sh starts a one-node cluster (CI's .ci/run does). A test
that needs it calls `require_slurm()` first: without a cluster it is skipped,
unless HARNESS_REQUIRE_SLURM=1 (CI), where it fails, so that CI cannot pass
by skipping them.

The cluster keeps no accounting, so `sacct` fails and submitit sees every job's
state as UNKNOWN: `job.done()` turns True only once the job has written its
result file, and `job.result()` waits forever for a job that died without one
(killed, cancelled, out of memory). `wait_for` bounds that wait and asks
`scontrol`, which knows a job until MinJobAge after its end, instead.
"""

import os
import pathlib
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
_ENDED_STATES = frozenset({'COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL',
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
    if ended_at is None and job_state(job.job_id) in _ENDED_STATES:
      ended_at = now
    if ended_at is not None and now - ended_at > _RESULT_GRACE_S:
      pytest.fail(f'ended without a result: {_describe(job)}', pytrace=False)
    time.sleep(0.5)
