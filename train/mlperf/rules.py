"""The MLPerf closed division's rules for ResNet-50, checked before a run starts.

A config that claims the closed division (`mlperf.submission_division`) must
log what the 4.0.0 rules accept: these are the checks of the compliance
checker's closed_resnet_{lars,sgd}.yaml and of the training rules' hyperparameter
table. Each problem raises the run's `ConfigError`, with one line that names the
key, the value, the rule and the way out (the open division).
"""

import math
from typing import Any, Callable

import ml_collections

from optim import optimizers
from train.run import budget
from train.run import memory
from train.run import mllog
from train.run import validation

# MLPerf 4.0.0 closed ResNet values (compliance_checker/training_3.1.0/
# closed_resnet_{lars,sgd}.yaml, closed_resnet.yaml and the training rules).
MLPERF_TARGET_ACCURACY = 0.759
MLPERF_END_LEARNING_RATE = 1e-4
MLPERF_DECAY_POWER = 2
MLPERF_EVAL_EVERY_EPOCHS = 4


def _closed_rule(rule: str) -> str:
  """What a closed-division rule allows, and the way out."""
  return (f'allowed: {rule} in the MLPerf closed division; set '
          "mlperf.submission_division='open' to run it")


def _closed(config: ml_collections.ConfigDict, key: str, predicate: Callable[[Any], bool],
            rule: str) -> None:
  validation.require(config, key, predicate, _closed_rule(rule))


def _is_power_of_two_times(base: float) -> Callable[[Any], bool]:
  """base * 2^k for an integer k, as the compliance checker tests it."""
  return lambda v: v > 0 and abs(round(math.log2(v / base)) - math.log2(v / base)) < 1e-5


def _check_closed_schedule(config: ml_collections.ConfigDict) -> None:
  """The reference's schedule: linear warmup from 0, polynomial decay (power 2) to 1e-4."""
  _closed(config, 'lr.schedule', lambda v: v == 'piecewise_polynomial',
          "'piecewise_polynomial' (the reference's polynomial decay)")
  _closed(config, 'lr.init', lambda v: v == 0, '0 (warmup from 0)')
  _closed(config, 'lr.warmup_power', lambda v: v == 1, '1 (linear warmup)')
  _closed(config, 'lr.decay_power', lambda v: v == MLPERF_DECAY_POWER,
          f'{MLPERF_DECAY_POWER} (the *_opt_learning_rate_decay_poly_power)')
  _closed(config, 'lr.final', lambda v: v == MLPERF_END_LEARNING_RATE,
          f'{MLPERF_END_LEARNING_RATE} (the *_opt_end_learning_rate)')


def _check_closed_optimizer(config: ml_collections.ConfigDict) -> None:
  """LARS (MLPerf's, heavy ball on BN and biases) or SGD with heavy-ball momentum."""
  opt = config.optimizer
  _closed(config, 'optimizer.name', lambda v: v == 'lars' or v in mllog.SGD_MOMENTUM,
          f'lars or SGD with momentum ({", ".join(mllog.SGD_MOMENTUM)})')
  is_lars = opt.name == 'lars'
  bn_bias = mllog.SGD_MOMENTUM + (() if is_lars else (optimizers.SAME,))
  _closed(config, 'optimizer.bn_bias_name', lambda v: v in bn_bias,
          f'{", ".join(bn_bias)} with optimizer.name={opt.name!r}')
  _closed(config, 'optimizer.l2', _is_power_of_two_times(1e-4),
          '1e-4 * 2^k for an integer k (the *_opt_weight_decay)')
  _closed(config, 'optimizer.l2_on_bn_bias', lambda v: not v,
          'False (the reference excludes biases and BN parameters from weight decay)')
  if is_lars:
    _closed(config, 'optimizer.lars_epsilon', lambda v: v == 0, '0 (lars_epsilon)')
    _closed(config, 'optimizer.trust_coefficient', lambda v: v == 0.001,
            "0.001 (the reference's LARS eta)")
    if config.global_batch_size < 32_768:
      _closed(config, 'optimizer.momentum', lambda v: v == 0.9,
              f'0.9 below batch 32,768 (global_batch_size={config.global_batch_size})')
    return
  _closed(config, 'optimizer.momentum', lambda v: v == 0.9, '0.9 (sgd_opt_momentum)')
  _closed(config, 'lr.peak', lambda v: _is_whole(budget.peak_learning_rate(config) / 0.001),
          'a peak rate, after batch scaling, that is a multiple of 0.001 '
          '(sgd_opt_base_learning_rate)')
  warmup_key = 'lr.warmup_steps' if config.lr.warmup_epochs is None else 'lr.warmup_epochs'
  _closed(config, warmup_key, lambda v: _is_whole(budget.resolve_budget(config).warmup_epochs),
          'a warmup of a whole number of epochs (opt_learning_rate_warmup_epochs)')


def _is_whole(x: float) -> bool:
  return abs(round(x) - x) < 1e-5


def _check_closed_evaluation(config: ml_collections.ConfigDict) -> None:
  """Target 75.9%, evals every 4 epochs (offset 0-3), and the budget ends on one.

  The harness evaluates the end of the budget too; in the closed division that
  eval must be one of the cadence's, or a run could reach the target between
  two evals of the rules. The epochs are MLPerf's (budget.steps_per_epoch).
  """
  _closed(config, 'target_accuracy', lambda v: v == MLPERF_TARGET_ACCURACY,
          f'{MLPERF_TARGET_ACCURACY} (ImageNet top-1 75.9%)')
  _closed(config, 'eval_every_epochs', lambda v: v == MLPERF_EVAL_EVERY_EPOCHS,
          f'{MLPERF_EVAL_EVERY_EPOCHS} (evals every 4 epochs, with eval_every_steps=0)')
  end = budget.eval_points(config, budget.resolve_budget(config))[-1].epoch
  first = budget.first_eval_epoch(MLPERF_EVAL_EVERY_EPOCHS, config.eval_offset_epochs)
  if _is_whole((end - first) / MLPERF_EVAL_EVERY_EPOCHS):
    return
  if _is_whole(end):
    offset = (round(end) - 1) % MLPERF_EVAL_EVERY_EPOCHS
    _closed(config, 'eval_offset_epochs', lambda v: v == offset,
            f'{offset}, so that the budget of {end:g} epochs ends on an eval')
  budget_key = 'num_train_steps' if config.num_epochs is None else 'num_epochs'
  raise validation.ConfigError(budget_key, validation.get(config, budget_key), _closed_rule(
      f'a budget that ends on an eval of the cadence (it ends at epoch {end:.4g})'))


def check_closed_division(config: ml_collections.ConfigDict) -> None:
  """The MLPerf 4.0.0 closed ResNet rules on what the log records about the recipe.

  These are the checks of the compliance checker's closed_resnet_{lars,sgd}.yaml
  and the hyperparameter table of the MLPerf training rules. The model's size
  and the dataset are not checked (the compliance tests run the closed recipe on
  the embedded data), but its activation is: the reference ResNet-50's ReLU.
  """
  if config.mlperf.submission_division != 'closed':
    return
  _closed(config, 'model.activation', lambda v: v == 'relu',
          "'relu' (the reference ResNet-50's activation)")
  _check_closed_optimizer(config)
  _check_closed_schedule(config)
  _closed(config, 'label_smoothing', lambda v: v in (0.0, 0.1), '0 or 0.1')
  _check_closed_evaluation(config)


def validate_run_config(config: ml_collections.ConfigDict, num_devices: int,
                        check_data: bool = True,
                        device_memory: memory.DeviceMemory | None = None) -> None:
  """Every check a config passes before it runs: the run's own, then MLPerf's.

  The order is the one a user can act on: values and their relations, the
  closed division's rules (a config that breaks one is told how to move to
  the open division), whether a step fits in `device_memory`, and last whether
  the data is prepared.

  Raises:
    validation.ConfigError: for the first problem found.
  """
  validation.validate_config(config, num_devices, check_data=False)
  check_closed_division(config)
  if device_memory is not None:
    validation.check_memory(config, num_devices, device_memory)
  if check_data:
    validation.check_data_prepared(config)
