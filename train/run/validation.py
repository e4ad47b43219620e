"""Checks a config before anything heavy starts: what the run itself needs.

The MLPerf closed division's rules are checked above the run
(train/mlperf/rules.py); `rules.validate_run_config` runs both.

Each problem raises `ConfigError` with one line that names the key, the value
and what is allowed; `main.py` prints it and exits with status 2.
"""

import math
import os
from typing import Any, Callable

import ml_collections

from input_pipeline import info
from models import resnet
from optim import muon
from optim import norms
from optim import optimizers
from optim import schedules
from train.common import errors
from train.run import budget
from train.run import memory

RESIZE_METHODS = ('bicubic', 'bilinear')
DTYPES = ('float32', 'bfloat16')
SUBMISSION_DIVISIONS = ('closed', 'open')
SUBMISSION_STATUSES = ('onprem', 'cloud', 'research', 'preview')
BATCH_SCALINGS = ('none', 'sqrt', 'linear')
WARMUP_BATCH_SCALINGS = ('none', 'linear')
# Defined in input_pipeline/info.py, which imports no TensorFlow.
CACHE_EVAL_MODES = info.CACHE_EVAL_MODES
# The step counter (TrainState.step) is a 32-bit integer on the device.
MAX_TRAIN_STEPS = 2**31 - 1
# jax.random.key keeps 32 bits of the seed (without jax_enable_x64): seed
# 2**32 would start from seed 0's weights, and from 2**63 it overflows.
MAX_SEED = 2**32 - 1
# Integer keys reach TensorFlow's ops and XLA's programs as 32-bit integers
# (tf.data refuses input.crop_max_attempts=10**10 only once the run has
# started). The seed and the budget have bounds of their own.
MAX_INT32 = 2**31 - 1
_OWN_INT_BOUNDS = ('seed', 'num_train_steps')
# The loop lists a run's evals up front (budget.eval_points): a cadence that
# gives more than this is a slip of a digit, and would fill the memory first.
MAX_EVALS = 100_000


class ConfigError(errors.BadInput, ValueError):
  """A config value that the harness cannot run with."""

  def __init__(self, key: str, value: Any, allowed: str):
    super().__init__(f'config error: {key}={value!r} is not allowed; {allowed}'
                     f'{_NOT_FINITE if _has_non_finite(value) else ""}')
    self.key = key


# Said of a value that holds inf or nan: Python's float() reads both, and the
# checks' "a number" means a finite one.
_NOT_FINITE = ' (a finite one: inf, -inf and nan are not numbers here)'


def _has_non_finite(value: Any) -> bool:
  """Whether `value`, or an element of a tuple or list value, is inf or nan."""
  values = value if isinstance(value, (tuple, list)) else (value,)
  return any(isinstance(v, float) and not math.isfinite(v) for v in values)


def get(config: ml_collections.ConfigDict, key: str) -> Any:
  value = config
  for part in key.split('.'):
    value = value[part]
  return value


def require(config: ml_collections.ConfigDict, key: str,
             predicate: Callable[[Any], bool], allowed: str) -> None:
  value = get(config, key)
  try:
    ok = predicate(value)
  except (TypeError, ValueError):
    ok = False
  if not ok:
    raise ConfigError(key, value, allowed)


def _is_int(v: Any) -> bool:
  return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _positive_int(v: Any) -> bool:
  return _is_int(v) and v > 0


def _increasing(is_item: Callable[[Any], bool]) -> Callable[[Any], bool]:
  """A tuple or list (maybe empty) of items, each above the one before."""
  return lambda v: (isinstance(v, (tuple, list)) and all(is_item(x) for x in v)
                    and all(a < b for a, b in zip(v, v[1:])))


def _range_pair(low: float, high: float) -> Callable[[Any], bool]:
  return lambda v: (len(v) == 2 and all(_is_number(x) for x in v)
                    and low < v[0] <= v[1] <= high)


# Type and range of each key on its own: (key, predicate, what is allowed), in the
# order they are checked, so that the first bad key of a config is the one named.
_SCALAR_CHECKS: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ('seed', lambda v: _is_int(v) and 0 <= v <= MAX_SEED,
     f'allowed: an integer in [0, {MAX_SEED}] (jax.random.key keeps 32 bits of it)'),
    ('dataset', lambda v: v in info.dataset_names(),
     f'allowed: {", ".join(info.dataset_names())}'),
    ('data_dir', lambda v: isinstance(v, str) and v.strip() != '',
     'allowed: a tfds data directory'),
    ('image_size', _positive_int, 'allowed: an integer > 0'),
    ('global_batch_size', _positive_int, 'allowed: an integer > 0'),
    ('eval_batch_size', _positive_int, 'allowed: an integer > 0'),
    ('num_train_steps', lambda v: _is_int(v) and v >= 0,
     'allowed: an integer > 0, or 0 with num_epochs set'),
    ('num_epochs', lambda v: v is None or (_is_number(v) and v > 0),
     'allowed: None (budget in steps) or a number of epochs > 0'),
    ('epochs_per_block', _positive_int, 'allowed: an integer > 0 (4 in MLPerf)'),
    ('model.depth', lambda v: v in resnet.MODELS_BY_DEPTH,
     f'allowed: {", ".join(map(str, sorted(resnet.MODELS_BY_DEPTH)))}'),
    ('model.width', _positive_int, 'allowed: an integer > 0'),
    ('model.version', lambda v: v in resnet.VERSIONS,
     f'allowed: {", ".join(resnet.VERSIONS)}'),
    ('model.stem', lambda v: v in resnet.STEMS, f'allowed: {", ".join(resnet.STEMS)}'),
    ('model.virtual_batch_size', _positive_int, 'allowed: an integer > 0'),
    ('model.bn_momentum', lambda v: _is_number(v) and 0 <= v < 1,
     'allowed: a number in [0, 1)'),
    ('model.bn_epsilon', lambda v: _is_number(v) and v > 0, 'allowed: a number > 0'),
    ('model.last_bn_scale', _is_number, 'allowed: a finite number'),
    ('model.activation', lambda v: v in resnet.ACTIVATIONS,
     f'allowed: {", ".join(resnet.ACTIVATIONS)}'),
    ('model.dtype', lambda v: v in DTYPES, f'allowed: {", ".join(DTYPES)}'),
    ('optimizer.name', lambda v: v in optimizers.optimizer_names(),
     f'allowed: {", ".join(optimizers.optimizer_names())}'),
    ('optimizer.bn_bias_name',
     lambda v: v == optimizers.SAME or v in optimizers.optimizer_names(),
     f'allowed: {optimizers.SAME}, {", ".join(optimizers.optimizer_names())}'),
    ('optimizer.momentum', lambda v: _is_number(v) and 0 <= v < 1,
     'allowed: a number in [0, 1)'),
    ('optimizer.l2', lambda v: _is_number(v) and v >= 0, 'allowed: a number >= 0'),
    ('optimizer.trust_coefficient', lambda v: _is_number(v) and v > 0,
     'allowed: a number > 0'),
    ('optimizer.lars_epsilon', lambda v: _is_number(v) and v >= 0,
     'allowed: a number >= 0'),
    ('label_smoothing', lambda v: _is_number(v) and 0 <= v < 1,
     'allowed: a number in [0, 1)'),
    ('lr.schedule', lambda v: v in schedules.schedule_names(),
     f'allowed: {", ".join(schedules.schedule_names())}'),
    ('lr.init', lambda v: _is_number(v) and v >= 0, 'allowed: a number >= 0'),
    ('lr.peak', lambda v: _is_number(v) and v > 0, 'allowed: a number > 0'),
    ('lr.final', lambda v: _is_number(v) and v >= 0, 'allowed: a number >= 0'),
    ('lr.warmup_power', lambda v: _is_number(v) and v > 0, 'allowed: a number > 0'),
    ('lr.decay_power', lambda v: _is_number(v) and v > 0, 'allowed: a number > 0'),
    ('lr.warmup_epochs', lambda v: v is None or (_is_number(v) and v >= 0),
     'allowed: None (warmup in steps) or a number of epochs >= 0'),
    ('lr.decay_steps', lambda v: v is None or (_is_number(v) and v > 0),
     'allowed: None (the end of the budget) or a number of steps > 0'),
    ('lr.decay_factor', lambda v: _is_number(v) and 0 < v <= 1,
     'allowed: a number in (0, 1]'),
    ('lr.hold_from_step', lambda v: v is None or (_is_number(v) and v > 0),
     'allowed: None (no hold) or a number of steps > 0'),
    ('lr.batch_scaling', lambda v: v in BATCH_SCALINGS,
     f'allowed: {", ".join(BATCH_SCALINGS)}'),
    ('lr.warmup_batch_scaling', lambda v: v in WARMUP_BATCH_SCALINGS,
     f'allowed: {", ".join(WARMUP_BATCH_SCALINGS)}'),
    ('lr.reference_batch_size', _positive_int, 'allowed: an integer > 0'),
    ('optimizer.b1', lambda v: _is_number(v) and 0 <= v < 1, 'allowed: a number in [0, 1)'),
    ('optimizer.b2', lambda v: _is_number(v) and 0 <= v < 1, 'allowed: a number in [0, 1)'),
    ('optimizer.eps', lambda v: _is_number(v) and v > 0, 'allowed: a number > 0'),
    ('optimizer.weight_decay', lambda v: _is_number(v) and v >= 0,
     'allowed: a number >= 0'),
    ('optimizer.bias_correction', lambda v: isinstance(v, bool), 'allowed: True or False'),
    ('optimizer.initial_accumulator_value', lambda v: _is_number(v) and v >= 0,
     'allowed: a number >= 0'),
    ('optimizer.trust_ratio_norm', lambda v: v in norms.TRUST_RATIO_NORMS,
     f'allowed: {", ".join(norms.TRUST_RATIO_NORMS)}'),
    ('optimizer.muon_consistent_rms', lambda v: v is None or (_is_number(v) and v > 0),
     "allowed: a number > 0 (optax's 0.2: about AdamW's RMS), or None (Jordan's scale)"),
    ('lr.step_boundaries_epochs', _increasing(lambda x: _is_number(x) and x > 0),
     'allowed: increasing numbers of epochs > 0, e.g. (30.0, 60.0, 80.0), or ()'),
    ('lr.step_factor', lambda v: _is_number(v) and 0 < v <= 1,
     'allowed: a number in (0, 1]'),
    ('trust_ratio_log_steps', _increasing(_positive_int),
     'allowed: increasing step numbers > 0, e.g. (100, 1000), or () for none'),
    ('target_accuracy', lambda v: _is_number(v) and 0 < v < 1,
     'allowed: a fraction in (0, 1), e.g. 0.759'),
    ('eval_every_steps', lambda v: _is_int(v) and v >= 0,
     'allowed: an integer > 0, or 0 with eval_every_epochs set'),
    ('eval_every_epochs', lambda v: v is None or (_is_number(v) and v > 0),
     'allowed: None (cadence in steps) or a number of epochs > 0'),
    ('eval_offset_epochs', lambda v: _is_int(v) and v >= 0,
     'allowed: an integer >= 0 (MLPerf: 0, 1, 2 or 3)'),
    ('log_every_steps', _positive_int, 'allowed: an integer > 0'),
    ('checkpoint.every_steps', lambda v: _is_int(v) and v >= 0,
     'allowed: an integer >= 0 (0: no checkpoints by step count)'),
    ('checkpoint.every_seconds', lambda v: _is_number(v) and v >= 0,
     'allowed: a number of seconds >= 0 (0: no checkpoints by time)'),
    ('checkpoint.max_to_keep', _positive_int, 'allowed: an integer > 0'),
    ('profile.num_steps', lambda v: _is_int(v) and v >= 0,
     'allowed: an integer >= 0 (0: no profiler trace)'),
    ('profile.first_step', _positive_int, 'allowed: an integer > 0'),
    ('input.crop_area_range', _range_pair(0.0, 1.0),
     'allowed: (low, high) with 0 < low <= high <= 1'),
    ('input.crop_aspect_ratio_range', _range_pair(0.0, math.inf),
     'allowed: (low, high) with 0 < low <= high'),
    ('input.crop_min_object_covered', lambda v: _is_number(v) and 0 <= v <= 1,
     'allowed: a number in [0, 1]'),
    ('input.crop_max_attempts', _positive_int, 'allowed: an integer > 0'),
    ('input.resize_method', lambda v: v in RESIZE_METHODS,
     f'allowed: {", ".join(RESIZE_METHODS)}'),
    ('input.eval_crop_padding', lambda v: _is_int(v) and v >= 0,
     'allowed: an integer >= 0'),
    ('input.mean_rgb', lambda v: len(v) == 3 and all(_is_number(x) for x in v),
     'allowed: three numbers on the 0-255 scale'),
    ('input.stddev_rgb', lambda v: len(v) == 3 and all(_is_number(x) and x > 0 for x in v),
     'allowed: three positive numbers on the 0-255 scale'),
    ('input.prefetch_batches', lambda v: _is_int(v) and v >= 0,
     'allowed: an integer >= 0'),
    ('input.deterministic', lambda v: isinstance(v, bool), 'allowed: True or False'),
    ('input.cache_eval', lambda v: v in CACHE_EVAL_MODES,
     f'allowed: {", ".join(CACHE_EVAL_MODES)}'),
    ('mlperf.submission_division', lambda v: v in SUBMISSION_DIVISIONS,
     f'allowed: {", ".join(SUBMISSION_DIVISIONS)}'),
    ('mlperf.submission_status', lambda v: v in SUBMISSION_STATUSES,
     f'allowed: {", ".join(SUBMISSION_STATUSES)}'),
)


def _check_scalars(config: ml_collections.ConfigDict) -> None:
  """Type and range of each key on its own (_SCALAR_CHECKS)."""
  for key, predicate, allowed in _SCALAR_CHECKS:
    require(config, key, predicate, allowed)
    if key not in _OWN_INT_BOUNDS:
      require(config, key, lambda v: not _is_int(v) or v <= MAX_INT32,
               f'{allowed}, at most {MAX_INT32:,} (a 32-bit integer, as TensorFlow and '
               'XLA take it)')


def _min_image_size(stem: str) -> int:
  """The input side below which the last stage's feature map would be empty.

  Four stages halve the resolution three times; the ImageNet stem adds a stride-2
  conv and a stride-2 max-pool.
  """
  return 32 if stem == 'imagenet' else 8


def _check_regularization(config: ml_collections.ConfigDict) -> None:
  """A non-zero L2 or weight decay that no chosen optimizer reads is a mistake."""
  names = sorted(set(optimizers.group_optimizer_names(config.optimizer).values()))
  read = {key for name in names for key in optimizers.regularization_keys(name)}
  for key in ('l2', 'weight_decay'):
    if key not in read:
      require(config, f'optimizer.{key}', lambda v: v == 0,
               f'allowed: 0, since {" and ".join(names)} read optimizer.'
               f'{"weight_decay" if key == "l2" else "l2"} instead')


def _check_optimizer_switches(config: ml_collections.ConfigDict) -> None:
  """A trust-ratio norm, a bias correction switched off or trust ratios to log
  that no chosen optimizer has are mistakes."""
  names = sorted(set(optimizers.group_optimizer_names(config.optimizer).values()))
  chosen = (f'optimizer.name={config.optimizer.name!r} and bn_bias_name='
            f'{config.optimizer.bn_bias_name!r}')
  with_ratio = ', '.join(sorted(optimizers.TRUST_RATIO_OPTIMIZERS))
  if not optimizers.TRUST_RATIO_OPTIMIZERS.intersection(names):
    require(config, 'optimizer.trust_ratio_norm', lambda v: v == norms.L2,
             f"allowed: 'l2' (the default), since {chosen} have no trust ratio "
             f'({with_ratio} have one)')
    require(config, 'trust_ratio_log_steps', lambda v: not v,
             f'allowed: () (off), since {chosen} have no trust ratio to log '
             f'({with_ratio} have one)')
  if not optimizers.BIAS_CORRECTED_OPTIMIZERS.intersection(names):
    require(config, 'optimizer.bias_correction', lambda v: v,
             f'allowed: True (the default), since {chosen} have no bias correction '
             f'({", ".join(sorted(optimizers.BIAS_CORRECTED_OPTIMIZERS))} have one)')


def _check_todays_optimizers(config: ml_collections.ConfigDict) -> None:
  """Muon on the kernels only, Schedule-Free's interpolation above 0, and
  Muon's own key left alone unless Muon is chosen."""
  opt = config.optimizer
  groups = optimizers.group_optimizer_names(opt)
  bn_bias = groups[optimizers.BN_BIAS]
  require(config, 'optimizer.bn_bias_name',
           lambda v: bn_bias not in optimizers.WEIGHTS_ONLY_OPTIMIZERS,
           f'allowed: an optimizer other than {bn_bias} for biases and BN parameters '
           f'(optimizer.name={opt.name!r}): {bn_bias} orthogonalises matrices, and '
           'they have none; adamw is what Muon is run with')
  for name in sorted(set(groups.values())):
    key = optimizers.SCHEDULE_FREE_INTERPOLATION.get(name)
    if key is not None:
      require(config, f'optimizer.{key}', lambda v: v > 0,
               f'allowed: a number in (0, 1) for {name}, whose average x is '
               f'(y - (1 - {key}) * z) / {key}')
  if 'muon' not in groups.values():
    require(config, 'optimizer.muon_consistent_rms',
             lambda v: v == muon.CONSISTENT_RMS,
             f'allowed: {muon.CONSISTENT_RMS} (the default), since '
             f'optimizer.name={opt.name!r} and bn_bias_name={opt.bn_bias_name!r} '
             'are not muon')


def _check_trust_ratio_log_steps(config: ml_collections.ConfigDict,
                                 num_steps: int) -> None:
  """Trust ratios are logged at steps the run reaches."""
  require(config, 'trust_ratio_log_steps', lambda v: not v or v[-1] <= num_steps,
           f'allowed: steps in [1, {num_steps:,}], the budget')


def _check_step_schedule(config: ml_collections.ConfigDict,
                         run_budget: budget.Budget) -> None:
  """The boundaries of 'step' come after the warmup."""
  if config.lr.schedule != 'step':
    return
  boundaries = schedules.step_boundaries(config.lr, run_budget)
  require(config, 'lr.step_boundaries_epochs',
           lambda v: not v or boundaries[0] >= run_budget.warmup_steps,
           f'allowed: boundaries after the warmup ({run_budget.warmup_epochs:g} epochs, '
           f'{run_budget.warmup_steps:g} steps)')


def _steps_or_epochs(config: ml_collections.ConfigDict, steps_key: str, epochs_key: str,
                     steps_predicate: Callable[[Any], bool], steps_allowed: str) -> None:
  """A length given in steps, or in epochs with the steps key at 0."""
  epochs = get(config, epochs_key)
  if epochs is None:
    require(config, steps_key, steps_predicate, f'allowed: {steps_allowed}')
  else:
    require(config, steps_key, lambda v: v == 0,
             f'allowed: 0 when {epochs_key}={epochs} gives it in epochs')


def _check_budget(config: ml_collections.ConfigDict) -> None:
  """Budget, warmup and eval cadence, each in steps or in epochs, but not both."""
  _steps_or_epochs(config, 'num_train_steps', 'num_epochs', _positive_int,
                   'an integer > 0 (or 0 with num_epochs set)')
  _steps_or_epochs(config, 'lr.warmup_steps', 'lr.warmup_epochs',
                   lambda v: _is_number(v) and v >= 0,
                   'a number of steps >= 0 (may be fractional)')
  _steps_or_epochs(config, 'eval_every_steps', 'eval_every_epochs', _positive_int,
                   'an integer > 0 (or 0 with eval_every_epochs set)')
  warmup_key = 'lr.warmup_steps' if config.lr.warmup_epochs is None else 'lr.warmup_epochs'
  try:
    run_budget = budget.resolve_budget(config)
  except ValueError as e:
    raise ConfigError(warmup_key, get(config, warmup_key), f'allowed: {e}') from None
  num_steps = run_budget.num_train_steps
  budget_key = 'num_train_steps' if config.num_epochs is None else 'num_epochs'
  require(config, budget_key, lambda v: num_steps <= MAX_TRAIN_STEPS,
           f'allowed: a budget of at most {MAX_TRAIN_STEPS:,} steps (the step counter '
           f'is a 32-bit integer); this one is {num_steps:,} steps')
  cadence_key = 'eval_every_steps' if config.eval_every_epochs is None else 'eval_every_epochs'
  num_evals = num_steps // run_budget.eval_every_steps
  require(config, cadence_key, lambda v: num_evals <= MAX_EVALS,
           f'allowed: a cadence of at most {MAX_EVALS:,} evals in the budget; this one '
           f'gives {num_evals:,} evals in {num_steps:,} steps')
  _check_trust_ratio_log_steps(config, num_steps)
  _check_step_schedule(config, run_budget)


def _check_eval_offset(config: ml_collections.ConfigDict) -> None:
  """The offset shifts an epoch cadence by whole epochs, less than one period."""
  every = config.eval_every_epochs
  if every is not None:
    require(config, 'eval_offset_epochs', lambda v: v < every,
             f'allowed: an integer in [0, eval_every_epochs={every})')


def _check_relations(config: ml_collections.ConfigDict, num_devices: int) -> None:
  """Constraints that tie several keys together."""
  _check_budget(config)
  _check_eval_offset(config)
  _check_regularization(config)
  _check_optimizer_switches(config)
  _check_todays_optimizers(config)
  require(config, 'global_batch_size', lambda v: v % num_devices == 0,
           f'allowed: a multiple of the device count ({num_devices})')
  per_device = config.global_batch_size // num_devices
  require(config, 'model.virtual_batch_size', lambda v: per_device % v == 0,
           f'allowed: a divisor of the per-device batch {per_device} '
           f'(global_batch_size {config.global_batch_size} / {num_devices} devices)')
  require(config, 'eval_batch_size', lambda v: v % num_devices == 0,
           f'allowed: a multiple of the device count ({num_devices})')
  min_size = _min_image_size(config.model.stem)
  require(config, 'image_size', lambda v: v >= min_size,
           f'allowed: >= {min_size} for model.stem={config.model.stem!r}')


def check_data_prepared(config: ml_collections.ConfigDict) -> None:
  """The dataset is there (ImageNet) or can be built (the embedded one)."""
  data_dir = os.path.expanduser(config.data_dir)
  if config.dataset.startswith(info.EMBEDDED_SHAPES):
    parent = data_dir
    while not os.path.exists(parent):
      parent = os.path.dirname(parent)
    require(config, 'data_dir',
             lambda v: os.path.isdir(parent) and os.access(parent, os.W_OK),
             f'allowed: a writable directory to build {config.dataset} in '
             f'({parent} is not {"writable" if os.path.isdir(parent) else "a directory"})')
    return
  require(config, 'data_dir', lambda v: os.path.isdir(data_dir),
           'allowed: an existing tfds data directory')
  # The cheap look first: a data_dir without the dataset is the common case, and
  # its message must not follow a screenful of TensorFlow's import chatter.
  if info.looks_prepared(config.dataset, data_dir):
    # Imported here: the exact check needs TensorFlow, the rest does not.
    from input_pipeline import datasets  # pylint: disable=g-import-not-at-top
    try:
      if datasets.is_prepared(config.dataset, data_dir):
        return
    except datasets.DataError as e:  # A copy there whose metadata cannot be read.
      raise ConfigError('data_dir', config.data_dir, str(e)) from None
  raise ConfigError(
      'dataset', config.dataset,
      f'it is not prepared in {data_dir}; prepare it with: '
      f'{info.prepare_command(config.dataset, data_dir)}')


def check_memory(config: ml_collections.ConfigDict, num_devices: int,
                 device: memory.DeviceMemory, with_eval: bool = True) -> None:
  """Refuses a compiled step that cannot fit on the devices (train/run/memory.py's
  lower bound): the train step with the input batches prefetched beside it, and
  the eval step unless `with_eval` is False (the benchmark compiles none)."""
  checks = [memory.train_step_problem, memory.prefetch_problem]
  if with_eval:
    checks.append(memory.eval_step_problem)
  for check in checks:
    problem = check(config, num_devices, device)
    if problem is not None:
      raise ConfigError(*problem)


def validate_config(config: ml_collections.ConfigDict, num_devices: int,
                    check_data: bool = True,
                    device_memory: memory.DeviceMemory | None = None,
                    with_eval: bool = True) -> None:
  """Raises ConfigError for the first problem found in `config`.

  With `device_memory` (memory.device_memory(), for the devices a run will
  use), a step that cannot fit in it is refused too: the eval step's as well
  unless `with_eval` is False.
  """
  _check_scalars(config)
  _check_relations(config, num_devices)
  if device_memory is not None:
    check_memory(config, num_devices, device_memory, with_eval)
  if check_data:
    check_data_prepared(config)
