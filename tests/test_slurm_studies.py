"""Studies through a real Slurm cluster (`--launcher=slurm`): a worker preempted
mid-seed, and an array that sbatch refuses. scripts/slurm_cluster.sh starts the
cluster, of one node or several; without one these tests skip (fail in CI). A
comparison through Slurm and a seed over two Slurm tasks, each spread over
several nodes, are in tests/test_slurm_nodes.py."""

import glob
import json
import os
import subprocess
import sys
import time

import pytest

from tests import slurm_support
from tests.study_runs import HANG_GUARD_SECONDS, REPO
from tests.study_runs import claim_dir, claim_records, flags, main, wait
from train.common import claims

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
SLURM = ['--launcher=slurm', '--slurm_partition=debug', '--slurm_cpus_per_task=1',
         '--slurm_time=30']


@pytest.fixture(autouse=True)
def _slurm():
  slurm_support.require_slurm()


def _run(args: list[str], log: str, env: dict[str, str] | None = None) -> str:
  process = main(args, log, env)
  out = wait(process, log)
  assert process.returncode == 0, out[-4000:]
  return out


def _finished_checkpoint(run_dir: str) -> bool:
  return any(name.isdigit() for name in os.listdir(os.path.join(run_dir, 'checkpoints'))
             ) if os.path.isdir(os.path.join(run_dir, 'checkpoints')) else False


def test_a_preempted_slurm_worker_is_requeued_and_resumes_its_seed(tiny_data_dir, tmp_path):
  workdir = str(tmp_path / 'study')
  run_dir = os.path.join(workdir, 'seed_0')
  args = ['--config=configs/embedded_lars.py', '--num_seeds=1', f'--workdir={workdir}',
          *flags(tiny_data_dir, num_train_steps=64,
                 eval_every_steps=32, log_every_steps=8, checkpoint__every_steps=8),
          *SLURM, '--num_workers=1', '--nowait']
  out = _run(args, str(tmp_path / 'submit.log'))
  assert 'started a Slurm job array of 1 workers' in out
  guard = time.monotonic() + HANG_GUARD_SECONDS
  while not _finished_checkpoint(run_dir):
    assert not os.path.exists(os.path.join(run_dir, 'result.json')), 'finished unpreempted'
    assert time.monotonic() < guard, 'no checkpoint was ever written'
    time.sleep(0.1)
  job_id = claims.status(claim_dir(run_dir)).holder.slurm_job_id  # The worker's job.
  # What Slurm sends before a preemption or a time limit (submitit's own way).
  subprocess.run(['scancel', '--signal=USR2', job_id], check=True, timeout=60)
  result_path = os.path.join(run_dir, 'result.json')
  while not os.path.exists(result_path):
    assert time.monotonic() < guard, f'the seed never finished; see {workdir}/workers'
    time.sleep(0.5)
  with open(result_path) as f:
    result = json.load(f)
  assert result['resumed'] and result['steps_completed'] == 64
  # The preempted worker let go of its claim; the requeued task (the same job) took it.
  first, second = claim_records(claim_dir(run_dir))
  assert second['took_over'] == 'released'
  assert first['slurm_job_id'] == second['slurm_job_id'] == job_id
  # It lets go just after writing result.json: wait for that (a hang guard).
  while claims.status(claim_dir(run_dir)).state != claims.RELEASED:
    assert time.monotonic() < guard, 'the requeued worker never let go of its claim'
    time.sleep(0.2)
  restarted = glob.glob(os.path.join(workdir, 'workers', 'slurm', job_id, '*_log.out'))
  assert len(restarted) >= 1
  report = subprocess.run([sys.executable, 'main.py', 'report', f'--workdir={workdir}'],
                          cwd=REPO, capture_output=True, text=True,
                          timeout=HANG_GUARD_SECONDS)
  assert report.returncode == 0, report.stderr[-2000:]
  assert 'runs 1/1 done' in report.stdout


def test_an_array_the_real_sbatch_refuses_is_one_line_and_its_plan_goes_on(
    tiny_data_dir, tmp_path):
  """The real sbatch's words for an option it does not know reach the line, and
  the plan written before stays usable (`main.py report` reads it)."""
  workdir, log = str(tmp_path / 'study'), str(tmp_path / 'study.log')
  process = main([*flags(tiny_data_dir), '--num_seeds=2', f'--workdir={workdir}', *SLURM,
                  '--slurm_option=no-such-option=1'], log)
  out = wait(process, log)
  assert process.returncode == 2, out[-4000:]
  assert 'Traceback' not in out
  last = out.strip().splitlines()[-1]
  assert last.startswith("error: sbatch did not take the job array of 2 workers (sbatch: "
                         "unrecognized option '--no-such-option=1')"), last
  assert f'the plan in {workdir} is kept' in last
  report = main(['report', f'--workdir={workdir}'], str(tmp_path / 'report.log'))
  out = wait(report, str(tmp_path / 'report.log'))
  assert report.returncode == 0, out[-4000:]
  assert 'runs 0/2 done, 0 running, 2 pending, 0 failed' in out
