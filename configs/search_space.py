"""The axes of a search space: what a config file's get_search_space() returns.

A `Range` is searched on a log or linear scale (optionally over 1 - value, for
momentum's 1 - mu); a `Choice` picks among discrete values. The search itself
(train/experiments/search.py) draws the trials.
"""

import dataclasses
import math
from typing import Any

SCALES = ('log', 'linear')


@dataclasses.dataclass(frozen=True)
class Range:
  """A continuous axis: `key` takes values in [low, high] on `scale`.

  With `one_minus`, the range is that of 1 - value: Range('optimizer.momentum',
  1e-3, 1.0, one_minus=True) searches 1 - mu log-uniformly in [1e-3, 1].
  """
  key: str
  low: float
  high: float
  scale: str = 'log'
  one_minus: bool = False

  def __post_init__(self):
    if self.scale not in SCALES:
      raise ValueError(f'search axis {self.key}: scale {self.scale!r}; valid: {SCALES}')
    if not self.low < self.high:
      raise ValueError(f'search axis {self.key}: low {self.low} must be below high {self.high}')
    if self.scale == 'log' and self.low <= 0:
      raise ValueError(f'search axis {self.key}: a log scale needs low > 0, got {self.low}')

  @property
  def label(self) -> str:
    return f'1 - {self.key}' if self.one_minus else self.key

  def value(self, u: float) -> float:
    """The axis value at the unit-interval coordinate u."""
    if self.scale == 'log':
      searched = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
    else:
      searched = self.low + u * (self.high - self.low)
    return 1.0 - searched if self.one_minus else searched

  def searched_value(self, value: float) -> float:
    """The value on the searched axis (1 - value for `one_minus`), for plots."""
    return 1.0 - value if self.one_minus else value


@dataclasses.dataclass(frozen=True)
class Choice:
  """A discrete axis: `key` takes one of `values`, each equally likely."""
  key: str
  values: tuple[Any, ...]

  def __post_init__(self):
    if not self.values:
      raise ValueError(f'search axis {self.key}: no values to choose from')

  @property
  def label(self) -> str:
    return self.key

  def value(self, u: float) -> Any:
    return self.values[min(int(u * len(self.values)), len(self.values) - 1)]

  def searched_value(self, value: Any) -> Any:
    return value


Axis = Range | Choice


# --- searches in stages: what a config file's get_search() returns -------------

MODES = ('quasi_random', 'grid')
# What a stage's trials are ranked by: a key of each trial's study summary
# (the median over its seeds), and whether larger is better.
METRICS = {'median_final_accuracy': True, 'median_best_accuracy': True,
           'median_steps_to_target': False}


@dataclasses.dataclass(frozen=True)
class Stage:
  """One stage of a search.

  'quasi_random' draws trials from `space` (scrambled Halton) until
  `num_trials` of them are feasible (no seed diverged), drawing at most
  `max_draws` in all; 'grid' runs every point of the product of `space`'s
  Choice axes once. Each trial runs for `seeds_per_trial` seeds.

  `narrow_to_best` (0: off; not on a search's first stage) derives this
  stage's ranges from the previous stage's results, as a user re-tuning for
  another budget wants instead of writing the refined ranges by hand: each
  Range axis of `space` whose key the previous stage also searched runs from
  the value tried just below the `narrow_to_best` best feasible trials to the
  one tried just above them (the smallest and largest of those trials' own
  values where none was tried beyond), on the axis' searched values (1 - value
  with `one_minus`), clipped to the Range given here, which is the outer limit.
  Other axes stay as given. train/experiments/stages.py computes it.
  """
  name: str
  space: tuple[Axis, ...]
  num_trials: int = 0  # Feasible trials wanted ('quasi_random' only).
  mode: str = 'quasi_random'
  seeds_per_trial: int = 1
  max_draws: int | None = None  # Default: 4 * num_trials.
  narrow_to_best: int = 0  # Best trials of the previous stage that bound its ranges.


@dataclasses.dataclass(frozen=True)
class Search:
  """A search as one command: its stages in order, then the best point of the
  last stage run for `confirm_seeds` seeds (0: no confirmation), every trial
  ranked by `metric` (a key of METRICS)."""
  stages: tuple[Stage, ...]
  confirm_seeds: int = 5
  metric: str = 'median_final_accuracy'


# --- batch-size scaling: what a config file's get_scaling() returns ----------------

# What `main.py --scaling=MODE` runs at each batch size: the staged search of the
# Scaling's stages (tuned), or the config as it is with its learning rate scaled
# by lr.batch_scaling from lr.reference_batch_size (untuned).
SCALING_MODES = ('tuned', 'untuned')
# The metric a scaling study tunes each batch size for (Shallue et al. 2019's
# "steps to result").
SCALING_METRIC = 'median_steps_to_target'


@dataclasses.dataclass(frozen=True)
class Scaling:
  """A batch-size scaling study: steps to target against the batch size.

  At each of `batch_sizes` (increasing), `main.py --scaling=tuned` runs the
  staged search of `stages`, every trial ranked by its median steps to target,
  then the best point for `seeds` fresh seeds; `--scaling=untuned` runs the
  config itself for `seeds` seeds, its peak learning rate scaled by the config's
  lr.batch_scaling ('none', 'sqrt', 'linear') from lr.reference_batch_size.
  `num_train_steps`: the step budget at each batch size, in the same order
  (empty: the config's own budget at every batch size; given in epochs, that is
  the same epochs at each). train/experiments/scaling.py runs it.
  """
  batch_sizes: tuple[int, ...]
  stages: tuple[Stage, ...] = ()
  seeds: int = 5
  num_train_steps: tuple[int, ...] = ()

  @property
  def search(self) -> Search:
    """The staged search run at each batch size (tuned)."""
    return Search(stages=self.stages, confirm_seeds=self.seeds, metric=SCALING_METRIC)
