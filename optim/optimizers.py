"""Optimizers over the model's params, split into weights and biases/BN parameters.

Weights are the kernels (rank >= 2); everything of rank <= 1 (biases, BatchNorm
scales and offsets) forms the second group. `optimizer.name` drives the weights,
`optimizer.bn_bias_name` the rest ('same' reuses `name`); every name is valid
for either group.

Regularisation comes in two forms, and each optimizer reads exactly one:
  L2 (`optimizer.l2`), added to the gradient: lars, mlperf_momentum, momentum,
    nesterov, adam, adagrad, schedule_free_sgd;
  decoupled weight decay (`optimizer.weight_decay`): adamw, lamb, n_lamb, nn_lamb,
    nadamw, lion, schedule_free_adamw, muon.
Both apply to the weights only, unless `optimizer.l2_on_bn_bias`: that one flag
covers L2 and weight decay alike. The MLPerf pipeline's exclusion of biases and
BN parameters matters (Reality Check, section 2.1.3), and Nado et al. set
lambda = 0 on them whenever LARS or LAMB shares the model with another optimizer
(Appendix D.3). Their footnote 21 pairs L2 with LARS and Nesterov and weight
decay with LAMB and Adam, so their "Adam" is `adamw` here.

  lars             MLPerf LARS (optim/lars.py): trust ratio, lr inside momentum.
  mlperf_momentum  the same without the trust ratio: v = mu*v + lr*g; w -= v.
  momentum         heavy ball: v = mu*v + g; w -= lr*v.
  nesterov         v = mu*v + g; w -= lr*(mu*v + g).
  adam             Kingma & Ba, bias-corrected, with L2 in the gradient.
  adamw            Adam with decoupled weight decay, scaled by the rate.
  adagrad          Duchi et al., as optax.adagrad: w -= lr * g / sqrt(sum g^2 + eps).
  lamb             LAMB, Algorithm 2 (optim/lamb.py).
  n_lamb, nn_lamb  LAMB with Nesterov's look-ahead in the first moment, or in
                   both (the LAMB paper's Appendix D; optim/lamb.py).

Today's optimizers, each optax's own call with the config's values:
  nadamw               optax.nadamw: AdamW with Nesterov's look-ahead (Dozat).
  lion                 optax.lion (Chen et al., 2023): the sign of an
                       interpolated momentum; b1, b2 are its two betas.
  schedule_free_sgd    optax.contrib.schedule_free_sgd; `momentum` is its b1.
  schedule_free_adamw  optax.contrib.schedule_free_adamw; b1 interpolates.
  muon                 optax.contrib.muon on the conv kernels as matrices, its
                       AdamW (Nesterov's form) on the other weights; `momentum`
                       is its beta (optim/muon.py).
A Schedule-Free group is evaluated at its averaged point
(optim/schedule_free.py). The schedule is the config's, whatever it is; the
Schedule-Free configs give theirs a warmup and no decay, as the method intends.

`optimizer.bias_correction` switches Adam's division of the moments by 1 - b^t
in adam, adamw and the LAMB family; `optimizer.trust_ratio_norm` is the norm of
the trust ratio of lars and the LAMB family. `record_trust_ratios` makes those
keep each tensor's ratio of the last update in their state, for the run to log
(optim/trust_ratios.py).
"""

from typing import Callable, NamedTuple

import jax
import ml_collections
import optax
from optax import contrib

from choices import check_choice
from optim import adam
from optim import lamb
from optim import lars
from optim import muon
from optim import schedules

WEIGHTS = 'weights'
BN_BIAS = 'bn_bias'
SAME = 'same'


class Regularization(NamedTuple):
  """The strengths that apply to one parameter group (0 where excluded)."""
  l2: float
  weight_decay: float


# (optimizer config, schedule, the group's regularisation, whether to record the
# trust ratios) -> the group's transformation. Only the optimizers of
# TRUST_RATIO_OPTIMIZERS are ever asked to record.
OptimizerBuilder = Callable[
    [ml_collections.ConfigDict, schedules.Schedule, Regularization, bool],
    optax.GradientTransformation]


def _lars(opt: ml_collections.ConfigDict, lr: schedules.Schedule,
          reg: Regularization, record: bool) -> optax.GradientTransformation:
  return lars.mlperf_lars(lr, momentum=opt.momentum, l2=reg.l2,
                          trust_coefficient=opt.trust_coefficient,
                          epsilon=opt.lars_epsilon, norm=opt.trust_ratio_norm,
                          record_trust_ratios=record)


def _mlperf_momentum(opt: ml_collections.ConfigDict, lr: schedules.Schedule,
                     reg: Regularization, record: bool) -> optax.GradientTransformation:
  """Heavy ball with the rate inside the accumulator: v = mu*v + lr*g, w -= v."""
  del record  # No trust ratio.
  return lars.mlperf_lars(lr, momentum=opt.momentum, l2=reg.l2,
                          trust_coefficient=opt.trust_coefficient,
                          epsilon=opt.lars_epsilon, use_trust_ratio=False)


def _sgd_momentum(nesterov: bool) -> OptimizerBuilder:
  """v = mu*v + g; w -= lr*v (heavy ball) or w -= lr*(mu*v + g) (Nesterov)."""

  def build(opt: ml_collections.ConfigDict, lr: schedules.Schedule,
            reg: Regularization, record: bool) -> optax.GradientTransformation:
    del record  # No trust ratio.
    return optax.chain(
        optax.add_decayed_weights(reg.l2),
        optax.trace(decay=opt.momentum, nesterov=nesterov),
        optax.scale_by_learning_rate(lr))

  return build


def _adam(opt: ml_collections.ConfigDict, lr: schedules.Schedule,
          reg: Regularization, record: bool) -> optax.GradientTransformation:
  """w -= lr * m_hat / (sqrt(v_hat) + eps), with g + l2*w as the gradient."""
  del record  # No trust ratio.
  # L2 goes in before the moments, so Adam's per-coordinate scaling divides it
  # too: this is what distinguishes it from adamw (Loshchilov & Hutter).
  if not opt.bias_correction:
    return optax.chain(
        optax.add_decayed_weights(reg.l2),
        adam.scale_by_uncorrected_adam(b1=opt.b1, b2=opt.b2, eps=opt.eps),
        optax.scale_by_learning_rate(lr))
  return optax.chain(
      optax.add_decayed_weights(reg.l2),
      optax.adam(lr, b1=opt.b1, b2=opt.b2, eps=opt.eps))


def _adamw(opt: ml_collections.ConfigDict, lr: schedules.Schedule,
           reg: Regularization, record: bool) -> optax.GradientTransformation:
  """w -= lr * (m_hat / (sqrt(v_hat) + eps) + wd*w), with g + l2*w as the gradient.

  L2 (0 unless set) goes into the gradient before the moments, as adam's does;
  the LAMB paper's Appendix H.1 tunes AdamW with both ("default L2
  regularization" 0.01 beside the weight decay, its Tables 13-16 and 21-22).
  """
  del record  # No trust ratio.
  l2 = [optax.add_decayed_weights(reg.l2)] if reg.l2 else []
  # optax's convention: the decay is multiplied by the scheduled learning rate,
  # not by its ratio to the peak (Loshchilov & Hutter's eta_t schedule factor),
  # so `weight_decay` here is per unit of learning rate.
  if not opt.bias_correction:
    return optax.chain(
        *l2,
        adam.scale_by_uncorrected_adam(b1=opt.b1, b2=opt.b2, eps=opt.eps),
        optax.add_decayed_weights(reg.weight_decay),
        optax.scale_by_learning_rate(lr))
  return optax.chain(*l2, optax.adamw(lr, b1=opt.b1, b2=opt.b2, eps=opt.eps,
                                      weight_decay=reg.weight_decay))


def _adagrad(opt: ml_collections.ConfigDict, lr: schedules.Schedule,
             reg: Regularization, record: bool) -> optax.GradientTransformation:
  """s += g^2; w -= lr * g / sqrt(s + eps), s starting at initial_accumulator_value."""
  del record  # No trust ratio.
  # optax.adagrad as it is, with L2 added to the gradient before the sum, as adam
  # has it. Its eps sits inside the square root (optax's), and is optimizer.eps.
  return optax.chain(
      optax.add_decayed_weights(reg.l2),
      optax.adagrad(lr, initial_accumulator_value=opt.initial_accumulator_value,
                    eps=opt.eps))


def _nadamw(opt: ml_collections.ConfigDict, lr: schedules.Schedule,
            reg: Regularization, record: bool) -> optax.GradientTransformation:
  """AdamW whose first moment looks one step ahead (optax.nadamw)."""
  del record  # No trust ratio.
  return optax.nadamw(lr, b1=opt.b1, b2=opt.b2, eps=opt.eps,
                      weight_decay=reg.weight_decay)


def _lion(opt: ml_collections.ConfigDict, lr: schedules.Schedule,
          reg: Regularization, record: bool) -> optax.GradientTransformation:
  """w -= lr * (sign(b1*m + (1 - b1)*g) + wd*w); m = b2*m + (1 - b2)*g (optax.lion)."""
  del record  # No trust ratio.
  return optax.lion(lr, b1=opt.b1, b2=opt.b2, weight_decay=reg.weight_decay)


def _schedule_free_sgd(opt: ml_collections.ConfigDict, lr: schedules.Schedule,
                       reg: Regularization, record: bool) -> optax.GradientTransformation:
  """Schedule-Free SGD; L2 joins the gradient at y, as the authors' SGD has it."""
  del record  # No trust ratio.
  return contrib.schedule_free_sgd(lr, b1=opt.momentum, weight_decay=reg.l2)


def _schedule_free_adamw(opt: ml_collections.ConfigDict, lr: schedules.Schedule,
                         reg: Regularization, record: bool
                         ) -> optax.GradientTransformation:
  """Schedule-Free AdamW: RMS-scaled steps of z, decoupled weight decay."""
  del record  # No trust ratio.
  return contrib.schedule_free_adamw(lr, b1=opt.b1, b2=opt.b2, eps=opt.eps,
                                     weight_decay=reg.weight_decay)


def _muon(opt: ml_collections.ConfigDict, lr: schedules.Schedule,
          reg: Regularization, record: bool) -> optax.GradientTransformation:
  """Muon on the conv kernels, its AdamW on the group's other parameters."""
  del record  # No trust ratio.
  return contrib.muon(
      lr, beta=opt.momentum, eps=opt.eps, weight_decay=reg.weight_decay,
      adam_b1=opt.b1, adam_b2=opt.b2, adam_weight_decay=reg.weight_decay,
      muon_weight_dimension_numbers=muon.conv_kernel_dimension_numbers,
      consistent_rms=opt.muon_consistent_rms)


def _lamb_family(variant: Callable[..., optax.GradientTransformation]
                 ) -> OptimizerBuilder:
  """lamb, n_lamb or nn_lamb (optim/lamb.py) with the config's values."""

  def build(opt: ml_collections.ConfigDict, lr: schedules.Schedule,
            reg: Regularization, record: bool) -> optax.GradientTransformation:
    return variant(lr, b1=opt.b1, b2=opt.b2, eps=opt.eps,
                   weight_decay=reg.weight_decay, bias_correction=opt.bias_correction,
                   norm=opt.trust_ratio_norm, record_trust_ratios=record)

  return build


_OPTIMIZERS: dict[str, OptimizerBuilder] = {
    'adagrad': _adagrad,
    'adam': _adam,
    'adamw': _adamw,
    'lamb': _lamb_family(lamb.lamb),
    'lars': _lars,
    'lion': _lion,
    'mlperf_momentum': _mlperf_momentum,
    'momentum': _sgd_momentum(nesterov=False),
    'muon': _muon,
    'n_lamb': _lamb_family(lamb.n_lamb),
    'nadamw': _nadamw,
    'nesterov': _sgd_momentum(nesterov=True),
    'nn_lamb': _lamb_family(lamb.nn_lamb),
    'schedule_free_adamw': _schedule_free_adamw,
    'schedule_free_sgd': _schedule_free_sgd,
}

# The optimizers with a layer-wise trust ratio: `optimizer.trust_ratio_norm`
# applies to them, and `trust_ratio_log_steps` logs theirs.
TRUST_RATIO_OPTIMIZERS = frozenset({'lars', 'lamb', 'n_lamb', 'nn_lamb'})
# The optimizers that read `optimizer.bias_correction`.
BIAS_CORRECTED_OPTIMIZERS = frozenset({'adam', 'adamw', 'lamb', 'n_lamb', 'nn_lamb'})
# Schedule-Free: evaluated at the average x (optim/schedule_free.py); the
# interpolation b1 (`momentum` for SGD, `b1` for AdamW) must be above 0.
SCHEDULE_FREE_INTERPOLATION = {'schedule_free_sgd': 'momentum',
                               'schedule_free_adamw': 'b1'}
# Muon needs matrices: the weights group only (optimizer.name).
WEIGHTS_ONLY_OPTIMIZERS = frozenset({'muon'})


def optimizer_names() -> list[str]:
  return sorted(_OPTIMIZERS)


def _get_builder(name: str, key: str) -> OptimizerBuilder:
  check_choice(key, name, optimizer_names(), show=str)
  return _OPTIMIZERS[name]


# The regularisation keys each optimizer reads, the first its own (the one the
# MLPerf log names): decoupled weight decay (`optimizer.weight_decay`) for adamw,
# the LAMB family, nadamw, lion, schedule_free_adamw and muon, adamw also L2 (`optimizer.l2`); every other one L2.
_REGULARIZATION_KEYS = {
    'adamw': ('weight_decay', 'l2'), 'lamb': ('weight_decay',), 'n_lamb': ('weight_decay',),
    'nn_lamb': ('weight_decay',), 'nadamw': ('weight_decay',), 'lion': ('weight_decay',),
    'schedule_free_adamw': ('weight_decay',), 'muon': ('weight_decay',)}


def regularization_keys(name: str) -> tuple[str, ...]:
  """The config keys that optimizer `name` reads its regularisation from, its
  own first."""
  _get_builder(name, 'optimizer name')
  return _REGULARIZATION_KEYS.get(name, ('l2',))


def regularization_key(name: str) -> str:
  """The config key of optimizer `name`'s own regularisation."""
  return regularization_keys(name)[0]


def group_optimizer_names(opt: ml_collections.ConfigDict) -> dict[str, str]:
  """The optimizer of each parameter group, 'same' resolved."""
  return {WEIGHTS: opt.name,
          BN_BIAS: opt.name if opt.bn_bias_name == SAME else opt.bn_bias_name}


def param_group_labels(params):
  """'weights' for kernels (rank >= 2), 'bn_bias' for biases and BN parameters."""
  return jax.tree.map(lambda p: WEIGHTS if p.ndim > 1 else BN_BIAS, params)


def _regularization(opt: ml_collections.ConfigDict, group: str) -> Regularization:
  if group == WEIGHTS or opt.l2_on_bn_bias:
    return Regularization(l2=opt.l2, weight_decay=opt.weight_decay)
  return Regularization(l2=0.0, weight_decay=0.0)


def create_optimizer(config: ml_collections.ConfigDict,
                     learning_rate_fn: schedules.Schedule) -> optax.GradientTransformation:
  """The optimizer of `config`; its updates include the learning rate and sign.

  With `trust_ratio_log_steps` set, the groups whose optimizer has a trust ratio
  keep it in their state (optim/trust_ratios.py); without, nothing changes.
  """
  opt = config.optimizer
  names = group_optimizer_names(opt)
  keys = {WEIGHTS: 'optimizer.name', BN_BIAS: 'optimizer.bn_bias_name'}
  record = bool(config.trust_ratio_log_steps)
  transforms = {
      group: _get_builder(names[group], keys[group])(
          opt, learning_rate_fn, _regularization(opt, group),
          record and names[group] in TRUST_RATIO_OPTIMIZERS)
      for group in (WEIGHTS, BN_BIAS)}
  return optax.multi_transform(transforms, param_group_labels)
