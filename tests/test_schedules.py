"""Schedules against direct float64 transcriptions of the papers' formulas."""

import importlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import embedded_lars
from optim import schedules
from train.run import budget

MLPERF_T = 2512  # 64 MLPerf epochs at batch 32,768.


def _warmup_reference(t, *, init, peak, warmup, p_warmup):
  return init + (peak - init) * (t / warmup) ** p_warmup


def _piecewise_reference(t, *, init, peak, final, warmup, p_warmup, p_decay, total):
  """The polynomial schedule of the MLPerf v0.7 Google JAX submission's train.py.

  There: decay_steps = train_steps - warmup_steps + 1, decay_step =
  min(step - warmup_steps, decay_steps) and eta = final + (peak - final) *
  (1 - decay_step / decay_steps)^p, so `final` is reached at T + 1, one step
  later than the Reality Check paper's printed formula (`_printed_reference`).
  """
  if t <= warmup and warmup > 0:
    return _warmup_reference(t, init=init, peak=peak, warmup=warmup, p_warmup=p_warmup)
  decay_length = total - warmup + 1
  decay_step = min(t - warmup, decay_length)
  return final + (peak - final) * (1 - decay_step / decay_length) ** p_decay


def _printed_reference(t, *, init, peak, final, warmup, p_warmup, p_decay, total):
  """Reality Check, section 2.1.4, as printed, holding `final` after T."""
  if t <= warmup and warmup > 0:
    return _warmup_reference(t, init=init, peak=peak, warmup=warmup, p_warmup=p_warmup)
  if t >= total:
    return final
  return final + (peak - final) * ((total - t) / (total - warmup)) ** p_decay


def _cosine_reference(t, *, init, peak, final, warmup, p_warmup, total):
  if t <= warmup and warmup > 0:
    return _warmup_reference(t, init=init, peak=peak, warmup=warmup, p_warmup=p_warmup)
  if t >= total:
    return final
  return final + (peak - final) * 0.5 * (1 + math.cos(math.pi * (t - warmup) / (total - warmup)))


def _linear_reference(t, *, init, peak, decay_factor, warmup, p_warmup, total):
  """Tables 9-11: linear from peak to peak * decay_factor at T, constant after."""
  if t <= warmup and warmup > 0:
    return _warmup_reference(t, init=init, peak=peak, warmup=warmup, p_warmup=p_warmup)
  end = peak * decay_factor
  if t >= total:
    return end
  return peak + (end - peak) * (t - warmup) / (total - warmup)


def _points(warmup, total):
  points = [0, warmup / 2, warmup, warmup + 1, total / 2, total - 1, total, total + 1,
            total + 100]
  if warmup != math.floor(warmup):  # Fractional warmup: the steps either side of it.
    points += [math.floor(warmup), math.ceil(warmup)]
  return points


def _check(schedule, reference, warmup, total):
  with jax.enable_x64(True):
    for t in _points(warmup, total):
      got = schedule(t)
      assert got.dtype == jnp.float64
      np.testing.assert_allclose(float(got), reference(t), rtol=1e-6, atol=1e-15,
                                 err_msg=f't={t}')
    # Integer step counts, as optax passes them, batched and under jit.
    steps = np.arange(0, total + 5)
    got = np.asarray(jax.jit(schedule)(jnp.asarray(steps, jnp.int32)))
  want = np.array([reference(float(t)) for t in steps])
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-15)


# Reality Check, section 2.1.4 and Table 5: MLPerf LARS at 32K (t_warmup 706 in
# the paper, 706.5 from 18 MLPerf epochs) and Nesterov Configurations A and B.
PIECEWISE_RECIPES = {
    'mlperf_lars_706': dict(init=0.0, peak=29.0, final=1e-4, warmup=706,
                            p_warmup=1.0, p_decay=2.0),
    'mlperf_lars_706.5': dict(init=0.0, peak=29.0, final=1e-4, warmup=706.5,
                              p_warmup=1.0, p_decay=2.0),
    'nesterov_a': dict(init=0.0, peak=7.05, final=6e-6, warmup=638,
                       p_warmup=2.497, p_decay=1.955),
    'nesterov_b': dict(init=0.0, peak=7.05, final=6e-6, warmup=706,
                       p_warmup=2.0, p_decay=2.0),
}


def _piecewise(recipe, total):
  return schedules.piecewise_polynomial(
      init=recipe['init'], peak=recipe['peak'], final=recipe['final'],
      warmup_steps=recipe['warmup'], warmup_power=recipe['p_warmup'],
      decay_power=recipe['p_decay'], decay_steps=total)


@pytest.mark.parametrize('name', sorted(PIECEWISE_RECIPES))
def test_piecewise_polynomial_recipes(name):
  recipe = PIECEWISE_RECIPES[name]
  schedule = _piecewise(recipe, MLPERF_T)
  _check(schedule, lambda t: _piecewise_reference(t, total=MLPERF_T, **recipe),
         recipe['warmup'], MLPERF_T)
  with jax.enable_x64(True):
    assert float(schedule(0)) == 0.0  # eta_init = 0: the first update is a no-op.
    assert float(schedule(recipe['warmup'])) == pytest.approx(recipe['peak'], rel=1e-12)
    assert float(schedule(MLPERF_T + 1000)) == pytest.approx(recipe['final'], rel=1e-12)


def test_piecewise_polynomial_decays_one_step_longer_than_printed():
  """The reference code's decay, not the paper's printed formula (26-48% apart)."""
  recipe = PIECEWISE_RECIPES['mlperf_lars_706.5']
  with jax.enable_x64(True):
    schedule = _piecewise(recipe, MLPERF_T)
    last = float(schedule(MLPERF_T - 1))  # The rate of the budget's last update.
  code = 1e-4 + (29.0 - 1e-4) * (2 / 1806.5) ** 2
  printed = _printed_reference(MLPERF_T - 1, total=MLPERF_T, **recipe)
  assert last == pytest.approx(code, rel=1e-12)
  assert last / printed - 1 > 0.2  # 24% at the last update of the 32K recipe.


def test_piecewise_polynomial_decay_ends_early_and_holds_final():
  """Tables 12-13: the decay ends at t_decay < budget, constant after it."""
  recipe = dict(init=0.0, peak=10.0, final=1e-3, warmup=500, p_warmup=1.0, p_decay=2.0)
  t_decay = 2392
  schedule = _piecewise(recipe, t_decay)
  _check(schedule, lambda t: _piecewise_reference(t, total=t_decay, **recipe),
         recipe['warmup'], t_decay)
  with jax.enable_x64(True):
    tail = np.asarray(schedule(jnp.arange(t_decay + 1, 2658)))
  np.testing.assert_array_equal(tail, 1e-3)


def test_piecewise_polynomial_nonzero_init():
  recipe = dict(init=0.5, peak=4.0, final=0.01, warmup=100.25, p_warmup=1.5, p_decay=1.0)
  _check(_piecewise(recipe, 1000),
         lambda t: _piecewise_reference(t, total=1000, **recipe), recipe['warmup'], 1000)


def test_no_warmup_starts_at_peak():
  with jax.enable_x64(True):
    for schedule, end in [  # `end`: the first step at the final rate.
        (schedules.piecewise_polynomial(init=0.0, peak=2.0, final=0.0, warmup_steps=0,
                                        warmup_power=1.0, decay_power=2.0,
                                        decay_steps=100), 101),
        (schedules.cosine(init=0.0, peak=2.0, final=0.0, warmup_steps=0,
                          warmup_power=1.0, decay_steps=100), 100),
        (schedules.linear(init=0.0, peak=2.0, decay_factor=0.0, warmup_steps=0,
                          warmup_power=1.0, decay_steps=100), 100),
    ]:
      assert float(schedule(0)) == 2.0
      assert float(schedule(end - 1)) > 0.0
      assert float(schedule(end)) == 0.0


@pytest.mark.parametrize('warmup,p_warmup,init,final,total', [
    (0, 1.0, 0.0, 0.0, 6000),  # Section 4: cosine over 6,000 steps, no warmup.
    (250, 2.0, 0.0, 1e-4, 6000),
    (706.5, 1.0, 0.1, 1e-3, 2512),
])
def test_cosine(warmup, p_warmup, init, final, total):
  kwargs = dict(init=init, peak=5.0, final=final)
  schedule = schedules.cosine(warmup_steps=warmup, warmup_power=p_warmup,
                              decay_steps=total, **kwargs)
  _check(schedule, lambda t: _cosine_reference(t, warmup=warmup, p_warmup=p_warmup,
                                               total=total, **kwargs), warmup, total)
  with jax.enable_x64(True):
    # Half-way through the decay the rate is half-way between peak and final.
    half = warmup + (total - warmup) / 2
    assert float(schedule(half)) == pytest.approx((5.0 + final) / 2, rel=1e-12)


def test_cosine_float32_keeps_the_last_rates():
  """Near T, 1 + cos(~pi) would cancel in float32; the last rates keep their digits."""
  schedule = schedules.cosine(init=0.0, peak=5.0, final=0.0, warmup_steps=0,
                              warmup_power=1.0, decay_steps=6000)
  got = schedule(5999)
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(float(got), 5.0 * math.sin(math.pi / 12000) ** 2, rtol=1e-5)


@pytest.mark.parametrize('warmup,p_warmup,decay_factor,total', [
    (0, 1.0, 1e-2, 2815),  # Table 9: linear over all 2,815 steps.
    (0, 1.0, 1e-4, 2500),  # Table 11: over t_decay steps of a 2,658-step budget.
    (500, 1.0, 1e-3, 2658),
    (638, 2.497, 0.0, 2512),
])
def test_linear(warmup, p_warmup, decay_factor, total):
  kwargs = dict(init=0.0, peak=3.0, decay_factor=decay_factor)
  schedule = schedules.linear(warmup_steps=warmup, warmup_power=p_warmup,
                              decay_steps=total, **kwargs)
  _check(schedule, lambda t: _linear_reference(t, warmup=warmup, p_warmup=p_warmup,
                                               total=total, **kwargs), warmup, total)


def test_default_float_type():
  schedule = _piecewise(PIECEWISE_RECIPES['nesterov_a'], MLPERF_T)
  assert schedule(10).dtype == jnp.float32
  with jax.enable_x64(True):
    assert schedule(10).dtype == jnp.float64


@pytest.mark.parametrize('warmup,total', [(10, 10), (11, 10), (-1, 10), (0, 0)])
def test_rejects_warmup_outside_decay(warmup, total):
  for build in [
      lambda: schedules.piecewise_polynomial(init=0, peak=1, final=0, warmup_steps=warmup,
                                             warmup_power=1, decay_power=1,
                                             decay_steps=total),
      lambda: schedules.cosine(init=0, peak=1, final=0, warmup_steps=warmup,
                               warmup_power=1, decay_steps=total),
      lambda: schedules.linear(init=0, peak=1, decay_factor=0.1, warmup_steps=warmup,
                               warmup_power=1, decay_steps=total),
  ]:
    with pytest.raises(ValueError, match='warmup_steps'):
      build()


def test_linear_rejects_negative_decay_factor():
  with pytest.raises(ValueError, match='decay_factor'):
    schedules.linear(init=0, peak=1, decay_factor=-0.1, warmup_steps=0,
                     warmup_power=1, decay_steps=10)


def test_schedule_names():
  assert schedules.schedule_names() == ['cosine', 'linear', 'piecewise_polynomial', 'step']


def test_unknown_schedule_lists_valid_names():
  config = embedded_lars.get_config()
  config.lr.schedule = 'exponential'
  with pytest.raises(ValueError, match='cosine, linear, piecewise_polynomial, step'):
    budget.learning_rate_fn(config)


def _mlperf_lars_config():
  config = embedded_lars.get_config()
  config.dataset = 'imagenet2012'
  config.global_batch_size = 32_768
  config.num_train_steps = 0
  config.num_epochs = 64.0
  config.lr.peak, config.lr.final = 29.0, 1e-4
  config.lr.warmup_steps = 0.0
  config.lr.warmup_epochs = 18.0
  config.lr.warmup_power, config.lr.decay_power = 1.0, 2.0
  return config


def test_create_from_config_mlperf_lars_in_epochs():
  """18 warmup epochs of 64 at 32K: t_warmup 706.5 and T 2,512, from the epochs."""
  schedule = budget.learning_rate_fn(_mlperf_lars_config())
  _check(schedule, lambda t: _piecewise_reference(
      t, total=MLPERF_T, **PIECEWISE_RECIPES['mlperf_lars_706.5']), 706.5, MLPERF_T)


@pytest.mark.parametrize('name', ['piecewise_polynomial', 'cosine', 'linear'])
def test_create_from_config_follows_budget(name):
  config = embedded_lars.get_config()  # 400 steps, 50 warmup steps on embedded_shapes.
  config.lr.schedule = name
  config.lr.decay_steps = 400.0
  config.lr.init, config.lr.peak, config.lr.final = 0.0, 2.0, 0.01
  config.lr.decay_factor = 0.05
  kwargs = dict(init=0.0, peak=2.0, warmup=50.0, p_warmup=config.lr.warmup_power,
                total=400.0)
  reference = {
      'piecewise_polynomial': lambda t: _piecewise_reference(
          t, final=0.01, p_decay=config.lr.decay_power, **kwargs),
      'cosine': lambda t: _cosine_reference(t, final=0.01, **kwargs),
      'linear': lambda t: _linear_reference(t, decay_factor=0.05, **kwargs),
  }[name]
  _check(budget.learning_rate_fn(config), reference, 50.0, 400.0)


def test_create_from_config_lamb_scales_peak_and_warmup():
  """LAMB Table 5 at batch 512: peak 0.04 / 8, warmup 20 / 64 epochs, eta_0 (1 - t/T)."""
  config = embedded_lars.get_config()
  config.dataset = 'imagenet2012'
  config.global_batch_size = 512
  config.num_train_steps, config.num_epochs = 0, 90.0
  config.lr.init, config.lr.peak, config.lr.final = 0.0, 0.04, 0.0
  config.lr.warmup_power, config.lr.decay_power = 1.0, 1.0
  config.lr.warmup_steps, config.lr.warmup_epochs = 0.0, 20.0
  config.lr.batch_scaling, config.lr.warmup_batch_scaling = 'sqrt', 'linear'
  config.lr.reference_batch_size = 32_768
  total, warmup = 225_225, 0.3125 * 2502.5  # 10,010 steps per 4 epochs.
  _check(budget.learning_rate_fn(config),
         lambda t: _piecewise_reference(t, init=0.0, peak=0.005, final=0.0,
                                        warmup=warmup, p_warmup=1.0, p_decay=1.0,
                                        total=total),
         warmup, total)


def test_create_from_config_explicit_num_train_examples():
  config = embedded_lars.get_config()
  config.num_train_steps, config.num_epochs = 0, 2.0
  config.global_batch_size, config.epochs_per_block = 100, 1
  config.lr.warmup_steps, config.lr.warmup_epochs = 0.0, 1.0
  config.lr.init, config.lr.peak, config.lr.final = 0.0, 1.0, 0.0
  config.lr.decay_power = 1.0
  schedule = budget.learning_rate_fn(config, num_train_examples=1000)
  # 10 steps per epoch: warmup 10 steps, budget 20 steps.
  assert float(schedule(5)) == pytest.approx(0.5)
  # The decay lasts 20 - 10 + 1 = 11 steps: 6/11 of the peak remains at step 15.
  assert float(schedule(15)) == pytest.approx(6 / 11)
  assert float(schedule(20)) == pytest.approx(1 / 11)
  assert float(schedule(21)) == 0.0


@pytest.mark.parametrize('config_name,recipe_name', [
    ('mlperf_lars_32k', 'mlperf_lars_706'), ('nesterov_a', 'nesterov_a'),
    ('nesterov_b', 'nesterov_b')])
def test_config_files_schedules_match_the_reference_code(config_name, recipe_name):
  """The schedule built from the config file itself at every step 0..2,512."""
  config = importlib.import_module(f'configs.{config_name}').get_config()
  recipe = PIECEWISE_RECIPES[recipe_name]
  steps = np.arange(MLPERF_T + 1)
  want = np.array([_piecewise_reference(float(t), total=MLPERF_T, **recipe) for t in steps])
  with jax.enable_x64(True):
    schedule = budget.learning_rate_fn(config, 1_281_167)
    got64 = np.asarray(jax.jit(schedule)(jnp.asarray(steps, jnp.int32)))
  np.testing.assert_allclose(got64, want, rtol=1e-6, atol=0)
  # As the run computes it, in float32: to float32 round-off.
  got32 = np.asarray(jax.jit(budget.learning_rate_fn(config, 1_281_167))(
      jnp.asarray(steps, jnp.int32)))
  assert got32.dtype == np.float32
  np.testing.assert_allclose(got32, want, rtol=1e-5, atol=0)


def _step_reference(t, *, init, peak, factor, warmup, p_warmup, boundaries):
  """Goyal et al.: warmup to peak, then peak * factor for each boundary reached."""
  if t < warmup:
    return _warmup_reference(t, init=init, peak=peak, warmup=warmup, p_warmup=p_warmup)
  return peak * factor ** sum(1 for b in boundaries if t >= b)


def test_step_schedule_matches_numpy():
  boundaries = (20.0, 47.5, 60.0)  # A fractional one, as epochs give.
  schedule = schedules.step(init=0.1, peak=2.0, step_factor=0.2, warmup_steps=7.5,
                            warmup_power=2.0, boundaries=boundaries)
  reference = lambda t: _step_reference(t, init=0.1, peak=2.0, factor=0.2, warmup=7.5,
                                        p_warmup=2.0, boundaries=boundaries)
  _check(schedule, reference, 7.5, 70.0)
  with jax.enable_x64(True):
    rates = [float(schedule(t)) for t in (19, 20, 47, 48, 59, 60)]
  np.testing.assert_allclose(rates, [2.0, 0.4, 0.4, 0.08, 0.08, 0.016], rtol=1e-12)


def test_step_schedule_without_boundaries_or_warmup_is_constant():
  schedule = schedules.step(init=0.0, peak=3.0, step_factor=0.1, warmup_steps=0.0,
                            warmup_power=1.0, boundaries=())
  np.testing.assert_array_equal(np.asarray(schedule(jnp.arange(10))), np.full(10, 3.0))


@pytest.mark.parametrize('kwargs,match', [
    (dict(boundaries=(30.0, 20.0)), 'must increase'),
    (dict(boundaries=(4.0, 20.0)), 'inside the warmup of 5'),
    (dict(step_factor=0.0), 'step_factor=0.0 must be > 0'),
])
def test_step_schedule_refuses_bad_boundaries(kwargs, match):
  args = dict(init=0.0, peak=1.0, step_factor=0.1, warmup_steps=5.0, warmup_power=1.0,
              boundaries=(10.0,))
  with pytest.raises(ValueError, match=match):
    schedules.step(**{**args, **kwargs})


def test_step_schedule_from_config_lamb_table_3():
  """The LAMB paper's Table 3 recipe at 16K: 5 warmup epochs, x0.1 at 30, 60 and 80.

  ImageNet at 16,384 takes 313 steps per 4 MLPerf epochs (78.25 per epoch):
  warmup 391.25 steps, boundaries at 2,347.5, 4,695 and 6,260 steps, 7,043 steps
  in 90 epochs. The epochs become steps as lr.warmup_epochs do.
  """
  config = embedded_lars.get_config()
  config.dataset = 'imagenet2012'
  config.global_batch_size = 16_384
  config.num_train_steps, config.num_epochs = 0, 90.0
  config.lr.schedule = 'step'
  config.lr.init, config.lr.peak = 0.0, 0.5
  config.lr.warmup_steps, config.lr.warmup_epochs, config.lr.warmup_power = 0.0, 5.0, 1.0
  config.lr.step_boundaries_epochs = (30.0, 60.0, 80.0)
  config.lr.step_factor = 0.1
  boundaries = (2347.5, 4695.0, 6260.0)
  reference = lambda t: _step_reference(t, init=0.0, peak=0.5, factor=0.1, warmup=391.25,
                                        p_warmup=1.0, boundaries=boundaries)
  schedule = budget.learning_rate_fn(config)
  _check(schedule, reference, 391.25, 7043.0)
  with jax.enable_x64(True):
    rates = [float(schedule(t)) for t in (2347, 2348, 4694, 4695, 6259, 6260)]
  np.testing.assert_allclose(rates, [0.5, 0.05, 0.05, 0.005, 0.005, 0.0005], rtol=1e-12)
