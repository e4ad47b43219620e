"""LAMB: You et al., "Large Batch Optimization for Deep Learning", Algorithm 2.

For each parameter tensor x with gradient g, at update t = 1, 2, ...:
  m     = b1 * m + (1 - b1) * g
  v     = b2 * v + (1 - b2) * g^2
  m_hat = m / (1 - b1^t)
  v_hat = v / (1 - b2^t)
  r     = m_hat / (sqrt(v_hat) + eps)
  d     = r + lambda * x
  x     = x - lr * phi(||x||) / ||d|| * d      (phi = identity; ratio 1 if a norm is 0)
lambda is decoupled weight decay: it never enters m or v, and it sits inside the
trust ratio, so its step is scaled by both the learning rate and the ratio.

This is the formula of `optax.lamb` (scale_by_adam, add_decayed_weights,
scale_by_trust_ratio, scale_by_learning_rate); tests/test_optim.py measures the
two to agree to float64 rounding. It is written out here so that Algorithm 2
reads in one place, the trust ratio can be tested alone, and the learning rate
is indexed by the same step count as the other optimizers of the harness.

We keep the bias correction that Algorithm 2 has, although the paper's Appendix
E drops it as equivalent to a warmup. With eps = 0 and lambda = 0 it would
cancel anyway: it scales r by one scalar per step, which the trust ratio divides
out; it matters through eps and weight decay only.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optim import schedules


class LambState(NamedTuple):
  count: jnp.ndarray  # Updates already applied: the schedule's step.
  mu: optax.Updates
  nu: optax.Updates


def trust_ratio(param: jnp.ndarray, direction: jnp.ndarray) -> jnp.ndarray:
  """||x|| / ||r + lambda * x||, or 1 where either norm is zero."""
  param_norm = jnp.linalg.norm(param)
  direction_norm = jnp.linalg.norm(direction)
  # A zero parameter (a fresh zero-initialised kernel) would otherwise never move,
  # and a zero direction would divide 0 by 0.
  safe_norm = jnp.where(direction_norm > 0, direction_norm, 1.0)
  ratio = param_norm / safe_norm
  return jnp.where((param_norm > 0) & (direction_norm > 0), ratio, 1.0)


def lamb(learning_rate: schedules.Schedule, *, b1: float, b2: float, eps: float,
         weight_decay: float) -> optax.GradientTransformation:
  """Returns LAMB as a complete optax transformation.

  The returned updates are to be added to the parameters (`optax.apply_updates`):
  they already include the learning rate and the sign.
  """

  def init_fn(params):
    return LambState(count=jnp.zeros([], jnp.int32),
                     mu=jax.tree.map(jnp.zeros_like, params),
                     nu=jax.tree.map(jnp.zeros_like, params))

  def update_fn(updates, state, params):
    if params is None:
      raise ValueError('lamb needs the parameters: call update(g, s, params)')
    lr = learning_rate(state.count)
    t = state.count + 1
    mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, updates)
    nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state.nu, updates)

    def step(m, v, x):
      m_hat = m / (1 - b1 ** t).astype(m.dtype)
      v_hat = v / (1 - b2 ** t).astype(v.dtype)
      direction = m_hat / (jnp.sqrt(v_hat) + eps) + weight_decay * x
      return -lr * trust_ratio(x, direction) * direction

    new_updates = jax.tree.map(step, mu, nu, params)
    return new_updates, LambState(count=t, mu=mu, nu=nu)

  return optax.GradientTransformation(init_fn, update_fn)
