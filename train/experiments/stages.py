"""A search in stages, as the Reality Check tuned (Table 4, Appendix D.3): what
each stage draws, which of its trials count, and which one wins. No training.

A config file's `get_search()` returns a `search_space.Search`: stages run in
order, each a search of its own, then the best point of the last stage runs
for `confirm_seeds` fresh seeds (train/experiments/staged.py runs them).

- A 'grid' stage runs every point of the product of its Choice axes.
- A 'quasi_random' stage draws the first points of a scrambled Halton sequence
  (train/experiments/search.py), seeded by the config's seed plus the stage's
  index. A trial counts toward the stage's `num_trials` only when it is
  feasible: every seed finished and none diverged (result.json's status
  'diverged': a NaN or infinite loss). While fewer are feasible, the stage
  draws as many more as are missing, never past `max_draws`: a longer prefix
  of the same sequence, so the trials drawn before stay what they were, and the
  stage never ends with more than `num_trials` feasible trials. The paper
  needed 67 LAMB trials for 25 feasible ones; the report gives both counts.
- Trials are ranked by the Search's metric (a key of `search_space.METRICS`,
  a median over the trial's seeds), feasible ones first; the best feasible
  trial with a value of the metric is the stage's choice.
- A stage with `narrow_to_best` takes its ranges from the previous stage's
  best trials (`narrowed_space`).
"""

import dataclasses
import itertools
import json
import math
import os
import re
from typing import Any, Sequence

import ml_collections
import numpy as np

from configs import search_space
from train.common import errors
from train.experiments import plan as plan_lib
from train.experiments import search
from train.experiments import statistics

Stage = search_space.Stage
Search = search_space.Search
GRID, QUASI_RANDOM = 'grid', 'quasi_random'
# What DIR/study_spec.json of a staged search says it holds.
STAGED_KIND = 'staged_search'
CONFIRM_DIR = 'confirm'
# Each quasi-random stage may draw this many times its num_trials by default.
DEFAULT_DRAWS_PER_TRIAL = 4
_STAGE_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_-]*$')


class SearchError(errors.BadInput, ValueError):
  """A config file's get_search() is not a search the harness can run, or a
  stage has no feasible trial to go on from; the message says what to change."""


class NoFeasibleTrial(SearchError):
  """A stage has no feasible trial with a value of the metric, so the search
  cannot go on: every trial diverged, or (steps to target) none reached the
  target in half its seeds. A batch-size scaling study counts it as a miss."""


def stage_dir_name(index: int, stage: Stage) -> str:
  """DIR/stage_<n>_<name>: stages numbered from 1, in the order they run."""
  return f'stage_{index + 1}_{stage.name}'


def max_draws(stage: Stage) -> int:
  """The most trials a stage draws: a grid's points, or max_draws (default
  DEFAULT_DRAWS_PER_TRIAL times num_trials)."""
  if stage.mode == GRID:
    return grid_size(stage.space)
  return stage.max_draws or DEFAULT_DRAWS_PER_TRIAL * stage.num_trials


def grid_size(space: Sequence[search.Axis]) -> int:
  return math.prod(len(axis.values) for axis in space)


def grid_points(space: Sequence[search.Axis]) -> list[dict[str, Any]]:
  """Every point of the product of the Choice axes, the first axis slowest."""
  return [{axis.key: value for axis, value in zip(space, values)}
          for values in itertools.product(*(axis.values for axis in space))]


def first_draws(stage: Stage) -> int:
  """Trials a stage plans before any has run: all of a grid, else num_trials."""
  return grid_size(stage.space) if stage.mode == GRID else stage.num_trials


def next_draws(stage: Stage, drawn: int, feasible: int) -> int | None:
  """How many trials the stage holds once it draws more, or None when it is
  over: a grid, enough feasible trials, or max_draws drawn. It draws only the
  missing number, so it never ends with more than num_trials feasible."""
  if stage.mode == GRID or feasible >= stage.num_trials or drawn >= max_draws(stage):
    return None
  return min(max_draws(stage), drawn + stage.num_trials - feasible)


def exhausted(stage: Stage, drawn: int, feasible: int) -> bool:
  """A quasi-random stage that drew max_draws trials without num_trials feasible."""
  return stage.mode == QUASI_RANDOM and feasible < stage.num_trials and drawn >= max_draws(stage)


def draw_seed(config_seed: int, index: int) -> int:
  """The Halton scramble's seed of stage `index`: each stage draws its own points."""
  return config_seed + index


def first_confirm_seed(search_: Search, config_seed: int) -> int:
  """The confirmation's first seed: past every seed a trial ran, so that the
  chosen point is measured on seeds that did not choose it."""
  return config_seed + max(stage.seeds_per_trial for stage in search_.stages)


def draw(stage: Stage, space: Sequence[search.Axis], count: int,
         seed: int) -> list[dict[str, Any]]:
  """The stage's first `count` trials (a grid: all of them)."""
  if stage.mode == GRID:
    return grid_points(space)
  return search.draw_trials(space, count, seed=seed)


# --- checks ----------------------------------------------------------------------


def check_search(search_: Search, config: ml_collections.ConfigDict) -> None:
  """Raises SearchError, naming the stage and what to change, unless the
  search can run on `config`."""
  if not isinstance(search_, Search):
    raise SearchError(f'get_search() returned {type(search_).__name__}, not a '
                      'configs.search_space.Search')
  if search_.metric not in search_space.METRICS:
    raise SearchError(f'metric {search_.metric!r} is not one of '
                      f'{", ".join(search_space.METRICS)}')
  if not search_.stages:
    raise SearchError('the search has no stages')
  if search_.confirm_seeds < 0:
    raise SearchError(f'confirm_seeds={search_.confirm_seeds}; give 0 (no confirmation) '
                      'or more')
  names = [stage.name for stage in search_.stages]
  for index, stage in enumerate(search_.stages):
    _check_stage(index, stage, config, names)


def _check_stage(index: int, stage: Stage, config: ml_collections.ConfigDict,
                 names: list[str]) -> None:
  where = f'stage {index + 1} ({stage.name!r})'
  if not isinstance(stage.name, str) or not _STAGE_NAME.match(stage.name):
    raise SearchError(f'{where}: its name must be letters, digits, _ and - (it names '
                      'the stage\'s folder)')
  if names.count(stage.name) > 1:
    raise SearchError(f'{where}: two stages have this name; name each stage once')
  if stage.mode not in search_space.MODES:
    raise SearchError(f'{where}: mode {stage.mode!r}; valid: {", ".join(search_space.MODES)}')
  if not stage.space:
    raise SearchError(f'{where}: its space has no axes')
  if stage.seeds_per_trial < 1:
    raise SearchError(f'{where}: seeds_per_trial={stage.seeds_per_trial}; give 1 or more')
  if stage.narrow_to_best < 0 or (stage.narrow_to_best and index == 0):
    raise SearchError(f'{where}: narrow_to_best={stage.narrow_to_best}; give 0, or a count '
                      'of the previous stage\'s best trials on a later stage')
  if stage.mode == GRID:
    ranges = [axis.key for axis in stage.space if not isinstance(axis, search.Choice)]
    if ranges:
      raise SearchError(f'{where}: a grid runs Choice axes only; {ranges[0]} is a Range '
                        '(give its values as a Choice, e.g. np.logspace points)')
    if stage.num_trials not in (0, grid_size(stage.space)):
      raise SearchError(f'{where}: num_trials={stage.num_trials}, but the grid has '
                        f'{grid_size(stage.space)} points; give 0 (all of them)')
  elif stage.num_trials < 1:
    raise SearchError(f'{where}: num_trials={stage.num_trials}; a quasi-random stage '
                      'needs the number of feasible trials it wants')
  elif max_draws(stage) < stage.num_trials:
    raise SearchError(f'{where}: max_draws={stage.max_draws} is below num_trials='
                      f'{stage.num_trials}')
  try:
    search.check_space(stage.space, config)
  except ValueError as e:
    raise SearchError(f'{where}: {e}') from None


# --- trials and their ranking ------------------------------------------------------


def metric_value(metric: str, summary: dict | None, results: Sequence[dict]) -> float | None:
  """The trial's value of `metric` over its finished seeds (None if it has none)."""
  if not results:
    return None
  if metric == 'median_best_accuracy':
    best = [max(e['accuracy'] for e in run['evals']) for run in results if run.get('evals')]
    value = float(np.median(best)) if best else None
  else:
    value = summary.get(metric)
  return value if value is not None and math.isfinite(value) else None


def trial_record(trial: int, params: dict[str, Any], num_seeds: int,
                 results: Sequence[dict], unfinished: Sequence[dict],
                 metric: str) -> dict[str, Any]:
  """One trial as stage.json holds it: its seeds' outcome and statistics."""
  summary = statistics.summarize(results) if results else None
  num_diverged = sum(run.get('status') == 'diverged' for run in results)
  finished = not unfinished and len(results) == num_seeds
  return {
      'trial': trial,
      'params': params,
      'num_seeds': num_seeds,
      'num_finished': len(results),
      'num_diverged': num_diverged,
      'finished': finished,
      'feasible': finished and num_diverged == 0,
      'metric': metric_value(metric, summary, results),
      'summary': summary,
      'unfinished': list(unfinished),
  }


def rank(trials: Sequence[dict], metric: str) -> list[dict]:
  """Feasible trials first, by `metric` (then median final accuracy), then the
  feasible without a value of it, then the others; ties by trial number."""
  larger_is_better = search_space.METRICS[metric]

  def key(trial: dict) -> tuple:
    value = trial['metric']
    known = value is not None
    accuracy = (trial['summary'] or {}).get('median_final_accuracy')
    return (not trial['feasible'], not known,
            (-value if larger_is_better else value) if known else 0.0,
            -accuracy if accuracy is not None else math.inf, trial['trial'])
  return sorted(trials, key=key)


def best(ranked: Sequence[dict]) -> dict | None:
  """The first of `rank`'s order when it is feasible and has a value of the metric."""
  if ranked and ranked[0]['feasible'] and ranked[0]['metric'] is not None:
    return ranked[0]
  return None


def count_feasible(trials: Sequence[dict]) -> int:
  return sum(trial['feasible'] for trial in trials)


# --- a stage's ranges from the previous stage's best trials --------------------------


def narrowed_space(stage: Stage, previous: Sequence[dict]) -> tuple[search.Axis, ...]:
  """The stage's space, each Range narrowed to the previous stage's best
  trials (`Stage.narrow_to_best`; see its docstring). `previous`: that stage's
  trials, ranked. Raises SearchError when it has no feasible trial."""
  if not stage.narrow_to_best:
    return tuple(stage.space)
  chosen = [t for t in previous if t['feasible'] and t['metric'] is not None]
  chosen = chosen[:stage.narrow_to_best]
  if not chosen:
    raise NoFeasibleTrial(f'stage {stage.name!r} narrows its ranges to the previous stage\'s '
                      'best trials, but that stage has no feasible trial with a value of '
                      'the metric; widen or move its ranges')
  tried = [t for t in previous if t['num_finished']]
  return tuple(_narrowed(axis, [t['params'].get(axis.key) for t in chosen],
                         [t['params'].get(axis.key) for t in tried])
               if isinstance(axis, search.Range) else axis for axis in stage.space)


def _numbers(values: Sequence[Any]) -> list[float] | None:
  if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
    return [float(v) for v in values]
  return None


def _narrowed(axis: search.Range, best_values: list[Any],
              tried_values: list[Any]) -> search.Range:
  """`axis` bounded by the values tried next to the best ones, on its searched
  values; as given when the previous stage did not search its key."""
  best_numbers, tried_numbers = _numbers(best_values), _numbers(tried_values)
  if not best_numbers or tried_numbers is None:
    return axis
  best_searched = [axis.searched_value(v) for v in best_numbers]
  tried_searched = sorted({axis.searched_value(v) for v in tried_numbers})
  low, high = min(best_searched), max(best_searched)
  low = max([v for v in tried_searched if v < low], default=low)
  high = min([v for v in tried_searched if v > high], default=high)
  low, high = max(low, axis.low), min(high, axis.high)
  if not low < high:  # One value, or nothing inside the outer limit: keep the limit.
    return axis
  return dataclasses.replace(axis, low=low, high=high)


# --- as JSON ----------------------------------------------------------------------------


def axis_json(axis: search.Axis) -> dict[str, Any]:
  return json.loads(json.dumps(dataclasses.asdict(axis) | {'type': type(axis).__name__}))


def search_json(search_: Search) -> dict[str, Any]:
  """The search as study_spec.json records it (a rerun with another is refused)."""
  return {
      'metric': search_.metric,
      'confirm_seeds': search_.confirm_seeds,
      'stages': [{'name': s.name, 'mode': s.mode, 'num_trials': s.num_trials,
                  'max_draws': max_draws(s), 'seeds_per_trial': s.seeds_per_trial,
                  'narrow_to_best': s.narrow_to_best,
                  'space': [axis_json(a) for a in s.space]} for s in search_.stages],
  }


def _axis_from_json(values: dict[str, Any]) -> search.Axis:
  fields = {k: v for k, v in values.items() if k != 'type'}
  if values['type'] == 'Choice':
    return search.Choice(fields['key'], tuple(fields['values']))
  return search.Range(**fields)


def search_from_json(values: dict[str, Any]) -> Search:
  """`search_json`'s inverse (max_draws resolved), for a report read from disk."""
  return Search(
      stages=tuple(Stage(name=s['name'], space=tuple(_axis_from_json(a) for a in s['space']),
                         num_trials=s['num_trials'], mode=s['mode'],
                         seeds_per_trial=s['seeds_per_trial'], max_draws=s['max_draws'],
                         narrow_to_best=s['narrow_to_best']) for s in values['stages']),
      confirm_seeds=values['confirm_seeds'], metric=values['metric'])


def is_staged_dir(directory: str) -> bool:
  """Whether DIR/study_spec.json says it holds a staged search."""
  path = os.path.join(directory, plan_lib.SPEC_FILE)
  try:
    with open(path) as f:
      values = json.load(f)
  except (OSError, ValueError):
    return False
  return isinstance(values, dict) and values.get('kind') == STAGED_KIND
