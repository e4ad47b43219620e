"""A seed names one run, whatever the number of processes (issue 15).

Each run here is train/run/loop.py end to end on the embedded data, through the
real input pipeline, each process reading only its slice of every global batch
(tests/seed_run_worker.py, which forks every process of every run from one
driver that has imported the modules once). Two JAX CPU processes of two
devices each, joined on the loopback interface (JAX's distributed runtime,
gradients through gloo), must form one mesh of four devices and end where one
process of four devices ends, to float32 round-off: parameters, BN statistics
and every eval. A run stopped (SIGTERM, with a checkpoint) on two processes and
resumed on one must end there too.
"""

import json
import os
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
# A hang guard, not a time limit: the driver's own guard ends a hung process
# after 10 minutes; this ends a hung driver.
DRIVER_HANG_GUARD_SECONDS = 3000
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


def _log_tails(paths: list[str]) -> str:
  """Each process's first error and last lines: when one fails, the others often
  die of it later, and only the first error says why."""
  parts = []
  for path in paths:
    text = open(path).read() if os.path.exists(path) else '(no log)'
    start = text.find('Traceback')
    first_error = text[start:start + 3000] if start >= 0 else ''
    parts.append(f'--- {path}:\n{first_error}\n...\n{text[-2000:]}')
  return '\n'.join(parts)


@pytest.fixture(scope='module')
def runs(tmp_path_factory, tiny_data_dir):
  root = tmp_path_factory.mktemp('seed_order')
  config = config_dicts.with_overrides(embedded_lars.get_config(),
                                      {**OVERRIDES, 'data_dir': tiny_data_dir})
  dirs = {name: str(root / name) for name in ('one', 'two', 'resumed')}
  # (workdir, processes, devices per process, stop_at), one at a time: two cores.
  layouts = [('one', 1, 4, None), ('two', 2, 2, None),
             ('resumed', 2, 2, 4), ('resumed', 1, 4, None)]
  spec = {'config': json.loads(config.to_json()),
          'runs': [{'workdir': dirs[name], 'processes': processes, 'devices': devices,
                    'stop_at': stop_at} for name, processes, devices, stop_at in layouts]}
  spec_path = root / 'spec.json'
  spec_path.write_text(json.dumps(spec))
  proc = subprocess.run([sys.executable, WORKER, str(spec_path)], capture_output=True,
                        text=True, cwd=REPO, env={**os.environ, 'JAX_PLATFORMS': 'cpu'},
                        timeout=DRIVER_HANG_GUARD_SECONDS)
  assert proc.returncode == 0, proc.stderr[-3000:]
  statuses = json.loads(proc.stdout.strip().splitlines()[-1])
  for index, ((name, processes, _, stop_at), status) in enumerate(zip(layouts, statuses)):
    expected = 0 if stop_at is None else PREEMPTED_EXIT
    logs = [os.path.join(dirs[name], f'process_{i}.{index}.log') for i in range(processes)]
    assert status == [expected] * processes, _log_tails(logs)
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


def test_two_processes_form_one_mesh_of_four_devices(runs):
  for suffix in ('', '.process_1'):
    with open(os.path.join(runs['two'], f'layout{suffix}.json')) as f:
      assert json.load(f) == {'process_count': 2, 'device_count': 4, 'local_device_count': 2}
  with open(os.path.join(runs['one'], 'layout.json')) as f:
    assert json.load(f) == {'process_count': 1, 'device_count': 4, 'local_device_count': 4}


def test_two_processes_train_like_one_process_of_four_devices(runs):
  one, two = runs['one'], runs['two']
  assert (_result(two)['num_devices'], _result(one)['num_devices']) == (4, 4)
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
