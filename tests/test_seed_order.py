"""A seed names one run, whatever the number of processes (issue 15).

Each run here is train/run/loop.py end to end on the embedded data, through the
real input pipeline, each process reading only its slice of every global batch
(tests/seed_run_worker.py). Two JAX CPU processes of one device each, joined on
the loopback interface, must end where one process of two devices ends, to
float32 round-off: parameters, BN statistics and every eval. A run stopped
(SIGTERM, with a checkpoint) on two processes and resumed on one must end there
too.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from configs import embedded_lars
from train.common import config_dicts

# Every test reads `runs`: four real runs, two of them of two JAX processes.
pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(REPO, 'tests', 'seed_run_worker.py')
TIMEOUT_SECONDS = 600
PREEMPTED_EXIT = 3

# 512 training examples at batch 64: 8 steps an epoch; 12 steps, so the last
# batches are of the second epoch. Evals at steps 6 and 12 (200 examples).
OVERRIDES = {
    'dataset': 'embedded_shapes/tiny',
    'image_size': 8,
    'model.width': 4,
    'model.virtual_batch_size': 8,
    'global_batch_size': 64,
    'eval_batch_size': 64,
    'num_train_steps': 12,
    'eval_every_steps': 6,
    'log_every_steps': 1,
    'lr.peak': 1.0,
    'lr.warmup_steps': 2.0,
    'stop_at_target': False,
    'checkpoint.every_steps': 0,
    'checkpoint.every_seconds': 0.0,
}


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _run(config_path: str, workdir: str, *, processes: int, devices: int,
         stop_at: int | None = None) -> None:
  """One run of the config in WORKDIR on `processes` processes of `devices` each."""
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu'}
  address = f'localhost:{_free_port()}'
  common = [sys.executable, WORKER, config_path, workdir, f'--cpu_devices={devices}']
  if stop_at is not None:
    common.append(f'--stop_at={stop_at}')
  commands = [common] if processes == 1 else [
      [*common, f'--coordinator_address={address}', f'--num_processes={processes}',
       f'--process_id={i}'] for i in range(processes)]
  workers = [subprocess.Popen(c, env=env, cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for c in commands]
  outputs = []
  for worker in workers:
    try:
      output, _ = worker.communicate(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
      worker.kill()
      output, _ = worker.communicate()
    outputs.append(output)
  expected = 0 if stop_at is None else PREEMPTED_EXIT
  # Every process's first error and last lines: when one fails, the others
  # often die of it later, and only the first error says why.
  report = '\n'.join(
      f'--- process {i}, exit {w.returncode}:\n{_first_error(o)}\n...\n{o[-2000:]}'
      for i, (w, o) in enumerate(zip(workers, outputs)))
  assert [w.returncode for w in workers] == [expected] * len(workers), report


def _first_error(output: str) -> str:
  start = output.find('Traceback')
  return output[start:start + 3000] if start >= 0 else ''


@pytest.fixture(scope='module')
def runs(tmp_path_factory, tiny_data_dir):
  root = tmp_path_factory.mktemp('seed_order')
  config = config_dicts.with_overrides(embedded_lars.get_config(),
                                      {**OVERRIDES, 'data_dir': tiny_data_dir})
  config_path = str(root / 'config.json')
  with open(config_path, 'w') as f:
    f.write(config.to_json())
  dirs = {name: str(root / name) for name in ('one', 'two', 'resumed')}
  # One at a time: two cores.
  _run(config_path, dirs['one'], processes=1, devices=2)
  _run(config_path, dirs['two'], processes=2, devices=1)
  _run(config_path, dirs['resumed'], processes=2, devices=1, stop_at=4)
  _run(config_path, dirs['resumed'], processes=1, devices=2)
  return dirs


def _state(directory: str, suffix: str = '') -> dict[str, np.ndarray]:
  return dict(np.load(os.path.join(directory, f'state{suffix}.npz')))


def _result(directory: str) -> dict:
  with open(os.path.join(directory, 'result.json')) as f:
    return json.load(f)


def _assert_same_run(directory: str, reference: str, suffix: str = '') -> None:
  ref, other = _state(reference), _state(directory, suffix)
  assert sorted(ref) == sorted(other)
  assert any(k.startswith('batch_stats') for k in ref)
  for key, value in ref.items():
    # float32 round-off: gloo sums the processes' gradients in another order
    # than one process sums its devices'.
    np.testing.assert_allclose(other[key], value, rtol=0, atol=1e-5, err_msg=key)
  ref_evals, evals = _result(reference)['evals'], _result(directory)['evals']
  assert [e['step'] for e in evals] == [e['step'] for e in ref_evals] == [6, 12]
  for e, r in zip(evals, ref_evals):
    assert e['loss'] == pytest.approx(r['loss'], abs=1e-5)
    assert e['accuracy'] == pytest.approx(r['accuracy'], abs=1e-9)


def test_two_processes_train_like_one_process_of_two_devices(runs):
  one, two = runs['one'], runs['two']
  assert (_result(two)['num_devices'], _result(one)['num_devices']) == (2, 2)
  _assert_same_run(two, one)
  _assert_same_run(two, one, suffix='.process_1')
  # Both processes hold the same state, bit for bit.
  first, second = _state(two), _state(two, '.process_1')
  for key, value in first.items():
    np.testing.assert_array_equal(second[key], value, err_msg=key)
  # The run trained: the losses moved far beyond the tolerance.
  losses = [e['loss'] for e in _result(one)['evals']]
  assert abs(losses[1] - losses[0]) > 1e-3


def test_a_run_stopped_on_two_processes_resumes_on_one(runs):
  result = _result(runs['resumed'])
  assert result['resumed_from_steps'] == [4]
  _assert_same_run(runs['resumed'], runs['one'])
