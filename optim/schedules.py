"""Learning-rate schedules, as functions from the step count to a learning rate.

The step count t is the number of updates already applied: the update that turns
step t into step t + 1 uses eta(t). With eta_init = 0 the first update is
therefore a no-op, as in the MLPerf reference.
"""

from typing import Callable

import jax.numpy as jnp
import ml_collections

Schedule = Callable[[jnp.ndarray | int], jnp.ndarray]


def piecewise_polynomial(*, init: float, peak: float, final: float,
                         warmup_steps: float, warmup_power: float,
                         decay_power: float, decay_steps: float) -> Schedule:
  """Polynomial warmup to `peak`, then polynomial decay to `final` at `decay_steps`.

  Reality Check paper, section 2.1.4:
    eta_t = init + (peak - init) * (t / t_warmup)^p_warmup          t <= t_warmup
    eta_t = final + (peak - final) * ((T - t) / (T - t_warmup))^p_decay   t > t_warmup
  with T = `decay_steps`; after T the rate stays at `final`. `warmup_steps` may
  be fractional (the MLPerf recipe warms up for 706.5 steps) and is kept exact.
  """
  if not 0 <= warmup_steps < decay_steps:
    raise ValueError(
        f'warmup_steps={warmup_steps} must be in [0, decay_steps={decay_steps})')

  def schedule(step):
    # The default float type: float32, or float64 under jax.enable_x64.
    t = jnp.asarray(step).astype(jnp.result_type(float))
    # Guard the division for warmup_steps == 0: that branch is then never taken.
    warmup_fraction = t / max(warmup_steps, 1e-12)
    warmup = init + (peak - init) * jnp.power(warmup_fraction, warmup_power)
    remaining = jnp.clip((decay_steps - t) / (decay_steps - warmup_steps), 0.0, 1.0)
    decay = final + (peak - final) * jnp.power(remaining, decay_power)
    return jnp.where(t <= warmup_steps, warmup, decay)

  return schedule


def _piecewise_polynomial_from_config(config: ml_collections.ConfigDict) -> Schedule:
  lr = config.lr
  return piecewise_polynomial(
      init=lr.init, peak=lr.peak, final=lr.final,
      warmup_steps=lr.warmup_steps, warmup_power=lr.warmup_power,
      decay_power=lr.decay_power, decay_steps=config.num_train_steps)


_SCHEDULES: dict[str, Callable[[ml_collections.ConfigDict], Schedule]] = {
    'piecewise_polynomial': _piecewise_polynomial_from_config,
}


def schedule_names() -> list[str]:
  return sorted(_SCHEDULES)


def create_learning_rate_fn(config: ml_collections.ConfigDict) -> Schedule:
  """Builds the schedule named by `config.lr.schedule`."""
  if config.lr.schedule not in _SCHEDULES:
    raise ValueError(f'unknown lr.schedule {config.lr.schedule!r}; '
                     f'valid: {", ".join(schedule_names())}')
  return _SCHEDULES[config.lr.schedule](config)
