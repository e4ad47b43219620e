"""Virtual-batch BN makes training independent of the device count.

One subprocess with 8 virtual CPU devices trains the same tiny ResNet on the same
batches with meshes of 1, 2, 4 and 8 devices (tests/sharding_worker.py), and
reads the compiled HLO of the 8-device programs.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

# Slow tier: every test reads one fixture that trains on 1, 2, 4 and 8 devices (75 s).
pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(REPO, 'tests', 'sharding_worker.py')
MESHES = (1, 2, 4, 8)
# float32 round-off: the gradient sums of n devices add in another order. The
# runs differ by about 3e-7; a real difference (a BN group split differently, a
# gradient averaged over the wrong count) moves the parameters by 1e-3 or more.
TOLERANCE = 1e-5


def run_worker(out_dir: str, *args: str) -> subprocess.CompletedProcess:
  # Virtual CPU devices, even where the machine has an accelerator.
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu'}
  result = subprocess.run([sys.executable, WORKER, out_dir, *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  return result


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  out = str(tmp_path_factory.mktemp('sharding'))
  run_worker(out, '--cpu_devices=8', '--meshes=' + ','.join(map(str, MESHES)), '--hlo',
             '--shard_optimizer_state')
  results = {n: dict(np.load(os.path.join(out, f'mesh_{n}.npz'))) for n in MESHES}
  results['sharded_opt'] = dict(np.load(os.path.join(out, 'mesh_8_sharded_opt.npz')))
  with open(os.path.join(out, 'hlo.json')) as f:
    hlo = json.load(f)
  return results, hlo


def _state_keys(result: dict) -> list[str]:
  keys = [k for k in result if k.startswith(('params', 'batch_stats'))]
  assert any(k.startswith('batch_stats') for k in keys)
  return keys


def _max_difference(a: dict, b: dict) -> float:
  return max(float(np.max(np.abs(a[k] - b[k]))) for k in _state_keys(a))


@pytest.mark.parametrize('num_devices', MESHES[1:])
def test_device_count_does_not_change_training(runs, num_devices):
  results, _ = runs
  one, many = results[1], results[num_devices]
  assert one['loss'].shape == (10,)
  np.testing.assert_allclose(many['loss'], one['loss'], rtol=0, atol=TOLERANCE)
  assert _max_difference(one, many) < TOLERANCE
  # ... and the 10 steps did train: the parameters moved far beyond the tolerance.
  moved = max(float(np.max(np.abs(one[k] - one['initial' + k[len('params'):]])))
              for k in _state_keys(one) if k.startswith('params'))
  assert moved > 100 * TOLERANCE


def test_bn_statistics_need_no_communication(runs):
  _, hlo = runs
  # The training forward pass (BN on group statistics) on 8 devices, one group
  # each: not a single collective in the compiled program.
  assert hlo['forward'] == {}
  # The control: half a group per device (possible only on an Auto mesh; the
  # project's Explicit mesh refuses it) and XLA all-reduces partial group sums
  # in the BN layers, so the count above does see statistics traffic.
  assert len(hlo['forward_split_groups'].get('all-reduce', [])) >= 4


def test_train_step_all_reduces_gradients_and_bn_averages_only(runs):
  _, hlo = runs
  assert set(hlo['train_step']) == {'all-reduce'}
  # One value per parameter (its gradient), per BN moving average (the mean over
  # groups) and the two batch metrics (loss, accuracy): nothing else crosses.
  assert hlo['train_step_all_reduce_elements'] == (
      hlo['num_params'] + hlo['num_batch_stats'] + 2)


def test_sharded_optimizer_state_trains_the_same(runs):
  results, _ = runs
  sharded, replicated = results['sharded_opt'], results[8]
  assert int(sharded['opt_state_sharded']) > 0
  assert int(replicated['opt_state_sharded']) == 0
  np.testing.assert_allclose(sharded['loss'], replicated['loss'], rtol=0, atol=TOLERANCE)
  assert _max_difference(sharded, replicated) < TOLERANCE
