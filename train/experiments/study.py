"""Studies: a config over many seeds, several configs side by side, or a search.

Each writes its directory's files as docs/outputs.md ("Studies, comparisons and
searches") lays them out: a run directory per seed, config or trial, the JSON
summary, report.md, and plan.json and study_spec.json (plan.py).

A study goes in three steps, which may run in different processes and hosts:
`plan_*` writes down every run it needs; workers (worker.py) run them;
`write_report` writes the JSON summaries and report.md from whatever has
finished, and says what is still running, pending or failed. `run_*` do all
three in this process, as `python main.py` does by default.

Re-running the same command resumes: a seed whose `result.json` exists is read
back, not re-run; an interrupted seed resumes from its checkpoint, or is moved
aside (`seed_<s>.interrupted.<n>`) and run again when it has none; a failed one
runs again. A directory that holds another study is refused, never overwritten.
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
from train.experiments import plan as plan_lib
from train.experiments import robustness
from train.experiments import search
from train.experiments import states as states_lib
from train.experiments import statistics
from train.experiments import verdicts
from train.experiments import worker as worker_lib
from train.experiments.reports import comparison as comparison_report
from train.experiments.reports import search as search_report
from train.experiments.reports import study as study_report
from train.mlperf import results as mlperf_results
from train.mlperf import rules
from train.run import budget
from train.run import programs


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


@dataclasses.dataclass
class RunStates:
  """Where the runs of one entry stand: finished (with results), and the others."""
  finished: list[tuple[plan_lib.PlannedRun, dict]]
  unfinished: list[dict[str, Any]]  # {'run', 'seed', 'state', 'detail'}, in plan order.

  @property
  def results(self) -> list[dict]:
    return [result for _, result in self.finished]


def _unfinished_state(run: plan_lib.PlannedRun,
                      status: states_lib.RunStatus) -> dict[str, Any]:
  """A run that has no result: failed (its error), running (its holder) or
  pending (why its worker is gone, when it was interrupted)."""
  state = {'run': run.label, 'seed': run.seed, 'state': status.state}
  if status.state == states_lib.RunState.FAILED:
    failure = plan_lib.read_json(run.failure_path, 'move it aside; the run is tried again')
    return state | {'detail': failure.get('error', '')}
  claim = status.claim
  if status.state == states_lib.RunState.RUNNING:  # A damaged record: by someone unknown.
    holder = (claim.holder.describe() if claim.holder is not None
              else f'an unknown process ({claim.reason})')
    return state | {'detail': holder}
  return state | {'detail': f'its worker is gone ({claim.reason})' if status.interrupted
                  else ''}


def run_states(plan: plan_lib.Plan, entry: str) -> RunStates:
  states = RunStates([], [])
  for run in plan.runs_of(entry):
    status = states_lib.status_of(run, ask_slurm=True)
    if status.state == states_lib.RunState.DONE:
      states.finished.append((run, worker_lib.read_result(run)))
    else:
      states.unfinished.append(_unfinished_state(run, status))
  return states


def _wall_seconds(plan: plan_lib.Plan, states: Sequence[RunStates]) -> float:
  """From the plan's first writing to the last result written."""
  ends = [os.path.getmtime(run.result_path) for s in states for run, _ in s.finished]
  return max(ends, default=plan.created) - plan.created


def _finish_study(entry: plan_lib.Entry, states: RunStates, seeds: list[int],
                  wall_seconds: float, num_ran: int | None) -> dict:
  """Writes study.json and report.md of one config; returns study.json's content."""
  results = states.results
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
      'unfinished': states.unfinished,
  }
  # The runs that make the MLPerf score, as an MLPerf submission tree.
  scored = states.finished[:statistics.MLPERF_RESNET_RUNS]
  study['mlperf'] = mlperf_results.write_submission(
      entry.directory, entry.config,
      [os.path.join(run.run_dir, 'mlperf.log') for run, _ in scored],
      [result for _, result in scored])
  files.write_json(os.path.join(entry.directory, 'study.json'), study)
  study_report.write_study_report(entry.directory, entry.name, summary, results,
                                  learning_rate_curve(entry.config), wall_seconds,
                                  config_summary(entry.config), mlperf=study['mlperf'],
                                  unfinished=states.unfinished)
  return study


def config_differences(configs: dict[str, ml_collections.ConfigDict]
                       ) -> dict[str, dict[str, Any]]:
  """For each config, its values of the keys on which the configs differ."""
  flat = {name: config_dicts.flatten(c) for name, c in configs.items()}
  keys = sorted({k for values in flat.values() for k in values} - {'seed'})
  differing = [k for k in keys if len({json.dumps(v.get(k), default=str)
                                       for v in flat.values()}) > 1]
  return {name: {k: values.get(k) for k in differing} for name, values in flat.items()}


# --- planning: what a study needs, written down before any run -----------------


def plan_study(config: ml_collections.ConfigDict, name: str, directory: str,
               num_seeds: int) -> plan_lib.Plan:
  """Seeds config.seed .. config.seed + num_seeds - 1 of one config in `directory`."""
  spec = {'kind': plan_lib.PlanKind.STUDY, 'configs': {name: plan_lib.config_values(config)}}
  entries = [plan_lib.Entry(name, config, directory)]
  return _write_plan(plan_lib.make_plan(plan_lib.PlanKind.STUDY, name, directory,
                                        entries, num_seeds), spec)


def plan_comparison(configs: dict[str, ml_collections.ConfigDict], directory: str,
                    num_seeds: int, overrides: dict[str, Any] | None = None,
                    name: str = 'comparison',
                    kind: plan_lib.PlanKind = plan_lib.PlanKind.COMPARISON) -> plan_lib.Plan:
  """Several configs side by side, each a study in DIR/<name>/.

  `overrides` are the command line's --config.KEY=VALUE settings, already
  applied to every config; they are recorded in study_spec.json, the plan,
  comparison.json and report.md so that a reader sees what the command changed.
  `kind` ROBUSTNESS: the configs are one config's workloads, its base first
  (`workloads.workload_configs`), and the report is robustness.py's.
  """
  overrides = json.loads(json.dumps(overrides or {}, default=list))
  spec = {'kind': kind,
          'configs': {n: plan_lib.config_values(c) for n, c in configs.items()},
          'overrides': overrides}
  entries = [plan_lib.Entry(n, c, os.path.join(directory, n)) for n, c in configs.items()]
  return _write_plan(plan_lib.make_plan(kind, name, directory, entries, num_seeds,
                                        overrides=overrides), spec)


def plan_search(config: ml_collections.ConfigDict, name: str,
                space: Sequence[search.Axis], directory: str, num_trials: int,
                num_seeds: int, num_devices: int | None = None) -> plan_lib.Plan:
  """`num_trials` quasi-random trials of `space`, each a study of `num_seeds` seeds,
  each trial checked for `num_devices` devices (default: this process's)."""
  search.check_space(space, config)
  return plan_trials(config, name, space, directory,
                     search.draw_trials(space, num_trials, seed=config.seed), num_seeds,
                     num_devices)


def plan_trials(config: ml_collections.ConfigDict, name: str,
                space: Sequence[search.Axis], directory: str,
                params: Sequence[dict[str, Any]], num_seeds: int,
                num_devices: int | None = None) -> plan_lib.Plan:
  """A search of the trials `params` (points of `space`), each a study of
  `num_seeds` seeds: `plan_search`'s quasi-random draws, or a staged search's
  stage (train/experiments/staged.py)."""
  axes = [dataclasses.asdict(a) | {'type': type(a).__name__} for a in space]
  spec = json.loads(json.dumps({'kind': plan_lib.PlanKind.SEARCH,
                                'configs': {name: plan_lib.config_values(config)},
                                'search_space': axes}))
  params = list(params)
  entries = [plan_lib.Entry(f'trial_{k}', search.apply_params(config, p),
                            os.path.join(directory, f'trial_{k}'))
             for k, p in enumerate(params)]
  for entry in entries:  # A trial outside what the harness accepts fails up front.
    rules.validate_run_config(entry.config, num_devices=num_devices or jax.device_count(),
                              check_data=False)
  return _write_plan(plan_lib.make_plan(
      plan_lib.PlanKind.SEARCH, name, directory, entries, num_seeds,
      search={'axes': [a.key for a in space], 'params': params}), spec)


def _write_plan(plan: plan_lib.Plan, spec: dict) -> plan_lib.Plan:
  """Writes the plan (process 0) and lets failed runs be tried again."""
  if jax.process_index() == 0:
    plan = plan_lib.write_plan(plan, spec)
    for label in plan_lib.clear_failures(plan):
      logging.warning('%s failed before; it runs again', label)
  return plan


# --- the report: from whatever has finished --------------------------------------


def write_report(directory: str, wall_seconds: float | None = None,
                 num_ran: dict[str, int] | None = None) -> list[dict]:
  """Writes study.json / comparison.json / search.json / robustness.json and
  report.md of the study in `directory` from the runs finished so far; returns
  each entry's study.

  The report says which runs are still running, pending or failed. It is the
  only writer of these files. `wall_seconds`: the study's wall time as the
  caller measured it; by default, from the plan's first writing to the last
  result. `num_ran`: runs trained by the calling command, per entry.
  """
  plan = plan_lib.read_plan(directory)
  states = [run_states(plan, entry.name) for entry in plan.entries]
  if wall_seconds is None:
    wall_seconds = _wall_seconds(plan, states)
  studies = [_finish_study(entry, entry_states, [r.seed for r in plan.runs_of(entry.name)],
                           wall_seconds, None if num_ran is None else num_ran.get(entry.name, 0))
             for entry, entry_states in zip(plan.entries, states)]
  if plan.kind == plan_lib.PlanKind.COMPARISON:
    _write_comparison(plan, studies, wall_seconds)
  elif plan.kind == plan_lib.PlanKind.ROBUSTNESS:
    robustness.write_robustness(plan, studies, wall_seconds, _all_unfinished(studies))
  elif plan.kind == plan_lib.PlanKind.SEARCH:
    _write_search(plan, studies, wall_seconds)
  return studies


def _all_unfinished(studies: Sequence[dict]) -> list[dict]:
  return [state for study in studies for state in study['unfinished']]


def _write_comparison(plan: plan_lib.Plan, studies: list[dict], wall_seconds: float) -> None:
  pairwise = verdicts.comparison_statistics(studies)
  files.write_json(os.path.join(plan.directory, 'comparison.json'), {
      'names': [e.name for e in plan.entries],
      'num_seeds': plan.num_seeds,
      'overrides': plan.overrides,
      'wall_seconds': wall_seconds,
      'studies': [{k: v for k, v in s.items() if k != 'runs'} for s in studies],
      'pairwise': pairwise,
  })
  comparison_report.write_comparison_report(
      plan.directory, [(s['name'], s, s['runs']) for s in studies], wall_seconds,
      differences=config_differences({e.name: e.config for e in plan.entries}),
      overrides=plan.overrides, pairwise=pairwise, unfinished=_all_unfinished(studies))


def _write_search(plan: plan_lib.Plan, studies: list[dict], wall_seconds: float) -> None:
  trials = [{'trial': k, 'params': p, 'summary': {x: v for x, v in s.items() if x != 'runs'}}
            for k, (p, s) in enumerate(zip(plan.search['params'], studies))]
  files.write_json(os.path.join(plan.directory, 'search.json'), {
      'name': plan.name, 'num_trials': len(plan.entries), 'num_seeds': plan.num_seeds,
      'axes': plan.search['axes'], 'wall_seconds': wall_seconds, 'trials': trials})
  search_report.write_search_report(plan.directory, plan.search['axes'], trials,
                                    wall_seconds, unfinished=_all_unfinished(studies))


def search_trials(directory: str) -> list[dict]:
  """search.json's trials, as `write_report` wrote them."""
  with open(os.path.join(directory, 'search.json')) as f:
    return json.load(f)['trials']


# --- inline: plan, work and report in this process ---------------------------------


def work_inline(plan: plan_lib.Plan) -> list[dict]:
  """Runs every run of `plan` in this process (with any other workers on the same
  directory), then writes the report; returns each entry's study."""
  start = time.perf_counter()
  step_cache = programs.StepCache()
  with console.Progress(len(plan.runs), enabled=jax.process_index() == 0) as progress:
    worker = worker_lib.Worker(plan.directory, progress, stop_on_failure=True,
                               wait_for_others=True, step_cache=step_cache)
    done = worker.run()
  num_ran = {entry.name: sum(label.startswith(f'{entry.name} seed ') for label in done.ran)
             for entry in plan.entries}
  wall_seconds = time.perf_counter() - start
  if jax.process_index() != 0:
    return []
  return write_report(plan.directory, wall_seconds, num_ran)


def run_study(config: ml_collections.ConfigDict, name: str, directory: str,
              num_seeds: int) -> dict:
  """A study of one config, run in this process; returns study.json's content."""
  return work_inline(plan_study(config, name, directory, num_seeds))[0]


def run_search(config: ml_collections.ConfigDict, name: str,
               space: Sequence[search.Axis], directory: str, num_trials: int,
               num_seeds: int) -> list[dict]:
  """A search run in this process; returns search.json's trials."""
  studies = work_inline(plan_search(config, name, space, directory, num_trials, num_seeds))
  return search_trials(directory) if studies else []
