"""The Slurm cluster of scripts/slurm_cluster.sh runs what the studies submit
through submitit: a function, a job of two tasks, and a checkpointable job that
is preempted, requeued and resumed.

On the 2-core machine they took 22 s in all on 2026-12-02 at a load of 3
(30 s at 6.6), 17 s of it the preempted job: Slurm holds a requeued job until
the old job's credential expires (10 s with the script's cred_expire=10).
"""

import os
import pathlib
import subprocess
import time

import pytest
import submitit

from tests import slurm_support

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def _where() -> dict:
  return {'job_id': os.environ['SLURM_JOB_ID'], 'cwd': os.getcwd()}


def test_function_runs_on_the_cluster(tmp_path):
  slurm_support.require_slurm()
  job = slurm_support.executor(str(tmp_path)).submit(_where)
  slurm_support.wait_for(job)
  # The job runs where it was submitted from (sbatch's default), so the
  # project's packages import there as they do here.
  assert job.result() == {'job_id': job.job_id, 'cwd': os.getcwd()}


def _ranks() -> tuple[int, int, int]:
  env = submitit.JobEnvironment()
  assert (env.global_rank, env.num_tasks) == (int(os.environ['SLURM_PROCID']),
                                              int(os.environ['SLURM_NTASKS']))
  return env.global_rank, env.local_rank, env.num_tasks


def test_two_tasks_see_their_ranks(tmp_path):
  slurm_support.require_slurm()
  job = slurm_support.executor(str(tmp_path), ntasks_per_node=2).submit(_ranks)
  slurm_support.wait_for(job)
  assert job.results() == [(0, 0, 2), (1, 1, 2)]


class _Counter(submitit.helpers.Checkpointable):
  """Counts a step every 0.1 s and logs each start to `log`.

  The first run counts until it is preempted; a resumed run counts `more`
  steps and returns the count. submitit pickles the whole object when it
  checkpoints, so a requeued run starts from `self.count` as it was when the
  signal came.
  """

  def __init__(self, log: str, more: int):
    self.log, self.more, self.count, self.starts = log, more, 0, 0

  def __call__(self) -> int:
    self.starts += 1
    with open(self.log, 'a') as f:
      f.write(f"{os.environ['SLURM_JOB_ID']} {self.count}\n")
    stop = self.count + self.more if self.starts > 1 else float('inf')
    while self.count < stop:
      self.count += 1
      time.sleep(0.1)
    return self.count


def _starts(log: pathlib.Path) -> list[tuple[str, int]]:
  if not log.exists():
    return []
  return [(job_id, int(count)) for job_id, count in
          (line.split() for line in log.read_text().splitlines())]


def test_preempted_job_is_requeued_and_resumes(tmp_path):
  slurm_support.require_slurm()
  log = tmp_path / 'starts.txt'
  job = slurm_support.executor(str(tmp_path / 'jobs')).submit(_Counter(str(log), 10))
  deadline = time.monotonic() + 300
  while not _starts(log):  # The hang guard is the deadline; the wait is short.
    assert time.monotonic() < deadline, 'the job did not start within 300 s'
    time.sleep(0.2)
  time.sleep(1)  # Some steps done.
  # What Slurm sends before a preemption, and what submitit's own
  # job._interrupt() sends (after a SIGTERM that submitit ignores): every
  # task of the job gets it; task 0 checkpoints and requeues the job.
  subprocess.run(['scancel', '--signal=USR2', job.job_id], check=True, timeout=60)
  slurm_support.wait_for(job)
  starts = _starts(log)
  assert len(starts) == 2, starts
  (first_id, first_count), (second_id, resumed_from) = starts
  assert first_id == second_id == job.job_id  # Requeued, not resubmitted.
  assert first_count == 0 and resumed_from > 0, starts
  assert job.result() == resumed_from + 10
