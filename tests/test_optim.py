"""Schedules and optimizers against direct numpy transcriptions of the formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optim
from configs import default
from optim import lars
from optim import schedules


def _piecewise_reference(t, *, init, peak, final, warmup, p_warmup, p_decay, total):
  if t <= warmup:
    return init + (peak - init) * (t / warmup) ** p_warmup
  return final + (peak - final) * ((total - t) / (total - warmup)) ** p_decay


@pytest.mark.parametrize('warmup,p_warmup,p_decay', [(706.5, 1.0, 2.0), (638, 2.497, 1.955)])
def test_piecewise_polynomial_matches_formula(warmup, p_warmup, p_decay):
  total = 2512
  kwargs = dict(init=0.0, peak=29.0, final=1e-4)
  schedule = schedules.piecewise_polynomial(
      warmup_steps=warmup, warmup_power=p_warmup, decay_power=p_decay,
      decay_steps=total, **kwargs)
  for t in [0, 1, warmup / 2, np.floor(warmup), np.floor(warmup) + 1, total / 2,
            total - 1, total]:
    expected = _piecewise_reference(t, warmup=warmup, p_warmup=p_warmup,
                                    p_decay=p_decay, total=total, **kwargs)
    np.testing.assert_allclose(float(schedule(t)), expected, rtol=1e-5, atol=1e-7)
  # Peak exactly at the end of warmup, final value at and after T.
  assert float(schedule(total)) == pytest.approx(1e-4)
  assert float(schedule(total + 10)) == pytest.approx(1e-4)


def test_schedule_rejects_warmup_beyond_budget():
  with pytest.raises(ValueError, match='warmup_steps'):
    schedules.piecewise_polynomial(init=0, peak=1, final=0, warmup_steps=10,
                                   warmup_power=1, decay_power=1, decay_steps=10)


def _numpy_params(rng):
  return {'conv': {'kernel': rng.normal(size=(3, 3, 2, 4))},
          'bn': {'scale': rng.normal(size=(4,)), 'bias': rng.normal(size=(4,))},
          'zero': {'kernel': np.zeros((2, 2))}}


def _trust(w, g, eta, l2, eps):
  wn, gn = np.linalg.norm(w), np.linalg.norm(g)
  return eta * wn / (gn + l2 * wn + eps) if wn > 0 and gn > 0 else 1.0


def _run_optimizer(config, params_np, grads_np_list):
  with jax.enable_x64(True):
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), params_np)
    tx = optim.create_optimizer(config)
    state = tx.init(params)
    for grads_np in grads_np_list:
      grads = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), grads_np)
      updates, state = tx.update(grads, state, params)
      params = optax.apply_updates(params, updates)
    return jax.tree.map(np.asarray, params)


def _config(name, bn_bias_name, **lr):
  config = default.get_config()
  config.num_train_steps = 10
  config.optimizer.name = name
  config.optimizer.bn_bias_name = bn_bias_name
  config.optimizer.momentum = 0.9
  config.optimizer.l2 = 1e-2
  config.optimizer.trust_coefficient = 0.02
  config.optimizer.lars_epsilon = 1e-3
  config.lr.init, config.lr.peak, config.lr.final = 0.1, 2.0, 0.01
  config.lr.warmup_steps, config.lr.warmup_power, config.lr.decay_power = 3, 1.0, 2.0
  return config


def _lr(config, t):
  return _piecewise_reference(t, init=config.lr.init, peak=config.lr.peak,
                              final=config.lr.final, warmup=config.lr.warmup_steps,
                              p_warmup=config.lr.warmup_power,
                              p_decay=config.lr.decay_power, total=config.num_train_steps)


def test_mlperf_lars_pipeline_matches_numpy():
  """LARS on kernels, MLPerf momentum (rate inside the accumulator) on BN and biases."""
  config = _config('lars', 'mlperf_momentum')
  opt = config.optimizer
  rng = np.random.default_rng(0)
  params = _numpy_params(rng)
  grads = [jax.tree.map(lambda x: rng.normal(size=x.shape), params) for _ in range(6)]
  got = _run_optimizer(config, params, grads)

  w = jax.tree.map(np.copy, params)
  v = jax.tree.map(np.zeros_like, params)
  for t, g in enumerate(grads):
    lr = _lr(config, t)
    for path in [('conv', 'kernel'), ('zero', 'kernel'), ('bn', 'scale'), ('bn', 'bias')]:
      wi, gi = w[path[0]][path[1]], g[path[0]][path[1]]
      if path[1] == 'kernel':
        u = lr * _trust(wi, gi, opt.trust_coefficient, opt.l2, opt.lars_epsilon) * (
            gi + opt.l2 * wi)
      else:  # No trust ratio and no L2 on BN parameters and biases.
        u = lr * gi
      v[path[0]][path[1]] = opt.momentum * v[path[0]][path[1]] + u
      w[path[0]][path[1]] = wi - v[path[0]][path[1]]
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), got, w)


def test_nesterov_matches_numpy():
  """v = mu*v + g; w -= lr*(mu*v + g); L2 on kernels only."""
  config = _config('nesterov', 'same')
  opt = config.optimizer
  rng = np.random.default_rng(1)
  params = _numpy_params(rng)
  grads = [jax.tree.map(lambda x: rng.normal(size=x.shape), params) for _ in range(6)]
  got = _run_optimizer(config, params, grads)

  w = jax.tree.map(np.copy, params)
  v = jax.tree.map(np.zeros_like, params)
  for t, g in enumerate(grads):
    lr = _lr(config, t)
    for mod, name in [('conv', 'kernel'), ('zero', 'kernel'), ('bn', 'scale'), ('bn', 'bias')]:
      l2 = opt.l2 if name == 'kernel' else 0.0
      gi = g[mod][name] + l2 * w[mod][name]
      v[mod][name] = opt.momentum * v[mod][name] + gi
      w[mod][name] = w[mod][name] - lr * (opt.momentum * v[mod][name] + gi)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), got, w)


def test_l2_on_bn_bias_switch():
  config = _config('nesterov', 'same')
  rng = np.random.default_rng(2)
  params = _numpy_params(rng)
  zero_grads = [jax.tree.map(np.zeros_like, params)] * 3
  untouched = _run_optimizer(config, params, zero_grads)
  np.testing.assert_array_equal(untouched['bn']['bias'], params['bn']['bias'])
  config.optimizer.l2_on_bn_bias = True
  decayed = _run_optimizer(config, params, zero_grads)
  assert np.all(np.abs(decayed['bn']['bias']) < np.abs(params['bn']['bias']))


def test_trust_ratio_differs_from_optax_lars():
  """optax.lars divides by ||g + lambda*w||, the MLPerf reference by ||g|| + lambda*||w||."""
  w = jnp.array([1.0, -2.0, 3.0])
  g = jnp.array([-0.5, 0.25, 1.0])
  ours = lars.trust_ratio(w, g, trust_coefficient=1.0, l2=0.5, epsilon=0.0)
  optax_form = jnp.linalg.norm(w) / jnp.linalg.norm(g + 0.5 * w)
  expected = jnp.linalg.norm(w) / (jnp.linalg.norm(g) + 0.5 * jnp.linalg.norm(w))
  np.testing.assert_allclose(ours, expected, rtol=1e-6)
  assert abs(float(ours) - float(optax_form)) > 0.05


def test_param_groups_by_rank():
  params = {'Conv_0': {'kernel': jnp.ones((3, 3, 3, 8))},
            'BatchNorm_0': {'scale': jnp.ones(8), 'bias': jnp.ones(8)},
            'Dense_0': {'kernel': jnp.ones((8, 10)), 'bias': jnp.ones(10)}}
  labels = optim.param_group_labels(params)
  assert labels['Conv_0']['kernel'] == 'weights'
  assert labels['Dense_0']['kernel'] == 'weights'
  assert labels['Dense_0']['bias'] == 'bn_bias'
  assert labels['BatchNorm_0'] == {'scale': 'bn_bias', 'bias': 'bn_bias'}


def test_unknown_optimizer_lists_valid_names():
  config = _config('adagrad', 'same')
  with pytest.raises(ValueError, match='lars.*nesterov'):
    optim.create_optimizer(config)
