"""LARS in the form of the MLPerf ResNet-50 reference (You et al.; MLPerf v0.7).

For each parameter tensor w with gradient g:
  trust = eta * ||w|| / (||g|| + lambda * ||w|| + eps)   (1 if ||w|| or ||g|| is 0)
  u     = lr * trust * (g + lambda * w)
  v     = mu * v + u
  w     = w - v
The learning rate sits inside the momentum accumulator, so this is not
`optax.lars` (whose trust ratio divides by ||g + lambda * w||) nor momentum
followed by a learning-rate scale (which differ whenever the rate changes).
With `use_trust_ratio=False` and `l2=0` it is the heavy-ball momentum the MLPerf
reference applies to biases and BatchNorm parameters.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optim import schedules


class MlperfLarsState(NamedTuple):
  count: jnp.ndarray
  velocity: optax.Updates


def trust_ratio(param: jnp.ndarray, grad: jnp.ndarray, *, trust_coefficient: float,
                l2: float, epsilon: float) -> jnp.ndarray:
  """eta * ||w|| / (||g|| + lambda * ||w|| + eps), or 1 where a norm is zero."""
  param_norm = jnp.linalg.norm(param)
  grad_norm = jnp.linalg.norm(grad)
  ratio = trust_coefficient * param_norm / (grad_norm + l2 * param_norm + epsilon)
  return jnp.where((param_norm > 0) & (grad_norm > 0), ratio, 1.0)


def mlperf_lars(learning_rate: schedules.Schedule, *, momentum: float, l2: float,
                trust_coefficient: float, epsilon: float,
                use_trust_ratio: bool = True) -> optax.GradientTransformation:
  """Returns the MLPerf LARS update as a complete optax transformation.

  The returned updates are to be added to the parameters (`optax.apply_updates`):
  they already include the learning rate and the sign.
  """

  def init_fn(params):
    return MlperfLarsState(
        count=jnp.zeros([], jnp.int32),
        velocity=jax.tree.map(jnp.zeros_like, params))

  def update_fn(updates, state, params):
    if params is None:
      raise ValueError('mlperf_lars needs the parameters: call update(g, s, params)')
    lr = learning_rate(state.count)

    def scaled_update(grad, param):
      trust = 1.0
      if use_trust_ratio:
        trust = trust_ratio(param, grad, trust_coefficient=trust_coefficient,
                            l2=l2, epsilon=epsilon)
      return lr * trust * (grad + l2 * param)

    scaled = jax.tree.map(scaled_update, updates, params)
    velocity = jax.tree.map(lambda v, u: momentum * v + u, state.velocity, scaled)
    new_updates = jax.tree.map(jnp.negative, velocity)
    return new_updates, MlperfLarsState(count=state.count + 1, velocity=velocity)

  return optax.GradientTransformation(init_fn, update_fn)
