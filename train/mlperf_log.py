"""MLPerf-style logging (MLLOG lines) of one run into its own file.

Each run gets its own `mllog.MLLogger` over its own `logging.Logger`, so the runs
of one process (studies, tests) never write into each other's files; the shared
module-level logger of `mlperf_logging.mllog` is not used.
"""

import itertools
import logging
import os

import ml_collections
from mlperf_logging.mllog import mllog
from mlperf_logging.mllog import constants

from train import budget

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_logger_ids = itertools.count()


class MlperfLogger:
  """Writes MLLOG lines to `path`."""

  def __init__(self, path: str):
    logger = logging.getLogger(f'mlperf_log.{next(_logger_ids)}')
    logger.propagate = False
    logger.setLevel(logging.INFO)
    self._handler = logging.FileHandler(path, mode='w')
    logger.addHandler(self._handler)
    self._logger = logger
    self._mllog = mllog.MLLogger(logger=logger, default_stack_offset=2,
                                 root_dir=_REPO_ROOT)

  def event(self, key: str, value=None, metadata: dict | None = None) -> None:
    self._mllog.event(key=key, value=value, metadata=metadata)

  def start(self, key: str, value=None, metadata: dict | None = None) -> None:
    self._mllog.start(key=key, value=value, metadata=metadata)

  def end(self, key: str, value=None, metadata: dict | None = None) -> None:
    self._mllog.end(key=key, value=value, metadata=metadata)

  def close(self) -> None:
    self._handler.close()
    self._logger.removeHandler(self._handler)


def hyperparameters(config: ml_collections.ConfigDict, run_budget: budget.Budget, *,
                    num_eval_examples: int) -> dict:
  """The MLPerf keys and values that describe this run's recipe, as it runs."""
  num_train_examples = run_budget.num_train_examples
  values = {
      constants.SUBMISSION_BENCHMARK: constants.RESNET,
      constants.SUBMISSION_ORG: config.mlperf.submission_org,
      constants.SUBMISSION_DIVISION: config.mlperf.submission_division,
      constants.SUBMISSION_STATUS: config.mlperf.submission_status,
      constants.SUBMISSION_PLATFORM: config.mlperf.submission_platform,
      constants.SEED: config.seed,
      constants.GLOBAL_BATCH_SIZE: config.global_batch_size,
      constants.GRADIENT_ACCUMULATION_STEPS: 1,
      constants.TRAIN_SAMPLES: num_train_examples,
      constants.EVAL_SAMPLES: num_eval_examples,
      constants.MODEL_BN_SPAN: config.model.virtual_batch_size,
      constants.OPT_NAME: config.optimizer.name,
  }
  lr = config.lr
  if config.optimizer.name == 'lars':
    values.update({
        constants.LARS_OPT_BASE_LEARNING_RATE: run_budget.peak_learning_rate,
        constants.LARS_OPT_END_LR: lr.final,
        constants.LARS_OPT_LR_DECAY_POLY_POWER: lr.decay_power,
        constants.LARS_OPT_LR_DECAY_STEPS: run_budget.decay_steps,
        constants.LARS_OPT_LEARNING_RATE_WARMUP_EPOCHS: run_budget.warmup_epochs,
        constants.LARS_OPT_MOMENTUM: config.optimizer.momentum,
        constants.LARS_OPT_WEIGHT_DECAY: config.optimizer.l2,
        constants.LARS_EPSILON: config.optimizer.lars_epsilon,
    })
  else:
    values.update({
        constants.OPT_BASE_LR: run_budget.peak_learning_rate,
        constants.OPT_END_LR: lr.final,
        constants.OPT_LR_WARMUP_EPOCHS: run_budget.warmup_epochs,
        constants.OPT_WEIGHT_DECAY: config.optimizer.l2,
    })
  return values
