"""Optimizers against direct numpy float64 transcriptions of their formulas.

Schedules have their own tests (tests/test_schedules.py); here each test builds
its schedule explicitly, so only the optimizer code is under test.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optim
from configs import embedded_lars
from optim import lamb
from optim import lars
from optim import norms
from optim import schedules
from train.run import budget

# Warmup then quadratic decay, starting above 0 so that the first update counts.
_SCHEDULE = dict(init=0.1, peak=2.0, final=0.01, warmup_steps=3, warmup_power=1.0,
                 decay_power=2.0, decay_steps=10)
_PATHS = [('conv', 'kernel'), ('zero', 'kernel'), ('bn', 'scale'), ('bn', 'bias')]
_NUM_STEPS = 6


def _lr(t):
  s = _SCHEDULE
  if t <= s['warmup_steps']:
    fraction = t / s['warmup_steps']
    return s['init'] + (s['peak'] - s['init']) * fraction ** s['warmup_power']
  # The decay lasts T - t_warmup + 1 steps, as in the reference code.
  remaining = (s['decay_steps'] + 1 - t) / (s['decay_steps'] + 1 - s['warmup_steps'])
  return s['final'] + (s['peak'] - s['final']) * remaining ** s['decay_power']


def _numpy_params(rng):
  return {'conv': {'kernel': rng.normal(size=(3, 3, 2, 4))},
          'bn': {'scale': rng.normal(size=(4,)), 'bias': rng.normal(size=(4,))},
          'zero': {'kernel': np.zeros((2, 2))}}


def _numpy_grads(rng, params):
  grads = [jax.tree.map(lambda x: rng.normal(size=x.shape), params)
           for _ in range(_NUM_STEPS)]
  # A zero parameter with a zero gradient: every norm is 0 at the first step.
  grads[0]['zero']['kernel'] = np.zeros((2, 2))
  return grads


def _trust(w, g, eta, l2, eps):
  wn, gn = np.linalg.norm(w), np.linalg.norm(g)
  return eta * wn / (gn + l2 * wn + eps) if wn > 0 and gn > 0 else 1.0


def _run_optimizer(config, params_np, grads_np_list):
  with jax.enable_x64(True):
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), params_np)
    tx = optim.create_optimizer(config, schedules.piecewise_polynomial(**_SCHEDULE))
    state = tx.init(params)
    for grads_np in grads_np_list:
      grads = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), grads_np)
      updates, state = tx.update(grads, state, params)
      params = optax.apply_updates(params, updates)
    return jax.tree.map(np.asarray, params)


def _config(name, bn_bias_name, **optimizer):
  config = embedded_lars.get_config()
  opt = config.optimizer
  opt.name = name
  opt.bn_bias_name = bn_bias_name
  opt.momentum = 0.9
  opt.l2 = 1e-2
  opt.trust_coefficient = 0.02
  opt.lars_epsilon = 1e-3
  # Away from the defaults, so that a swapped or ignored key shows; eps is large
  # enough to matter against sqrt(v) ~ 1.
  opt.b1, opt.b2, opt.eps = 0.8, 0.95, 1e-3
  opt.weight_decay = 0.1
  opt.update(optimizer)
  return config


@pytest.mark.parametrize('bn_bias_name', ['momentum', 'mlperf_momentum'])
def test_mlperf_lars_pipeline_matches_numpy(bn_bias_name):
  """LARS on kernels; heavy ball on BN and biases, the rate outside or inside."""
  config = _config('lars', bn_bias_name)
  opt = config.optimizer
  rng = np.random.default_rng(0)
  params = _numpy_params(rng)
  grads = _numpy_grads(rng, params)
  got = _run_optimizer(config, params, grads)

  w = jax.tree.map(np.copy, params)
  v = jax.tree.map(np.zeros_like, params)
  for t, g in enumerate(grads):
    lr = _lr(t)
    for mod, name in _PATHS:
      wi, gi, vi = w[mod][name], g[mod][name], v[mod][name]
      if name == 'kernel':
        vi = opt.momentum * vi + lr * _trust(
            wi, gi, opt.trust_coefficient, opt.l2, opt.lars_epsilon) * (gi + opt.l2 * wi)
        wi = wi - vi
      elif bn_bias_name == 'momentum':  # No trust ratio and no L2; rate outside.
        vi = opt.momentum * vi + gi
        wi = wi - lr * vi
      else:  # The MLPerf TF2 reference's form: the rate inside.
        vi = opt.momentum * vi + lr * gi
        wi = wi - vi
      w[mod][name], v[mod][name] = wi, vi
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), got, w)


def test_mlperf_lars_32k_bn_bias_update_is_heavy_ball_of_the_v07_jax_pipeline():
  """configs/mlperf_lars_32k.py on biases and BN: flax.optim.Momentum's update.

  The recipe's own optimizer and schedule, 12 updates through the warmup
  (a rate that changes every step, from 0) and 12 across the end of the decay,
  against numpy heavy ball: v = mu*v + g; w -= lr_t*v with lr_t of the v0.7 JAX
  train.py (linear warmup over 706.5 steps, decay over 1,806.5 steps).
  """
  from configs import mlperf_lars_32k  # pylint: disable=g-import-not-at-top
  config = mlperf_lars_32k.get_config('epochs')  # t_warmup = 706.5, as v0.7 had it.
  mu = config.optimizer.momentum
  assert (config.optimizer.name, config.optimizer.bn_bias_name, mu) == ('lars', 'momentum', 0.929)

  def v07_lr(t):
    warmup, decay = 706.5, 2512 - 706.5 + 1
    if t <= warmup:
      return 29.0 * t / warmup
    return 1e-4 + (29.0 - 1e-4) * (1 - min(t - warmup, decay) / decay) ** 2

  rng = np.random.default_rng(7)
  bias = rng.normal(size=(16,)).astype(np.float32)
  for first_step in (0, 2500):
    grads = [rng.normal(size=(16,)).astype(np.float32) for _ in range(12)]
    params = {'bn': {'bias': jnp.asarray(bias)}}
    tx = optim.create_optimizer(config, budget.learning_rate_fn(config, 1_281_167))
    state = tx.init(params)
    # Start the schedule's counts at `first_step`, as a run that got there would.
    state = jax.tree.map(
        lambda x: jnp.asarray(first_step, x.dtype) if x.ndim == 0 and
        jnp.issubdtype(x.dtype, jnp.integer) else x, state)
    w, v = bias.astype(np.float64), np.zeros(16)
    for i, g in enumerate(grads):
      updates, state = tx.update({'bn': {'bias': jnp.asarray(g)}}, state, params)
      params = optax.apply_updates(params, updates)
      v = mu * v + g
      w = w - v07_lr(first_step + i) * v
    np.testing.assert_allclose(np.asarray(params['bn']['bias']), w, rtol=2e-6, atol=1e-6)


def test_nesterov_matches_numpy():
  """v = mu*v + g; w -= lr*(mu*v + g); L2 on kernels only."""
  config = _config('nesterov', 'same')
  opt = config.optimizer
  rng = np.random.default_rng(1)
  params = _numpy_params(rng)
  grads = _numpy_grads(rng, params)
  got = _run_optimizer(config, params, grads)

  w = jax.tree.map(np.copy, params)
  v = jax.tree.map(np.zeros_like, params)
  for t, g in enumerate(grads):
    lr = _lr(t)
    for mod, name in _PATHS:
      l2 = opt.l2 if name == 'kernel' else 0.0
      gi = g[mod][name] + l2 * w[mod][name]
      v[mod][name] = opt.momentum * v[mod][name] + gi
      w[mod][name] = w[mod][name] - lr * (opt.momentum * v[mod][name] + gi)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), got, w)


# One numpy step per optimizer: (w, g, state dict, t, lr, opt, l2, wd) -> new w.
# `t` counts the updates already applied; l2 and wd are 0 where the group rule
# excludes them.

def _np_lars(w, g, s, t, lr, opt, l2, wd):
  u = lr * _trust(w, g, opt.trust_coefficient, l2, opt.lars_epsilon) * (g + l2 * w)
  s['v'] = opt.momentum * s.get('v', 0.0) + u
  return w - s['v']


def _np_mlperf_momentum(w, g, s, t, lr, opt, l2, wd):
  s['v'] = opt.momentum * s.get('v', 0.0) + lr * (g + l2 * w)
  return w - s['v']


def _np_momentum(w, g, s, t, lr, opt, l2, wd):
  s['v'] = opt.momentum * s.get('v', 0.0) + g + l2 * w
  return w - lr * s['v']


def _np_adam_direction(g, s, t, opt):
  """m_hat / (sqrt(v_hat) + eps), with the moments updated in s."""
  s['m'] = opt.b1 * s.get('m', 0.0) + (1 - opt.b1) * g
  s['v'] = opt.b2 * s.get('v', 0.0) + (1 - opt.b2) * g ** 2
  m_hat = s['m'] / (1 - opt.b1 ** (t + 1))
  v_hat = s['v'] / (1 - opt.b2 ** (t + 1))
  return m_hat / (np.sqrt(v_hat) + opt.eps)


def _np_adam(w, g, s, t, lr, opt, l2, wd):
  return w - lr * _np_adam_direction(g + l2 * w, s, t, opt)


def _np_adamw(w, g, s, t, lr, opt, l2, wd):
  return w - lr * (_np_adam_direction(g + l2 * w, s, t, opt) + wd * w)


def _np_lamb(w, g, s, t, lr, opt, l2, wd):
  d = _np_adam_direction(g, s, t, opt) + wd * w
  wn, dn = np.linalg.norm(w), np.linalg.norm(d)
  ratio = wn / dn if wn > 0 and dn > 0 else 1.0
  return w - lr * ratio * d


_NP_STEPS = {'lars': _np_lars, 'mlperf_momentum': _np_mlperf_momentum,
             'momentum': _np_momentum, 'adam': _np_adam, 'adamw': _np_adamw,
             'lamb': _np_lamb}


def _numpy_reference(config, params, grads, np_steps=None):
  np_steps = np_steps or _NP_STEPS
  opt = config.optimizer
  bn_bias_name = opt.name if opt.bn_bias_name == 'same' else opt.bn_bias_name
  w = jax.tree.map(np.copy, params)
  states = {path: {} for path in _PATHS}
  for t, g in enumerate(grads):
    for mod, name in _PATHS:
      is_weight = w[mod][name].ndim > 1
      step = np_steps[opt.name if is_weight else bn_bias_name]
      regularized = is_weight or opt.l2_on_bn_bias
      l2 = opt.l2 if regularized else 0.0
      wd = opt.weight_decay if regularized else 0.0
      w[mod][name] = step(w[mod][name], g[mod][name], states[(mod, name)], t, _lr(t),
                          opt, l2, wd)
  return w


@pytest.mark.parametrize('name,bn_bias_name,l2_on_bn_bias', [
    ('lars', 'momentum', False),
    ('lars', 'mlperf_momentum', False),
    ('lars', 'same', False),  # Trust ratio on BN and biases too, without L2.
    ('momentum', 'same', False),
    ('momentum', 'same', True),
    ('adam', 'same', False),
    ('adam', 'same', True),
    ('adamw', 'same', False),
    ('lamb', 'same', False),
    ('lamb', 'adamw', False),  # Reality Check, Table 4: lambda = 0 on BN/bias.
    ('lamb', 'same', True),  # LAMB on everything, weight decay included.
])
def test_optimizer_matches_numpy(name, bn_bias_name, l2_on_bn_bias):
  config = _config(name, bn_bias_name, l2_on_bn_bias=l2_on_bn_bias)
  rng = np.random.default_rng(3)
  params = _numpy_params(rng)
  grads = _numpy_grads(rng, params)
  got = _run_optimizer(config, params, grads)
  expected = _numpy_reference(config, params, grads)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), got, expected)
  assert not np.array_equal(got['zero']['kernel'], params['zero']['kernel'])


# The optimizers of issue 25, each written from its paper: AdaGrad, Adam without
# its bias correction, the LAMB paper's N-LAMB and NN-LAMB (Appendix D), LAMB
# without bias correction (Appendix E), and the trust ratio's norms (Appendix F).

_NP_NORMS = {'l1': lambda x: np.sum(np.abs(x)), 'l2': lambda x: np.sqrt(np.sum(x * x)),
             'linf': lambda x: np.max(np.abs(x))}


def _np_adagrad(w, g, s, t, lr, opt, l2, wd):
  """Duchi et al., as optax has it: s = s0 + sum of g^2; w -= lr * g / sqrt(s + eps)."""
  g = g + l2 * w
  s['sum'] = s.get('sum', opt.initial_accumulator_value) + g * g
  return w - lr * g / np.sqrt(s['sum'] + opt.eps)


def _np_adam_moments(g, s, t, opt):
  """Adam's moments after update t + 1, and their bias corrections (1 if off)."""
  s['m'] = opt.b1 * s.get('m', 0.0) + (1 - opt.b1) * g
  s['v'] = opt.b2 * s.get('v', 0.0) + (1 - opt.b2) * g ** 2
  if not opt.bias_correction:
    return s['m'], s['v'], 1.0, 1.0
  return s['m'], s['v'], 1 - opt.b1 ** (t + 1), 1 - opt.b2 ** (t + 1)


def _np_adam_uncorrected_or_not(w, g, s, t, lr, opt, l2, wd):
  m, v, c1, c2 = _np_adam_moments(g + l2 * w, s, t, opt)
  return w - lr * (m / c1) / (np.sqrt(v / c2) + opt.eps)


def _np_adamw_uncorrected_or_not(w, g, s, t, lr, opt, l2, wd):
  m, v, c1, c2 = _np_adam_moments(g + l2 * w, s, t, opt)
  return w - lr * ((m / c1) / (np.sqrt(v / c2) + opt.eps) + wd * w)


def _np_lamb_family(first, second):
  """LAMB (Algorithm 2) and Algorithms 3 and 4 as printed, with Dozat's sequence
  of betas beta^(i) constant (beta^(i) = beta), so prod_{i<=t} beta^(i) = beta^t.

  first, second: 'plain' (m_t), 'nesterov' (beta^(t+1) m_t + (1 - beta^(t)) g_t,
  over 1 - prod) or, for N-LAMB's second moment, 'beta' (beta^(t+1) v_t alone).
  """

  def estimate(kind, moment, g_term, beta, t, bias_correction):
    sequence = lambda i: beta  # Dozat's beta^(i), constant in the paper's runs.
    product = np.prod([sequence(i) for i in range(1, t + 1)])
    denominator = 1 - product if bias_correction else 1.0
    if kind == 'plain':
      return moment / denominator
    if kind == 'beta':
      return sequence(t + 1) * moment / denominator
    return sequence(t + 1) * moment / denominator + (1 - sequence(t)) * g_term / denominator

  def step(w, g, s, t, lr, opt, l2, wd):
    s['m'] = opt.b1 * s.get('m', 0.0) + (1 - opt.b1) * g
    s['v'] = opt.b2 * s.get('v', 0.0) + (1 - opt.b2) * g ** 2
    m_hat = estimate(first, s['m'], g, opt.b1, t + 1, opt.bias_correction)
    v_hat = estimate(second, s['v'], g ** 2, opt.b2, t + 1, opt.bias_correction)
    d = m_hat / (np.sqrt(v_hat) + opt.eps) + wd * w
    norm = _NP_NORMS[opt.trust_ratio_norm]
    wn, dn = norm(w), norm(d)
    ratio = wn / dn if wn > 0 and dn > 0 else 1.0
    return w - lr * ratio * d

  return step


def _np_lars_in_norm(w, g, s, t, lr, opt, l2, wd):
  norm = _NP_NORMS[opt.trust_ratio_norm]
  wn, gn = norm(w), norm(g)
  trust = (opt.trust_coefficient * wn / (gn + l2 * wn + opt.lars_epsilon)
           if wn > 0 and gn > 0 else 1.0)
  s['v'] = opt.momentum * s.get('v', 0.0) + lr * trust * (g + l2 * w)
  return w - s['v']


_NP_ISSUE_25_STEPS = {
    **_NP_STEPS,
    'adagrad': _np_adagrad,
    'adam': _np_adam_uncorrected_or_not,
    'adamw': _np_adamw_uncorrected_or_not,
    'lamb': _np_lamb_family('plain', 'plain'),
    'n_lamb': _np_lamb_family('nesterov', 'beta'),
    'nn_lamb': _np_lamb_family('nesterov', 'nesterov'),
    'lars': _np_lars_in_norm,
}

_DOZAT = dict(b1=0.975, b2=0.999, eps=1e-8)  # The LAMB paper's Appendix D.


@pytest.mark.parametrize('name,bn_bias_name,overrides', [
    ('adagrad', 'same', {}),
    ('adagrad', 'same', dict(l2_on_bn_bias=True, initial_accumulator_value=0.3)),
    ('lars', 'same', {}),  # The L2 ratio of the existing tests, by the new reference.
    ('adam', 'same', dict(bias_correction=False)),
    ('adamw', 'same', dict(bias_correction=False)),
    ('adamw', 'same', {}),  # L2 and weight decay together (LAMB paper, Appendix H.1).
    ('adamw', 'same', dict(l2=0.0)),
    ('lamb', 'same', {}),
    ('n_lamb', 'same', {}),
    ('n_lamb', 'momentum', _DOZAT),
    ('nn_lamb', 'same', {}),
    ('nn_lamb', 'adamw', dict(_DOZAT, l2_on_bn_bias=True)),
    ('lamb', 'same', dict(bias_correction=False)),  # Appendix E.
    ('n_lamb', 'same', dict(bias_correction=False)),
    ('nn_lamb', 'same', dict(bias_correction=False)),
    ('lamb', 'same', dict(trust_ratio_norm='l1')),  # Appendix F.
    ('lamb', 'same', dict(trust_ratio_norm='linf')),
    ('nn_lamb', 'same', dict(trust_ratio_norm='l1')),
    ('lars', 'momentum', dict(trust_ratio_norm='l1')),
    ('lars', 'same', dict(trust_ratio_norm='linf')),
])
def test_issue_25_optimizer_matches_numpy(name, bn_bias_name, overrides):
  config = _config(name, bn_bias_name, **overrides)
  rng = np.random.default_rng(8)
  params = _numpy_params(rng)
  grads = _numpy_grads(rng, params)
  got = _run_optimizer(config, params, grads)
  expected = _numpy_reference(config, params, grads, _NP_ISSUE_25_STEPS)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), got, expected)
  assert not np.array_equal(got['zero']['kernel'], params['zero']['kernel'])


@pytest.mark.parametrize('name,overrides', [
    ('n_lamb', {}), ('nn_lamb', {}),
    ('lamb', dict(bias_correction=False)), ('adam', dict(bias_correction=False)),
    ('lamb', dict(trust_ratio_norm='l1')), ('lamb', dict(trust_ratio_norm='linf')),
    ('lars', dict(trust_ratio_norm='l1')), ('adagrad', dict(initial_accumulator_value=1.0)),
])
def test_each_switch_changes_the_steps(name, overrides):
  """Against the same optimizer without the switch (or LAMB for its variants): a
  switch that the code ignored would pass the numpy test only by coincidence."""
  rng = np.random.default_rng(9)
  params = _numpy_params(rng)
  grads = _numpy_grads(rng, params)
  base = 'lamb' if name.endswith('_lamb') else name
  plain = _run_optimizer(_config(base, 'same'), params, grads)
  switched = _run_optimizer(_config(name, 'same', **overrides), params, grads)
  assert not np.allclose(plain['conv']['kernel'], switched['conv']['kernel'], rtol=1e-4)


def test_norms_of_a_tensor():
  x = jnp.array([[3.0, -4.0], [0.0, 1.0]])
  assert float(norms.tensor_norm(x, 'l1')) == 8.0
  np.testing.assert_allclose(float(norms.tensor_norm(x, 'l2')), np.sqrt(26.0), rtol=1e-6)
  assert float(norms.tensor_norm(x, 'linf')) == 4.0
  with pytest.raises(ValueError, match="unknown trust ratio norm 'l3'; valid: l1, l2, linf"):
    norms.tensor_norm(x, 'l3')


def test_mlperf_pipeline_has_no_trust_ratio_on_bn_bias():
  """A huge trust coefficient changes the kernels' steps and leaves BN/bias alone."""
  rng = np.random.default_rng(4)
  params = _numpy_params(rng)
  grads = _numpy_grads(rng, params)
  small = _run_optimizer(_config('lars', 'momentum'), params, grads)
  huge = _run_optimizer(_config('lars', 'momentum', trust_coefficient=1e6),
                        params, grads)
  np.testing.assert_array_equal(small['bn']['scale'], huge['bn']['scale'])
  np.testing.assert_array_equal(small['bn']['bias'], huge['bn']['bias'])
  assert not np.allclose(small['conv']['kernel'], huge['conv']['kernel'])


@pytest.mark.parametrize('name', ['nesterov', 'adam', 'adamw', 'lamb'])
def test_regularization_on_bn_bias_switch(name):
  """With zero gradients only the regularizer moves BN/bias, and only when allowed."""
  config = _config(name, 'same')
  rng = np.random.default_rng(2)
  params = _numpy_params(rng)
  # One step at lr = 0.1: Adam and LAMB normalise their steps, which would
  # overshoot zero at the peak rate.
  zero_grads = [jax.tree.map(np.zeros_like, params)]
  untouched = _run_optimizer(config, params, zero_grads)
  np.testing.assert_array_equal(untouched['bn']['bias'], params['bn']['bias'])
  config.optimizer.l2_on_bn_bias = True
  decayed = _run_optimizer(config, params, zero_grads)
  assert np.all(np.abs(decayed['bn']['bias']) < np.abs(params['bn']['bias']))


def test_trust_ratio_differs_from_optax_lars():
  """optax.lars divides by ||g + lambda*w||; MLPerf by ||g|| + lambda*||w||."""
  w = jnp.array([1.0, -2.0, 3.0])
  g = jnp.array([-0.5, 0.25, 1.0])
  ours = lars.trust_ratio(w, g, trust_coefficient=1.0, l2=0.5, epsilon=0.0)
  optax_form = jnp.linalg.norm(w) / jnp.linalg.norm(g + 0.5 * w)
  expected = jnp.linalg.norm(w) / (jnp.linalg.norm(g) + 0.5 * jnp.linalg.norm(w))
  np.testing.assert_allclose(ours, expected, rtol=1e-6)
  assert abs(float(ours) - float(optax_form)) > 0.05


def test_lamb_trust_ratio_zero_norms():
  w = jnp.array([3.0, 4.0])
  np.testing.assert_allclose(lamb.trust_ratio(w, jnp.array([0.0, 2.0])), 2.5)
  assert float(lamb.trust_ratio(jnp.zeros(2), w)) == 1.0
  assert float(lamb.trust_ratio(w, jnp.zeros(2))) == 1.0
  assert float(lamb.trust_ratio(jnp.zeros(2), jnp.zeros(2))) == 1.0


def test_lamb_agrees_with_optax_lamb():
  """Same formula as optax.lamb: the measured difference is float64 rounding."""
  rng = np.random.default_rng(5)
  params_np = _numpy_params(rng)
  grads_np = _numpy_grads(rng, params_np)
  hyper = dict(b1=0.8, b2=0.95, eps=1e-3, weight_decay=0.1)
  with jax.enable_x64(True):
    schedule = schedules.piecewise_polynomial(**_SCHEDULE)
    results = []
    for tx in [lamb.lamb(schedule, **hyper), optax.lamb(schedule, **hyper)]:
      params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), params_np)
      state = tx.init(params)
      for g in grads_np:
        updates, state = tx.update(jax.tree.map(jnp.asarray, g), state, params)
        params = optax.apply_updates(params, updates)
      results.append(params)
    diffs = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b) / jnp.abs(b))),
                         *results)
  assert max(jax.tree.leaves(diffs)) < 1e-12


def test_param_groups_by_rank():
  params = {'Conv_0': {'kernel': jnp.ones((3, 3, 3, 8))},
            'BatchNorm_0': {'scale': jnp.ones(8), 'bias': jnp.ones(8)},
            'Dense_0': {'kernel': jnp.ones((8, 10)), 'bias': jnp.ones(10)}}
  labels = optim.param_group_labels(params)
  assert labels['Conv_0']['kernel'] == 'weights'
  assert labels['Dense_0']['kernel'] == 'weights'
  assert labels['Dense_0']['bias'] == 'bn_bias'
  assert labels['BatchNorm_0'] == {'scale': 'bn_bias', 'bias': 'bn_bias'}


def test_optimizer_names():
  assert optim.optimizer_names() == [
      'adagrad', 'adam', 'adamw', 'lamb', 'lars', 'lion', 'mlperf_momentum', 'momentum',
      'muon', 'n_lamb', 'nadamw', 'nesterov', 'nn_lamb', 'schedule_free_adamw',
      'schedule_free_sgd']


@pytest.mark.parametrize('name,bn_bias_name', [('adadelta', 'same'),
                                               ('lamb', 'adadelta')])
def test_unknown_optimizer_lists_valid_names(name, bn_bias_name):
  config = _config(name, bn_bias_name)
  with pytest.raises(ValueError, match='adadelta.*valid: adagrad, adam, adamw, lamb, lars'):
    optim.create_optimizer(config, schedules.piecewise_polynomial(**_SCHEDULE))
