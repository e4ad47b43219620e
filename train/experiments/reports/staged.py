"""The report of a staged search: each stage's trials ranked, with drawn against
feasible counts, the chosen point, the confirming study's statistics, and one
plot per searched axis (axis_<key>.png: the metric against the value, diverged
trials marked).

It reads staged_search.json's summary (train/experiments/staged.py): each
trial's params, its seeds' outcome and its statistics.
"""

import os
from collections.abc import Sequence
from typing import Any

from train.common import files
from train.experiments.reports import markdown
from train.experiments.reports import plots
from train.experiments.reports import sections
from train.experiments.reports import study as study_report

# Each metric of configs/search_space.METRICS: its words, and whether it is an
# accuracy (shown in percent) or a count of steps.
METRIC_WORDS = {
    'median_final_accuracy': ('median final eval accuracy', True),
    'median_best_accuracy': ('median best eval accuracy', True),
    'median_steps_to_target': ('median steps to target', False),
}


def metric_words(metric: str) -> str:
  return METRIC_WORDS.get(metric, (metric, False))[0]


def metric_text(metric: str, value: float | None) -> str:
  """A value of `metric`: a percentage, or a count of steps."""
  is_accuracy = METRIC_WORDS.get(metric, (metric, False))[1]
  return markdown.percent(value) if is_accuracy else markdown.number(value)


def _plotted(metric: str, value: float | None) -> float | None:
  is_accuracy = METRIC_WORDS.get(metric, (metric, False))[1]
  return None if value is None else (100 * value if is_accuracy else value)


def _feasible_text(trial: dict) -> str:
  if trial['feasible']:
    return 'yes'
  if trial['num_diverged']:
    return 'no: diverged'
  return 'not finished'


def _trial_cell(out_dir: str, stage_dir: str, trial: int) -> str:
  target = f'{stage_dir}/trial_{trial}/report.md'
  if os.path.isfile(os.path.join(out_dir, target)):
    return markdown.link(str(trial), target)
  return str(trial)


def _trials_table(out_dir: str, stage: dict, metric: str) -> str:
  """The stage's trials, best first; only feasible trials get a rank."""
  keys = [axis['key'] for axis in stage['space']]
  # The final accuracy beside another metric, which alone may hide a poor trial.
  accuracy = [] if metric == 'median_final_accuracy' else ['Median final accuracy']
  rows = []
  for rank, trial in enumerate(stage['trials'], start=1):
    summary = trial['summary'] or {}
    rows.append([str(rank) if trial['feasible'] else markdown.MISSING,
                 _trial_cell(out_dir, stage['directory'], trial['trial']),
                 *[markdown.config_value(trial['params'].get(k)) for k in keys],
                 metric_text(metric, trial['metric']),
                 *[markdown.percent(summary.get('median_final_accuracy'))][:len(accuracy)],
                 f"{trial['num_diverged']} / {trial['num_finished']}",
                 _feasible_text(trial)])
  return markdown.markdown_table(
      ['Rank', 'Trial', *keys, metric_words(metric).capitalize(), *accuracy,
       'Diverged seeds / finished', 'Feasible'], rows)


def _space_table(space: Sequence[dict]) -> str:
  rows = []
  for axis in space:
    if axis['type'] == 'Choice':
      rows.append([axis['key'], '{' + ', '.join(markdown.config_value(v)
                                                for v in axis['values']) + '}', 'discrete'])
    else:
      what = f"1 - {axis['key']}" if axis.get('one_minus') else axis['key']
      rows.append([what, f"[{markdown.config_value(axis['low'])}, "
                   f"{markdown.config_value(axis['high'])}]", axis['scale']])
  return markdown.markdown_table(['Axis', 'Values', 'Scale'], rows)


def _stage_state(stage: dict) -> str:
  if not stage['started']:
    return 'not started'
  if stage['exhausted']:
    return (f"over: max_draws reached with {stage['feasible']} of {stage['num_trials']} "
            'wanted trials feasible')
  return 'over' if stage['over'] else 'running or interrupted'


def _stages_table(summary: dict) -> str:
  rows = [[f"{s['index']}. {s['name']}", s['mode'], str(s['seeds_per_trial']),
           str(s['num_trials']) if s['mode'] == 'quasi_random' else 'all',
           str(s['drawn']), str(s['feasible']), str(s['max_draws']),
           f"best {s['narrow_to_best']} of the stage before" if s['narrow_to_best'] else 'as given',
           _stage_state(s)] for s in summary['stages']]
  return markdown.markdown_table(['Stage', 'Mode', 'Seeds per trial', 'Feasible trials wanted',
                                  'Drawn', 'Feasible', 'Max draws', 'Ranges', 'State'], rows)


def _stage_section(out_dir: str, stage: dict, metric: str) -> list[str]:
  head = f"## Stage {stage['index']}: {stage['name']}"
  if not stage['started']:
    return [head, 'Not started yet.']
  exhausted = ''
  if stage['exhausted']:
    exhausted = (f" It drew its max_draws ({stage['max_draws']}) with only "
                 f"{stage['feasible']} of the {stage['num_trials']} feasible trials it wanted; "
                 'the ranking below has those.')
  return [head,
          f"{stage['drawn']} trials drawn, {stage['feasible']} feasible, "
          f"{stage['seeds_per_trial']} seed{'' if stage['seeds_per_trial'] == 1 else 's'} "
          f"each ({stage['mode']}); its own report: "
          f"{markdown.link(stage['directory'] + '/report.md', stage['directory'] + '/report.md')}."
          + exhausted,
          _space_table(stage['space']),
          _trials_table(out_dir, stage, metric)]


def _chosen_section(summary: dict) -> list[str]:
  chosen = summary['chosen']
  if chosen is None:
    return ['## The chosen point', 'None yet: the last stage is not over, or has no '
            'feasible trial with a value of the metric.']
  rows = [[k, markdown.config_value(v)] for k, v in chosen['params'].items()]
  return ['## The chosen point',
          f"Trial {chosen['trial']} of stage {chosen['stage']!r} "
          f"({markdown.link('its report', chosen['directory'] + '/report.md')}), "
          f"{metric_words(summary['metric'])} {metric_text(summary['metric'], chosen['metric'])}"
          ' over its seeds.',
          markdown.markdown_table(['Key', 'Value'], rows)]


def _confirmation_section(summary: dict) -> list[str]:
  seeds = summary['confirm_seeds']
  if not seeds:
    return []
  head = f'## The chosen point over {seeds} seeds'
  confirmation = summary['confirmation']
  if confirmation is None or confirmation['summary'] is None:
    return [head, 'Not run yet.']
  first, last = confirmation['seeds'][0], confirmation['seeds'][-1]
  return [head,
          f'Seeds {first} to {last}, none of which any trial ran, so the selection does not '
          'flatter the result. Its own report, with its plots and a row per seed: '
          f"{markdown.link('confirm/report.md', 'confirm/report.md')}.",
          study_report.results_tables(confirmation['summary'])]


def _plot_points(stage: dict, key: str, metric: str) -> list[dict[str, Any]]:
  return [{'value': t['params'][key], 'metric': _plotted(metric, t['metric']),
           'diverged': t['num_diverged'] > 0}
          for t in stage['trials'] if key in t['params'] and (t['finished'] or t['num_diverged'])]


def _plots(out_dir: str, summary: dict) -> list[str]:
  """One plot per searched axis, over every stage that searched it; their names."""
  metric = summary['metric']
  keys = list(dict.fromkeys(a['key'] for s in summary['stages'] for a in s['space']))
  chosen = summary['chosen']
  names = []
  for key in keys:
    points = [(s['name'], _plot_points(s, key, metric)) for s in summary['stages']
              if any(a['key'] == key for a in s['space'])]
    star = None
    if chosen is not None and key in chosen['params']:
      star = {'value': chosen['params'][key], 'metric': _plotted(metric, chosen['metric']),
              'diverged': False}
    label = metric_words(metric) + (' (%)' if METRIC_WORDS.get(metric, ('', False))[1] else '')
    name = f'axis_{key}.png'
    plots.staged_axis(os.path.join(out_dir, name), key, points, label, star)
    names.append(name)
  return names


def _status(summary: dict) -> str:
  if summary['complete']:
    return 'Complete'
  left = next((s for s in summary['stages'] if not s['over']), None)
  if left is not None:
    return (f"Not finished: stage {left['index']} ({left['name']}) is "
            f"{'not started' if not left['started'] else 'not over'}; re-run the same "
            'command to go on')
  return 'Not finished: the confirmation is not over; re-run the same command to go on'


def write_staged_report(out_dir: str, summary: dict) -> str:
  """Writes out_dir/report.md and its plots from staged_search.json's summary;
  returns the path of report.md."""
  metric = summary['metric']
  direction = 'larger' if summary['larger_is_better'] else 'smaller'
  unfinished = [u for s in summary['stages'] for t in s['trials'] for u in t['unfinished']]
  if summary['confirmation']:
    unfinished += summary['confirmation']['unfinished']
  images = [f'![{name}]({name})' for name in _plots(out_dir, summary)]
  text = '\n\n'.join(filter(None, [
      f"# Staged search: {summary['name']}",
      f"{_status(summary)}. Wall time {markdown.seconds(summary['wall_seconds'])}. Trials are "
      f"ranked by the {metric_words(metric)} over their seeds (`{metric}`, {direction} is "
      'better). A trial is feasible when none of its seeds diverged (a NaN or infinite '
      'loss): only feasible trials count toward a stage\'s trials, and only they are '
      'ranked and chosen. A quasi-random stage draws more trials until enough are '
      'feasible, up to its max_draws.',
      _stages_table(summary),
      *_chosen_section(summary),
      *_confirmation_section(summary),
      *[part for stage in summary['stages'] for part in _stage_section(out_dir, stage, metric)],
      *sections.unfinished_section(unfinished),
      '## Plots' if images else '',
      *images,
  ]))
  return files.write_text(os.path.join(out_dir, 'report.md'), text)
