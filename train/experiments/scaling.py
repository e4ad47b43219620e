"""Batch-size scaling studies: the steps to target at each batch size of a
config file's get_scaling(), as one command (`main.py --scaling=MODE`).

After Shallue et al. (2019): at each batch size, either tune (`tuned`: the
staged search of the Scaling's stages, each trial ranked by its median steps to
target, then the best point over `seeds` fresh seeds: train/experiments/staged.py)
or take the config as it is (`untuned`: `seeds` seeds, the peak learning rate
scaled by the config's lr.batch_scaling from lr.reference_batch_size, as
train/run/budget.py does for every run). The batch sizes run in order, each in
its own folder.

Layout of DIR:
  study_spec.json   the config, the mode and get_scaling() (a rerun with another
                    is refused, never mixed in)
  batch_<B>/        each batch size: a staged search (tuned: stage_<n>_<name>/,
                    confirm/, staged_search.json, report.md) or a study
                    (untuned: seed_<s>/, study.json, report.md)
  scaling.json, report.md, steps_to_target.png
                    the curve and its critical batch size
                    (train/experiments/reports/scaling.py)

Each batch size's search or study is an ordinary staged search or plan, so
re-running the same command resumes after a crash or a kill at any point, as a
staged search does, and runs through the same launchers. A batch size whose
search finds no trial that reached the target in half its seeds counts as a
miss (infinitely many steps), and the study goes on to the next batch size.
The report is written from the runs' own files, so `main.py report
--workdir=DIR` writes it at any time.
"""

import os
from typing import Any, Callable

import ml_collections
from absl import logging

from configs import search_space
from input_pipeline import info
from train.common import config_dicts
from train.common import errors
from train.common import files
from train.experiments import critical_batch
from train.experiments import plan as plan_lib
from train.experiments import scaling_spec
from train.experiments import search
from train.experiments import staged
from train.experiments import stages
from train.experiments import states as states_lib
from train.experiments import statistics
from train.experiments import study
from train.experiments.reports import scaling as scaling_report
from train.run import budget

Scaling = search_space.Scaling
TUNED, UNTUNED = search_space.SCALING_MODES
batch_config = scaling_spec.batch_config
batch_dir_name = scaling_spec.batch_dir_name
SUMMARY_FILE = 'scaling.json'
# Runs a plan's runs (or starts workers on them); whether every run is now done.
Work = Callable[[plan_lib.Plan], bool]


def _spec(config: ml_collections.ConfigDict, name: str, scaling: Scaling,
          mode: str) -> dict[str, Any]:
  return {'kind': plan_lib.SCALING_KIND, 'mode': mode, 'name': name,
          'configs': {name: plan_lib.config_values(config)},
          'scaling': scaling_spec.scaling_json(scaling)}


def is_scaling_dir(directory: str) -> bool:
  """Whether DIR/study_spec.json says it holds a scaling study."""
  return plan_lib.spec_kind(directory) == plan_lib.SCALING_KIND


def run_scaling(config: ml_collections.ConfigDict, name: str, scaling: Scaling, mode: str,
                directory: str, work: Work, num_devices: int | None = None) -> dict:
  """Runs (or resumes) the scaling study in `directory`, batch size after batch
  size; returns scaling.json's content, whose 'complete' says whether every
  batch size got to the end (it stops at the first plan `work` leaves unfinished)."""
  spec = _spec(config, name, scaling, mode)
  plan_lib.check_study_dir(directory, spec)
  plan_lib.write_spec(directory, spec)
  for index in range(len(scaling.batch_sizes)):
    if not _run_batch(config, name, scaling, mode, index, directory, work, num_devices):
      break
  return write_report(directory)


def _run_batch(config: ml_collections.ConfigDict, name: str, scaling: Scaling, mode: str,
               index: int, directory: str, work: Work, num_devices: int | None) -> bool:
  """Runs the index-th batch size until it is over; whether it is."""
  size = scaling.batch_sizes[index]
  at_size = batch_config(config, scaling, index)
  batch_dir = os.path.join(directory, batch_dir_name(size))
  entry = f'{name}.{batch_dir_name(size)}'
  if mode == TUNED:
    try:
      return staged.run_staged(at_size, entry, scaling.search, batch_dir, work,
                               num_devices)['complete']
    except stages.NoFeasibleTrial as e:
      logging.warning('batch size %d: %s; it counts as a miss', size, errors.one_line(e))
      return True
  plan = study.plan_study(at_size, entry, batch_dir, scaling.seeds)
  return _all_done(plan) or work(plan)


def _all_done(plan: plan_lib.Plan) -> bool:
  return states_lib.count_states(plan)[states_lib.RunState.DONE] == len(plan.runs)


# --- the summary, from the files of every batch size ------------------------------------


def _search_missed(summary: dict, search_: search_space.Search) -> bool:
  """Whether the staged search stopped for want of a feasible trial: its last
  stage, or a stage before one that narrows to it, is over without a best."""
  records = summary['stages']
  for index, record in enumerate(records):
    if not (record['over'] and record['best'] is None):
      continue
    last = index == len(records) - 1
    if last or search_.stages[index + 1].narrow_to_best:
      return True
  return False


def _tuned_runs(batch_dir: str, search_: search_space.Search) -> dict[str, Any]:
  """A tuned batch size's chosen point and its confirming runs."""
  if not stages.is_staged_dir(batch_dir):
    return {'state': 'not started', 'params': None, 'runs': [], 'unfinished': []}
  summary = staged.write_report(batch_dir)
  if summary['chosen'] is None:
    state = 'no point' if _search_missed(summary, search_) else 'searching'
    return {'state': state, 'params': None, 'runs': [], 'unfinished': []}
  confirmation = summary['confirmation'] or {'runs': [], 'unfinished': []}
  return {'state': 'measured' if summary['complete'] else 'confirming',
          'params': summary['chosen']['params'], 'runs': confirmation['runs'],
          'unfinished': confirmation['unfinished'],
          'directory': f"{os.path.basename(batch_dir)}/{stages.CONFIRM_DIR}"}


def _untuned_runs(batch_dir: str) -> dict[str, Any]:
  """An untuned batch size's runs, its study's report written on the way."""
  if not os.path.exists(os.path.join(batch_dir, plan_lib.PLAN_FILE)):
    return {'state': 'not started', 'params': {}, 'runs': [], 'unfinished': []}
  (study_,) = study.write_report(batch_dir)
  return {'state': 'running' if study_['unfinished'] else 'measured', 'params': {},
          'runs': study_['runs'], 'unfinished': study_['unfinished']}


def _steps_of(run: dict) -> int | None:
  """A run's steps to target; None when it missed."""
  return run['steps_to_target'] if run.get('reached_target') else None


def _point(config: ml_collections.ConfigDict, scaling: Scaling, mode: str, index: int,
           directory: str) -> dict[str, Any]:
  """One batch size as scaling.json holds it."""
  size = scaling.batch_sizes[index]
  batch_dir = os.path.join(directory, batch_dir_name(size))
  found = (_tuned_runs(batch_dir, scaling.search) if mode == TUNED
           else _untuned_runs(batch_dir))
  at_size = batch_config(config, scaling, index)
  the_budget = budget.resolve_budget(
      at_size, info.get_dataset_info(at_size.dataset).num_train_examples)
  runs = found['runs']
  steps = [_steps_of(run) for run in runs]
  reached = [s for s in steps if s is not None]
  measured = found['state'] == 'measured' and len(runs) == scaling.seeds
  missed = found['state'] == 'no point'
  median = statistics.median_or_none(steps) if measured else None
  counted = 'missed' if missed or (measured and median is None) else (
      'measured' if measured else 'not measured')
  params = found['params']
  return {
      'batch_size': size,
      'directory': found.get('directory', os.path.basename(batch_dir)),
      'state': found['state'],
      'counted_as': counted,
      'params': params,
      'peak_learning_rate': None if params is None else budget.peak_learning_rate(
          search.apply_params(at_size, params)),
      'num_train_steps': the_budget.num_train_steps,
      'steps_per_epoch': the_budget.steps_per_epoch,
      'eval_every_steps': the_budget.eval_every_steps,
      'seeds': [run['seed'] for run in runs],
      'steps_to_target': steps,
      'num_runs': len(runs),
      'num_reached_target': len(reached),
      'median_steps_to_target': median,
      'fastest_seed_steps': min(reached, default=None),
      # None: a seed missed (or none ran), so the slowest is infinitely slow.
      'slowest_seed_steps': max(reached) if reached and len(reached) == len(runs) else None,
      'median_epochs_to_target': None if median is None else median / the_budget.steps_per_epoch,
      'unfinished': found['unfinished'],
  }


def _curve_steps(point: dict) -> float | None:
  """What the critical-batch rule reads: the median, inf for a miss, None unmeasured."""
  if point['counted_as'] == 'missed':
    return float('inf')
  return point['median_steps_to_target'] if point['counted_as'] == 'measured' else None


def summarize(directory: str) -> dict[str, Any]:
  """The scaling study in `directory` as scaling.json holds it, from the runs'
  files (each batch size's own report written on the way)."""
  spec = plan_lib.read_json(os.path.join(directory, plan_lib.SPEC_FILE),
                            'restore it, or start the study afresh in a new --workdir')
  name, mode = spec['name'], spec['mode']
  config = config_dicts.from_values(spec['configs'][name])
  scaling = scaling_spec.scaling_from_json(spec['scaling'])
  points = [_point(config, scaling, mode, index, directory)
            for index in range(len(scaling.batch_sizes))]
  rule = critical_batch.critical_batch_size(scaling.batch_sizes,
                                            [_curve_steps(p) for p in points])
  for point, perfect, ratio in zip(points, rule.perfect_steps, rule.ratios):
    point['perfect_scaling_steps'] = perfect
    point['ratio_to_perfect'] = None if ratio is None or ratio == float('inf') else ratio
  return {
      'name': name, 'mode': mode, 'metric': search_space.SCALING_METRIC,
      'batch_sizes': list(scaling.batch_sizes), 'seeds': scaling.seeds,
      'lr_batch_scaling': config.lr.batch_scaling,
      'reference_batch_size': config.lr.reference_batch_size,
      'target_accuracy': config.target_accuracy,
      'complete': all(p['counted_as'] != 'not measured' for p in points),
      'critical_factor': critical_batch.CRITICAL_FACTOR,
      'critical_batch_size': rule.batch_size,
      'critical_batch_size_is_lower_bound': rule.lower_bound,
      'first_batch_size_beyond': rule.first_beyond,
      'critical_reason': rule.reason,
      'wall_seconds': _wall_seconds(directory),
      'points': points,
  }


def _wall_seconds(directory: str) -> float | None:
  """From the first plan of any batch size to the last result of any."""
  starts, ends = [], []
  for root, _, names in os.walk(directory):
    if plan_lib.PLAN_FILE in names:
      created = plan_lib.read_json(os.path.join(root, plan_lib.PLAN_FILE), '').get('created')
      starts += [created] if isinstance(created, (int, float)) else []
    if plan_lib.RESULT_FILE in names:
      ends.append(os.path.getmtime(os.path.join(root, plan_lib.RESULT_FILE)))
  return max(ends) - min(starts) if starts and ends else None


def write_report(directory: str) -> dict[str, Any]:
  """Writes scaling.json, report.md and steps_to_target.png; returns the summary."""
  summary = summarize(directory)
  files.write_json(os.path.join(directory, SUMMARY_FILE), summary)
  scaling_report.write_scaling_report(directory, summary)
  return summary
