"""The MLPerf log of one run: its MLLOG lines, written as the run goes.

MLPerf's timing (init_start, run_start, block and eval events, run_stop) is
measured by the run itself, so this writer sits in the run's layer; the
submission built from many runs (results folders, system descriptions, RCP
verdicts, closed-division rules) is train/mlperf/.

Each run gets its own `mllog.MLLogger` over its own `logging.Logger`, so the runs
of one process (studies, tests) never write into each other's files; the shared
module-level logger of `mlperf_logging.mllog` is not used.

The keys are those of the MLPerf Training 4.0.0 rules for ResNet-50, the last
round that had it (mlperf_logging/compliance_checker/training_4.0.0, which for
the optimizer keys enqueues training_3.1.0/closed_resnet_{lars,sgd}.yaml):
  python -m mlperf_logging.compliance_checker --usage training --ruleset 4.0.0 LOG
The closed division allows LARS and SGD with momentum only (`opt_name` 'lars'
or 'sgd'); every other optimizer is logged under its own name, and
train/mlperf/rules.py refuses it unless `mlperf.submission_division` is 'open'.
"""

import itertools
import logging
import os
from typing import Any, Callable

import ml_collections
from mlperf_logging.mllog import constants
from mlperf_logging.mllog import mllog

from optim import optimizers
from optim import schedules
from train.common import files
from train.run import budget

_logger_ids = itertools.count()

RULESET = '4.0.0'
# The harness's own event, logged where a run resumed from a checkpoint; MLPerf
# has no key for it, since an interrupted run is no valid MLPerf result.
RESUME = 'harness_resume'
# The harness's optimizers that are MLPerf's 'sgd': heavy-ball SGD with
# momentum, the learning rate outside (momentum) or inside (mlperf_momentum)
# the accumulator, as TensorFlow's and MXNet's reference optimizers have it.
SGD_MOMENTUM = ('momentum', 'mlperf_momentum')
# MLPerf's ResNet keys of each optimizer family, by meaning. The LARS and SGD
# names are the closed rules' (closed_resnet_{lars,sgd}.yaml); the rest is the
# generic `opt_*` family of mllog.constants.
_SCHEDULE_KEYS: dict[str, dict[str, str]] = {
    'lars': {
        'base': constants.LARS_OPT_BASE_LEARNING_RATE,
        'end': constants.LARS_OPT_END_LR,
        'poly_power': constants.LARS_OPT_LR_DECAY_POLY_POWER,
        'decay_steps': constants.LARS_OPT_LR_DECAY_STEPS,
        'warmup_epochs': constants.LARS_OPT_LEARNING_RATE_WARMUP_EPOCHS,
        'momentum': constants.LARS_OPT_MOMENTUM,
        'weight_decay': constants.LARS_OPT_WEIGHT_DECAY,
    },
    'sgd': {
        'base': 'sgd_opt_base_learning_rate',
        'end': 'sgd_opt_end_learning_rate',
        'poly_power': 'sgd_opt_learning_rate_decay_poly_power',
        'decay_steps': 'sgd_opt_learning_rate_decay_steps',
        'warmup_epochs': constants.OPT_LR_WARMUP_EPOCHS,  # No sgd_ prefix in the rules.
        'momentum': 'sgd_opt_momentum',
        'weight_decay': 'sgd_opt_weight_decay',
    },
    'other': {
        'base': constants.OPT_BASE_LR,
        'end': constants.OPT_END_LR,
        'poly_power': 'opt_learning_rate_decay_poly_power',
        'decay_steps': constants.OPT_LR_DECAY_STEPS,
        'warmup_epochs': constants.OPT_LR_WARMUP_EPOCHS,
        'momentum': 'opt_momentum',
        'weight_decay': constants.OPT_WEIGHT_DECAY,
    },
}
# The Adam family's own keys: (beta_1, beta_2, epsilon).
_ADAM_KEYS: dict[str, tuple[str, str, str]] = {
    'adam': (constants.OPT_ADAM_BETA_1, constants.OPT_ADAM_BETA_2, constants.OPT_ADAM_EPSILON),
    'adamw': (constants.OPT_ADAMW_BETA_1, constants.OPT_ADAMW_BETA_2,
              constants.OPT_ADAMW_EPSILON),
    'lamb': (constants.OPT_LAMB_BETA_1, constants.OPT_LAMB_BETA_2, constants.OPT_LAMB_EPSILON),
    # LAMB's variants (LAMB paper, Appendix D), under LAMB's keys.
    'n_lamb': (constants.OPT_LAMB_BETA_1, constants.OPT_LAMB_BETA_2,
               constants.OPT_LAMB_EPSILON),
    'nn_lamb': (constants.OPT_LAMB_BETA_1, constants.OPT_LAMB_BETA_2,
                constants.OPT_LAMB_EPSILON),
}


class MlperfLogger:
  """Writes MLLOG lines to `path`, a new file (mode 'w') or the end of one ('a').

  `before_write`, if given, is called before each line: the run's claim fence
  (train/common/claims.py), which ends a process that no longer holds the run.
  """

  def __init__(self, path: str, mode: str = 'w',
               before_write: Callable[[], None] | None = None):
    self._before_write = before_write or _nothing
    logger = logging.getLogger(f'mlperf_log.{next(_logger_ids)}')
    logger.propagate = False
    logger.setLevel(logging.INFO)
    self._path = path
    self._handler = logging.FileHandler(path, mode=mode)
    logger.addHandler(self._handler)
    self._logger = logger
    self._mllog = mllog.MLLogger(logger=logger, default_stack_offset=2,
                                 root_dir=files.REPO_ROOT)

  def event(self, key: str, value=None, metadata: dict | None = None) -> None:
    self._before_write()
    self._mllog.event(key=key, value=value, metadata=metadata)

  def start(self, key: str, value=None, metadata: dict | None = None) -> None:
    self._before_write()
    self._mllog.start(key=key, value=value, metadata=metadata)

  def end(self, key: str, value=None, metadata: dict | None = None) -> None:
    self._before_write()
    self._mllog.end(key=key, value=value, metadata=metadata)

  def tell(self) -> int:
    """The log's length in bytes: where a resumed run cuts it (0 for os.devnull)."""
    self._handler.flush()
    return os.path.getsize(self._path) if self._path != os.devnull else 0

  def close(self) -> None:
    self._handler.close()
    self._logger.removeHandler(self._handler)


def _nothing() -> None:
  pass


def number(x: float) -> int | float:
  """A whole float as an int (epoch 4, not 4.0, in the log), anything else as is."""
  return int(x) if float(x).is_integer() else x


def opt_name(optimizer_name: str) -> str:
  """MLPerf's `opt_name` of the weights' optimizer.

  'lars' and 'sgd' (heavy-ball momentum, `SGD_MOMENTUM`) are the only names the
  closed rules accept; nesterov, adam, adamw and lamb keep their own names,
  which only the open division allows.
  """
  if optimizer_name == 'lars':
    return constants.LARS
  if optimizer_name in SGD_MOMENTUM:
    return constants.SGD
  return optimizer_name


def _optimizer_values(config: ml_collections.ConfigDict,
                      run_budget: budget.Budget) -> dict[str, Any]:
  """The optimizer and schedule keys of the weights' optimizer, as it runs."""
  opt, lr = config.optimizer, config.lr
  name = opt_name(opt.name)
  keys = _SCHEDULE_KEYS.get(name, _SCHEDULE_KEYS['other'])
  values = {
      keys['base']: run_budget.peak_learning_rate,
      keys['end']: lr.final,
      # The decay's length, as the reference implementations log it
      # (T - t_warmup + 1 = 1,806.5 for the 32K recipe), not the budget.
      keys['decay_steps']: number(schedules.decay_length(
          lr.schedule, run_budget.warmup_steps, run_budget.decay_steps)),
      keys['warmup_epochs']: run_budget.warmup_epochs,
      keys['weight_decay']: opt[optimizers.regularization_key(opt.name)],
  }
  if lr.schedule == 'piecewise_polynomial':
    values[keys['poly_power']] = number(lr.decay_power)
  else:
    values[constants.OPT_LR_DECAY_SCHEDULE] = lr.schedule
  if opt.name in _ADAM_KEYS:
    values.update(zip(_ADAM_KEYS[opt.name], (opt.b1, opt.b2, opt.eps)))
  else:
    values[keys['momentum']] = opt.momentum
  if name == constants.LARS:
    values[constants.LARS_EPSILON] = opt.lars_epsilon
  return values


def hyperparameters(config: ml_collections.ConfigDict, run_budget: budget.Budget, *,
                    num_eval_examples: int) -> dict:
  """The MLPerf keys and values that describe this run's recipe, as it runs.

  Every key the 4.0.0 closed ResNet rules require before run_start; the rules
  check lars_opt_end_learning_rate == 1e-4, the poly power == 2, lars_epsilon
  == 0, the weight decay == 1e-4 * 2^k and, for SGD, a base rate that is a
  multiple of 0.001.
  """
  return {
      constants.SUBMISSION_BENCHMARK: constants.RESNET,
      constants.SUBMISSION_ORG: config.mlperf.submission_org,
      constants.SUBMISSION_DIVISION: config.mlperf.submission_division,
      constants.SUBMISSION_STATUS: config.mlperf.submission_status,
      constants.SUBMISSION_PLATFORM: config.mlperf.submission_platform,
      constants.SEED: config.seed,
      constants.GLOBAL_BATCH_SIZE: config.global_batch_size,
      constants.GRADIENT_ACCUMULATION_STEPS: 1,
      constants.TRAIN_SAMPLES: run_budget.num_train_examples,
      constants.EVAL_SAMPLES: num_eval_examples,
      constants.MODEL_BN_SPAN: config.model.virtual_batch_size,
      constants.OPT_NAME: opt_name(config.optimizer.name),
      **_optimizer_values(config, run_budget),
  }


# Results folders: an MLPerf submission tree per study.
