"""Workers on one study directory: local worker processes, a kill mid-seed, and two
commands on one study or one run. Real processes, real signals."""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from train.common import claims

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Tiny runs long enough to be killed in the middle: 48 steps of ResNet-10 width 4
# on 512 images, a checkpoint every 4 steps, 2 evals.
TINY = {
    'dataset': 'embedded_shapes/tiny',
    'model.width': 4,
    'global_batch_size': 64,
    'eval_batch_size': 100,
    'num_train_steps': 48,
    'eval_every_steps': 24,
    'log_every_steps': 4,
    'checkpoint.every_steps': 4,
    'lr.warmup_steps': 2.0,
    'target_accuracy': 0.15,
    'stop_at_target': False,
}
COMPARE = '--compare=configs/embedded_lars.py,configs/embedded_nesterov.py'
# Hang guards: they end a stuck test; how long the runs take decides nothing.
HANG_GUARD_SECONDS = 1200


def _flags(data_dir: str, cache_dir: str) -> list[str]:
  return [*(f'--config.{k}={v}' for k, v in {**TINY, 'data_dir': data_dir}.items()),
          f'--compilation_cache_dir={cache_dir}']


def _main(args: list[str], log_path: str) -> subprocess.Popen:
  """main.py with `args`, its output to `log_path` (never an unread pipe)."""
  with open(log_path, 'ab') as log:
    return subprocess.Popen([sys.executable, os.path.join(REPO, 'main.py'), *args],
                            cwd=REPO, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT)


def _wait(process: subprocess.Popen, log_path: str) -> str:
  """Waits for `process` to end (under the hang guard); returns its output."""
  try:
    process.wait(timeout=HANG_GUARD_SECONDS)
  except subprocess.TimeoutExpired:
    process.kill()
    raise
  with open(log_path) as f:
    return f.read()


def _results(workdir: str) -> dict[str, dict]:
  """result.json of every run under `workdir`, by 'config/seed_s'."""
  found = {}
  for path in glob.glob(os.path.join(workdir, '*', 'seed_*', 'result.json')):
    with open(path) as f:
      found[os.path.relpath(os.path.dirname(path), workdir)] = json.load(f)
  return found


# What a run computes, as opposed to how long it took.
_COMPUTED = ('final_eval_accuracy', 'final_train_accuracy', 'steps_completed',
             'reached_target', 'steps_to_target', 'epochs_to_target', 'status')


def _computed(result: dict) -> dict:
  evals = [{k: v for k, v in e.items() if 'second' not in k} for e in result['evals']]
  return {**{k: result.get(k) for k in _COMPUTED}, 'evals': evals}


def _claim_records(run_dir_claims: str) -> list[dict]:
  records = []
  for path in sorted(glob.glob(os.path.join(run_dir_claims, claims.CLAIM_DIR, '*.json')),
                     key=lambda p: int(os.path.basename(p).split('.')[0])):
    with open(path) as f:
      records.append(json.load(f))
  return records


def _mid_seed_holder(workdir: str) -> tuple[str, int] | None:
  """A run that has a finished checkpoint (named by its step alone; one being
  written has a temporary name) and no result yet, and its holder's pid."""
  for checkpoints in glob.glob(os.path.join(workdir, '*', 'seed_*', 'checkpoints',
                                            '[0-9]*')):
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


@pytest.mark.slow  # Trains 12 tiny runs in 6 processes.
def test_local_workers_killed_mid_seed_match_the_inline_comparison(tiny_data_dir, tmp_path):
  cache = str(tmp_path / 'cache')
  common = [COMPARE, '--num_seeds=3', *_flags(tiny_data_dir, cache)]
  inline_dir = str(tmp_path / 'inline')
  log = str(tmp_path / 'inline.log')
  out = _wait(_main([*common, f'--workdir={inline_dir}'], log), log)
  assert 'report:' in out, out[-3000:]

  workdir = str(tmp_path / 'workers')
  log = str(tmp_path / 'launch.log')
  out = _wait(_main([*common, f'--workdir={workdir}', '--launcher=local', '--num_workers=3',
                     '--nowait'], log), log)
  assert 'started 3 local workers' in out, out[-3000:]
  pids = [int(p) for p in out.split('(pids ')[1].split(')')[0].split(', ')]
  workers = [_Pid(pid) for pid in pids]
  killed_run = _kill_mid_seed(workdir, workers)
  replacement_log = str(tmp_path / 'replacement.log')
  replacement = _main(['worker', f'--workdir={workdir}', f'--compilation_cache_dir={cache}'],
                      replacement_log)
  out = _wait(replacement, replacement_log)
  assert replacement.returncode == 0, out[-3000:]
  for worker in workers:
    worker.wait()

  inline, parallel = _results(inline_dir), _results(workdir)
  assert sorted(parallel) == sorted(inline) and len(inline) == 6
  for run, result in inline.items():
    assert _computed(parallel[run]) == _computed(result), run  # Bit for bit.
  # The killed seed was taken over (its holder was gone), resumed, and no seed
  # ever had two live holders: every other claim was taken once.
  parent, leaf = os.path.split(killed_run)
  records = _claim_records(os.path.join(parent, 'claims', leaf))
  assert len(records) == 2 and str(records[0]['pid']) in records[1]['took_over']
  assert parallel[os.path.relpath(killed_run, workdir)]['resumed']
  for claim_dir in glob.glob(os.path.join(workdir, '*', 'claims', 'seed_*')):
    if os.path.basename(claim_dir) != leaf or os.path.dirname(claim_dir) != os.path.join(
        parent, 'claims'):
      assert len(_claim_records(claim_dir)) == 1, claim_dir

  # The last worker wrote the report; its statistics are the inline comparison's.
  with open(os.path.join(inline_dir, 'comparison.json')) as f:
    expected = json.load(f)
  with open(os.path.join(workdir, 'comparison.json')) as f:
    got = json.load(f)
  assert _accuracy_statistics(got['pairwise']) == _accuracy_statistics(expected['pairwise'])
  report = subprocess.run([sys.executable, 'main.py', 'report', f'--workdir={workdir}'],
                          cwd=REPO, capture_output=True, text=True,
                          timeout=HANG_GUARD_SECONDS)
  assert report.returncode == 0, report.stderr[-2000:]
  assert 'runs 6/6 done, 0 running, 0 pending, 0 failed' in report.stdout


def _accuracy_statistics(pairwise: list[dict]) -> list[dict]:
  """The pairwise statistics that depend on accuracies and steps, not on seconds."""
  return [{k: v for k, v in pair.items() if 'second' not in k} for pair in pairwise]


class _Pid:
  """A process this test did not start (a detached worker), as Popen is used here."""

  def __init__(self, pid: int):
    self.pid = pid

  def poll(self) -> int | None:
    try:
      os.kill(self.pid, 0)
    except ProcessLookupError:
      return 0
    return None if claims.pid_alive(self.pid) else 0

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
          *_flags(tiny_data_dir, str(tmp_path / 'cache'))]
  logs = [str(tmp_path / 'a.log'), str(tmp_path / 'b.log')]
  processes = [_main(args, log) for log in logs]
  outputs = [_wait(p, log) for p, log in zip(processes, logs)]
  for process, out in zip(processes, outputs):
    assert process.returncode == 0, out[-3000:]
    assert 'report:' in out
  trained = sorted(int(s) for out in outputs for s in _RAN_LINE.findall(out))
  assert trained == [0, 1, 2, 3]  # Between them, each seed once.
  for seed in range(4):
    assert len(_claim_records(os.path.join(workdir, 'claims', f'seed_{seed}'))) == 1
  assert not glob.glob(os.path.join(workdir, '*.interrupted.*'))
  with open(os.path.join(workdir, 'study.json')) as f:
    assert json.load(f)['num_runs'] == 4


@pytest.mark.slow  # Trains one tiny run.
def test_a_second_command_on_a_running_workdir_is_refused(tiny_data_dir, tmp_path):
  workdir = str(tmp_path / 'run')
  args = ['--config=configs/embedded_lars.py', f'--workdir={workdir}',
          *_flags(tiny_data_dir, str(tmp_path / 'cache'))]
  log = str(tmp_path / 'first.log')
  first = _main(args, log)
  guard = time.monotonic() + HANG_GUARD_SECONDS
  while claims.status(workdir).state != claims.HELD:
    assert first.poll() is None and time.monotonic() < guard, _wait(first, log)[-3000:]
    time.sleep(0.05)
  second = subprocess.run([sys.executable, 'main.py', *args], cwd=REPO, capture_output=True,
                          text=True, timeout=HANG_GUARD_SECONDS)
  assert second.returncode == 2
  [line] = second.stderr.strip().splitlines()[-1:]
  assert line.startswith(f'error: --workdir={workdir} is held by host ')
  assert f'pid {first.pid}' in line
  out = _wait(first, log)
  assert first.returncode == 0, out[-3000:]
  assert os.path.exists(os.path.join(workdir, 'result.json'))
  assert claims.status(workdir).state == claims.RELEASED
