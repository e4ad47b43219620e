"""Today's optimizers through optax: NAdamW, Lion, Schedule-Free SGD and AdamW, Muon.

Three kinds of test:
- golden: the harness's optimizer against the same optax calls made directly,
  one per parameter group, the groups split by hand here (kernels; biases and
  BN parameters), with L2 or weight decay where the group takes it and the
  schedule changing every step;
- numpy: each update written out from its paper (as optax computes it), so
  that the values the harness passes mean what the docs say;
- Schedule-Free's evaluation point and Muon's matrices, through the harness.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optax import contrib

import optim
from configs import embedded_lars
from optim import optimizers
from optim import schedules
from train.run import steps

# A warmup, then a quadratic decay: the rate differs at every one of the steps.
_SCHEDULE = dict(init=0.01, peak=0.1, final=0.001, warmup_steps=3, warmup_power=1.0,
                 decay_power=2.0, decay_steps=10)
_NUM_STEPS = 5
_CONV = contrib.MuonDimensionNumbers(reduction_axis=(0, 1, 2), output_axis=3)


def _lr(t):
  with jax.enable_x64(True):  # As the optimizers run it below.
    return float(schedules.piecewise_polynomial(**_SCHEDULE)(t))


def _params(rng):
  return {'conv': {'kernel': rng.normal(size=(3, 3, 2, 4))},
          'head': {'kernel': rng.normal(size=(4, 3)), 'bias': rng.normal(size=(3,))},
          'bn': {'scale': rng.normal(size=(4,)), 'bias': rng.normal(size=(4,))}}


def _grads(rng, params):
  return [jax.tree.map(lambda x: rng.normal(size=x.shape), params)
          for _ in range(_NUM_STEPS)]


def _split(tree):
  """The two groups, by hand: kernels; biases and BN parameters."""
  weights = {'conv': {'kernel': tree['conv']['kernel']},
             'head': {'kernel': tree['head']['kernel']}}
  bn_bias = {'head': {'bias': tree['head']['bias']}, 'bn': dict(tree['bn'])}
  return weights, bn_bias


def _merge(weights, bn_bias):
  return {'conv': weights['conv'],
          'head': {'kernel': weights['head']['kernel'], 'bias': bn_bias['head']['bias']},
          'bn': bn_bias['bn']}


def _config(name, bn_bias_name, **optimizer):
  config = embedded_lars.get_config()
  opt = config.optimizer
  opt.name, opt.bn_bias_name = name, bn_bias_name
  # Away from the defaults, so that a swapped or ignored key shows.
  opt.b1, opt.b2, opt.eps, opt.momentum = 0.8, 0.95, 1e-3, 0.85
  opt.muon_consistent_rms = 0.3
  reads_l2 = optimizers.regularization_key(name) == 'l2'
  opt.l2, opt.weight_decay = (1e-2, 0.0) if reads_l2 else (0.0, 0.1)
  opt.update(optimizer)
  return config


def _run(tx, params_np, grads_np):
  """`_NUM_STEPS` updates in float64; the final parameters."""
  with jax.enable_x64(True):
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), params_np)
    state = tx.init(params)
    for grads in grads_np:
      updates, state = tx.update(jax.tree.map(jnp.asarray, grads), state, params)
      params = optax.apply_updates(params, updates)
    return jax.tree.map(np.asarray, params)


def _harness(config, params, grads):
  with jax.enable_x64(True):
    tx = optim.create_optimizer(config, schedules.piecewise_polynomial(**_SCHEDULE))
  return _run(tx, params, grads)


# ------------------------------------------------------------ golden: optax direct


def _direct_tx(name, opt, lr, l2, wd, dims):
  """optax's own call for `name`, written here independently of optim/."""
  calls = {
      'nadamw': lambda: optax.nadamw(lr, b1=opt.b1, b2=opt.b2, eps=opt.eps, weight_decay=wd),
      'lion': lambda: optax.lion(lr, b1=opt.b1, b2=opt.b2, weight_decay=wd),
      'schedule_free_sgd': lambda: contrib.schedule_free_sgd(lr, b1=opt.momentum,
                                                             weight_decay=l2),
      'schedule_free_adamw': lambda: contrib.schedule_free_adamw(
          lr, b1=opt.b1, b2=opt.b2, eps=opt.eps, weight_decay=wd),
      'muon': lambda: contrib.muon(
          lr, beta=opt.momentum, eps=opt.eps, weight_decay=wd, adam_b1=opt.b1,
          adam_b2=opt.b2, adam_weight_decay=wd, muon_weight_dimension_numbers=dims,
          consistent_rms=opt.muon_consistent_rms),
      'adamw': lambda: optax.adamw(lr, b1=opt.b1, b2=opt.b2, eps=opt.eps, weight_decay=wd),
  }
  return calls[name]()


def _direct(config, params, grads):
  opt = config.optimizer
  lr = schedules.piecewise_polynomial(**_SCHEDULE)
  bn_bias_name = opt.name if opt.bn_bias_name == 'same' else opt.bn_bias_name
  on_bn = opt.l2_on_bn_bias
  # Muon's matrices, by hand: the conv kernel; the head's kernel goes to AdamW.
  weight_dims = {'conv': {'kernel': _CONV}, 'head': {'kernel': None}}
  weights = _run(_direct_tx(opt.name, opt, lr, opt.l2, opt.weight_decay, weight_dims),
                 _split(params)[0], [_split(g)[0] for g in grads])
  bn_bias = _run(_direct_tx(bn_bias_name, opt, lr, opt.l2 * on_bn,
                            opt.weight_decay * on_bn, None),
                 _split(params)[1], [_split(g)[1] for g in grads])
  return _merge(weights, bn_bias)


@pytest.mark.parametrize('name,bn_bias_name,overrides', [
    ('nadamw', 'same', {}),
    ('nadamw', 'same', dict(l2_on_bn_bias=True)),
    ('lion', 'same', {}),
    ('lion', 'adamw', dict(l2_on_bn_bias=True)),
    ('schedule_free_sgd', 'same', {}),
    ('schedule_free_sgd', 'same', dict(l2_on_bn_bias=True)),
    ('schedule_free_adamw', 'same', {}),
    ('schedule_free_adamw', 'same', dict(l2_on_bn_bias=True)),
    ('muon', 'adamw', {}),
    # l2_on_bn_bias with Muon: test_regularisation_form_and_the_bn_bias_switch.
    ('muon', 'nadamw', dict(muon_consistent_rms=None)),
])
def test_harness_is_the_same_optax_call_made_directly(name, bn_bias_name, overrides):
  config = _config(name, bn_bias_name, **overrides)
  rng = np.random.default_rng(11)
  params = _params(rng)
  grads = _grads(rng, params)
  got = _harness(config, params, grads)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14),
               got, _direct(config, params, grads))
  # Every parameter moved: neither group was left out.
  jax.tree.map(lambda a, b: np.testing.assert_array_less(0.0, np.abs(a - b).max()),
               got, params)


@pytest.mark.parametrize('name,key', [
    ('nadamw', 'weight_decay'), ('lion', 'weight_decay'), ('schedule_free_sgd', 'l2'),
    ('schedule_free_adamw', 'weight_decay'), ('muon', 'weight_decay')])
def test_regularisation_form_and_the_bn_bias_switch(name, key):
  """Each reads one form (SGD's L2 joins the gradient; the others decay apart
  from it); with zero gradients it alone moves the parameters, and it moves the
  biases and BN parameters only with l2_on_bn_bias."""
  assert optimizers.regularization_key(name) == key
  bn_bias_name = 'adamw' if name == 'muon' else 'same'
  params = _params(np.random.default_rng(12))
  zero = [jax.tree.map(np.zeros_like, params)]
  for on_bn in (False, True):
    got = _harness(_config(name, bn_bias_name, l2_on_bn_bias=on_bn), params, zero)
    shrunk = jax.tree.map(lambda a, b: bool(np.all(np.abs(a) < np.abs(b))), got, params)
    assert shrunk['conv']['kernel'] and shrunk['head']['kernel'], name
    assert shrunk['bn']['scale'] == shrunk['bn']['bias'] == on_bn, (name, on_bn)
    # Schedule-Free's y = b1 * x + (1 - b1) * z rounds in the last bit.
    unregularised = _harness(_config(name, bn_bias_name, **{key: 0.0}), params, zero)
    jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-14),
                 unregularised, params)


# ------------------------------------------------------------ numpy, from the papers


def _np_nadam_direction(g, s, t, b1, b2, eps):
  """Adam with Nesterov's look-ahead (Dozat), as optax.nadamw: the momentum's
  estimate one step on, b1 * m / (1 - b1^(t+2)) + (1 - b1) * g / (1 - b1^(t+1))."""
  s['m'] = b1 * s.get('m', 0.0) + (1 - b1) * g
  s['v'] = b2 * s.get('v', 0.0) + (1 - b2) * g * g
  m_hat = b1 * s['m'] / (1 - b1 ** (t + 2)) + (1 - b1) * g / (1 - b1 ** (t + 1))
  return m_hat / (np.sqrt(s['v'] / (1 - b2 ** (t + 1))) + eps)


def _np_nadamw(w, g, s, t, opt, l2, wd):
  return w - _lr(t) * (_np_nadam_direction(g, s, t, opt.b1, opt.b2, opt.eps) + wd * w)


def _np_adamw(w, g, s, t, opt, l2, wd):
  s['m'] = opt.b1 * s.get('m', 0.0) + (1 - opt.b1) * g
  s['v'] = opt.b2 * s.get('v', 0.0) + (1 - opt.b2) * g * g
  m_hat, v_hat = s['m'] / (1 - opt.b1 ** (t + 1)), s['v'] / (1 - opt.b2 ** (t + 1))
  return w - _lr(t) * (m_hat / (np.sqrt(v_hat) + opt.eps) + wd * w)


def _np_lion(w, g, s, t, opt, l2, wd):
  """Chen et al., Algorithm 2: the sign of the interpolation with b1, then the
  momentum's update with b2; decoupled decay, scaled by the rate."""
  m = s.get('m', 0.0)
  step = np.sign(opt.b1 * m + (1 - opt.b1) * g)
  s['m'] = opt.b2 * m + (1 - opt.b2) * g
  return w - _lr(t) * (step + wd * w)


def _np_schedule_free(base_step):
  """Defazio et al. (2024): z moves by the base step at y; x is z's average with
  weights lr_max^2 (optax's weight_lr_power 2); y = b1 * x + (1 - b1) * z. optax
  counts the averaging's rate from 1 and the step's from 0, as it is done here."""

  def step(y, g, s, t, opt, l2, wd):
    b1 = opt.momentum if base_step is _np_sgd_z_step else opt.b1
    z = s.get('z', y)
    x = (y - (1 - b1) * z) / b1
    s['max_lr'] = max(s.get('max_lr', 0.0), _lr(t + 1))
    weight = s['max_lr'] ** 2
    s['weight_sum'] = s.get('weight_sum', 0.0) + weight
    c = weight / s['weight_sum']
    s['z'] = z + base_step(y, g, s, t, opt, l2, wd)
    x = (1 - c) * x + c * s['z']
    return b1 * x + (1 - b1) * s['z']

  return step


def _np_sgd_z_step(y, g, s, t, opt, l2, wd):
  return -_lr(t) * (g + l2 * y)


def _np_rms_z_step(y, g, s, t, opt, l2, wd):
  """AdamW without a first moment: g / (sqrt(v_hat) + eps), decay at y."""
  s['v'] = opt.b2 * s.get('v', 0.0) + (1 - opt.b2) * g * g
  v_hat = s['v'] / (1 - opt.b2 ** (t + 1))
  return -_lr(t) * (g / (np.sqrt(v_hat) + opt.eps) + wd * y)


_NS = (3.4445, -4.7750, 2.0315)  # Jordan's quintic Newton-Schulz coefficients.


def _np_orthogonalise(m, eps):
  """Five Newton-Schulz steps towards U V^T of m = U S V^T, on the wide side."""
  wide = m.T if m.shape[0] > m.shape[1] else m
  x = wide / (np.linalg.norm(wide) + eps)
  for _ in range(5):
    a = x @ x.T
    x = _NS[0] * x + (_NS[1] * a + _NS[2] * a @ a) @ x
  return x.T if m.shape[0] > m.shape[1] else x


def _np_muon_conv(w, g, s, t, opt, l2, wd):
  """Muon on a conv kernel: Nesterov momentum (bias-corrected, as optax), the
  kernel as the matrix (kh * kw * c_in, c_out) orthogonalised, scaled to an RMS
  of consistent_rms by sqrt(max(fan_in, fan_out))."""
  beta = opt.momentum
  s['m'] = beta * s.get('m', 0.0) + (1 - beta) * g
  m_hat = beta * s['m'] / (1 - beta ** (t + 2)) + (1 - beta) * g / (1 - beta ** (t + 1))
  kh, kw, c_in, c_out = w.shape
  matrix = _np_orthogonalise(m_hat.reshape(kh * kw * c_in, c_out), opt.eps)
  scale = np.sqrt(max(kh * kw * c_in, c_out)) * opt.muon_consistent_rms
  return w - _lr(t) * (scale * matrix.reshape(w.shape) + wd * w)


_NP_STEPS = {
    'nadamw': _np_nadamw, 'lion': _np_lion, 'adamw': _np_adamw,
    'schedule_free_sgd': _np_schedule_free(_np_sgd_z_step),
    'schedule_free_adamw': _np_schedule_free(_np_rms_z_step),
}


def _numpy_reference(config, params, grads):
  opt = config.optimizer
  bn_bias_name = opt.name if opt.bn_bias_name == 'same' else opt.bn_bias_name
  w = jax.tree.map(np.copy, params)
  paths = [('conv', 'kernel'), ('head', 'kernel'), ('head', 'bias'), ('bn', 'scale'),
           ('bn', 'bias')]
  states = {path: {} for path in paths}
  for t, g in enumerate(grads):
    for mod, leaf in paths:
      is_weight = w[mod][leaf].ndim > 1
      name = opt.name if is_weight else bn_bias_name
      if name == 'muon':  # Muon on the conv kernel, its NAdamW on the head's.
        step = _np_muon_conv if w[mod][leaf].ndim == 4 else _np_nadamw
      else:
        step = _NP_STEPS[name]
      on = is_weight or opt.l2_on_bn_bias
      w[mod][leaf] = step(w[mod][leaf], g[mod][leaf], states[(mod, leaf)], t, opt,
                          opt.l2 * on, opt.weight_decay * on)
  return w


@pytest.mark.parametrize('name,bn_bias_name,overrides', [
    ('nadamw', 'same', {}),
    ('lion', 'same', dict(l2_on_bn_bias=True)),
    ('schedule_free_sgd', 'same', {}),
    ('schedule_free_adamw', 'same', dict(l2_on_bn_bias=True)),
    ('muon', 'adamw', {}),
])
def test_optimizer_matches_its_numpy_reference(name, bn_bias_name, overrides):
  config = _config(name, bn_bias_name, **overrides)
  rng = np.random.default_rng(13)
  params = _params(rng)
  grads = _grads(rng, params)
  got = _harness(config, params, grads)
  expected = _numpy_reference(config, params, grads)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12),
               got, expected)


def test_muon_orthogonalises_the_conv_kernels_alone():
  """Muon's momentum is kept for the conv kernels only (the head's kernel and
  the other group go to AdamW), and its first step, from zero momentum, is the
  kernel's gradient as a (kh * kw * c_in, c_out) matrix with its singular values
  pulled towards 1 (Newton-Schulz's band is about 0.7 to 1.2)."""
  config = _config('muon', 'adamw', weight_decay=0.0)
  rng = np.random.default_rng(14)
  params_np = _params(rng)
  with jax.enable_x64(True):
    params = jax.tree.map(jnp.asarray, params_np)
    tx = optim.create_optimizer(config, lambda t: 1.0)
    state = tx.init(params)
    muon_state = state.inner_states['weights'].inner_state.inner_states['muon'].inner_state[0]
    assert isinstance(muon_state, contrib.MuonState)
    kept = [jax.tree_util.keystr(path) for path, _ in
            jax.tree_util.tree_leaves_with_path(muon_state.mu)]
    assert kept == ["['conv']['kernel']"]
    grads = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape)), params)
    updates, _ = tx.update(grads, state, params)
  step = -np.asarray(updates['conv']['kernel']).reshape(3 * 3 * 2, 4)
  singular = np.linalg.svd(step / (np.sqrt(18) * config.optimizer.muon_consistent_rms),
                           compute_uv=False)
  assert np.all((singular > 0.6) & (singular < 1.3)), singular
  raw = np.linalg.svd(np.asarray(grads['conv']['kernel']).reshape(18, 4), compute_uv=False)
  assert raw.max() / raw.min() > 1.5  # The gradient itself was far from orthogonal.


# ------------------------------------------------------------ Schedule-Free's eval


def _sf_average(y, z, b1):
  return (y - (1 - b1) * z) / b1


def test_evaluation_params_average_the_schedule_free_group_alone():
  """Schedule-Free SGD on the kernels, heavy ball on the rest: the kernels are
  evaluated at x = (y - (1 - b1) z) / b1, the others as they are."""
  config = _config('schedule_free_sgd', 'momentum')
  rng = np.random.default_rng(15)
  params_np = _params(rng)
  with jax.enable_x64(True):
    params = jax.tree.map(jnp.asarray, params_np)
    tx = optim.create_optimizer(config, lambda t: 0.1)
    state = tx.init(params)
    for _ in range(3):
      grads = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape)), params)
      updates, state = tx.update(grads, state, params)
      params = optax.apply_updates(params, updates)
    evaluated = jax.jit(optim.evaluation_params)(state, params)
  z = state.inner_states['weights'].inner_state.z
  b1 = config.optimizer.momentum
  for mod in ('conv', 'head'):
    expected = _sf_average(np.asarray(params[mod]['kernel']), np.asarray(z[mod]['kernel']), b1)
    np.testing.assert_allclose(evaluated[mod]['kernel'], expected, rtol=1e-12)
    assert not np.allclose(evaluated[mod]['kernel'], params[mod]['kernel'])
  for leaf in ('scale', 'bias'):
    np.testing.assert_array_equal(evaluated['bn'][leaf], params['bn'][leaf])
  np.testing.assert_array_equal(evaluated['head']['bias'], params['head']['bias'])


def test_evaluation_params_of_other_optimizers_are_the_parameters():
  params = _params(np.random.default_rng(16))
  for name, bn_bias_name in [('lars', 'momentum'), ('nadamw', 'same'), ('muon', 'adamw')]:
    config = _config(name, bn_bias_name)
    state = optim.create_optimizer(config, lambda t: 0.1).init(params)
    assert optim.evaluation_params(state, params) is params


def _linear_apply(variables, images, train):
  """A linear classifier in the model's calling convention, for a fast eval."""
  del train
  dense = variables['params']['dense']
  return images.reshape(images.shape[0], -1) @ dense['kernel'] + dense['bias']


def test_the_eval_step_reads_schedule_free_s_average():
  """After three updates of Schedule-Free AdamW, the eval's loss is the model's
  at x (computed here from the state), not at y, the parameters trained."""
  config = _config('schedule_free_adamw', 'same')
  _, eval_step = steps.bind_step_constants(config, lambda t: 0.05)
  rng = np.random.default_rng(17)
  params = {'dense': {'kernel': jnp.asarray(rng.normal(size=(8 * 8 * 3, 4)), jnp.float32),
                      'bias': jnp.zeros(4)}}
  tx = optim.create_optimizer(config, lambda t: 0.05)
  state = steps.TrainState.create(apply_fn=_linear_apply, params=params, batch_stats={},
                                  tx=tx)
  for _ in range(3):
    grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), p.dtype), params)
    state = state.apply_gradients(grads=grads)
  batch = {'image': jnp.asarray(rng.integers(0, 256, (4, 8, 8, 3)), jnp.uint8),
           'label': jnp.asarray(rng.integers(0, 4, (4,)), jnp.int32),
           'mask': jnp.ones(4, bool)}
  evaluate = jax.jit(eval_step)
  loss = float(evaluate(state, batch)['loss_sum'])

  b1 = config.optimizer.b1
  groups = state.opt_state.inner_states
  x = {'dense': {
      'kernel': _sf_average(state.params['dense']['kernel'],
                            groups['weights'].inner_state.z['dense']['kernel'], b1),
      'bias': _sf_average(state.params['dense']['bias'],
                          groups['bn_bias'].inner_state.z['dense']['bias'], b1)}}
  # Without an optimizer state the eval reads the parameters as they are.
  at = lambda p: float(evaluate(state.replace(params=p, opt_state=()), batch)['loss_sum'])
  np.testing.assert_allclose(loss, at(x), rtol=1e-5)
  assert abs(loss - at(state.params)) > 1e-3 * abs(loss)
