"""What a batch-size scaling study is, without running it: get_scaling()'s
checks, the config at each batch size, and the study as study_spec.json records
it. Light (no TensorFlow, no training): the command line checks a study with it
before anything heavy is imported; train/experiments/scaling.py runs it.
"""

from typing import Any

import ml_collections

from configs import search_space
from train.common import config_dicts
from train.common import errors
from train.experiments import stages

Scaling = search_space.Scaling
TUNED, UNTUNED = search_space.SCALING_MODES


class ScalingError(errors.BadInput, ValueError):
  """A config file's get_scaling() is not a study the harness can run; the
  message says what to change."""


def batch_dir_name(batch_size: int) -> str:
  return f'batch_{batch_size}'


def batch_config(config: ml_collections.ConfigDict, scaling: Scaling,
                 index: int) -> ml_collections.ConfigDict:
  """The config at the index-th batch size, with its step budget if the Scaling
  gives one (then in steps, whatever the config's own budget was in)."""
  values: dict[str, Any] = {'global_batch_size': scaling.batch_sizes[index]}
  if scaling.num_train_steps:
    values.update(num_train_steps=scaling.num_train_steps[index], num_epochs=None)
  return config_dicts.with_overrides(config, values)


# --- checks -----------------------------------------------------------------------


def _is_count(value: Any) -> bool:
  return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_scaling(scaling: Any, config: ml_collections.ConfigDict, mode: str) -> None:
  """Raises ScalingError, naming what to change, unless `scaling` can run on
  `config` in `mode` (each batch size's config is validated by the caller)."""
  if not isinstance(scaling, Scaling):
    raise ScalingError(f'get_scaling() returned {type(scaling).__name__}, not a '
                       'configs.search_space.Scaling')
  sizes = scaling.batch_sizes
  if not isinstance(sizes, tuple) or len(sizes) < 2 or not all(map(_is_count, sizes)):
    raise ScalingError(f'batch_sizes={sizes!r}; give a tuple of 2 or more integers > 0')
  if list(sizes) != sorted(set(sizes)):
    raise ScalingError(f'batch_sizes={sizes!r} must increase (each size once): the curve '
                       'and its perfect-scaling line start from the smallest')
  if not _is_count(scaling.seeds):
    raise ScalingError(f'seeds={scaling.seeds!r}; give 1 or more seeds per batch size')
  steps = scaling.num_train_steps
  if steps and (len(steps) != len(sizes) or not all(map(_is_count, steps))):
    raise ScalingError(f'num_train_steps={steps!r}; give one integer > 0 per batch size '
                       f'({len(sizes)}), or () for the config\'s own budget')
  if mode == UNTUNED:
    return
  if not scaling.stages:
    raise ScalingError('--scaling=tuned needs the stages of a search (stages=...); give '
                       'them, or run --scaling=untuned')
  for index, stage in enumerate(scaling.stages):
    if any(getattr(axis, 'key', None) == 'global_batch_size' for axis in stage.space):
      raise ScalingError(f'stage {index + 1} ({stage.name!r}) searches global_batch_size, '
                         'which batch_sizes sets; drop that axis')
  try:
    stages.check_search(scaling.search, config)
  except stages.SearchError as e:
    raise ScalingError(f'its stages: {e}') from None


# --- as JSON ---------------------------------------------------------------------------


def scaling_json(scaling: Scaling) -> dict[str, Any]:
  """get_scaling() as study_spec.json records it."""
  return {'batch_sizes': list(scaling.batch_sizes), 'seeds': scaling.seeds,
          'num_train_steps': list(scaling.num_train_steps),
          'search': stages.search_json(scaling.search) if scaling.stages else None}


def scaling_from_json(values: dict[str, Any]) -> Scaling:
  search_ = values['search'] and stages.search_from_json(values['search'])
  return Scaling(batch_sizes=tuple(values['batch_sizes']),
                 stages=search_.stages if search_ else (), seeds=values['seeds'],
                 num_train_steps=tuple(values['num_train_steps']))
