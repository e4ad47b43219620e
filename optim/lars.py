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
reference applies to biases and BatchNorm parameters. The LAMB paper's Appendix F
takes the norms in L1 or L-infinity too (`norm`); all three norms of the ratio
are then taken in it.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from optim import norms
from optim import schedules
from optim import trust_ratios


class MlperfLarsState(NamedTuple):
  count: jnp.ndarray
  velocity: optax.Updates


def trust_ratio(param: jnp.ndarray, grad: jnp.ndarray, *, trust_coefficient: float,
                l2: float, epsilon: float, norm: str = norms.L2) -> jnp.ndarray:
  """eta * ||w|| / (||g|| + lambda * ||w|| + eps) in `norm`, or 1 where a norm is zero."""
  param_norm = norms.tensor_norm(param, norm)
  grad_norm = norms.tensor_norm(grad, norm)
  ratio = trust_coefficient * param_norm / (grad_norm + l2 * param_norm + epsilon)
  return jnp.where((param_norm > 0) & (grad_norm > 0), ratio, 1.0)


def mlperf_lars(learning_rate: schedules.Schedule, *, momentum: float, l2: float,
                trust_coefficient: float, epsilon: float,
                use_trust_ratio: bool = True, norm: str = norms.L2,
                record_trust_ratios: bool = False) -> optax.GradientTransformation:
  """Returns the MLPerf LARS update as a complete optax transformation.

  The returned updates are to be added to the parameters (`optax.apply_updates`):
  they already include the learning rate and the sign. With
  `record_trust_ratios` (and a trust ratio) the state also holds each tensor's
  ratio of the last update (optim/trust_ratios.py).
  """
  norms.check_norm(norm)
  if record_trust_ratios and not use_trust_ratio:
    raise ValueError('record_trust_ratios needs use_trust_ratio: there is no ratio')

  def init_fn(params):
    state = MlperfLarsState(
        count=jnp.zeros([], jnp.int32),
        velocity=jax.tree.map(jnp.zeros_like, params))
    return trust_ratios.init(state, params) if record_trust_ratios else state

  def update_fn(updates, state, params):
    if params is None:
      raise ValueError('mlperf_lars needs the parameters: call update(g, s, params)')
    lars_state = trust_ratios.inner(state) if record_trust_ratios else state
    lr = learning_rate(lars_state.count)

    def scaled_update(grad, param):
      trust = 1.0
      if use_trust_ratio:
        trust = trust_ratio(param, grad, trust_coefficient=trust_coefficient,
                            l2=l2, epsilon=epsilon, norm=norm)
      return lr * trust * (grad + l2 * param), trust

    scaled, ratios = trust_ratios.unzip(
        jax.tree.map(scaled_update, updates, params), params)
    velocity = jax.tree.map(lambda v, u: momentum * v + u, lars_state.velocity, scaled)
    new_updates = jax.tree.map(jnp.negative, velocity)
    new_state = MlperfLarsState(count=lars_state.count + 1, velocity=velocity)
    if record_trust_ratios:
      new_state = trust_ratios.Recorded(inner=new_state, trust_ratios=ratios)
    return new_updates, new_state

  return optax.GradientTransformation(init_fn, update_fn)
