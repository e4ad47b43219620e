"""Studies: a config over many seeds, several configs side by side, or a search.

Layouts (every run directory holds the files of a single run):
  study       DIR/seed_<s>/, DIR/study.json, DIR/report.md and its plots, and
              DIR/mlperf/<org>/: the first 5 runs' mlperf.log as an MLPerf
              submission tree (train/mlperf/results.write_results_folder)
  comparison  DIR/<config name>/ (a study each), DIR/comparison.json, DIR/report.md
  search      DIR/trial_<k>/ (a study each), DIR/search.json, DIR/report.md

`DIR/study_spec.json` records what the directory holds. Re-running the same
command resumes: a seed whose `result.json` exists is read back, not re-run; a
seed that was interrupted is moved aside (`seed_<s>.interrupted.<n>`) and run
again. A directory that holds another study is refused, never overwritten.

The seeds of all configs run interleaved (seed s of every config before seed s+1),
so an interrupted comparison stays balanced, and in one process that compiles each
config's programs once (`programs.StepCache`).
"""

import dataclasses
import json
import os
import time
from typing import Any, Sequence

import jax
import ml_collections
import numpy as np
from absl import logging

from input_pipeline import info
from train.common import config_dicts
from train.common import console
from train.common import files
from train.experiments import report
from train.experiments import search
from train.experiments import statistics
from train.mlperf import results as mlperf_results
from train.mlperf import rules
from train.run import budget
from train.run import checkpoint
from train.run import loop
from train.run import mllog
from train.run import programs


class StudyDirError(ValueError):
  """The study directory holds something else; the message says what."""


@dataclasses.dataclass(frozen=True)
class Entry:
  """One config of a study and the directory its seeds go to."""
  name: str
  config: ml_collections.ConfigDict
  directory: str


def _read_json(path: str, remedy: str) -> Any:
  """The JSON file at `path`; StudyDirError, with `remedy`, when it cannot be read."""
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise StudyDirError(f'{path} cannot be read ({type(e).__name__}: '
                        f'{" ".join(str(e).split())}); {remedy}') from None


def _seed_remedy(run_dir: str) -> str:
  return f'move {run_dir} aside (the seed then runs again) and re-run the same command'


def _config_values(config: ml_collections.ConfigDict) -> dict:
  return json.loads(config.to_json())


def check_study_dir(directory: str, spec: dict) -> None:
  """Refuses a directory that holds a single run or a study of something else.

  `spec` says what the study is: its kind and each config (the seed counts and
  trial counts may grow between invocations, so they are not part of it).
  """
  if os.path.exists(os.path.join(directory, 'result.json')):
    raise StudyDirError(f'--workdir={directory} holds a single run (result.json), '
                        'not a study; choose a new --workdir')
  path = os.path.join(directory, 'study_spec.json')
  if os.path.exists(path):
    existing = _read_json(path, 'it records what the study holds: restore it, or '
                          'choose a new --workdir')
    if existing != spec:
      # The spec is {'kind': ..., 'configs': {name: config}}: name what differs.
      raise StudyDirError(
          f'--workdir={directory} holds another study ({path}): '
          f'{config_dicts.differences(existing, spec)}; choose a new --workdir or re-run '
          'its own command')
  elif os.path.isdir(directory) and set(os.listdir(directory)) - {console.LOG_FILE}:
    raise StudyDirError(f'--workdir={directory} is not empty and holds no study; '
                        'choose a new --workdir')


def write_spec(directory: str, spec: dict) -> None:
  os.makedirs(directory, exist_ok=True)
  files.write_json(os.path.join(directory, 'study_spec.json'), spec)


def _set_aside(run_dir: str) -> str:
  n = 1
  while os.path.exists(f'{run_dir}.interrupted.{n}'):
    n += 1
  os.replace(run_dir, f'{run_dir}.interrupted.{n}')
  return f'{run_dir}.interrupted.{n}'


def run_or_resume(entry: Entry, seed: int, step_cache: programs.StepCache,
                  progress: console.Progress | None = None) -> tuple[dict, bool]:
  """The result of `seed` of `entry`: read back if finished, else run. (result, ran).

  `progress`, if given, shows the run as it goes and its line once it is done.
  """
  progress = progress or console.Progress(1, enabled=False)
  label = f'{entry.name} seed {seed}'
  progress.start_run(label)
  run_dir = os.path.join(entry.directory, f'seed_{seed}')
  result_path = os.path.join(run_dir, 'result.json')
  config = entry.config.copy_and_resolve_references()
  config.seed = seed
  if os.path.exists(result_path):
    if (_read_json(os.path.join(run_dir, 'config.json'), _seed_remedy(run_dir))
        != _config_values(config)):
      raise StudyDirError(f'{run_dir} holds a run of another config; '
                          'choose a new --workdir')
    logging.info('%s seed %d: finished earlier, read from %s', entry.name, seed, result_path)
    result = _read_json(result_path, _seed_remedy(run_dir))
    progress.finish_run(console.run_line(label, result, earlier=True), ran=False)
    return result, False
  if os.path.exists(run_dir):
    try:  # An unreadable config.json of an unfinished seed: moved aside below.
      same_config = (_read_json(os.path.join(run_dir, 'config.json'), '')
                     == _config_values(config))
    except StudyDirError:
      same_config = False
    if same_config and checkpoint.has_checkpoints(run_dir):
      logging.warning('%s seed %d was interrupted; it resumes from its checkpoint in %s',
                      entry.name, seed, run_dir)
    else:
      moved = _set_aside(run_dir)
      logging.warning('%s seed %d was interrupted before its first checkpoint; its files '
                      'are kept in %s and the seed runs again from the start',
                      entry.name, seed, moved)
  logging.info('%s seed %d: training in %s', entry.name, seed, run_dir)
  result = loop.train_and_evaluate(config, run_dir, step_cache, progress=progress)
  progress.finish_run(console.run_line(label, result))
  return result, True


def learning_rate_curve(config: ml_collections.ConfigDict,
                        num_points: int = 500) -> tuple[list[int], list[float]]:
  """The schedule at up to `num_points` steps of the budget, for the report."""
  num_examples = info.get_dataset_info(config.dataset).num_train_examples
  num_steps = budget.resolve_budget(config, num_examples).num_train_steps
  fn = budget.learning_rate_fn(config, num_examples)
  steps = sorted(set(np.linspace(0, num_steps, num_points).astype(int).tolist()))
  return steps, [float(fn(s)) for s in steps]


def config_summary(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The keys a reader of a report wants first."""
  return {
      'dataset': config.dataset,
      'model': f'ResNet-{config.model.depth} {config.model.version}, width '
               f'{config.model.width}, {config.image_size} px',
      'optimizer (kernels / BN and biases)':
          f'{config.optimizer.name} / {config.optimizer.bn_bias_name}',
      'global batch size': config.global_batch_size,
      'budget': (f'{config.num_train_steps} steps' if config.num_train_steps
                 else f'{config.num_epochs} epochs'),
      'learning rate': f'{config.lr.schedule}, peak {config.lr.peak:g}, warmup '
                       f'{config.lr.warmup_steps or config.lr.warmup_epochs} '
                       f'{"steps" if config.lr.warmup_steps else "epochs"}',
      'momentum': config.optimizer.momentum,
      'L2 / weight decay': f'{config.optimizer.l2:g} / {config.optimizer.weight_decay:g}',
      'label smoothing': config.label_smoothing,
      'virtual batch, gamma_0': (f'{config.model.virtual_batch_size}, '
                                 f'{config.model.last_bn_scale:g}'),
      'target accuracy': config.target_accuracy,
      'stop at target': config.stop_at_target,
  }


def _finish_study(entry: Entry, results: list[dict], seeds: list[int],
                  wall_seconds: float, num_ran: int) -> dict:
  """Writes study.json and report.md of one config; returns study.json's content."""
  summary = statistics.summarize(results)
  study = {
      'name': entry.name,
      'seeds': seeds,
      **summary,
      'wall_seconds': wall_seconds,
      'num_runs_this_invocation': num_ran,
      'sum_run_seconds': sum(r['run_seconds'] for r in results),
      'sum_init_seconds': sum(r['init_seconds'] for r in results),
      'runs': results,
  }
  # The runs that make the MLPerf score, as an MLPerf submission tree.
  scored = results[:statistics.MLPERF_RESNET_RUNS]
  org_folder = mlperf_results.write_results_folder(
      entry.directory, entry.config,
      [os.path.join(entry.directory, f'seed_{s}', 'mlperf.log')
       for s in seeds[:statistics.MLPERF_RESNET_RUNS]])
  study['mlperf'] = mlperf_summary(entry.config, scored, org_folder, entry.directory)
  files.write_json(os.path.join(entry.directory, 'study.json'), study)
  report.write_study_report(entry.directory, entry.name, summary, results,
                            learning_rate_curve(entry.config), wall_seconds,
                            config_summary(entry.config), mlperf=study['mlperf'])
  return study


def mlperf_summary(config: ml_collections.ConfigDict, scored: Sequence[dict],
                   org_folder: str, study_dir: str) -> dict[str, Any]:
  """The study as an MLPerf submission: division, results folder and RCP verdict.

  The RCP verdict is the 4.0.0 ResNet RCP of the config's batch size against
  the scored runs' epochs to target; MLPerf's RCPs were measured with the
  closed LARS and SGD recipes on ImageNet, so on other data it says only how
  the epoch counts compare.
  """
  verdict = mlperf_results.rcp_verdict(config.global_batch_size,
                                   [run.get('epochs_to_target') for run in scored])
  return {
      'division': config.mlperf.submission_division,
      'ruleset': mllog.RULESET,
      'num_scored_runs': len(scored),
      'results_folder': os.path.relpath(org_folder, study_dir),
      'rcp': dataclasses.asdict(verdict),
  }


def run_entries(entries: Sequence[Entry], num_seeds: int) -> list[dict]:
  """Runs `num_seeds` seeds of every entry, interleaved; returns each entry's study."""
  start = time.perf_counter()
  step_cache = programs.StepCache()
  results: dict[str, list[dict]] = {e.name: [] for e in entries}
  num_ran = dict.fromkeys(results, 0)
  for entry in entries:
    os.makedirs(entry.directory, exist_ok=True)
    loop.write_config(entry.config, entry.directory)
  with console.Progress(len(entries) * num_seeds,
                        enabled=jax.process_index() == 0) as progress:
    for offset in range(num_seeds):
      for entry in entries:
        result, ran = run_or_resume(entry, entry.config.seed + offset, step_cache, progress)
        results[entry.name].append(result)
        num_ran[entry.name] += ran
  wall_seconds = time.perf_counter() - start
  studies = []
  for entry in entries:
    seeds = [entry.config.seed + i for i in range(num_seeds)]
    studies.append(_finish_study(entry, results[entry.name], seeds, wall_seconds,
                                 num_ran[entry.name]))
  return studies


def run_study(config: ml_collections.ConfigDict, name: str, directory: str,
              num_seeds: int) -> dict:
  """Seeds config.seed .. config.seed + num_seeds - 1 of one config in `directory`."""
  spec = {'kind': 'study', 'configs': {name: _config_values(config)}}
  check_study_dir(directory, spec)
  write_spec(directory, spec)
  return run_entries([Entry(name, config, directory)], num_seeds)[0]


def config_differences(configs: dict[str, ml_collections.ConfigDict]
                       ) -> dict[str, dict[str, Any]]:
  """For each config, its values of the keys on which the configs differ."""
  flat = {name: config_dicts.flatten(c) for name, c in configs.items()}
  keys = sorted({k for values in flat.values() for k in values} - {'seed'})
  differing = [k for k in keys if len({json.dumps(v.get(k), default=str)
                                       for v in flat.values()}) > 1]
  return {name: {k: values.get(k) for k in differing} for name, values in flat.items()}


def run_comparison(configs: dict[str, ml_collections.ConfigDict], directory: str,
                   num_seeds: int, overrides: dict[str, Any] | None = None) -> list[dict]:
  """Several configs side by side, each in DIR/<name>/; returns their studies.

  `overrides` are the command line's --config.KEY=VALUE settings, already
  applied to every config; they are recorded in study_spec.json,
  comparison.json and report.md so that a reader sees what the command changed.
  """
  overrides = json.loads(json.dumps(overrides or {}, default=list))
  spec = {'kind': 'comparison',
          'configs': {name: _config_values(c) for name, c in configs.items()},
          'overrides': overrides}
  check_study_dir(directory, spec)
  write_spec(directory, spec)
  start = time.perf_counter()
  entries = [Entry(name, c, os.path.join(directory, name)) for name, c in configs.items()]
  studies = run_entries(entries, num_seeds)
  wall_seconds = time.perf_counter() - start
  pairwise = comparison_statistics(studies)
  files.write_json(os.path.join(directory, 'comparison.json'), {
      'names': list(configs),
      'num_seeds': num_seeds,
      'overrides': overrides,
      'wall_seconds': wall_seconds,
      'studies': [{k: v for k, v in s.items() if k != 'runs'} for s in studies],
      'pairwise': pairwise,
  })
  report.write_comparison_report(
      directory, [(s['name'], s, s['runs']) for s in studies], wall_seconds,
      differences=config_differences(configs), overrides=overrides,
      pairwise=pairwise)
  return studies


def comparison_statistics(studies: Sequence[dict]) -> list[dict]:
  """comparison.json's 'pairwise': every pair of configs compared, with its verdict.

  Each entry is `statistics.compare_pair`'s, with Holm-adjusted p-values, plus
  'verdict', the report's paragraph in plain words (on the adjusted p-values
  when there are more than two configs).
  """
  pairwise = statistics.compare_studies([(s['name'], s['runs']) for s in studies])
  for pair in pairwise:
    pair['verdict'] = report.pairwise_verdict(pair, adjusted=len(studies) > 2)
  return pairwise


def run_search(config: ml_collections.ConfigDict, name: str,
               space: Sequence[search.Axis], directory: str, num_trials: int,
               num_seeds: int) -> list[dict]:
  """`num_trials` quasi-random trials of `space`, each a study of `num_seeds` seeds."""
  search.check_space(space, config)
  spec = {'kind': 'search', 'configs': {name: _config_values(config)},
          'search_space': [dataclasses.asdict(a) | {'type': type(a).__name__}
                           for a in space]}
  check_study_dir(directory, json.loads(json.dumps(spec)))
  write_spec(directory, spec)
  start = time.perf_counter()
  params = search.draw_trials(space, num_trials, seed=config.seed)
  entries = [Entry(f'trial_{k}', search.apply_params(config, p),
                   os.path.join(directory, f'trial_{k}')) for k, p in enumerate(params)]
  for entry in entries:  # A trial outside what the harness accepts fails up front.
    rules.validate_run_config(entry.config, num_devices=jax.device_count(),
                               check_data=False)
  studies = run_entries(entries, num_seeds)
  wall_seconds = time.perf_counter() - start
  trials = [{'trial': k, 'params': p, 'summary': {x: v for x, v in s.items() if x != 'runs'}}
            for k, (p, s) in enumerate(zip(params, studies))]
  files.write_json(os.path.join(directory, 'search.json'), {
      'name': name, 'num_trials': num_trials, 'num_seeds': num_seeds,
      'axes': [a.key for a in space], 'wall_seconds': wall_seconds, 'trials': trials})
  report.write_search_report(directory, [a.key for a in space], trials, wall_seconds)
  return trials
