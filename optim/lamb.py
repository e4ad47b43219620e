"""LAMB and its variants: You et al., "Large Batch Optimization for Deep Learning".

LAMB (Algorithm 2). For each parameter tensor x with gradient g, at update
t = 1, 2, ...:
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
and its variants read in one place, the trust ratio can be tested and recorded
alone, and the learning rate is indexed by the same step count as the other
optimizers of the harness.

The variants change only the estimates m_hat and v_hat:
- N-LAMB (Appendix D, Algorithm 3) looks the first moment one step ahead, as
  Dozat's Nadam does: m_hat = (b1 * m + (1 - b1) * g) / (1 - b1^t), and takes
  v_hat = b2 * v / (1 - b2^t).
- NN-LAMB (Algorithm 4) looks both moments ahead: v_hat = (b2 * v + (1 - b2) *
  g^2) / (1 - b2^t) as well.
- Without bias correction (Appendix E, `bias_correction=False`) the divisions by
  1 - b^t go, in LAMB and both variants.
- The norms of the trust ratio may be L1 or L-infinity (Appendix F) instead of L2.

Algorithms 3 and 4 write the momentum parameter as a sequence b1^t (Dozat's
schedule mu_t) and its running product prod_{i<=t} b1^i. The paper runs them
with Dozat's constant b1 = 0.975, b2 = 0.999 (optimizer.b1, optimizer.b2), so
each b^t of the sequence is b itself and the product is the power b^t: the
formulas above. Dozat's own Nadam divides the look-ahead term by 1 - b1^(t+1);
Algorithm 3 divides both terms by 1 - b1^t, and so does this code.

With bias correction, eps = 0 and lambda = 0 the correction would cancel: it
scales r by one scalar per step, which the trust ratio divides out; it matters
through eps and weight decay only. Appendix E drops it as equivalent to a warmup.
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optim import norms
from optim import schedules
from optim import trust_ratios

# A moment's estimate from the moment after this update, the update's
# gradient term (g or g^2) and the moment's beta: before any bias correction.
Estimate = Callable[[jnp.ndarray, jnp.ndarray, float], jnp.ndarray]


def plain(moment: jnp.ndarray, gradient_term: jnp.ndarray, beta: float) -> jnp.ndarray:
  """Adam's (and LAMB's) estimate: the moment itself."""
  del gradient_term, beta
  return moment


def look_ahead(moment: jnp.ndarray, gradient_term: jnp.ndarray, beta: float
               ) -> jnp.ndarray:
  """Nesterov's: the moment one more step on with the same gradient term."""
  return beta * moment + (1 - beta) * gradient_term


def decayed(moment: jnp.ndarray, gradient_term: jnp.ndarray, beta: float) -> jnp.ndarray:
  """N-LAMB's second moment (Algorithm 3): beta * v, the look-ahead without g^2."""
  del gradient_term
  return beta * moment


class LambState(NamedTuple):
  count: jnp.ndarray  # Updates already applied: the schedule's step.
  mu: optax.Updates
  nu: optax.Updates


def trust_ratio(param: jnp.ndarray, direction: jnp.ndarray,
                norm: str = norms.L2) -> jnp.ndarray:
  """||x|| / ||r + lambda * x|| in `norm`, or 1 where either norm is zero."""
  param_norm = norms.tensor_norm(param, norm)
  direction_norm = norms.tensor_norm(direction, norm)
  # A zero parameter (a fresh zero-initialised kernel) would otherwise never move,
  # and a zero direction would divide 0 by 0.
  safe_norm = jnp.where(direction_norm > 0, direction_norm, 1.0)
  ratio = param_norm / safe_norm
  return jnp.where((param_norm > 0) & (direction_norm > 0), ratio, 1.0)


def lamb(learning_rate: schedules.Schedule, *, b1: float, b2: float, eps: float,
         weight_decay: float, first_estimate: Estimate = plain,
         second_estimate: Estimate = plain, bias_correction: bool = True,
         norm: str = norms.L2, record_trust_ratios: bool = False,
         ) -> optax.GradientTransformation:
  """Returns LAMB (or a variant: `n_lamb`, `nn_lamb`) as a complete optax transformation.

  The returned updates are to be added to the parameters (`optax.apply_updates`):
  they already include the learning rate and the sign. With
  `record_trust_ratios` the state also holds each tensor's trust ratio of the
  last update (optim/trust_ratios.py); without, it is a bare `LambState`.
  """
  norms.check_norm(norm)

  def init_fn(params):
    state = LambState(count=jnp.zeros([], jnp.int32),
                      mu=jax.tree.map(jnp.zeros_like, params),
                      nu=jax.tree.map(jnp.zeros_like, params))
    return trust_ratios.init(state, params) if record_trust_ratios else state

  def update_fn(updates, state, params):
    if params is None:
      raise ValueError('lamb needs the parameters: call update(g, s, params)')
    lamb_state = trust_ratios.inner(state) if record_trust_ratios else state
    lr = learning_rate(lamb_state.count)
    t = lamb_state.count + 1
    mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, lamb_state.mu, updates)
    nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, lamb_state.nu, updates)

    def step(m, v, g, x):
      m_hat = first_estimate(m, g, b1)
      v_hat = second_estimate(v, g * g, b2)
      if bias_correction:
        m_hat = m_hat / (1 - b1 ** t).astype(m.dtype)
        v_hat = v_hat / (1 - b2 ** t).astype(v.dtype)
      direction = m_hat / (jnp.sqrt(v_hat) + eps) + weight_decay * x
      ratio = trust_ratio(x, direction, norm)
      return -lr * ratio * direction, ratio

    steps = jax.tree.map(step, mu, nu, updates, params)
    new_updates, ratios = trust_ratios.unzip(steps, params)
    new_state = LambState(count=t, mu=mu, nu=nu)
    if record_trust_ratios:
      new_state = trust_ratios.Recorded(inner=new_state, trust_ratios=ratios)
    return new_updates, new_state

  return optax.GradientTransformation(init_fn, update_fn)


def n_lamb(learning_rate: schedules.Schedule, **kwargs) -> optax.GradientTransformation:
  """N-LAMB (Appendix D, Algorithm 3): Nesterov's look-ahead in the first moment."""
  return lamb(learning_rate, first_estimate=look_ahead, second_estimate=decayed, **kwargs)


def nn_lamb(learning_rate: schedules.Schedule, **kwargs) -> optax.GradientTransformation:
  """NN-LAMB (Appendix D, Algorithm 4): Nesterov's look-ahead in both moments."""
  return lamb(learning_rate, first_estimate=look_ahead, second_estimate=look_ahead,
              **kwargs)
