"""Quasi-random search (Bousquet et al., 2017), as the Reality Check paper tuned.

A search space is a list of axes, each naming a config key: a `Range` searched on a
log or linear scale (optionally over 1 - value, for momentum's 1 - mu), or a
`Choice` among discrete values. A config file offers its space through a
`get_search_space()` function next to `get_config()`. Trials are the first points
of a scrambled Halton sequence seeded by the config's seed, so a search is
reproducible and asking for more trials keeps the earlier ones.
"""

import dataclasses
import math
from typing import Any, Sequence

import ml_collections
from scipy.stats import qmc

from train.cli import config_files

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


def draw_trials(space: Sequence[Axis], num_trials: int, seed: int) -> list[dict[str, Any]]:
  """The first `num_trials` points of a scrambled Halton sequence, as {key: value}."""
  sampler = qmc.Halton(d=len(space), scramble=True, seed=seed)
  points = sampler.random(num_trials)
  return [{axis.key: axis.value(float(u)) for axis, u in zip(space, point)}
          for point in points]


def check_space(space: Sequence[Axis], config: ml_collections.ConfigDict) -> None:
  """Raises ValueError unless every axis names a distinct numeric key of `config`."""
  keys = [axis.key for axis in space]
  if len(set(keys)) != len(keys):
    raise ValueError(f'search space names a key twice: {keys}')
  for axis in space:
    try:
      node, leaf = config_files.parent_and_leaf(config, axis.key)
      current = node[leaf]
    except (KeyError, AttributeError):
      raise ValueError(f'search axis {axis.key!r} is not a config key') from None
    if isinstance(axis, Range) and not isinstance(current, (int, float)):
      raise ValueError(f'search axis {axis.key!r} is a range but the key holds '
                       f'{type(current).__name__}')


def apply_params(config: ml_collections.ConfigDict,
                 params: dict[str, Any]) -> ml_collections.ConfigDict:
  """A copy of `config` with the trial's values set (ints stay ints)."""
  values = {}
  for key, value in params.items():
    node, leaf = config_files.parent_and_leaf(config, key)
    is_int = isinstance(node[leaf], int) and not isinstance(node[leaf], bool)
    values[key] = int(round(value)) if is_int else value
  return config_files.with_overrides(config, values)
