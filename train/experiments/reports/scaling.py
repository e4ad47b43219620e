"""The report of a batch-size scaling study: steps to target against the batch
size, beside perfect scaling, with the critical batch size.

`write_scaling_report` writes report.md (a row per batch size, the rule and its
outcome) and steps_to_target.png (log-log: each batch size's median over its
seeds, a bar from its fastest to its slowest seed, the perfect-scaling line from
the smallest batch, the rule's limit k times above it, and the critical batch
size). It reads scaling.json's summary (train/experiments/scaling.py); the rule
is train/experiments/critical_batch.py's.
"""

import os
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib import ticker
from matplotlib.figure import Figure

from train.common import files
from train.experiments import critical_batch
from train.experiments.reports import figure_style
from train.experiments.reports import markdown
from train.experiments.reports import sections

FIGURE = 'steps_to_target.png'
REPORT = 'report.md'
# Where a miss is drawn, in axes coordinates: along the top, above every number.
_TOP = 0.96
_STATE_WORDS = {
    'not started': 'not started',
    'searching': 'searching',
    'confirming': 'confirming the chosen point',
    'running': 'running',
    'no point': 'no trial reached the target',
    'measured': 'measured',
}


def rule_text(factor: float = critical_batch.CRITICAL_FACTOR) -> str:
  """The critical-batch rule in words, as the report and docs/scaling.md state it."""
  return (f'Perfect scaling from the smallest batch B_1 is S_1 × B_1 / B. The critical '
          f'batch size is the largest batch size B_j such that every batch size from B_1 '
          f'to B_j takes at most k = {factor:g} times the steps of perfect scaling, i.e. '
          f'at most {factor:g} times the examples (steps × batch) that B_1 needed. A batch '
          'size whose median is infinite (half its seeds or more missed the target, or its '
          'search found no trial that reached it) is beyond any factor. The curve\'s shape '
          'is Shallue et al. (2019): perfect scaling, then diminishing returns, then none.')


def _steps(value: float | None, missed: bool = False) -> str:
  if missed:
    return markdown.INFINITE
  return markdown.number(value)


def _spread(point: dict) -> str:
  """The fastest to the slowest seed; ∞ when a seed missed."""
  if not point['num_runs']:
    return markdown.MISSING
  low, high = point['fastest_seed_steps'], point['slowest_seed_steps']
  return f'{_steps(low, low is None)} – {_steps(high, high is None)}'


def _params_text(params: dict | None) -> str:
  if not params:
    return markdown.MISSING if params is None else 'as the config'
  return ', '.join(f'{k} = {markdown.config_value(v)}' for k, v in params.items())


def _ratio_text(point: dict) -> str:
  if point['counted_as'] == 'missed':
    return markdown.INFINITE
  ratio = point['ratio_to_perfect']
  return markdown.MISSING if ratio is None else f'{ratio:.2f}'


def _points_table(summary: dict) -> str:
  rows = []
  for point in summary['points']:
    missed = point['counted_as'] == 'missed'
    median = point['median_steps_to_target']
    rows.append([
        str(point['batch_size']), _STATE_WORDS.get(point['state'], point['state']),
        f"{point['num_train_steps']:,} (eval every {point['eval_every_steps']:,})",
        _params_text(point['params']),
        markdown.config_value(point['peak_learning_rate'])
        if point['peak_learning_rate'] is not None else markdown.MISSING,
        f"{point['num_reached_target']} of {point['num_runs']}" if point['num_runs']
        else markdown.MISSING,
        _steps(median, missed), _spread(point),
        _steps(point['median_epochs_to_target'], missed),
        markdown.number(point['perfect_scaling_steps']), _ratio_text(point)])
  return markdown.markdown_table(
      ['Batch size', 'State', 'Step budget', 'Chosen point', 'Peak learning rate',
       'Reached target', 'Median steps to target', 'Seeds: fastest – slowest',
       'Median epochs to target', 'Perfect scaling (steps)', '× perfect'], rows)


def _seeds(count: int) -> str:
  return f"{count} seed{'' if count == 1 else 's'}"


def _how_text(summary: dict) -> str:
  seeds, reference = _seeds(summary['seeds']), summary['reference_batch_size']
  rule = f"lr.batch_scaling='{summary['lr_batch_scaling']}' from batch {reference}"
  if summary['mode'] == 'tuned':
    return ("Each batch size ran the staged search of get_scaling()'s stages, every trial "
            f'ranked by its median steps to target, then its best point over {seeds} that no '
            f'trial ran. A searched lr.peak is the rate at batch {reference}; the runs scale '
            f'it by {rule}, and the table gives both. The rows give the confirming seeds\' '
            "results; each batch size's folder holds its search and its own report.")
  return (f'Untuned: each batch size ran the config as it is for {seeds}, its peak learning '
          f'rate scaled by {rule}.')


def critical_line(summary: dict) -> str:
  """The critical batch size and why, in one line (the console's and the report's)."""
  size = summary['critical_batch_size']
  if size is None:
    return f"critical batch size: none ({summary['critical_reason']})"
  bound = 'at least ' if summary['critical_batch_size_is_lower_bound'] else ''
  return f"critical batch size: {bound}{size} ({summary['critical_reason']})"


def _critical_section(summary: dict) -> list[str]:
  line = critical_line(summary)
  return ['## The critical batch size', f'**{line[0].upper()}{line[1:]}.**',
          f"The rule: {rule_text(summary['critical_factor'])}"]


def text_table(summary: dict) -> str:
  """The curve as the console shows it: a row per batch size."""
  rows = []
  for point in summary['points']:
    missed = point['counted_as'] == 'missed'
    rows.append([str(point['batch_size']),
                 markdown.config_value(point['peak_learning_rate'])
                 if point['peak_learning_rate'] is not None else markdown.MISSING,
                 f"{point['num_reached_target']}/{point['num_runs']}",
                 _steps(point['median_steps_to_target'], missed), _spread(point),
                 _ratio_text(point),
                 _STATE_WORDS.get(point['state'], point['state'])])
  return markdown.text_table(['batch', 'peak lr', 'reached', 'median steps', 'seeds min-max',
                              'x perfect', 'state'], rows)


def _status(summary: dict) -> str:
  if summary['complete']:
    return 'Complete'
  left = next(p for p in summary['points'] if p['counted_as'] == 'not measured')
  return (f"Not finished: batch size {left['batch_size']} is "
          f"{_STATE_WORDS.get(left['state'], left['state'])}; re-run the same command to go on")


def write_scaling_report(out_dir: str, summary: dict) -> str:
  """Writes out_dir/report.md and steps_to_target.png from scaling.json's
  summary; returns the path of report.md."""
  save_figure(os.path.join(out_dir, FIGURE), summary)
  unfinished = [u for p in summary['points'] for u in p['unfinished']]
  target = summary['target_accuracy']
  text = '\n\n'.join([
      f"# Batch-size scaling: {summary['name']}",
      f"{_status(summary)}. Wall time {markdown.seconds(summary['wall_seconds'])}. The steps "
      f"to reach {markdown.percent(target)} at each batch size: the median over the seeds, a "
      'run that missed the target counting as infinitely slow (so the median is infinite '
      'when half the seeds or more missed). A run\'s steps to target are those of its '
      'first eval at the target, so they are counted in steps of that batch size\'s eval '
      'cadence. The seed spread is the fastest to the slowest seed (∞: a seed missed).',
      _how_text(summary),
      _points_table(summary),
      *_critical_section(summary),
      '## Plot',
      f'![{FIGURE}]({FIGURE})',
      *sections.unfinished_section(unfinished),
  ])
  return files.write_text(os.path.join(out_dir, REPORT), text)


# --- the figure --------------------------------------------------------------------------


def _finite(values: Sequence[float | None]) -> np.ndarray:
  return np.array([np.nan if v is None else v for v in values], dtype=float)


def scaling_figure(summary: dict) -> Figure:
  """Steps to target against the batch size, log-log (see the module's docstring)."""
  points = summary['points']
  sizes = np.array([p['batch_size'] for p in points], dtype=float)
  medians = _finite([p['median_steps_to_target'] for p in points])
  with matplotlib.rc_context(figure_style.RC):
    fig = Figure(figsize=(6.4, 5.6), layout='constrained')
    ax = fig.subplots()
    ax.set_xscale('log', base=2)
    ax.set_yscale('log')
    measured = np.isfinite(medians)
    ax.plot(sizes[measured], medians[measured], marker='o', color='tab:blue', zorder=3,
            label=f"median of {_seeds(summary['seeds'])}")
    _seed_bars(ax, points)
    _perfect_lines(ax, summary, sizes)
    missed = [p['batch_size'] for p in points if p['counted_as'] == 'missed']
    if missed:
      ax.scatter(missed, [_TOP] * len(missed), marker='x', s=60, color='tab:red',
                 transform=ax.get_xaxis_transform(), clip_on=False, zorder=4,
                 label='missed (median ∞)')
    _critical_line(ax, summary)
    ax.set_xticks(sizes, [f'{int(s)}' for s in sizes])
    ax.xaxis.set_minor_locator(ticker.NullLocator())
    ax.set_xlim(sizes[0] / 1.3, sizes[-1] * 1.3)
    if not measured.any():
      ax.text(0.5, 0.5, 'no batch size measured yet', transform=ax.transAxes, ha='center')
    # Plain numbers on the steps' axis, also at the minor ticks of a short span.
    ax.yaxis.set_major_formatter(ticker.LogFormatter(labelOnlyBase=False))
    ax.yaxis.set_minor_formatter(ticker.LogFormatter(labelOnlyBase=False,
                                                     minor_thresholds=(1, 0.5)))
    ax.set_xlabel('batch size')
    ax.set_ylabel('steps to target')
    ax.set_title(f"{summary['name']}: steps to {markdown.percent(summary['target_accuracy'])}")
    fig.legend(handles=ax.get_legend_handles_labels()[0], loc='outside lower center', ncols=2)
  return fig


def _seed_bars(ax, points: Sequence[dict]) -> None:
  """A bar from each batch size's fastest to its slowest seed; one that missed
  runs to the top, with an arrow."""
  if any(p['fastest_seed_steps'] is not None for p in points):
    ax.plot([], [], color='tab:blue', alpha=0.5, linewidth=6,
            label='seeds: fastest to slowest (↑: a seed missed)')
  for p in points:
    low, high = p['fastest_seed_steps'], p['slowest_seed_steps']
    if low is None:
      continue
    if high is not None:
      ax.plot([p['batch_size']] * 2, [low, high], color='tab:blue', alpha=0.5, linewidth=6,
              solid_capstyle='butt', zorder=2)
      continue
    # From the fastest seed up to the top of the axes: data x, axes y from there.
    ax.annotate('', xy=(p['batch_size'], _TOP), xycoords=('data', 'axes fraction'),
                xytext=(p['batch_size'], low), textcoords='data',
                arrowprops={'arrowstyle': '->', 'color': 'tab:blue', 'alpha': 0.6})


def _perfect_lines(ax, summary: dict, sizes: np.ndarray) -> None:
  perfect = _finite([p['perfect_scaling_steps'] for p in summary['points']])
  if not np.isfinite(perfect).all():
    return
  factor = summary['critical_factor']
  ax.plot(sizes, perfect, linestyle='--', color='0.3', zorder=2,
          label=f"perfect scaling from batch {int(sizes[0])}")
  ax.plot(sizes, factor * perfect, linestyle=':', color='0.5', zorder=2,
          label=f'{factor:g}× perfect scaling (the rule\'s limit)')


def _critical_line(ax, summary: dict) -> None:
  size = summary['critical_batch_size']
  if size is None:
    return
  bound = '≥ ' if summary['critical_batch_size_is_lower_bound'] else ''
  ax.axvline(size, color='tab:orange', linewidth=1.2, linestyle='-.', alpha=0.8, zorder=1,
             label=f'critical batch size {bound}{size}')


def save_figure(path: str, summary: dict) -> None:
  figure_style.save(scaling_figure(summary), path)
