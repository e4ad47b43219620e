"""Optimizers over the model's params, split into weights and biases/BN parameters.

Weights are the kernels (rank >= 2); everything of rank <= 1 (biases, BatchNorm
scales and offsets) forms the second group. `optimizer.name` drives the weights,
`optimizer.bn_bias_name` the rest ('same' reuses `name`). L2 (`optimizer.l2`) is
added to the gradient of the weights only, unless `optimizer.l2_on_bn_bias`:
the MLPerf pipeline's exclusion of biases and BN parameters matters (Reality Check,
section 2.1.3).
"""

from typing import Callable

import jax
import ml_collections
import optax

from optim import lars
from optim import schedules

WEIGHTS = 'weights'
BN_BIAS = 'bn_bias'
SAME = 'same'

OptimizerBuilder = Callable[[ml_collections.ConfigDict, schedules.Schedule, float],
                            optax.GradientTransformation]


def _lars(opt: ml_collections.ConfigDict, lr: schedules.Schedule,
          l2: float) -> optax.GradientTransformation:
  return lars.mlperf_lars(lr, momentum=opt.momentum, l2=l2,
                          trust_coefficient=opt.trust_coefficient,
                          epsilon=opt.lars_epsilon)


def _mlperf_momentum(opt: ml_collections.ConfigDict, lr: schedules.Schedule,
                     l2: float) -> optax.GradientTransformation:
  """Heavy ball with the rate inside the accumulator: v = mu*v + lr*g, w -= v."""
  return lars.mlperf_lars(lr, momentum=opt.momentum, l2=l2,
                          trust_coefficient=opt.trust_coefficient,
                          epsilon=opt.lars_epsilon, use_trust_ratio=False)


def _sgd_momentum(nesterov: bool) -> OptimizerBuilder:
  """v = mu*v + g; w -= lr*v (heavy ball) or w -= lr*(mu*v + g) (Nesterov)."""

  def build(opt: ml_collections.ConfigDict, lr: schedules.Schedule,
            l2: float) -> optax.GradientTransformation:
    return optax.chain(
        optax.add_decayed_weights(l2),
        optax.trace(decay=opt.momentum, nesterov=nesterov),
        optax.scale_by_learning_rate(lr))

  return build


_OPTIMIZERS: dict[str, OptimizerBuilder] = {
    'lars': _lars,
    'mlperf_momentum': _mlperf_momentum,
    'momentum': _sgd_momentum(nesterov=False),
    'nesterov': _sgd_momentum(nesterov=True),
}


def optimizer_names() -> list[str]:
  return sorted(_OPTIMIZERS)


def _get_builder(name: str, key: str) -> OptimizerBuilder:
  if name not in _OPTIMIZERS:
    raise ValueError(f'unknown {key} {name!r}; valid: {", ".join(optimizer_names())}')
  return _OPTIMIZERS[name]


def param_group_labels(params):
  """'weights' for kernels (rank >= 2), 'bn_bias' for biases and BN parameters."""
  return jax.tree.map(lambda p: WEIGHTS if p.ndim > 1 else BN_BIAS, params)


def create_optimizer(config: ml_collections.ConfigDict,
                     learning_rate_fn: schedules.Schedule | None = None,
                     ) -> optax.GradientTransformation:
  """The optimizer of `config`; its updates include the learning rate and sign."""
  opt = config.optimizer
  if learning_rate_fn is None:
    learning_rate_fn = schedules.create_learning_rate_fn(config)
  bn_bias_name = opt.name if opt.bn_bias_name == SAME else opt.bn_bias_name
  weights_tx = _get_builder(opt.name, 'optimizer.name')(opt, learning_rate_fn, opt.l2)
  bn_bias_l2 = opt.l2 if opt.l2_on_bn_bias else 0.0
  bn_bias_tx = _get_builder(bn_bias_name, 'optimizer.bn_bias_name')(
      opt, learning_rate_fn, bn_bias_l2)
  return optax.multi_transform({WEIGHTS: weights_tx, BN_BIAS: bn_bias_tx},
                               param_group_labels)
