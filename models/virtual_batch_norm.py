"""Virtual (ghost) batch norm: BatchNorm over fixed-size groups of a batch.

Large-batch training keeps the batch statistics of a small batch (MLPerf ResNet
uses 64 examples per group whatever the global batch): the noise of small-batch
statistics regularises, and the statistics no longer depend on how many devices
share the batch. Each group of `virtual_batch_size` consecutive examples is
normalised exactly as flax.linen.BatchNorm would normalise it as a batch of its
own; the moving averages follow the mean over groups of the group statistics.

Groups are consecutive along axis 0, so a batch sharded along axis 0 keeps every
group on one device as long as the per-device batch is a multiple of
`virtual_batch_size`: the normalisation needs no communication between devices,
and there is deliberately no `axis_name`. Only the update of the moving averages
(a mean over groups of a (C,) vector per group) reduces across devices, which
XLA inserts by itself under `jax.jit` with sharded inputs. (A per-device batch
that is not a multiple gives the same numbers, but XLA then all-reduces partial
group sums between the devices that share a group in every BN layer: small
messages, but a synchronisation point per layer, forward and backward.)

Variables are named and shaped as flax.linen.BatchNorm's (params `scale`,
`bias`; batch_stats `mean`, `var`; all float32 of shape (C,)) so checkpoints,
optimizer masks and weight-decay rules treat the two alike.
"""

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

Initializer = Callable[..., jax.Array]
# Statistics, moving averages and the normalisation itself run in float32 even
# for bfloat16 activations: a bfloat16 mean of ~10^5 values would be noise.
_STATS_DTYPE = jnp.float32


def split_into_groups(x: jax.Array, virtual_batch_size: int) -> jax.Array:
  """Reshapes (N, ...) to (N // virtual_batch_size, virtual_batch_size, ...)."""
  batch_size = x.shape[0]
  if virtual_batch_size <= 0 or batch_size % virtual_batch_size:
    raise ValueError(
        f'batch size {batch_size} does not split into whole groups of the '
        f'virtual batch size {virtual_batch_size}; the batch size must be a '
        'positive multiple of the virtual batch size')
  return x.reshape((batch_size // virtual_batch_size, virtual_batch_size)
                   + x.shape[1:])


def group_moments(groups: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Mean and biased variance of each group over all but the first, last axes.

  Uses E[x^2] - E[x]^2 clipped at 0, as flax's BatchNorm does by default
  (`use_fast_variance`): both reductions fuse into one pass over the
  activations, and in float32 the cancellation is harmless unless |mean| is
  orders of magnitude above the standard deviation, which convolution outputs
  are not. Results keep their reduced axes (size 1) so they broadcast against
  `groups`.
  """
  axes = tuple(range(1, groups.ndim - 1))
  mean = jnp.mean(groups, axes, keepdims=True)
  mean_of_square = jnp.mean(jnp.square(groups), axes, keepdims=True)
  var = jnp.maximum(0.0, mean_of_square - jnp.square(mean))
  return mean, var


class VirtualBatchNorm(nn.Module):
  """BatchNorm whose training statistics come from groups of the batch.

  Attributes:
    virtual_batch_size: examples per group (consecutive along axis 0).
    momentum: rho of moving = rho * moving + (1 - rho) * batch_stat (flax's
      convention: the weight of the old value).
    epsilon: added to the variance before the inverse square root.
    dtype: dtype of the output; None gives the input's dtype promoted with
      float32, as flax's BatchNorm does with float32 parameters.
    scale_init: initializer of the (C,) float32 `scale`.
    bias_init: initializer of the (C,) float32 `bias`.
    use_running_average: normalise with the moving averages (evaluation) rather
      than the group statistics; may be given here or to `__call__`.
  """
  virtual_batch_size: int
  momentum: float = 0.9
  epsilon: float = 1e-5
  dtype: Any = None
  scale_init: Initializer = nn.initializers.ones
  bias_init: Initializer = nn.initializers.zeros
  use_running_average: bool | None = None

  @nn.compact
  def __call__(self, x: jax.Array,
               use_running_average: bool | None = None) -> jax.Array:
    use_running_average = nn.merge_param(
        'use_running_average', self.use_running_average, use_running_average)
    features = x.shape[-1]
    moving_mean = self.variable('batch_stats', 'mean', jnp.zeros, (features,),
                                _STATS_DTYPE)
    moving_var = self.variable('batch_stats', 'var', jnp.ones, (features,),
                               _STATS_DTYPE)
    scale = self.param('scale', self.scale_init, (features,), jnp.float32)
    bias = self.param('bias', self.bias_init, (features,), jnp.float32)
    out_dtype = (jnp.promote_types(x.dtype, jnp.float32) if self.dtype is None
                 else self.dtype)
    x32 = x.astype(_STATS_DTYPE)

    if use_running_average:
      y = self._normalize(x32, moving_mean.value, moving_var.value, scale, bias)
      return y.astype(out_dtype)

    groups = split_into_groups(x32, self._group_size(x.shape[0]))
    mean, var = group_moments(groups)
    y = self._normalize(groups, mean, var, scale, bias).reshape(x.shape)
    if not self.is_initializing():
      # Equal-sized groups: the mean of the group means is the batch mean, and
      # the mean of the group variances is the within-group variance that the
      # groups were actually normalised with.
      rho = self.momentum
      moving_mean.value = (rho * moving_mean.value
                           + (1 - rho) * mean.reshape(-1, features).mean(0))
      moving_var.value = (rho * moving_var.value
                          + (1 - rho) * var.reshape(-1, features).mean(0))
    return y.astype(out_dtype)

  def _group_size(self, batch_size: int) -> int:
    # `init` is often traced with a dummy batch of one example; like flax's
    # BatchNorm (which skips the cross-device reduction during init) we accept
    # any batch there, since the values computed during init are thrown away and
    # the moving averages are left alone.
    if self.is_initializing() and batch_size % self.virtual_batch_size:
      return batch_size
    return self.virtual_batch_size

  def _normalize(self, x: jax.Array, mean: jax.Array, var: jax.Array,
                 scale: jax.Array, bias: jax.Array) -> jax.Array:
    # The order of operations of flax's BatchNorm: (x - mean) * (rsqrt * scale).
    return (x - mean) * (jax.lax.rsqrt(var + self.epsilon) * scale) + bias
