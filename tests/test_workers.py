"""Workers on one study directory: local worker processes, a kill mid-seed, and two
commands on one study or one run. Real processes, real signals."""

import glob
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.study_runs import HANG_GUARD_SECONDS, REPO
from tests.study_runs import claim_records, computed, local_study_args
from tests.study_runs import flags, main
from tests.study_runs import results, wait
from train.common import claims
from train.common import liveness

def _mid_seed_holder(workdir: str) -> tuple[str, int] | None:
  """A run that has a finished checkpoint (named by its step alone; one being
  written has a temporary name) and no result yet, and its holder's pid."""
  for checkpoints in glob.glob(os.path.join(workdir, '**', 'seed_*', 'checkpoints', '[0-9]*'),
                               recursive=True):
    if not os.path.basename(checkpoints).isdigit():
      continue
    run_dir = os.path.dirname(os.path.dirname(checkpoints))
    if os.path.exists(os.path.join(run_dir, 'result.json')):
      continue
    parent, leaf = os.path.split(run_dir)
    status = claims.status(os.path.join(parent, 'claims', leaf))
    if status.state == claims.HELD:
      return run_dir, status.holder.pid
  return None


def _kill_mid_seed(workdir: str, workers: list[subprocess.Popen]) -> str:
  """SIGKILLs a worker in the middle of a seed (stopped first, so that it cannot
  finish the seed between the look and the kill); returns the seed's run dir."""
  pids = {w.pid for w in workers}
  guard = time.monotonic() + HANG_GUARD_SECONDS
  while time.monotonic() < guard:
    found = _mid_seed_holder(workdir)
    if found is not None and found[1] in pids:
      run_dir, pid = found
      os.kill(pid, signal.SIGSTOP)
      if not os.path.exists(os.path.join(run_dir, 'result.json')):
        os.kill(pid, signal.SIGKILL)
        return run_dir
      os.kill(pid, signal.SIGCONT)
    assert any(w.poll() is None for w in workers), 'the workers ended before a kill'
    time.sleep(0.01)
  raise AssertionError('no seed was ever in the middle of its run')


@pytest.fixture(scope='module')
def inline_study(tmp_path_factory, tiny_data_dir) -> str:
  """LOCAL_STUDY run inline by one command: the reference the workers must match."""
  workdir = str(tmp_path_factory.mktemp('inline') / 'study')
  log = workdir + '.log'
  process = main(local_study_args(tiny_data_dir, workdir), log)
  out = wait(process, log)
  assert process.returncode == 0 and 'report:' in out, out[-3000:]
  return workdir


@pytest.mark.slow  # Trains 2 tiny runs inline, then again in 2 local workers and a third.
def test_local_workers_killed_mid_seed_match_the_inline_study(
    tiny_data_dir, inline_study, tmp_path):
  workdir = str(tmp_path / 'workers')
  log = str(tmp_path / 'launch.log')
  out = wait(main([*local_study_args(tiny_data_dir, workdir), '--launcher=local',
                   '--num_workers=2', '--nowait'], log), log)
  assert 'started 2 local workers' in out, out[-3000:]
  pids = [int(p) for p in out.split('(pids ')[1].split(')')[0].split(', ')]
  workers = [_Pid(pid) for pid in pids]
  killed_run = _kill_mid_seed(workdir, workers)
  replacement_log = str(tmp_path / 'replacement.log')
  replacement = main(['worker', f'--workdir={workdir}'],
                      replacement_log)
  out = wait(replacement, replacement_log)
  assert replacement.returncode == 0, out[-3000:]
  for worker in workers:
    worker.wait()

  inline, parallel = results(inline_study), results(workdir)
  assert sorted(parallel) == sorted(inline) == ['seed_0', 'seed_1']
  for run, result in inline.items():
    assert computed(parallel[run]) == computed(result), run  # Bit for bit.
  # The killed seed was taken over (its holder was gone), resumed, and no seed
  # ever had two live holders: the other claim was taken once.
  parent, leaf = os.path.split(killed_run)
  records = claim_records(os.path.join(parent, 'claims', leaf))
  assert len(records) == 2 and str(records[0]['pid']) in records[1]['took_over']
  assert parallel[os.path.relpath(killed_run, workdir)]['resumed']
  for claim_dir in glob.glob(os.path.join(workdir, 'claims', 'seed_*')):
    if os.path.basename(claim_dir) != leaf:
      assert len(claim_records(claim_dir)) == 1, claim_dir

  # The last worker wrote the study's summary; its statistics are the inline study's.
  with open(os.path.join(inline_study, 'study.json')) as f:
    expected = json.load(f)
  with open(os.path.join(workdir, 'study.json')) as f:
    got = json.load(f)
  assert _accuracies(got) == _accuracies(expected) and got['num_runs'] == 2
  report = subprocess.run([sys.executable, 'main.py', 'report', f'--workdir={workdir}'],
                          cwd=REPO, capture_output=True, text=True,
                          timeout=HANG_GUARD_SECONDS)
  assert report.returncode == 0, report.stderr[-2000:]
  assert 'runs 2/2 done, 0 running, 0 pending, 0 failed' in report.stdout


def _accuracies(summary: dict) -> dict:
  """study.json's statistics of what the runs computed (not of their seconds)."""
  return {k: v for k, v in summary.items()
          if k in ('seeds', 'num_runs', 'num_reached_target', 'num_diverged', 'target_accuracy')
          or k.startswith(('median_final', 'final_', 'median_steps', 'steps_to_target',
                           'median_epochs', 'epochs_to_target', 'reached_target'))}


def _files_of(run_dir: str) -> dict[str, str]:
  """Every file under `run_dir` with its content's hash."""
  found = {}
  for root, _, names in os.walk(run_dir):
    for name in names:
      path = os.path.join(root, name)
      with open(path, 'rb') as f:
        found[os.path.relpath(path, run_dir)] = hashlib.sha256(f.read()).hexdigest()
  return found


def _stop_between_saves(process: subprocess.Popen, checkpoints: str) -> None:
  """SIGSTOPs `process` once it has a finished checkpoint in `checkpoints` and
  no save under way (a save that Orbax was writing when the process stopped
  goes on into its temporary directory when it continues, by design)."""
  guard = time.monotonic() + HANG_GUARD_SECONDS
  while time.monotonic() < guard:
    names = os.listdir(checkpoints) if os.path.isdir(checkpoints) else []
    if any(name.isdigit() for name in names):
      os.kill(process.pid, signal.SIGSTOP)
      if all(name.isdigit() for name in os.listdir(checkpoints)):
        return
      os.kill(process.pid, signal.SIGCONT)
    assert process.poll() is None, 'the worker ended before it was stopped'
    time.sleep(0.01)
  raise AssertionError('the run never had a checkpoint')


@pytest.mark.slow  # Trains one tiny run until it is stopped, taken over and continued.
def test_a_worker_stopped_past_a_takeover_writes_nothing_more_and_exits_75(
    tiny_data_dir, tmp_path):
  workdir = str(tmp_path / 'study')
  run_dir = os.path.join(workdir, 'seed_0')
  # A budget it never reaches: it is stopped at its first checkpoint, and it
  # saves one every 16 steps. Its log lines (at the end of the budget here) are
  # fenced as checkpoints are, but a line already being written when a process
  # stops is written when it continues (claims.py): none must be under way at
  # the stop for the files to be compared whole.
  args = ['--config=configs/embedded_lars.py', '--num_seeds=1', f'--workdir={workdir}',
          *flags(tiny_data_dir, num_train_steps=4000, eval_every_steps=4000,
                 log_every_steps=4000, checkpoint__every_steps=16)]
  log = str(tmp_path / 'worker.log')
  worker = main(args, log)
  taker = None
  try:
    _stop_between_saves(worker, os.path.join(run_dir, 'checkpoints'))
    before = _files_of(run_dir)
    # Stopped for longer than the taker's limit on a holder's silence (10
    # minutes in a study; 1 s here), it is taken over.
    time.sleep(1.5)
    taker = claims.try_acquire(os.path.join(workdir, 'claims', 'seed_0'),
                               stale_after_seconds=1.0, heartbeat_seconds=0.1)
    assert taker is not None and taker.holder.generation == 1
    assert taker.holder.took_over.startswith('heartbeat ')
    os.kill(worker.pid, signal.SIGCONT)
    out = wait(worker, log)
    assert worker.returncode == claims.LOST_EXIT_STATUS == 75, out[-3000:]
    assert out.strip().splitlines()[-1].startswith(
        f'error: lost the claim on {os.path.join(workdir, "claims", "seed_0")} (generation 0): '
        'generation 1 was taken by host ')
    # Not a line of its MLPerf log or TensorBoard, no checkpoint, no result.
    assert _files_of(run_dir) == before
    assert 'result.json' not in before and taker.held()
  finally:
    if worker.poll() is None:
      worker.kill()
      worker.wait()
    if taker is not None:
      taker.release()


class _Pid:
  """A process this test did not start (a detached worker), as Popen is used here."""

  def __init__(self, pid: int):
    self.pid = pid

  def poll(self) -> int | None:
    try:
      os.kill(self.pid, 0)
    except ProcessLookupError:
      return 0
    return None if liveness.pid_alive(self.pid) else 0

  def wait(self) -> None:
    guard = time.monotonic() + HANG_GUARD_SECONDS
    while self.poll() is None:
      assert time.monotonic() < guard, f'worker {self.pid} hung'
      time.sleep(0.2)


_RAN_LINE = re.compile(r'^embedded_lars seed (\d+): final accuracy .*, \d+\.\ds$', re.M)


@pytest.mark.slow  # Two commands train 4 tiny runs.
def test_two_commands_on_one_study_train_each_seed_once(tiny_data_dir, tmp_path):
  workdir = str(tmp_path / 'study')
  args = ['--config=configs/embedded_lars.py', '--num_seeds=4', f'--workdir={workdir}',
          *flags(tiny_data_dir, num_train_steps=16, eval_every_steps=8,
                 checkpoint__every_steps=0)]
  logs = [str(tmp_path / 'a.log'), str(tmp_path / 'b.log')]
  processes = [main(args, log) for log in logs]
  outputs = [wait(p, log) for p, log in zip(processes, logs)]
  for process, out in zip(processes, outputs):
    assert process.returncode == 0, out[-3000:]
    assert 'report:' in out
  trained = sorted(int(s) for out in outputs for s in _RAN_LINE.findall(out))
  assert trained == [0, 1, 2, 3]  # Between them, each seed once.
  for seed in range(4):
    assert len(claim_records(os.path.join(workdir, 'claims', f'seed_{seed}'))) == 1
  assert not glob.glob(os.path.join(workdir, '*.interrupted.*'))
  with open(os.path.join(workdir, 'study.json')) as f:
    assert json.load(f)['num_runs'] == 4


@pytest.mark.slow  # Trains one tiny run.
def test_a_second_command_on_a_running_workdir_is_refused(tiny_data_dir, tmp_path):
  workdir = str(tmp_path / 'run')
  args = ['--config=configs/embedded_lars.py', f'--workdir={workdir}',
          *flags(tiny_data_dir)]
  log = str(tmp_path / 'first.log')
  first = main(args, log)
  guard = time.monotonic() + HANG_GUARD_SECONDS
  while claims.status(workdir).state != claims.HELD:
    assert first.poll() is None and time.monotonic() < guard, wait(first, log)[-3000:]
    time.sleep(0.05)
  second = subprocess.run([sys.executable, 'main.py', *args], cwd=REPO, capture_output=True,
                          text=True, timeout=HANG_GUARD_SECONDS)
  assert second.returncode == 2
  [line] = second.stderr.strip().splitlines()[-1:]
  assert line.startswith(f'error: --workdir={workdir} is held by host ')
  assert f'pid {first.pid}' in line
  out = wait(first, log)
  assert first.returncode == 0, out[-3000:]
  assert os.path.exists(os.path.join(workdir, 'result.json'))
  assert claims.status(workdir).state == claims.RELEASED
