"""The tensor norms a layer-wise trust ratio can be taken in (LAMB paper, App. F).

The papers' trust ratios use the L2 norm of each parameter tensor; the LAMB
paper's Appendix F tries L1 and L-infinity too, and finds no difference in
ResNet-50's accuracy. Each norm treats a tensor as one flat vector.
"""

import jax.numpy as jnp

from choices import check_choice

L1 = 'l1'
L2 = 'l2'
LINF = 'linf'
TRUST_RATIO_NORMS = (L1, L2, LINF)


def check_norm(norm: str) -> None:
  """Raises 'unknown trust ratio norm ...; valid: l1, l2, linf' for another name."""
  check_choice('trust ratio norm', norm, TRUST_RATIO_NORMS, show=str)


def tensor_norm(x: jnp.ndarray, norm: str) -> jnp.ndarray:
  """||x|| in `norm`: sum of |x_i| ('l1'), sqrt(sum of x_i^2) ('l2'), max |x_i| ('linf')."""
  check_norm(norm)
  if norm == L2:
    return jnp.linalg.norm(x)  # What the trust ratios always used: bit-identical.
  if norm == L1:
    return jnp.sum(jnp.abs(x))
  return jnp.max(jnp.abs(x))
