"""bfloat16 compute, float32 parameters and statistics: the whole train step.

tests/test_models.py checks the model's dtypes layer by layer; here the compiled
train step of a bfloat16 config runs next to the float32 one from the same
initial state on the same batches: close, not equal.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests import sharding_worker
from train.run import programs
from train.run import steps

# Slow tier: every test reads one fixture that trains in float32 and bfloat16 (20 s).
pytestmark = pytest.mark.slow

NUM_STEPS = 3


def _train(dtype: str) -> dict:
  config = sharding_worker.tiny_config()
  config.model.dtype = dtype
  compiled = programs.compile_steps(config, sharding_worker.NUM_CLASSES, 1000,
                                    with_eval=False)
  state = compiled.init(jax.random.key(0))
  initial = jax.device_get(state.params)
  batches = sharding_worker.global_batches(config, NUM_STEPS)
  # The program as JAX hands it to XLA: XLA's CPU backend then runs bfloat16
  # convolutions in float32 (it has no bfloat16 kernels), GPUs and TPUs do not.
  train_fn, _ = steps.bind_step_constants(config, compiled.learning_rate_fn)
  program = jax.jit(train_fn).lower(state, batches[0]).as_text()
  losses = []
  for batch in batches:
    state, metrics = compiled.train_step(state, jax.device_put(batch, compiled.batch_sharding))
    losses.append(float(metrics['loss']))
  return {'state': jax.device_get(state), 'initial': initial, 'loss': np.array(losses),
          'bf16_convolutions': sum('convolution' in line and 'bf16>' in line
                                   for line in program.splitlines())}


@pytest.fixture(scope='module')
def runs():
  return _train('float32'), _train('bfloat16')


def test_bfloat16_state_stays_float32(runs):
  _, bf16 = runs
  state = bf16['state']
  for tree in (state.params, state.batch_stats, state.opt_state):
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    assert leaves and all(x.dtype == jnp.float32 for x in leaves)


def test_bfloat16_step_convolves_in_bfloat16(runs):
  f32, bf16 = runs
  assert bf16['bf16_convolutions'] > 0
  assert f32['bf16_convolutions'] == 0


def test_bfloat16_trains_close_to_float32_but_not_equal(runs):
  f32, bf16 = runs
  # Same initial parameters: they do not depend on the compute dtype.
  for a, b in zip(jax.tree.leaves(f32['initial']), jax.tree.leaves(bf16['initial'])):
    np.testing.assert_array_equal(a, b)
  # Losses agree to 1e-3 (measured: 5e-5), but differ.
  np.testing.assert_allclose(bf16['loss'], f32['loss'], rtol=1e-3)
  assert not np.array_equal(bf16['loss'], f32['loss'])
  # Each parameter moved in nearly the same direction (measured: cosines 0.97 to 1).
  moved32 = _moves(f32)
  moved16 = _moves(bf16)
  cosines = [float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))
             for u, v in zip(moved32, moved16) if np.linalg.norm(u) > 0]
  assert min(cosines) > 0.9
  assert not all(np.array_equal(u, v) for u, v in zip(moved32, moved16))
  # BN moving averages: float32 accumulations of bfloat16 activations
  # (measured: 8e-4 apart).
  for a, b in zip(jax.tree.leaves(f32['state'].batch_stats),
                  jax.tree.leaves(bf16['state'].batch_stats)):
    np.testing.assert_allclose(b, a, rtol=0, atol=5e-3)


def _moves(run: dict) -> list[np.ndarray]:
  return [np.ravel(new - old) for new, old in zip(jax.tree.leaves(run['state'].params),
                                                   jax.tree.leaves(run['initial']))]
