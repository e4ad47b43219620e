"""Per-layer trust ratios (LAMB paper, Appendix H.0.2, Figures 9-14): recorded in
the optimizer state only when `trust_ratio_log_steps` asks for them, logged to
TensorBoard and trust_ratios.json, and drawn per layer over training."""

import glob
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from clu import metric_writers
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.util import tensor_util

import optim
from configs import embedded_lars
from optim import schedules
from optim import trust_ratios
from tests import test_optim
from train.cli import runners
from train.run import programs
from train.run import record
from train.run import trust_ratio_file


def _ratios_run(config, params_np, grads_np):
  """The optimizer's state after the updates, in float64."""
  with jax.enable_x64(True):
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), params_np)
    tx = optim.create_optimizer(config, schedules.piecewise_polynomial(**test_optim._SCHEDULE))
    state = tx.init(params)
    for g in grads_np:
      updates, state = tx.update(jax.tree.map(jnp.asarray, g), state, params)
      params = optax.apply_updates(params, updates)
    return {k: float(v) for k, v in optim.layer_trust_ratios(state).items()}


@pytest.mark.parametrize('name,bn_bias_name,norm', [
    ('lars', 'momentum', 'l2'), ('lamb', 'same', 'l2'), ('nn_lamb', 'same', 'linf'),
    ('lars', 'same', 'l1')])
def test_recorded_ratios_are_those_of_the_last_update(name, bn_bias_name, norm):
  """The ratios in the state are the numpy reference's ratios of the last update;
  a group without a trust ratio (heavy ball on BN and biases) records none."""
  config = test_optim._config(name, bn_bias_name, trust_ratio_norm=norm)
  config.trust_ratio_log_steps = (1,)
  rng = np.random.default_rng(11)
  params = test_optim._numpy_params(rng)
  grads = test_optim._numpy_grads(rng, params)
  got = _ratios_run(config, params, grads)

  # The numpy reference, recomputing each ratio from the state before the update.
  expected = {}
  w = jax.tree.map(np.copy, params)
  states = {path: {} for path in test_optim._PATHS}
  opt = config.optimizer
  for t, g in enumerate(grads):
    for mod, leaf in test_optim._PATHS:
      is_weight = w[mod][leaf].ndim > 1
      group = name if is_weight or bn_bias_name == 'same' else bn_bias_name
      l2 = opt.l2 if is_weight else 0.0
      wd = opt.weight_decay if is_weight else 0.0
      before = dict(states[(mod, leaf)])
      new_w = test_optim._NP_ISSUE_25_STEPS[group](
          w[mod][leaf], g[mod][leaf], states[(mod, leaf)], t, test_optim._lr(t), opt, l2, wd)
      if group in optim.optimizers.TRUST_RATIO_OPTIMIZERS:
        expected[f'{mod}/{leaf}'] = _numpy_ratio(group, w[mod][leaf], g[mod][leaf], before,
                                                 t, opt, l2, wd)
      w[mod][leaf] = new_w
  assert set(got) == set(expected)
  for layer, ratio in expected.items():
    np.testing.assert_allclose(got[layer], ratio, rtol=1e-9, err_msg=layer)
  # The zero kernel had zero norms at the first update only: its last ratio is real.
  assert got['zero/kernel'] != 1.0


def _numpy_ratio(group, w, g, state, t, opt, l2, wd):
  """The trust ratio that `group`'s update t applies, from the paper's formulas."""
  norm = test_optim._NP_NORMS[opt.trust_ratio_norm]
  if group == 'lars':
    wn, gn = norm(w), norm(g)
    return (opt.trust_coefficient * wn / (gn + l2 * wn + opt.lars_epsilon)
            if wn > 0 and gn > 0 else 1.0)
  wn, dn = norm(w), norm(_direction(group, g, state, t, opt, wd, w))
  return wn / dn if wn > 0 and dn > 0 else 1.0


def _direction(group, g, state, t, opt, wd, w):
  """d = m_hat / (sqrt(v_hat) + eps) + wd * w of a LAMB-family step, unscaled."""
  m = opt.b1 * state.get('m', 0.0) + (1 - opt.b1) * g
  v = opt.b2 * state.get('v', 0.0) + (1 - opt.b2) * g ** 2
  c1 = 1 - opt.b1 ** (t + 1) if opt.bias_correction else 1.0
  c2 = 1 - opt.b2 ** (t + 1) if opt.bias_correction else 1.0
  if group == 'lamb':
    m_hat, v_hat = m / c1, v / c2
  else:  # nn_lamb: both moments looked ahead.
    m_hat = (opt.b1 * m + (1 - opt.b1) * g) / c1
    v_hat = (opt.b2 * v + (1 - opt.b2) * g ** 2) / c2
  return m_hat / (np.sqrt(v_hat) + opt.eps) + wd * w


def _tiny_config(**overrides):
  config = embedded_lars.get_config()
  config.model.width = 4
  config.image_size = 16
  config.global_batch_size = 16
  config.model.virtual_batch_size = 8
  for key, value in overrides.items():
    *parents, leaf = key.split('.')
    node = config
    for part in parents:
      node = node[part]
    node[leaf] = value
  return config


def _train(config, batches):
  """The compiled train step of `config` over `batches`, from seed 0's state."""
  compiled = programs.compile_steps(config, num_classes=10, num_train_examples=1000,
                                    with_eval=False)
  state = compiled.init(jax.random.key(0))
  metrics = []
  for batch in batches:
    state, step_metrics = compiled.train_step(state, batch)
    metrics.append(step_metrics)
  return jax.device_get(state), jax.device_get(metrics)


@pytest.mark.slow  # Compiles a ResNet's train step twice: 15 to 20 s on 2 cores.
def test_logging_trust_ratios_leaves_the_train_step_bit_identical():
  """Off (the default): no ratio anywhere in the state. On: the same parameters,
  BN statistics, metrics and optimizer state, bit for bit, plus the ratios.

  LAMB on the kernels, heavy ball on BN and biases: one group records, one not.
  """
  overrides = {'optimizer.name': 'lamb', 'optimizer.bn_bias_name': 'momentum',
               'optimizer.l2': 0.0, 'optimizer.weight_decay': 0.01, 'lr.peak': 0.01}
  rng = np.random.default_rng(0)
  batches = [{'image': rng.integers(0, 256, (16, 16, 16, 3), dtype=np.uint8),
              'label': rng.integers(0, 10, (16,), dtype=np.int32)} for _ in range(3)]
  off_state, off_metrics = _train(_tiny_config(**overrides), batches)
  on_state, on_metrics = _train(
      _tiny_config(**overrides, trust_ratio_log_steps=(1, 3)), batches)

  assert optim.layer_trust_ratios(off_state.opt_state) == {}
  is_recorded = lambda x: isinstance(x, trust_ratios.Recorded)
  assert not any(is_recorded(x) for x in jax.tree.leaves(off_state.opt_state,
                                                         is_leaf=is_recorded))
  for off, on in [(off_state.params, on_state.params),
                  (off_state.batch_stats, on_state.batch_stats), (off_metrics, on_metrics)]:
    jax.tree.map(np.testing.assert_array_equal, off, on)
  # The recording optimizer's own state, unwrapped, is the same.
  unwrapped = jax.tree.map(lambda x: x.inner if is_recorded(x) else x, on_state.opt_state,
                           is_leaf=is_recorded)
  assert jax.tree.structure(unwrapped) == jax.tree.structure(off_state.opt_state)
  jax.tree.map(np.testing.assert_array_equal, off_state.opt_state, unwrapped)

  ratios = optim.layer_trust_ratios(on_state.opt_state)
  kernels = [p for p in jax.tree.leaves(on_state.params) if p.ndim > 1]
  assert len(ratios) == len(kernels)
  assert all(np.isfinite(float(r)) and float(r) > 0 for r in ratios.values())
  assert 'conv_init/kernel' in ratios and 'head/kernel' in ratios


def _recorded_state(seed):
  """A LAMB state after one update of a small model-like tree, ratios recorded."""
  params = {'stage1_block2': {'conv1': {'kernel': jnp.ones((3, 3, 2, 2))}},
            'stage1_block10': {'conv1': {'kernel': jnp.ones((2, 2))}},
            'bn_init': {'scale': jnp.ones(2)}}
  config = test_optim._config('lamb', 'momentum')
  config.trust_ratio_log_steps = (1,)
  tx = optim.create_optimizer(config, schedules.piecewise_polynomial(**test_optim._SCHEDULE))
  grads = jax.tree.map(
      lambda p: jax.random.normal(jax.random.key(seed), p.shape), params)
  return tx.update(grads, tx.init(params), params)[1]


def _scalars_written(workdir):
  found = {}
  for path in glob.glob(os.path.join(workdir, 'events.out.tfevents.*')):
    for event in event_file_loader.EventFileLoader(path).Load():
      for value in event.summary.value:
        if value.tag.startswith('trust_ratio/'):
          found[(value.tag, event.step)] = float(tensor_util.make_ndarray(value.tensor))
  return found


def test_trust_ratio_log_writes_tensorboard_and_json_and_resumes(tmp_path):
  config = embedded_lars.get_config()
  config.trust_ratio_log_steps = (5, 10, 20)
  writer = metric_writers.SummaryWriter(str(tmp_path))
  log = record.TrustRatioLog(config, str(tmp_path), writer, resumed_step=None, is_main=True)
  assert [s for s in range(1, 30) if log.due(s)] == [5, 10, 20]
  first = log(5, _recorded_state(0))
  second = log(10, _recorded_state(1))
  writer.close()
  # Natural order: block2 before block10; BN's heavy ball has no ratio.
  names = ['stage1_block2/conv1/kernel', 'stage1_block10/conv1/kernel']
  assert list(first) == names and first != second
  logged = trust_ratio_file.read(str(tmp_path / trust_ratio_file.NAME))
  assert logged == {'steps': [5, 10],
                    'trust_ratios': {n: [first[n], second[n]] for n in names}}
  scalars = _scalars_written(str(tmp_path))
  assert scalars == {(f'trust_ratio/{n}', step): pytest.approx(ratios[n], rel=1e-6)
                     for step, ratios in [(5, first), (10, second)] for n in names}

  # A run resumed from its checkpoint of step 7 logs step 10 again, after step 5.
  resumed = record.TrustRatioLog(config, str(tmp_path), metric_writers.MultiWriter([]),
                                 resumed_step=7, is_main=True)
  again = resumed(10, _recorded_state(2))
  logged = trust_ratio_file.read(str(tmp_path / trust_ratio_file.NAME))
  assert logged['steps'] == [5, 10]
  assert logged['trust_ratios'][names[0]] == [first[names[0]], again[names[0]]]


def test_a_run_with_trust_ratios_gets_their_plot(tmp_path):
  assert runners.plot_trust_ratios(str(tmp_path), 'no ratios') is None
  assert not os.listdir(tmp_path)
  with open(tmp_path / trust_ratio_file.NAME, 'w') as f:
    json.dump({'steps': [1, 50, 100],
               'trust_ratios': {'conv_init/kernel': [0.5, 0.02, 0.01],
                                'stage1_block1/conv1/kernel': [1.0, 0.3, 0.2],
                                'head/kernel': [2.0, 1.5, 0.9]}}, f)
  path = runners.plot_trust_ratios(str(tmp_path), 'lamb')
  assert path == str(tmp_path / 'trust_ratios.png')
  with open(path, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
