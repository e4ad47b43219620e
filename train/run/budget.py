"""The training budget in steps, derived in code from the config.

The config states the budget and the warmup either in steps or in epochs, and
the peak learning rate at a reference batch size; everything that depends on
the batch size or the dataset size is computed here, so that overriding
`global_batch_size` on the command line can never leave a stale value behind.

An epoch is counted as MLPerf counts it: each block of `epochs_per_block` epochs
is rounded up to whole steps. ImageNet (1,281,167 images) at batch 32,768 takes
157 steps per block of 4 epochs, i.e. 39.25 steps per epoch, so the MLPerf
LARS budget of 64 epochs is 2,512 steps and its 18 warmup epochs 706.5 steps.

Imports no TensorFlow: the trainer, the MLperf logger and the benchmark all
need these numbers.
"""

import dataclasses
import itertools
import math

import ml_collections

from choices import check_choice
from input_pipeline import info
from optim import schedules

# Exponent of global_batch_size / reference_batch_size applied to lr.peak.
_PEAK_EXPONENTS: dict[str, float] = {'none': 0.0, 'sqrt': 0.5, 'linear': 1.0}
# Exponent of the same ratio applied to lr.warmup_epochs; 'linear' is the LAMB
# paper's "linear-epoch warmup" (20 epochs at 32K, 0.3125 at 512).
_WARMUP_EXPONENTS: dict[str, float] = {'none': 0.0, 'linear': 1.0}

# A product of floats that should be a whole number of steps (e.g. 64 epochs
# times 157/4 steps per epoch) may miss it by rounding error; within this
# relative tolerance it counts as whole rather than being rounded up.
_WHOLE_STEP_RTOL = 1e-9


@dataclasses.dataclass(frozen=True)
class Budget:
  """The run's length and learning-rate timing, in steps (updates).

  Attributes:
    num_train_examples: the size of the training split the epochs count.
    steps_per_epoch: MLPerf's rounded steps per epoch (see `steps_per_epoch`).
    num_train_steps: the number of updates of the run.
    num_epochs: the budget in MLPerf epochs, num_train_steps / steps_per_epoch
      (above the configured `num_epochs` when that ends inside a block and the
      partial block was rounded up).
    warmup_steps: the end of warmup t_warmup; may be fractional (706.5).
    warmup_epochs: warmup_steps / steps_per_epoch, after batch scaling.
    decay_steps: the step T at which the decay reaches its final rate.
    peak_learning_rate: lr.peak after batch scaling (`peak_learning_rate`).
    eval_every_steps: the eval cadence, `eval_every_steps` or `eval_every_epochs`
      rounded up to whole steps (4 MLPerf epochs are exactly one block).
  """
  num_train_examples: int
  steps_per_epoch: float
  num_train_steps: int
  num_epochs: float
  warmup_steps: float
  warmup_epochs: float
  decay_steps: float
  peak_learning_rate: float
  eval_every_steps: int


def steps_per_epoch(num_train_examples: int, global_batch_size: int,
                    epochs_per_block: int) -> float:
  """MLPerf's steps per epoch: ceil(epochs_per_block * N / B) / epochs_per_block.

  Each block of `epochs_per_block` epochs is rounded up to whole steps, so the
  result is a multiple of 1 / epochs_per_block (ImageNet at 32,768 with blocks of
  4 epochs: 157 / 4 = 39.25).
  """
  for name, value in [('num_train_examples', num_train_examples),
                      ('global_batch_size', global_batch_size),
                      ('epochs_per_block', epochs_per_block)]:
    if not (isinstance(value, int) and value > 0):
      raise ValueError(f'{name}={value!r} must be an integer > 0')
  # Integer ceiling division: exact for any dataset size.
  steps_per_block = -(-epochs_per_block * num_train_examples // global_batch_size)
  return steps_per_block / epochs_per_block


def _scale(name: str, exponents: dict[str, float], config: ml_collections.ConfigDict
           ) -> float:
  """(global_batch_size / lr.reference_batch_size) ** exponents[lr.<name>]."""
  mode = config.lr[name]
  check_choice(f'lr.{name}', mode, sorted(exponents), show=str)
  ratio = config.global_batch_size / config.lr.reference_batch_size
  return ratio ** exponents[mode]


def peak_learning_rate(config: ml_collections.ConfigDict) -> float:
  """lr.peak * (global_batch_size / lr.reference_batch_size) ** e(lr.batch_scaling).

  e is 0 for 'none', 0.5 for 'sqrt' and 1 for 'linear'. LAMB paper, Table 5, with
  sqrt scaling from 0.04 at 32K: 0.04 / 2^3 = 0.005 at 512.
  """
  return config.lr.peak * _scale('batch_scaling', _PEAK_EXPONENTS, config)


def _ceil_steps(x: float) -> int:
  """Rounds up to whole steps, but a float within rounding error of a whole number
  is that number (64 * 39.25 is 2,512, not 2,513)."""
  nearest = round(x)
  if abs(x - nearest) <= _WHOLE_STEP_RTOL * max(1.0, abs(x)):
    return int(nearest)
  return math.ceil(x)


def _num_train_steps(config: ml_collections.ConfigDict, per_epoch: float) -> int:
  """The budget given as `num_train_steps`, or as `num_epochs` (num_train_steps 0).

  In epochs: num_epochs / epochs_per_block blocks of whole steps. When num_epochs
  is not a multiple of the block, the partial block is rounded up to whole steps:
  ceil(num_epochs * steps_per_epoch).
  """
  if config.num_epochs is None:
    return config.num_train_steps
  if config.num_train_steps != 0:
    raise ValueError(
        f'num_epochs={config.num_epochs} and num_train_steps={config.num_train_steps} '
        'are both set; set num_train_steps=0 to give the budget in epochs')
  if not config.num_epochs > 0:
    raise ValueError(f'num_epochs={config.num_epochs} must be > 0')
  return _ceil_steps(config.num_epochs * per_epoch)


def _warmup_steps(config: ml_collections.ConfigDict, per_epoch: float) -> float:
  """`lr.warmup_steps`, or `lr.warmup_epochs` (batch-scaled) converted to steps.

  The conversion keeps fractions: 18 epochs at 39.25 steps per epoch is 706.5.
  """
  lr = config.lr
  if lr.warmup_epochs is None:
    if lr.warmup_batch_scaling != 'none':
      raise ValueError(
          f'lr.warmup_batch_scaling={lr.warmup_batch_scaling!r} needs the warmup in '
          f'epochs: set lr.warmup_epochs and lr.warmup_steps=0 '
          f'(now lr.warmup_steps={lr.warmup_steps})')
    return float(lr.warmup_steps)
  if lr.warmup_steps != 0:
    raise ValueError(
        f'lr.warmup_epochs={lr.warmup_epochs} and lr.warmup_steps={lr.warmup_steps} '
        'are both set; set lr.warmup_steps=0 to give the warmup in epochs')
  epochs = lr.warmup_epochs * _scale('warmup_batch_scaling', _WARMUP_EXPONENTS, config)
  return epochs * per_epoch


def resolve_budget(config: ml_collections.ConfigDict,
                   num_train_examples: int | None = None) -> Budget:
  """The budget of `config` in steps.

  Args:
    config: the harness config (`num_train_steps`, `num_epochs`,
      `epochs_per_block`, `global_batch_size`, `dataset` and `lr.*`).
    num_train_examples: the training split's size; by default that of
      `config.dataset` from input_pipeline.info.

  Raises:
    ValueError: naming the keys, when the budget or the warmup is given both in
      steps and in epochs, when a scaling mode is unknown, or when the warmup
      does not end before the decay does.
  """
  if num_train_examples is None:
    num_train_examples = info.get_dataset_info(config.dataset).num_train_examples
  per_epoch = steps_per_epoch(num_train_examples, config.global_batch_size,
                              config.epochs_per_block)
  num_steps = _num_train_steps(config, per_epoch)
  if not (isinstance(num_steps, int) and num_steps > 0):
    raise ValueError(f'num_train_steps={num_steps!r} must be an integer > 0 '
                     '(or 0 with num_epochs set)')
  warmup = _warmup_steps(config, per_epoch)
  decay = float(num_steps if config.lr.decay_steps is None else config.lr.decay_steps)
  if not 0 <= warmup < decay:
    raise ValueError(
        f'the warmup ({warmup} steps from lr.warmup_steps/lr.warmup_epochs) must be '
        f'in [0, decay_steps={decay}) (lr.decay_steps, or the budget num_train_steps'
        '/num_epochs)')
  return Budget(
      num_train_examples=num_train_examples,
      steps_per_epoch=per_epoch,
      num_train_steps=num_steps,
      num_epochs=num_steps / per_epoch,
      warmup_steps=warmup,
      warmup_epochs=warmup / per_epoch,
      decay_steps=decay,
      peak_learning_rate=peak_learning_rate(config),
      eval_every_steps=_eval_every_steps(config, per_epoch))


def _eval_every_steps(config: ml_collections.ConfigDict, per_epoch: float) -> int:
  if config.eval_every_epochs is None:
    return config.eval_every_steps
  if config.eval_every_steps != 0:
    raise ValueError(
        f'eval_every_epochs={config.eval_every_epochs} and eval_every_steps='
        f'{config.eval_every_steps} are both set; set eval_every_steps=0 to give '
        'the cadence in epochs')
  return max(1, _ceil_steps(config.eval_every_epochs * per_epoch))


@dataclasses.dataclass(frozen=True)
class EvalPoint:
  """One evaluation of the run: after `step` updates, `epoch` MLPerf epochs in."""
  step: int
  epoch: float


def first_eval_epoch(eval_every_epochs: float, eval_offset_epochs: int) -> float:
  """The epoch of the first eval of MLPerf's cadence "every P epochs, offset k".

  MLPerf's ResNet rule (training_rules.adoc, Quality measure: "Every 4 epochs
  with offset 0 or 1 or 2 or 3") follows the reference implementations, which
  evaluate after the epoch of 0-based index e when e % P == k: after epochs
  k + 1, k + 1 + P, ... counted from 1 (NVIDIA's EVAL_OFFSET=2 "targets epoch
  35": 3, 7, ..., 35). Offset 3 evaluates at 4, 8, 12, ...; offset 0 at 1, 5, 9.
  For P < 1 the epochs k + 1 + j * P of negative j that are > 0 count too, so
  offset 0 with P = 0.5 evaluates at 0.5, 1.0, 1.5, ...

  Raises:
    ValueError: when the offset is not an integer in [0, P).
  """
  if not (isinstance(eval_offset_epochs, int) and 0 <= eval_offset_epochs < eval_every_epochs):
    raise ValueError(f'eval_offset_epochs={eval_offset_epochs!r} must be an integer in '
                     f'[0, eval_every_epochs={eval_every_epochs})')
  first = math.fmod(eval_offset_epochs + 1, eval_every_epochs)
  return first if first > 0 else float(eval_every_epochs)


def eval_points(config: ml_collections.ConfigDict, run_budget: Budget) -> list[EvalPoint]:
  """Every eval of the run in order; the last one ends the budget.

  With the cadence in steps (`eval_every_steps`): every that many steps, at
  epoch step / steps_per_epoch. With the cadence in epochs (`eval_every_epochs`,
  `eval_offset_epochs`, see `first_eval_epoch`): at whole MLPerf epochs, each
  rounded up to whole steps; the offset is not used with the cadence in steps.
  Either way the end of the budget is evaluated too, at its own epoch unless
  it falls on the cadence.
  """
  per_epoch = run_budget.steps_per_epoch
  num_steps = run_budget.num_train_steps
  if config.eval_every_epochs is None:
    every = run_budget.eval_every_steps
    cadence = [EvalPoint(s, s / per_epoch) for s in range(every, num_steps, every)]
  else:
    every = config.eval_every_epochs
    first = first_eval_epoch(every, config.eval_offset_epochs)
    cadence = []
    for k in itertools.count():
      epoch = first + k * every
      step = _ceil_steps(epoch * per_epoch)
      if step > num_steps:
        break
      if not cadence or step > cadence[-1].step:  # Below a step per eval: skip repeats.
        cadence.append(EvalPoint(step, epoch))
  if not cadence or cadence[-1].step != num_steps:
    # A budget given in epochs ends at its epoch, though its last partial block
    # was rounded up to whole steps (37 epochs at 392.75 steps: 14,532 steps).
    end = num_steps / per_epoch if config.num_epochs is None else config.num_epochs
    cadence.append(EvalPoint(num_steps, end))
  return cadence


def learning_rate_fn(config: ml_collections.ConfigDict,
                     num_train_examples: int | None = None) -> schedules.Schedule:
  """The run's learning-rate schedule: `config.lr` over the resolved budget.

  `num_train_examples` defaults to the size of `config.dataset`'s training split.
  """
  return schedules.create_learning_rate_fn(
      config.lr, resolve_budget(config, num_train_examples))
