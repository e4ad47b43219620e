"""A staged search as one command: its stages in order, then the best point
confirmed over fresh seeds (the Reality Check's Table 4 protocol).

Layout of DIR:
  study_spec.json            the config and the whole search (a rerun with
                             another is refused, never mixed in)
  stage_<n>_<name>/          each stage: a search study (plan.json, trial_<k>/,
                             search.json, report.md) and stage.json, its drawn
                             and feasible counts and ranked trials
  confirm/                   the chosen point over confirm_seeds seeds: a study
  staged_search.json, report.md, axis_<key>.png
                             the whole search (train/experiments/reports/staged.py)

Each stage and the confirmation are ordinary plans, run by whatever `Work`
the command gives: this process's worker (inline), or local or Slurm workers
(train/cli/runners.py). Re-running the same command resumes after a crash or a
kill at any point: a finished stage is read back, not run; a stage half done
plans the same trials again (its draws are a fixed sequence) and its workers
take the runs left; a stage whose trials drew more is planned with as many as
it had drawn. The report is written from the runs' own files, so
`main.py report --workdir=DIR` writes it at any time.
"""

import os
from typing import Any, Callable, Sequence

import ml_collections
from absl import logging

from train.common import files
from train.experiments import plan as plan_lib
from train.experiments import search
from train.experiments import stages
from train.experiments import states as states_lib
from train.experiments import statistics
from train.experiments import study
from train.experiments.reports import staged as staged_report

# Runs a plan's runs (or starts workers on them); whether every run is now done.
Work = Callable[[plan_lib.Plan], bool]
SUMMARY_FILE = 'staged_search.json'
STAGE_FILE = 'stage.json'


def _spec(config: ml_collections.ConfigDict, name: str,
          search_: stages.Search) -> dict[str, Any]:
  return {'kind': stages.STAGED_KIND, 'name': name,
          'configs': {name: plan_lib.config_values(config)},
          'search': stages.search_json(search_)}


def run_staged(config: ml_collections.ConfigDict, name: str, search_: stages.Search,
               directory: str, work: Work, num_devices: int | None = None) -> dict:
  """Runs (or resumes) the staged search in `directory`; returns staged_search.json's
  content, whose 'complete' says whether it got to the end (it stops at the first
  plan that `work` leaves unfinished)."""
  spec = _spec(config, name, search_)
  plan_lib.check_study_dir(directory, spec)
  plan_lib.write_spec(directory, spec)
  try:
    chosen = _run_stages(config, name, search_, directory, work, num_devices)
  except stages.SearchError:
    write_report(directory)  # The report shows the trials that have nothing to offer.
    raise
  if chosen is None:
    return write_report(directory)
  if search_.confirm_seeds:
    confirm = study.plan_study(confirm_config(config, search_, chosen['params']),
                               stages.CONFIRM_DIR, os.path.join(directory, stages.CONFIRM_DIR),
                               search_.confirm_seeds)
    if not _all_done(confirm):
      work(confirm)
  return write_report(directory)


def _run_stages(config: ml_collections.ConfigDict, name: str, search_: stages.Search,
                directory: str, work: Work, num_devices: int | None) -> dict | None:
  """Runs the stages in order; returns the last stage's best trial, or None when
  `work` left a stage unfinished. SearchError when there is no best trial."""
  ranked: list[dict] = []
  for index in range(len(search_.stages)):
    ranked = _run_stage(config, name, search_, index, ranked, directory, work, num_devices)
    if ranked is None:
      return None
  chosen = stages.best(ranked)
  if chosen is None:
    raise stages.NoFeasibleTrial(
        f'the last stage ({search_.stages[-1].name!r}) has no feasible trial with a value '
        f'of {search_.metric}, so there is no point to confirm; see '
        f'{os.path.join(directory, "report.md")}, then widen or move its ranges')
  return chosen


def confirm_config(config: ml_collections.ConfigDict, search_: stages.Search,
                   params: dict[str, Any]) -> ml_collections.ConfigDict:
  """The chosen point, its seeds starting past every trial's."""
  chosen = search.apply_params(config, params)
  chosen.seed = stages.first_confirm_seed(search_, config.seed)
  return chosen


def _all_done(plan: plan_lib.Plan) -> bool:
  return states_lib.count_states(plan)[states_lib.RunState.DONE] == len(plan.runs)


def _planned_trials(directory: str) -> int:
  """Trials the stage's plan already holds (0 before it is planned)."""
  if not os.path.exists(os.path.join(directory, plan_lib.PLAN_FILE)):
    return 0
  return len(plan_lib.read_plan(directory).entries)


def _run_stage(config: ml_collections.ConfigDict, name: str, search_: stages.Search,
               index: int, previous: Sequence[dict], directory: str, work: Work,
               num_devices: int | None) -> list[dict] | None:
  """Runs stage `index` until it is over; returns its trials ranked, or None when
  `work` left it unfinished."""
  stage = search_.stages[index]
  stage_dir = os.path.join(directory, stages.stage_dir_name(index, stage))
  space = stages.narrowed_space(stage, previous)
  drawn = max(stages.first_draws(stage), _planned_trials(stage_dir))
  while True:
    params = stages.draw(stage, space, drawn, stages.draw_seed(config.seed, index))
    plan = study.plan_trials(config, f'{name}.{stage.name}', space, stage_dir, params,
                             stage.seeds_per_trial, num_devices)
    if not _all_done(plan) and not work(plan):
      return None
    trials = stage_trials(plan, search_.metric)
    feasible = stages.count_feasible(trials)
    more = stages.next_draws(stage, len(trials), feasible)
    if more is None:
      if stages.exhausted(stage, len(trials), feasible):
        logging.warning('stage %s: %d of %d trials feasible after %d draws (its max_draws); '
                        'it goes on with those', stage.name, feasible, stage.num_trials,
                        len(trials))
      return stages.rank(trials, search_.metric)
    logging.warning('stage %s: %d of %d trials feasible after %d draws; drawing %d more',
                    stage.name, feasible, stage.num_trials, len(trials), more - len(trials))
    drawn = more


def stage_trials(plan: plan_lib.Plan, metric: str) -> list[dict]:
  """Each trial of a stage's plan, from its runs' files, in trial order."""
  return [stages.trial_record(k, params, len(plan.runs_of(entry.name)),
                              *_results(plan, entry.name), metric)
          for k, (entry, params) in enumerate(zip(plan.entries, plan.search['params']))]


def _results(plan: plan_lib.Plan, entry: str) -> tuple[list[dict], list[dict]]:
  states = study.run_states(plan, entry)
  return states.results, states.unfinished


# --- the report, from the files of every stage ---------------------------------------


def _stage_record(index: int, stage: stages.Stage, directory: str,
                  metric: str) -> dict[str, Any]:
  """What stage.json holds: the stage's settings, space, counts and ranked trials."""
  stage_dir = os.path.join(directory, stages.stage_dir_name(index, stage))
  record = {'index': index + 1, 'name': stage.name, 'directory': os.path.basename(stage_dir),
            'mode': stage.mode, 'num_trials': stage.num_trials,
            'max_draws': stages.max_draws(stage), 'seeds_per_trial': stage.seeds_per_trial,
            'narrow_to_best': stage.narrow_to_best, 'started': False, 'over': False,
            'exhausted': False, 'drawn': 0, 'feasible': 0, 'space': [], 'trials': [],
            'best': None}
  if not os.path.exists(os.path.join(stage_dir, plan_lib.PLAN_FILE)):
    return record
  plan = plan_lib.read_plan(stage_dir)
  spec = plan_lib.read_json(os.path.join(stage_dir, plan_lib.SPEC_FILE),
                            'restore it, or start the search afresh in a new --workdir')
  trials = stages.rank(stage_trials(plan, metric), metric)
  drawn, feasible = len(trials), stages.count_feasible(trials)
  finished = all(t['finished'] for t in trials)
  best = stages.best(trials)
  record.update(started=True, drawn=drawn, feasible=feasible, space=spec['search_space'],
                over=finished and stages.next_draws(stage, drawn, feasible) is None,
                exhausted=finished and stages.exhausted(stage, drawn, feasible),
                trials=trials, best=None if best is None else best['trial'],
                created=plan.created)
  files.write_json(os.path.join(stage_dir, STAGE_FILE), record)
  return record


def _confirmation(directory: str, num_seeds: int) -> dict[str, Any] | None:
  """The confirming study's seeds, statistics and runs not finished, once planned."""
  confirm_dir = os.path.join(directory, stages.CONFIRM_DIR)
  if not num_seeds or not os.path.exists(os.path.join(confirm_dir, plan_lib.PLAN_FILE)):
    return None
  plan = plan_lib.read_plan(confirm_dir)
  states = study.run_states(plan, plan.entries[0].name)
  return {'directory': stages.CONFIRM_DIR, 'seeds': [run.seed for run in plan.runs],
          'summary': statistics.summarize(states.results) if states.results
          else None, 'unfinished': states.unfinished, 'runs': states.results}


def _wall_seconds(directory: str, records: Sequence[dict]) -> float | None:
  """From the first stage's planning to the last result of any stage."""
  starts = [r['created'] for r in records if r.get('created')]
  if not starts:
    return None
  ends = [os.path.getmtime(path) for root, _, names in os.walk(directory)
          for path in [os.path.join(root, 'result.json')] if 'result.json' in names]
  return max(ends, default=min(starts)) - min(starts)


def summarize(directory: str) -> dict[str, Any]:
  """The staged search in `directory` as staged_search.json holds it, from the
  runs' files (each stage's stage.json written on the way)."""
  spec = plan_lib.read_json(os.path.join(directory, plan_lib.SPEC_FILE),
                            'restore it, or start the search afresh in a new --workdir')
  search_ = stages.search_from_json(spec['search'])
  records = [_stage_record(index, stage, directory, search_.metric)
             for index, stage in enumerate(search_.stages)]
  last = records[-1]
  chosen = None
  if last['over'] and last['best'] is not None:
    top = next(t for t in last['trials'] if t['trial'] == last['best'])
    chosen = {'stage': last['name'], 'trial': top['trial'], 'params': top['params'],
              'metric': top['metric'], 'directory': f"{last['directory']}/trial_{top['trial']}"}
  confirmation = _confirmation(directory, search_.confirm_seeds) if chosen else None
  confirmed = search_.confirm_seeds == 0 or (
      confirmation is not None and not confirmation['unfinished']
      and len(confirmation['runs']) == search_.confirm_seeds)
  name = spec['name']
  return {'name': name, 'metric': search_.metric,
          'larger_is_better': stages.search_space.METRICS[search_.metric],
          'confirm_seeds': search_.confirm_seeds,
          'first_confirm_seed': stages.first_confirm_seed(search_,
                                                          spec['configs'][name]['seed']),
          'complete': chosen is not None and confirmed,
          'wall_seconds': _wall_seconds(directory, records),
          'stages': records, 'chosen': chosen, 'confirmation': confirmation}


def write_report(directory: str) -> dict[str, Any]:
  """Writes staged_search.json, report.md and the axis plots; returns the summary."""
  summary = summarize(directory)
  on_disk = {**summary, 'confirmation': summary['confirmation'] and {
      k: v for k, v in summary['confirmation'].items() if k != 'runs'}}
  files.write_json(os.path.join(directory, SUMMARY_FILE), on_disk)
  staged_report.write_staged_report(directory, summary)
  return summary
