"""Adam's update without its bias correction (LAMB paper, Appendix E).

  m = b1 * m + (1 - b1) * g
  v = b2 * v + (1 - b2) * g^2
  u = m / (sqrt(v) + eps)
With the correction (optax.scale_by_adam) m and v are divided by 1 - b^t first;
without it the first steps are smaller, by up to 1 - b1 = 0.1 at b1 = 0.9, as if
the rate warmed up. optax has no switch for it, hence this transformation; with
the correction the harness keeps optax's own.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class UncorrectedAdamState(NamedTuple):
  mu: optax.Updates
  nu: optax.Updates


def scale_by_uncorrected_adam(b1: float, b2: float, eps: float
                              ) -> optax.GradientTransformation:
  """m / (sqrt(v) + eps) from Adam's moments, without dividing them by 1 - b^t."""

  def init_fn(params):
    return UncorrectedAdamState(mu=jax.tree.map(jnp.zeros_like, params),
                                nu=jax.tree.map(jnp.zeros_like, params))

  def update_fn(updates, state, params=None):
    del params
    mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, updates)
    nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state.nu, updates)
    new_updates = jax.tree.map(lambda m, v: m / (jnp.sqrt(v) + eps), mu, nu)
    return new_updates, UncorrectedAdamState(mu=mu, nu=nu)

  return optax.GradientTransformation(init_fn, update_fn)
