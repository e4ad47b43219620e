"""Learning-rate schedules, as functions from the step count to a learning rate.

The step count t is the number of updates already applied: the update that turns
step t into step t + 1 uses eta(t). With eta_init = 0 the first update is
therefore a no-op, as in the MLPerf reference.

Every schedule is a warmup from `init` to `peak` over t_warmup steps,
  eta_t = init + (peak - init) * (t / t_warmup)^p_warmup,      t <= t_warmup,
then a decay from `peak` to `final` that ends at step T = `decay_steps` (T + 1
for 'piecewise_polynomial', as in the reference code: see there), after which
the rate holds at `final`. The two pieces meet at peak when t = t_warmup;
with t_warmup = 0 there is no warmup and eta_0 = peak. Rates are computed in the
default float type (float32, or float64 under jax.enable_x64).

The LAMB paper's ResNet-50 schedule (You et al., Table 5: eta_t = eta_0 (1 - t/T)
after a warmup) needs no schedule of its own: it is 'piecewise_polynomial' with
init 0, final 0, warmup_power 1, decay_power 1, the warmup in epochs
(lr.warmup_epochs), lr.batch_scaling='sqrt' and lr.warmup_batch_scaling='linear'.
Like every 'piecewise_polynomial' schedule, its decay lasts one step longer
than the printed formula's.

'step' is the exception to the decay to `final`: after the warmup the rate is
`peak`, multiplied by `step_factor` at each of its boundaries (Goyal et al.,
2017; the LAMB paper's Table 3 and Appendix H.1).
"""

import math
from typing import Callable, Protocol, Sequence

import jax.numpy as jnp
import ml_collections
import numpy as np

from choices import check_choice

Schedule = Callable[[jnp.ndarray | int], jnp.ndarray]


def _check_steps(warmup_steps: float, decay_steps: float) -> None:
  if not 0 <= warmup_steps < decay_steps:
    raise ValueError(
        f'warmup_steps={warmup_steps} must be in [0, decay_steps={decay_steps})')


def _as_float(step) -> jnp.ndarray:
  # The default float type: float32, or float64 under jax.enable_x64.
  return jnp.asarray(step).astype(jnp.result_type(float))


def _warmup(t: jnp.ndarray, *, init: float, peak: float, warmup_steps: float,
            warmup_power: float) -> jnp.ndarray:
  """init + (peak - init) * (t / t_warmup)^p_warmup (only used for t < t_warmup)."""
  # Guard the division for warmup_steps == 0, when this branch is never selected.
  fraction = t / max(warmup_steps, 1e-12)
  return init + (peak - init) * jnp.power(fraction, warmup_power)


def _remaining(t: jnp.ndarray, warmup_steps: float, decay_end: float
               ) -> jnp.ndarray:
  """(T_end - t) / (T_end - t_warmup), clipped to [0, 1]: 0 holds `final` after T_end.

  Formulas use this rather than 1 - (t - t_warmup) / (T_end - t_warmup): near the
  end the difference would cancel and, in float32, lose most digits of the last
  rates.
  """
  return jnp.clip((decay_end - t) / (decay_end - warmup_steps), 0.0, 1.0)


def _warmup_then(decay: Callable[[jnp.ndarray], jnp.ndarray], *, init: float,
                 peak: float, warmup_steps: float, warmup_power: float) -> Schedule:
  """The schedule that warms up, then follows decay(t) (which is peak at t_warmup)."""

  def schedule(step):
    t = _as_float(step)
    warmup = _warmup(t, init=init, peak=peak, warmup_steps=warmup_steps,
                     warmup_power=warmup_power)
    # Both pieces are peak at t = t_warmup (up to rounding), so `<` matches the
    # paper's `<=`; it also makes t_warmup = 0 start at peak rather than at init.
    return jnp.where(t < warmup_steps, warmup, decay(t))

  return schedule


def _polynomial_decay(*, init: float, peak: float, final: float, warmup_steps: float,
                      warmup_power: float, decay_power: float, decay_end: float
                      ) -> Schedule:
  """Warmup, then final + (peak - final) * ((T_end - t) / (T_end - t_warmup))^p."""

  def decay(t):
    remaining = _remaining(t, warmup_steps, decay_end)
    return final + (peak - final) * jnp.power(remaining, decay_power)

  return _warmup_then(decay, init=init, peak=peak, warmup_steps=warmup_steps,
                      warmup_power=warmup_power)


def piecewise_polynomial(*, init: float, peak: float, final: float,
                         warmup_steps: float, warmup_power: float,
                         decay_power: float, decay_steps: float) -> Schedule:
  """Polynomial warmup to `peak`, then polynomial decay to `final` after `decay_steps`.

  With T = `decay_steps` and D = T - t_warmup + 1 (the decay's length):
    eta_t = init + (peak - init) * (t / t_warmup)^p_warmup              t <= t_warmup
    eta_t = final + (peak - final) * (1 - (t - t_warmup) / D)^p_decay   t > t_warmup
  and `final` from t = T + 1 on. `warmup_steps` may be fractional (the MLPerf
  recipe warms up for 706.5 steps) and is kept exact.

  The Reality Check paper (section 2.1.4) prints the decay as
  ((T - t) / (T - t_warmup))^p_decay, a decay over T - t_warmup steps. The code
  that produced its numbers decays over one step more: the MLPerf v0.7 Google
  JAX submission (`decay_steps = train_steps - warmup_steps + 1`), the MLPerf
  TF2 reference's lars_util.py and init2winit's mlperf_polynomial_schedule (used
  for the paper's Nesterov runs). This follows the code: the rate at the last
  step of the 32K recipe is eta_final + (peak - eta_final) * (2 / 1806.5)^2 here,
  against (1 / 1805.5)^2 by the printed formula.
  """
  _check_steps(warmup_steps, decay_steps)
  return _polynomial_decay(
      init=init, peak=peak, final=final, warmup_steps=warmup_steps,
      warmup_power=warmup_power, decay_power=decay_power,
      decay_end=decay_steps + 1.0)


def decay_length(schedule_name: str, warmup_steps: float, decay_steps: float) -> float:
  """The number of steps the decay of `schedule_name` lasts, as MLPerf logs it.

  The reference implementations log `*_opt_learning_rate_decay_steps` as the
  length of the decay: T - t_warmup + 1 for the polynomial decay (1,806.5 for
  the 32K recipe), T - t_warmup for 'cosine' and 'linear'.
  """
  extra = 1.0 if schedule_name == 'piecewise_polynomial' else 0.0
  return decay_steps - warmup_steps + extra


def cosine(*, init: float, peak: float, final: float, warmup_steps: float,
           warmup_power: float, decay_steps: float) -> Schedule:
  """Polynomial warmup to `peak`, then cosine decay to `final` at `decay_steps`.

  Reality Check paper, section 4 (there without warmup, i.e. warmup_steps=0):
    eta_t = final + (peak - final) * (1 + cos(pi (t - t_warmup) / (T - t_warmup))) / 2
  for t > t_warmup, and `final` after T.
  """
  _check_steps(warmup_steps, decay_steps)

  def decay(t):
    # (1 + cos(pi (1 - r))) / 2 = sin^2(pi r / 2) with r the remaining fraction:
    # the same value, without the cancellation of 1 + cos(~pi) near T.
    remaining = _remaining(t, warmup_steps, decay_steps)
    return final + (peak - final) * jnp.square(jnp.sin(0.5 * math.pi * remaining))

  return _warmup_then(decay, init=init, peak=peak, warmup_steps=warmup_steps,
                      warmup_power=warmup_power)


def linear(*, init: float, peak: float, decay_factor: float, warmup_steps: float,
           warmup_power: float, decay_steps: float) -> Schedule:
  """Polynomial warmup to `peak`, then linear decay to peak * decay_factor.

  Reality Check paper, Appendix D, Tables 9-11: "starting from eta_0 and ending
  at eta_0 * eta_decay_factor" at step t_decay = `decay_steps` (the whole budget
  in Tables 9-10), constant after it; those tables use no warmup
  (warmup_steps=0). A polynomial decay of power 1 to final = peak * decay_factor
  that ends at t_decay itself (the printed formula; unlike
  `piecewise_polynomial`, no extra step).
  """
  if not decay_factor >= 0:
    raise ValueError(f'decay_factor={decay_factor} must be >= 0')
  _check_steps(warmup_steps, decay_steps)
  return _polynomial_decay(
      init=init, peak=peak, final=peak * decay_factor, warmup_steps=warmup_steps,
      warmup_power=warmup_power, decay_power=1.0, decay_end=decay_steps)


def step(*, init: float, peak: float, step_factor: float, warmup_steps: float,
         warmup_power: float, boundaries: Sequence[float]) -> Schedule:
  """Polynomial warmup to `peak`, then `peak` times step_factor^k after k boundaries.

  Goyal et al. (2017), as the LAMB paper's Table 3 uses it: a 5-epoch linear
  warmup, then the rate times 0.1 at epochs 30, 60 and 80:
    eta_t = init + (peak - init) * (t / t_warmup)^p_warmup    t < t_warmup
    eta_t = peak * step_factor^k                              k = #{b : b <= t}
  `boundaries` are steps (fractional allowed, like t_warmup): the update of
  step t uses the lower rate from the first t at or past a boundary. None may
  fall inside the warmup.
  """
  if not step_factor > 0:
    raise ValueError(f'step_factor={step_factor} must be > 0')
  if list(boundaries) != sorted(boundaries):
    raise ValueError(f'the step boundaries {tuple(boundaries)} must increase')
  if boundaries and boundaries[0] < warmup_steps:
    raise ValueError(f'the first step boundary ({boundaries[0]} steps) falls inside the '
                     f'warmup of {warmup_steps} steps')
  edges = np.asarray(boundaries, np.float64)  # Cast to t's float type where used.

  def decay(t):
    passed = jnp.sum(t[..., None] >= edges, axis=-1)  # Boundaries at or before t.
    return peak * jnp.power(jnp.asarray(step_factor, t.dtype), passed.astype(t.dtype))

  return _warmup_then(decay, init=init, peak=peak, warmup_steps=warmup_steps,
                      warmup_power=warmup_power)


class ScheduleSteps(Protocol):
  """Where a schedule's pieces meet, as the run's budget resolves them."""
  warmup_steps: float  # t_warmup, may be fractional.
  decay_steps: float  # T, where the decay ends.
  peak_learning_rate: float  # lr.peak after any batch-size scaling.
  steps_per_epoch: float  # MLPerf's (train/run/budget.py), for boundaries in epochs.


ScheduleBuilder = Callable[[ml_collections.ConfigDict, ScheduleSteps], Schedule]


def _piecewise_polynomial_from_config(lr: ml_collections.ConfigDict,
                                      budget: ScheduleSteps) -> Schedule:
  return piecewise_polynomial(
      init=lr.init, peak=budget.peak_learning_rate, final=lr.final,
      warmup_steps=budget.warmup_steps, warmup_power=lr.warmup_power,
      decay_power=lr.decay_power, decay_steps=budget.decay_steps)


def _cosine_from_config(lr: ml_collections.ConfigDict,
                        budget: ScheduleSteps) -> Schedule:
  return cosine(
      init=lr.init, peak=budget.peak_learning_rate, final=lr.final,
      warmup_steps=budget.warmup_steps, warmup_power=lr.warmup_power,
      decay_steps=budget.decay_steps)


def _linear_from_config(lr: ml_collections.ConfigDict,
                        budget: ScheduleSteps) -> Schedule:
  return linear(
      init=lr.init, peak=budget.peak_learning_rate, decay_factor=lr.decay_factor,
      warmup_steps=budget.warmup_steps, warmup_power=lr.warmup_power,
      decay_steps=budget.decay_steps)


def _step_from_config(lr: ml_collections.ConfigDict,
                      budget: ScheduleSteps) -> Schedule:
  # Epochs become steps as lr.warmup_epochs do: times MLPerf's steps per epoch,
  # fractions kept.
  return step(
      init=lr.init, peak=budget.peak_learning_rate, step_factor=lr.step_factor,
      warmup_steps=budget.warmup_steps, warmup_power=lr.warmup_power,
      boundaries=step_boundaries(lr, budget))


def step_boundaries(lr: ml_collections.ConfigDict, budget: ScheduleSteps
                    ) -> tuple[float, ...]:
  """lr.step_boundaries_epochs in steps (fractional, as the warmup in epochs)."""
  return tuple(e * budget.steps_per_epoch for e in lr.step_boundaries_epochs)


_SCHEDULES: dict[str, ScheduleBuilder] = {
    'piecewise_polynomial': _piecewise_polynomial_from_config,
    'cosine': _cosine_from_config,
    'linear': _linear_from_config,
    'step': _step_from_config,
}


def schedule_names() -> list[str]:
  return sorted(_SCHEDULES)


def create_learning_rate_fn(lr: ml_collections.ConfigDict,
                            budget: ScheduleSteps) -> Schedule:
  """Builds the schedule named by `lr.schedule` (the config's `lr` section).

  Its steps (warmup, decay end) and its peak come from `budget`: the run
  resolves them from the batch size and the dataset size (train/run/budget.py,
  `learning_rate_fn`), so that a schedule never reads the config's raw numbers
  (the boundaries of 'step' in epochs become steps with budget.steps_per_epoch).
  """
  check_choice('lr.schedule', lr.schedule, schedule_names(), show=str)
  return _SCHEDULES[lr.schedule](lr, budget)
