"""MLPerf logs: MLLOG lines of one run, results folders of studies, RCP checks.

Each run gets its own `mllog.MLLogger` over its own `logging.Logger`, so the runs
of one process (studies, tests) never write into each other's files; the shared
module-level logger of `mlperf_logging.mllog` is not used.

The keys are those of the MLPerf Training 4.0.0 rules for ResNet-50, the last
round that had it (mlperf_logging/compliance_checker/training_4.0.0, which for
the optimizer keys enqueues training_3.1.0/closed_resnet_{lars,sgd}.yaml):
  python -m mlperf_logging.compliance_checker --usage training --ruleset 4.0.0 LOG
The closed division allows LARS and SGD with momentum only (`opt_name` 'lars'
or 'sgd'); every other optimizer is logged under its own name, and
train/validation.py refuses it unless `mlperf.submission_division` is 'open'.
"""

import dataclasses
import itertools
import json
import logging
import os
import platform
import re
import shutil
from typing import Any, Sequence

import jax
import ml_collections
from mlperf_logging.mllog import constants
from mlperf_logging.mllog import mllog

from optim import optimizers
from optim import schedules
from train.run import budget

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
}


class MlperfLogger:
  """Writes MLLOG lines to `path`, a new file (mode 'w') or the end of one ('a')."""

  def __init__(self, path: str, mode: str = 'w'):
    logger = logging.getLogger(f'mlperf_log.{next(_logger_ids)}')
    logger.propagate = False
    logger.setLevel(logging.INFO)
    self._path = path
    self._handler = logging.FileHandler(path, mode=mode)
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

  def tell(self) -> int:
    """The log's length in bytes: where a resumed run cuts it (0 for os.devnull)."""
    self._handler.flush()
    return os.path.getsize(self._path) if self._path != os.devnull else 0

  def close(self) -> None:
    self._handler.close()
    self._logger.removeHandler(self._handler)


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

RESULTS_FOLDER = 'mlperf'
# config.mlperf.submission_status -> the system description's "status" (4.0.0+).
_AVAILABILITY = {
    'onprem': 'Available on-premise',
    'cloud': 'Available cloud',
    'research': 'Research, Development, or Internal (RDI)',
    'preview': 'Preview',
}


def _folder_name(name: str) -> str:
  return re.sub(r'[^A-Za-z0-9_.-]+', '_', name).strip('_') or 'unknown'


def system_name(config: ml_collections.ConfigDict) -> str:
  """The system's folder and file name: mlperf.submission_platform, made path-safe."""
  return _folder_name(config.mlperf.submission_platform)


def results_folder(study_dir: str, config: ml_collections.ConfigDict) -> str:
  """The submission ("organization") folder of a study: DIR/mlperf/<org>."""
  return os.path.join(study_dir, RESULTS_FOLDER, _folder_name(config.mlperf.submission_org))


def benchmark_folder(study_dir: str, config: ml_collections.ConfigDict) -> str:
  """DIR/mlperf/<org>/results/<system>/resnet, where the result_<i>.txt files go."""
  return os.path.join(results_folder(study_dir, config), 'results', system_name(config),
                      constants.RESNET)


def _cpu_model() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or 'unknown'


def _memory_gb() -> str:
  try:
    return f'{os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30:.0f} GB'
  except (ValueError, OSError, AttributeError):
    return 'unknown'


def system_description(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """systems/<system>.json: every field the 4.0.0 system description checker requires.

  Values are strings, as in MLPerf's published system descriptions (the
  checker joins some of them into a CSV row).

  Read from the machine that writes it (the runs of a resumed study may have
  run elsewhere); what cannot be read is 'unknown', to be filled in by hand
  before a real submission.
  """
  device = jax.devices()[0]
  on_cpu = device.platform == 'cpu'
  unknown = 'unknown'
  return {
      'submitter': config.mlperf.submission_org,
      'division': config.mlperf.submission_division,
      'status': _AVAILABILITY[config.mlperf.submission_status],
      'system_name': config.mlperf.submission_platform,
      'number_of_nodes': str(jax.process_count()),
      'host_processors_per_node': '1',
      'host_processor_model_name': _cpu_model(),
      'host_processor_core_count': str(os.cpu_count() or 0),
      'host_processor_vcpu_count': str(os.cpu_count() or 0),
      'host_processor_frequency': unknown,
      'host_processor_caches': unknown,
      'host_processor_interconnect': unknown,
      'host_memory_capacity': _memory_gb(),
      'host_storage_type': unknown,
      'host_storage_capacity': unknown,
      'host_networking': unknown,
      'host_networking_topology': unknown,
      'host_memory_configuration': unknown,
      'accelerators_per_node': '0' if on_cpu else str(jax.local_device_count()),
      'accelerator_model_name': 'none' if on_cpu else device.device_kind,
      'accelerator_host_interconnect': unknown,
      'accelerator_frequency': unknown,
      'accelerator_on-chip_memories': unknown,
      'accelerator_memory_configuration': unknown,
      'accelerator_memory_capacity': unknown,
      'accelerator_interconnect': unknown,
      'accelerator_interconnect_topology': unknown,
      'cooling': unknown,
      'hw_notes': '',
      'framework': f'JAX {jax.__version__}',
      'other_software_stack': f'Python {platform.python_version()}',
      'operating_system': platform.platform(),
      'sw_notes': 'Written by the large-batch ResNet harness (train/mlperf_log.py).',
  }


def write_results_folder(study_dir: str, config: ml_collections.ConfigDict,
                         run_logs: Sequence[str]) -> str:
  """Writes a study's MLPerf submission tree; returns its organization folder.

  The layout of mlperf_logging's package checker and result summarizer:
    DIR/mlperf/<org>/systems/<system>.json
    DIR/mlperf/<org>/results/<system>/resnet/result_<i>.txt  (run i's mlperf.log)
  An earlier tree of the study is replaced, so it always holds `run_logs`; a
  log that does not exist is left out (result_<i> stays run i's), so that the
  end of a study never fails over it.
  """
  org = results_folder(study_dir, config)
  # Built aside and moved into place: the folder is never seen half-written.
  staging = org + '.tmp'
  shutil.rmtree(staging, ignore_errors=True)
  results = os.path.join(staging, os.path.relpath(benchmark_folder(study_dir, config), org))
  os.makedirs(results)
  for i, log in enumerate(run_logs):
    if os.path.exists(log):
      shutil.copyfile(log, os.path.join(results, f'result_{i}.txt'))
    else:
      logging.warning('%s does not exist: result_%d.txt left out of %s', log, i, results)
  systems = os.path.join(staging, 'systems')
  os.makedirs(systems)
  with open(os.path.join(systems, f'{system_name(config)}.json'), 'w') as f:
    json.dump(system_description(config), f, indent=2)
    f.write('\n')
  shutil.rmtree(org, ignore_errors=True)
  os.replace(staging, org)
  return org


# Reference convergence points (RCPs).

@dataclasses.dataclass(frozen=True)
class RcpVerdict:
  """Whether runs' epochs to target pass the 4.0.0 ResNet RCP of their batch size.

  Attributes:
    batch_size: the global batch size.
    source: how the RCP was found, in the RCP checker's words ('RCP found',
      'RCP Interpolation', 'RCP not found but slower convergence on smaller
      batch size', 'Missing RCP', 'Insufficient convergence').
    rcp_mean_epochs: the reference's olympic mean of epochs to converge (None
      where there is no RCP).
    min_epochs: the fewest mean epochs that pass (the RCP mean divided by its
      allowed speed-up, from a one-sided t-test at alpha 0.05).
    mean_epochs: the runs' olympic mean (None without enough converged runs).
    passed: what the RCP checker decides.
    score_normalization: RCP mean / mean epochs when the runs converge faster
      than the RCP mean yet pass: the factor MLPerf multiplies the score by.
  """
  batch_size: int
  source: str
  rcp_mean_epochs: float | None
  min_epochs: float | None
  mean_epochs: float | None
  passed: bool
  score_normalization: float


def _rcp_checker_module():
  """mlperf_logging's RCP checker, imported on first use: it imports scipy.stats,
  over a second of start-up that every `main.py` would pay through validation."""
  from mlperf_logging.rcp_checker import rcp_checker  # pylint: disable=g-import-not-at-top
  return rcp_checker


def _rcp_checker():
  return _rcp_checker_module().RCP_Checker('training', RULESET, constants.RESNET,
                                           verbose=False)


def rcp_record(batch_size: int, checker=None) -> tuple[dict | None, str]:
  """The pruned 4.0.0 ResNet RCP for `batch_size` and how it was found.

  Mirrors `rcp_checker.check_directory` with rcp_pass='pruned_rcps' (what the
  package checker and the summarizer run): an RCP of that batch size, else a
  linear interpolation of the mean (and stdev) between the nearest pruned RCPs
  below and above, else, below the smallest RCP, the smallest one. `checker`:
  an RCP_Checker to reuse (it reads the RCP files when made).
  """
  checker = checker or _rcp_checker()
  record = checker._find_rcp(batch_size, 'pruned_rcps')  # pylint: disable=protected-access
  if record is not None:
    return record, 'RCP found'
  low = checker._find_top_min_rcp(batch_size, 'pruned_rcps')  # pylint: disable=protected-access
  high = checker._find_bottom_max_rcp(batch_size, 'pruned_rcps')  # pylint: disable=protected-access
  if low is not None and high is not None:
    return checker._create_interp_rcp(batch_size, low, high)[1], 'RCP Interpolation'  # pylint: disable=protected-access
  if high is not None:
    return (checker._find_min_rcp('pruned_rcps'),  # pylint: disable=protected-access
            'RCP not found but slower convergence on smaller batch size')
  return None, f'Missing RCP, please submit RCP with BS = {batch_size}'


def rcp_verdict(batch_size: int, epochs_to_target: Sequence[float | None]) -> RcpVerdict:
  """Would runs at `batch_size` with these epochs to target pass the 4.0.0 RCPs?

  Args:
    batch_size: the global batch size.
    epochs_to_target: per run, the epoch_num of the eval that reached the
      target, None for a run that did not; MLPerf submits 5 runs.
  """
  checker = _rcp_checker()
  record, source = rcp_record(batch_size, checker)
  rcp_mean = None if record is None else float(record['RCP Mean'])
  min_epochs = None if record is None else float(record['Min Epochs'])
  failed = sum(e is None for e in epochs_to_target)
  if failed > 1:  # The checker's "Insufficient convergence".
    return RcpVerdict(batch_size, 'Insufficient convergence', rcp_mean, min_epochs, None,
                      False, 1.0)
  epochs = sorted(1e9 if e is None else round(float(e), 3) for e in epochs_to_target)
  mean = float(sum(epochs[1:-1]) / len(epochs[1:-1])) if len(epochs) > 2 else None
  if record is None or mean is None:
    return RcpVerdict(batch_size, source, rcp_mean, min_epochs, mean, False, 1.0)
  passed, norm = checker._eval_submission_record(record, epochs, '')  # pylint: disable=protected-access
  if source.startswith('RCP not found') and not passed:
    source = f'Missing RCP, please submit RCP with BS = {batch_size}'
  return RcpVerdict(batch_size, source, rcp_mean, min_epochs, mean, bool(passed),
                    float(norm))


def check_rcp_folder(benchmark_dir: str) -> tuple[bool, str]:
  """The package's own RCP check of a results folder's result_*.txt (pruned RCPs)."""
  passed, message, _ = _rcp_checker_module().check_directory(
      benchmark_dir, 'training', RULESET, False, False, rcp_pass='pruned_rcps')
  return bool(passed), message
