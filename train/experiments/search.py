"""Quasi-random search (Bousquet et al., 2017), as the Reality Check paper tuned.

A search space is a list of axes, each naming a config key: a `Range` searched on a
log or linear scale (optionally over 1 - value, for momentum's 1 - mu), or a
`Choice` among discrete values. A config file offers its space through a
`get_search_space()` function next to `get_config()`. Trials are the first points
of a scrambled Halton sequence seeded by the config's seed, so a search is
reproducible and asking for more trials keeps the earlier ones.
"""

from typing import Any, Sequence

import ml_collections
from scipy.stats import qmc

from configs import search_space
from train.common import config_dicts

Range = search_space.Range
Choice = search_space.Choice
Axis = search_space.Axis


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
      node, leaf = config_dicts.parent_and_leaf(config, axis.key)
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
    node, leaf = config_dicts.parent_and_leaf(config, key)
    is_int = isinstance(node[leaf], int) and not isinstance(node[leaf], bool)
    values[key] = int(round(value)) if is_int else value
  return config_dicts.with_overrides(config, values)
