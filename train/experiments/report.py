"""Markdown reports with PNG plots: one study, a comparison of studies, a search.

A study is many seeded runs of one configuration (the paper's 50-seed protocol);
its runs are result.json dicts and its summary comes from `statistics.summarize`.
The plots follow the paper: final accuracies as box plots with the points and a
dashed target line (its Figure 4; boxes are quartiles, whiskers min and max) and
the learning-rate schedule against the step (its Figure 1); the comparison table
has the columns of its Table 2.

A comparison also says, per pair of configs, whether they differ
(`statistics.compare_studies`, in plain words by `pairwise_verdict`) and overlays
their Kaplan-Meier curves of the time to target.

matplotlib and train/experiments/statistics only, through `Figure` objects without pyplot's
global state, so that the study runner can import this without JAX, TensorFlow
or a display.
"""

import math
import os
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from train.common import files
from train.experiments import statistics

_DPI = 120
_RC = {
    'font.size': 11, 'axes.titlesize': 12, 'axes.labelsize': 11,
    'xtick.labelsize': 10, 'ytick.labelsize': 10, 'legend.fontsize': 9,
    'axes.grid': True, 'grid.alpha': 0.3,
}
# Above the curves (zorder 2), below the points of the box plots (zorder 3).
_TARGET_STYLE = {'color': 'tab:red', 'linestyle': '--', 'linewidth': 1.5, 'zorder': 2.5}
_MISSING = '—'
_NOT_REACHED = 'not reached'
# The open bound of a range of times to the target.
_INFINITE = '∞'
# With more seeds than this a per-seed legend no longer reads; one entry instead.
_MAX_SEED_LEGEND = 10
# The zoomed panel of the eval curves shows the evaluations after this fraction
# of the run, where the accuracy approaches the target.
_ZOOM_FROM = 0.5

Study = tuple[str, dict, list[dict]]


# ---------------------------------------------------------------------------
# Formatting.


def _finite(value: float | int | None) -> bool:
  return value is not None and math.isfinite(value)


def _percent(value: float | None) -> str:
  return f'{100 * value:.2f}%' if _finite(value) else _MISSING


def _percent_range(pair: Sequence[float | None]) -> str:
  low, high = pair
  if not _finite(low) and not _finite(high):
    return _MISSING
  return f'{_percent(low)} – {_percent(high)}'


def _number(value: float | int | None, missing: str = _MISSING) -> str:
  """A count or a median of counts: no decimals when whole, else one."""
  if not _finite(value):
    return missing
  return f'{value:,.0f}' if float(value).is_integer() else f'{value:,.1f}'


def _number_range(pair: Sequence[float | None], unit: str = '') -> str:
  """A range of counts or times to the target; a missing bound is never reached."""
  low, high = pair
  if not _finite(low) and not _finite(high):
    return _MISSING

  def bound(value: float | None) -> str:
    return f'{_number(value)}{unit}' if _finite(value) else _INFINITE
  return f'{bound(low)} – {bound(high)}'


def _seconds(value: float | None, missing: str = _MISSING) -> str:
  """Seconds, with minutes or hours alongside once they read better."""
  if not _finite(value):
    return missing
  if value < 60:
    return f'{value:.1f} s'
  if value < 3600:
    return f'{value:,.0f} s ({value / 60:.1f} min)'
  return f'{value:,.0f} s ({value / 3600:.2f} h)'


def _value(value: object) -> str:
  """A config or search-space value."""
  if isinstance(value, float):
    return f'{value:.6g}'
  return str(value)


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
  def line(cells: Sequence[str]) -> str:
    return '| ' + ' | '.join(str(c).replace('|', '\\|') for c in cells) + ' |'
  return '\n'.join([line(header), line(['---'] * len(header))] + [line(r) for r in rows])


def _text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
  """Fixed-width columns: the first left-aligned, the others right-aligned."""
  widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

  def line(cells: Sequence[str]) -> str:
    return '  '.join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                     for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
  return '\n'.join([line(header), '  '.join('-' * w for w in widths)] + [line(r) for r in rows])


def _reached(summary: dict) -> str:
  return f"{summary['num_reached_target']} / {summary['num_runs']}"


def _sum_run_seconds(runs: Sequence[dict]) -> float:
  return float(sum(run['run_seconds'] for run in runs if _finite(run.get('run_seconds'))))


# ---------------------------------------------------------------------------
# Plots.


def _save(fig: Figure, path: str) -> None:
  with files.atomic_path(path, suffix='.tmp.png') as tmp:  # The suffix sets the format.
    fig.savefig(tmp, dpi=_DPI)


def _target_line(ax: Axes, target: float | None) -> None:
  if _finite(target):
    ax.axhline(100 * target, label=f'target {100 * target:.2f}%', **_TARGET_STYLE)


def _final_accuracies(runs: Sequence[dict]) -> list[float]:
  """Final eval accuracies in percent, runs without one left out."""
  return [100 * run['final_eval_accuracy'] for run in runs
          if _finite(run.get('final_eval_accuracy'))]


def _box_plot(ax: Axes, groups: Sequence[Sequence[float]], names: Sequence[str],
              colors: Sequence[object]) -> None:
  """Boxes (quartiles, whiskers at min and max) with jittered points and medians."""
  rng = np.random.default_rng(0)  # The same jitter every time the report is written.
  positions = np.arange(1, len(groups) + 1)
  filled = [list(g) if len(g) else [np.nan] for g in groups]
  ax.boxplot(filled, positions=positions, whis=(0, 100), widths=0.5, showfliers=False,
             tick_labels=list(names), medianprops={'color': 'black', 'linewidth': 1.5},
             boxprops={'linewidth': 1.2})
  for position, group, color in zip(positions, groups, colors):
    if not len(group):
      ax.text(position, 0.5, 'no run with\nan accuracy', transform=ax.get_xaxis_transform(),
              ha='center', va='center', color='gray')
      continue
    jitter = rng.uniform(-0.13, 0.13, size=len(group))
    ax.scatter(position + jitter, group, s=22, color=color, alpha=0.75, zorder=3,
               edgecolors='white', linewidths=0.5)
    ax.annotate(f'median\n{np.median(group):.2f}%', (position + 0.28, np.median(group)),
                va='center', ha='left', fontsize=9)
  ax.set_xlim(0.4, len(groups) + 0.85)


def _rotate_long_labels(ax: Axes, names: Sequence[str]) -> None:
  if len(names) > 4 or max((len(n) for n in names), default=0) > 14:
    for label in ax.get_xticklabels():
      label.set_rotation(20)
      label.set_horizontalalignment('right')


def _plot_final_accuracy(path: str, name: str, runs: Sequence[dict],
                         target: float | None) -> None:
  accuracies = _final_accuracies(runs)
  with matplotlib.rc_context(_RC):
    fig = Figure(figsize=(6.4, 5.2), layout='constrained')
    ax = fig.add_subplot()
    _box_plot(ax, [accuracies], [name], ['tab:blue'])
    _target_line(ax, target)
    missing = len(runs) - len(accuracies)
    note = f' ({missing} without an accuracy)' if missing else ''
    ax.set_title(f'{name}: final eval accuracy over {len(runs)} seeds{note}')
    ax.set_ylabel('final eval top-1 accuracy (%)')
    ax.set_xlabel('box: quartiles and median; whiskers: min and max')
    ax.legend(handles=[Line2D([], [], marker='o', linestyle='', color='tab:blue',
                              label='one run (seed)'),
                       *ax.get_legend_handles_labels()[0]], loc='best')
    _save(fig, path)


def _eval_points(run: dict) -> tuple[np.ndarray, np.ndarray]:
  evals = run.get('evals') or []
  steps = np.array([e['step'] for e in evals], dtype=float)
  accuracies = np.array([100 * e['accuracy'] if _finite(e.get('accuracy')) else np.nan
                         for e in evals], dtype=float)
  return steps, accuracies


def _zoom_limits(curves: Sequence[tuple[np.ndarray, np.ndarray]],
                 target: float | None) -> tuple[tuple[float, float], tuple[float, float]] | None:
  """x and y limits around the evaluations late in the runs, and the target."""
  last_step = max((s.max() for s, _ in curves if len(s)), default=None)
  if last_step is None:
    return None
  late = np.concatenate([a[(s >= _ZOOM_FROM * last_step) & np.isfinite(a)] for s, a in curves])
  if not len(late):
    return None
  values = np.append(late, 100 * target) if _finite(target) else late
  pad = max(0.15 * (values.max() - values.min()), 0.2)
  return ((_ZOOM_FROM * last_step, last_step * 1.02),
          (values.min() - pad, values.max() + pad))


def _style_curve_axes(ax: Axes, target: float | None, title: str) -> None:
  _target_line(ax, target)
  ax.set_title(title)
  ax.set_xlabel('training step')
  ax.set_ylabel('eval top-1 accuracy (%)')


def _seed_colors(count: int) -> list:
  if count <= _MAX_SEED_LEGEND:
    return [matplotlib.colormaps['tab10'](i) for i in range(count)]
  return list(matplotlib.colormaps['viridis'](np.linspace(0, 0.9, count)))


def _plot_eval_curves(path: str, name: str, runs: Sequence[dict],
                      target: float | None) -> None:
  curves = [_eval_points(run) for run in runs]
  colors = _seed_colors(len(runs))
  with matplotlib.rc_context(_RC):
    fig = Figure(figsize=(12, 5), layout='constrained')
    full, zoom = fig.subplots(1, 2)
    few = len(runs) <= _MAX_SEED_LEGEND
    for ax in (full, zoom):
      for run, (steps, accuracies), color in zip(runs, curves, colors):
        ax.plot(steps, accuracies, marker='o' if few else None, markersize=3,
                linewidth=1.2 if few else 0.8, color=color, alpha=0.85 if few else 0.6,
                label=f"seed {run['seed']}" if few else None)
    _style_curve_axes(full, target, f'{name}: eval accuracy, one line per seed')
    _style_curve_axes(zoom, target, f'last {100 * (1 - _ZOOM_FROM):.0f}% of training, '
                      'near the target')
    limits = _zoom_limits(curves, target)
    if limits:
      zoom.set_xlim(*limits[0])
      zoom.set_ylim(*limits[1])
    handles = full.get_legend_handles_labels()[0]
    if not few:
      handles.insert(0, Line2D([], [], color=colors[0], label=f'{len(runs)} seeds'))
    full.legend(handles=handles, loc='lower right', ncols=2 if len(handles) > 6 else 1)
    _save(fig, path)


def _plot_learning_rate(path: str, name: str, steps: Sequence[int],
                        rates: Sequence[float]) -> None:
  with matplotlib.rc_context(_RC):
    fig = Figure(figsize=(7.5, 4.5), layout='constrained')
    ax = fig.add_subplot()
    ax.plot(steps, rates, linewidth=2, color='tab:blue', label=name)
    peak = int(np.argmax(rates))
    ax.plot([steps[peak]], [rates[peak]], 'o', color='tab:orange',
            label=f'peak {rates[peak]:.4g} at step {steps[peak]:,}')
    ax.set_title(f'{name}: learning-rate schedule')
    ax.set_xlabel('training step')
    ax.set_ylabel('learning rate')
    ax.set_ylim(bottom=0)
    ax.legend(loc='best')
    _save(fig, path)


def _config_colors(count: int) -> list:
  return [matplotlib.colormaps['tab10'](i % 10) for i in range(count)]


def _distinct_targets(studies: Sequence[Study]) -> list[float]:
  return sorted({s['target_accuracy'] for _, s, _ in studies if _finite(s.get('target_accuracy'))})


def _plot_comparison(path: str, studies: Sequence[Study]) -> None:
  names = [name for name, _, _ in studies]
  with matplotlib.rc_context(_RC):
    fig = Figure(figsize=(max(6.4, 1.7 * len(studies) + 3), 5.4), layout='constrained')
    ax = fig.add_subplot()
    _box_plot(ax, [_final_accuracies(runs) for _, _, runs in studies], names,
              _config_colors(len(studies)))
    for target in _distinct_targets(studies):
      _target_line(ax, target)
    _rotate_long_labels(ax, names)
    runs_per_config = sorted({len(runs) for _, _, runs in studies})
    seeds = ' or '.join(str(n) for n in runs_per_config)
    ax.set_title(f'Final eval accuracy, {seeds} seeds per configuration')
    ax.set_ylabel('final eval top-1 accuracy (%)')
    ax.set_xlabel('box: quartiles and median; whiskers: min and max; points: one run each')
    ax.legend(loc='best')
    _save(fig, path)


def _plot_comparison_curves(path: str, studies: Sequence[Study]) -> None:
  colors = _config_colors(len(studies))
  with matplotlib.rc_context(_RC):
    fig = Figure(figsize=(12, 5), layout='constrained')
    full, zoom = fig.subplots(1, 2)
    handles = []
    all_curves = []
    for (name, _, runs), color in zip(studies, colors):
      curves = [_eval_points(run) for run in runs]
      all_curves.extend(curves)
      for ax in (full, zoom):
        for steps, accuracies in curves:
          ax.plot(steps, accuracies, linewidth=0.8, color=color, alpha=0.55)
      handles.append(Line2D([], [], color=color, linewidth=2, label=f'{name} ({len(runs)} seeds)'))
    targets = _distinct_targets(studies)
    for ax, title in ((full, 'Eval accuracy, thin lines: one per seed'),
                      (zoom, f'last {100 * (1 - _ZOOM_FROM):.0f}% of training, near the target')):
      _style_curve_axes(ax, None, title)
      for target in targets:
        _target_line(ax, target)
    limits = _zoom_limits(all_curves, targets[0] if targets else None)
    if limits:
      zoom.set_xlim(*limits[0])
      zoom.set_ylim(*limits[1])
    full.legend(handles=handles + full.get_legend_handles_labels()[0], loc='lower right')
    _save(fig, path)


def _axis_positions(values: Sequence[object]) -> tuple[np.ndarray, list[str] | None]:
  """Numeric values as they are; anything else as categories at 0, 1, ..."""
  if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
    return np.array(values, dtype=float), None
  categories = sorted({str(v) for v in values})
  return np.array([categories.index(str(v)) for v in values], dtype=float), categories


def _log_scale(ax: Axes, positions: np.ndarray) -> None:
  """A log x-axis labelled with plain numbers: 1, 2, 5 per decade when it spans few."""
  ax.set_xscale('log')
  decades = math.log10(positions.max() / positions.min())
  ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0) if decades <= 2 else (1.0,)))
  ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda x, _: f'{x:g}'))
  ax.xaxis.set_minor_formatter(ticker.NullFormatter())
  ax.tick_params(axis='x', labelrotation=30)


def _search_axis(ax: Axes, axis: str, trials: Sequence[dict], best: dict | None,
                 target: float | None) -> None:
  positions, categories = _axis_positions([t['params'].get(axis) for t in trials])
  medians = np.array([100 * t['summary']['median_final_accuracy'] if
                      _finite(t['summary'].get('median_final_accuracy')) else np.nan
                      for t in trials])
  ax.scatter(positions, medians, s=30, color='tab:blue', alpha=0.8, label='trial')
  if best is not None:
    i = next(i for i, t in enumerate(trials) if t is best)
    ax.scatter([positions[i]], [medians[i]], s=180, marker='*', color='tab:orange',
               edgecolors='black', zorder=4, label=f"best (trial {best['trial']})")
  _target_line(ax, target)
  distinct = np.unique(positions[np.isfinite(positions)])
  if categories is not None:
    ax.set_xticks(range(len(categories)), categories)
    ax.set_xlim(-0.5, len(categories) - 0.5)
  elif len(distinct) and np.all(distinct > 0) and distinct.max() / distinct.min() > 10:
    _log_scale(ax, distinct)
  elif len(distinct) <= 6:
    # A few values (e.g. a warmup power of 1 or 2): ticks at those values only.
    ax.set_xticks(distinct, [f'{v:g}' for v in distinct])
  ax.set_xlabel(axis)
  if ax.get_subplotspec().is_first_col():
    ax.set_ylabel('median final eval accuracy (%)')
  ax.set_title(axis)


def _plot_search_axes(path: str, axes: Sequence[str], ranked: Sequence[dict]) -> None:
  has_best = ranked and _finite(ranked[0]['summary'].get('median_final_accuracy'))
  best = ranked[0] if has_best else None
  targets = [t['summary'].get('target_accuracy') for t in ranked]
  target = next((t for t in targets if _finite(t)), None)
  columns = min(3, max(len(axes), 1))
  rows = math.ceil(max(len(axes), 1) / columns)
  with matplotlib.rc_context(_RC):
    fig = Figure(figsize=(4.6 * columns, 3.9 * rows + 0.5), layout='constrained')
    grid = fig.subplots(rows, columns, sharey=True, squeeze=False).ravel()
    for ax, axis in zip(grid, axes):
      _search_axis(ax, axis, ranked, best, target)
    for ax in grid[len(axes):]:
      ax.set_visible(False)
    if len(axes):
      fig.legend(handles=grid[0].get_legend_handles_labels()[0], loc='outside lower center',
                 ncols=3)
    fig.suptitle(f'Search: median final eval accuracy of {len(ranked)} trials against each axis')
    _save(fig, path)


def _survival_curve(time_to_target: dict,
                    end: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """Steps, fraction reached and band of a Kaplan-Meier table, from (0, 0) to `end`.

  The last level is drawn on to `end`, so that a curve whose last step is the
  end of the budget shows its final level rather than a bare vertical jump.
  """
  steps = np.array([0.0, *time_to_target['steps'], end])
  fraction = np.array([0.0, *time_to_target['fraction_reached']])
  band = [(0.0, 0.0)] + [tuple(np.nan if v is None else v for v in pair)
                         for pair in time_to_target['fraction_reached_ci95']]
  fraction = np.append(fraction, fraction[-1])
  band.append(band[-1])
  low, high = (np.array(side, dtype=float) for side in zip(*band))
  return steps, fraction, low, high


def _plot_time_to_target(path: str, title: str,
                         curves: Sequence[tuple[str, dict]]) -> None:
  """Kaplan-Meier curves: the fraction of runs that reached the target by each step."""
  colors = _config_colors(len(curves))
  end = 1.04 * max((max(ttt['steps'], default=0.0) for _, ttt in curves), default=0.0) or 1.0
  with matplotlib.rc_context(_RC):
    fig = Figure(figsize=(8, 5), layout='constrained')
    ax = fig.add_subplot()
    for (name, ttt), color in zip(curves, colors):
      steps, fraction, low, high = _survival_curve(ttt, end)
      median = ttt.get('median_steps')
      label = (f"{name}: {ttt['num_events']} of {ttt['num_runs']} reached it, median "
               f"{_number(median) if _finite(median) else 'not reached'}")
      ax.step(steps, fraction, where='post', color=color, linewidth=2, label=label)
      ax.fill_between(steps, low, high, step='post', color=color, alpha=0.18, linewidth=0)
      censored = [t for t, c in zip(ttt['steps'], ttt['num_censored']) if c]
      censored_at = [f for t, f, c in zip(ttt['steps'], ttt['fraction_reached'],
                                          ttt['num_censored']) if c]
      ax.plot(censored, censored_at, '|', color=color, markersize=12, markeredgewidth=2)
    ax.axhline(0.5, color='gray', linestyle=':', linewidth=1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0, end)
    ax.set_xlabel('training step')
    ax.set_ylabel('fraction of runs that reached the target')
    ax.set_title(title)
    handles = ax.get_legend_handles_labels()[0] + [
        Line2D([], [], marker='|', linestyle='', color='gray', markersize=12,
               markeredgewidth=2, label='censored (missed the target)'),
        Patch(color='gray', alpha=0.25, label='95% band (log-log)')]
    ax.legend(handles=handles, loc='upper left')
    _save(fig, path)


# ---------------------------------------------------------------------------
# Reports.


def _results_tables(summary: dict) -> str:
  target = summary.get('target_accuracy')
  counts = _markdown_table(['Result', 'Value'], [
      [f'Runs that reached the target ({_percent(target)})', _reached(summary)],
      ['Fraction that reached it, 95% interval (exact binomial)', _hit_rate(summary)],
      ['Diverged runs (NaN or infinite loss)', str(summary.get('num_diverged', 0))],
      ['Resumed runs (their times include the interruptions)',
       str(summary.get('num_resumed', 0))],
      ["MLPerf score (olympic mean of the first 5 runs' seconds to target)",
       _seconds(summary.get('mlperf_score_seconds'))],
  ])
  rows = [
      ['Final eval accuracy', _percent(summary['median_final_accuracy']),
       _percent_range(summary['final_accuracy_quartiles']),
       _percent_range(summary['final_accuracy_ci95'])],
      ['Final train accuracy', _percent(summary['median_final_train_accuracy']),
       _percent_range(summary['final_train_accuracy_quartiles']),
       _percent_range(summary['final_train_accuracy_ci95'])],
      ['Steps to target', _number(summary['median_steps_to_target']),
       _number_range(summary['steps_to_target_quartiles']),
       _number_range(summary['steps_to_target_ci95'])],
      ['Seconds to target', _seconds(summary['median_seconds_to_target']),
       _number_range(summary['seconds_to_target_quartiles'], ' s'),
       _number_range(summary['seconds_to_target_ci95'], ' s')],
      ['Epochs to target', _number(summary['median_epochs_to_target']),
       _number_range(summary['epochs_to_target_quartiles']),
       _number_range(summary['epochs_to_target_ci95'])],
  ]
  medians = _markdown_table(['Metric', 'Median', 'Quartiles (Q1 – Q3)', '95% CI of the median'],
                            rows)
  note = ('A run that never reached the target counts as infinitely slow, and a run without '
          f'an accuracy as the least accurate; {_MISSING} marks a statistic that is then '
          'infinite (e.g. a median to target when fewer than half the runs reached it) and '
          f'{_INFINITE} the open end of a range. '
          'The interval is a percentile bootstrap of the median (10,000 resamples).')
  return f'{counts}\n\n{medians}\n\n{note}'


def _hit_rate(summary: dict) -> str:
  if not summary['num_runs']:
    return _MISSING
  low, high = summary.get('reached_target_ci95', (None, None))
  rate = summary['num_reached_target'] / summary['num_runs']
  return f'{100 * rate:.0f}% ({100 * low:.0f}% – {100 * high:.0f}%)'


def _fraction_band(pair: Sequence[float | None]) -> str:
  low, high = pair
  if not (_finite(low) and _finite(high)):
    return _MISSING
  return f'{100 * low:.0f}% – {100 * high:.0f}%'


def _time_to_target_section(summary: dict) -> str:
  """The Kaplan-Meier table of the time to target and its median, with what they mean."""
  ttt = summary['time_to_target']
  if ttt['median_steps'] is not None:
    epochs = ttt['median_epochs']
    median = (f"{_number(ttt['median_steps'])} steps"
              + (f' ({epochs:.2f} epochs)' if _finite(epochs) else ''))
  else:
    median = f"none ({ttt['median_reason']})"
  epochs = ttt['epochs'] or [None] * len(ttt['steps'])
  rows = [[_number(step), _number(None if epoch is None else round(epoch, 2)), str(at_risk),
           str(reached), str(censored), f'{100 * fraction:.0f}%', _fraction_band(band)]
          for step, epoch, at_risk, reached, censored, fraction, band in zip(
              ttt['steps'], epochs, ttt['num_at_risk'], ttt['num_reached'],
              ttt['num_censored'], ttt['fraction_reached'], ttt['fraction_reached_ci95'])]
  table = _markdown_table(['Step', 'Epoch', 'At risk', 'Reached the target here',
                           'Censored here', 'Fraction reached by this step',
                           '95% band'], rows)
  return '\n\n'.join([
      f'Median time to target, Kaplan-Meier: **{median}**.',
      table,
      'Time to target as survival data: a run that missed the target is censored at its '
      'last eval (a diverged run at the end of its budget, since it can no longer reach '
      'it): it counts as "not reached by then", not as infinitely slow. The fraction is '
      "the Kaplan-Meier estimate (`scipy.stats.ecdf`) with a pointwise log-log band "
      f'({_MISSING} where the band is undefined, e.g. once every run still at risk has '
      'reached the target). The "median steps to target" of the results table keeps the '
      "paper's and MLPerf's convention (a missed run is infinitely slow); when every "
      'missed run trained to the end of the budget, the two medians differ only in that '
      'this one is always an eval step.',
  ])


def _status(run: dict) -> str:
  """The run's status, marked when the run was resumed from a checkpoint."""
  status = str(run.get('status'))
  if run.get('resumed'):
    lost = run.get('seconds_lost_to_interruptions')
    status += f" (resumed {run.get('num_resumes')}x, {_seconds(lost)} lost)"
  return status


def _per_seed_table(runs: Sequence[dict]) -> str:
  rows = [[str(run.get('seed')), _percent(run.get('final_eval_accuracy')),
           'yes' if run.get('reached_target') else 'no',
           _number(run.get('steps_to_target'), _NOT_REACHED),
           _seconds(run.get('seconds_to_target'), _NOT_REACHED),
           _status(run)] for run in runs]
  return _markdown_table(['Seed', 'Final eval accuracy', 'Reached target', 'Steps to target',
                          'Seconds to target', 'Status'], rows)


def _time_table(wall_seconds: float, runs: Sequence[dict], what: str = 'Study') -> str:
  return _markdown_table([f'{what} wall time', "Sum of the runs' run_seconds"],
                         [[_seconds(wall_seconds), _seconds(_sum_run_seconds(runs))]])


def _mlperf_section(mlperf: dict, summary: dict) -> str:
  """The study as an MLPerf submission: score, RCP verdict, and how to check it."""
  rcp = mlperf['rcp']
  if rcp['rcp_mean_epochs'] is None:
    reference = 'no reference convergence point applies'
  else:
    reference = (f"reference mean {rcp['rcp_mean_epochs']:.2f} epochs, at least "
                 f"{rcp['min_epochs']:.2f} to pass")
  mean = 'none' if rcp['mean_epochs'] is None else f"{rcp['mean_epochs']:.2f}"
  folder = mlperf['results_folder']
  return '\n'.join([
      f"Division: {mlperf['division']}, ruleset {mlperf['ruleset']}; the first "
      f"{mlperf['num_scored_runs']} runs make the score (the olympic mean of their times "
      f"to target): {_seconds(summary['mlperf_score_seconds'], 'none (too few reached it)')}.",
      '',
      f"RCP check at batch {rcp['batch_size']}: {'passes' if rcp['passed'] else 'fails'} "
      f"({rcp['source']}; olympic mean epochs to target {mean}; {reference}).",
      '',
      f'The results folder `{folder}` holds their logs in the layout of an MLPerf '
      'submission; check it, from this directory, with:',
      '',
      '```',
      f'python -m mlperf_logging.package_checker {folder} training {mlperf["ruleset"]}',
      f'python -m mlperf_logging.result_summarizer {folder} training {mlperf["ruleset"]}',
      f'python -m mlperf_logging.rcp_checker {folder}/results/*/resnet '
      f'--rcp_usage training --rcp_version {mlperf["ruleset"]}',
      '```',
  ])


def _unfinished_section(unfinished: Sequence[dict] | None) -> list[str]:
  """'## Runs not finished': each run without a result, its state and why; nothing
  when every planned run has finished."""
  if not unfinished:
    return []
  counts = ', '.join(f'{sum(u["state"] == state for u in unfinished)} {state}'
                     for state in ('running', 'pending', 'failed')
                     if any(u['state'] == state for u in unfinished))
  rows = [[u['run'], u['state'], u.get('detail') or ''] for u in unfinished]
  return ['## Runs not finished',
          f'{len(unfinished)} planned runs have no result yet ({counts}); the figures '
          'above count the finished runs only. `python main.py report --workdir=DIR` '
          'writes this report again.',
          _markdown_table(['Run', 'State', 'Holder, or last error'], rows)]


def write_study_report(out_dir: str, name: str, summary: dict, runs: list[dict],
                       learning_rate: tuple[list[int], list[float]] | None,
                       wall_seconds: float, config_summary: dict[str, object],
                       mlperf: dict | None = None,
                       unfinished: Sequence[dict] | None = None) -> str:
  """Writes `out_dir/report.md` and its plots for one study.

  Args:
    out_dir: directory of the report (created if missing).
    name: the study's name, e.g. the config's.
    summary: `statistics.summarize(runs)`.
    runs: the runs' result.json dicts, one per seed.
    learning_rate: (steps, learning rates) of the schedule, or None to leave the
      plot out.
    wall_seconds: wall time of the whole study.
    config_summary: the settings to show, e.g. optimizer, batch size, steps.
    mlperf: study.json's 'mlperf' entry (train/experiments/study.mlperf_summary), or None
      to leave the MLPerf section out.
    unfinished: study.json's 'unfinished' (planned runs without a result), listed
      in a section of their own.

  Returns:
    The path of report.md; final_accuracy.png, eval_curves.png,
    time_to_target.png and (with a schedule) learning_rate.png lie next to it.
  """
  os.makedirs(out_dir, exist_ok=True)
  target = summary.get('target_accuracy')
  _plot_final_accuracy(os.path.join(out_dir, 'final_accuracy.png'), name, runs, target)
  _plot_eval_curves(os.path.join(out_dir, 'eval_curves.png'), name, runs, target)
  _plot_time_to_target(os.path.join(out_dir, 'time_to_target.png'),
                       f'{name}: fraction of runs that reached the target',
                       [(name, summary['time_to_target'])])
  plots = ['![Final eval accuracy of each seed, box plot](final_accuracy.png)',
           '![Eval accuracy against training step, one line per seed](eval_curves.png)']
  if learning_rate is not None:
    _plot_learning_rate(os.path.join(out_dir, 'learning_rate.png'), name, *learning_rate)
    plots.append('![Learning-rate schedule](learning_rate.png)')
  config_table = _markdown_table(['Setting', 'Value'],
                                 [[key, _value(value)] for key, value in config_summary.items()])
  text = '\n\n'.join([
      f'# Study: {name}',
      f"{summary['num_runs']} runs of one configuration, one seed each; target eval accuracy "
      f'{_percent(target)}.',
      *_unfinished_section(unfinished),
      '## Configuration', config_table,
      '## Results', _results_tables(summary),
      '## Time to target', _time_to_target_section(summary),
      '![Fraction of runs that reached the target against step, Kaplan-Meier, with its '
      '95% band](time_to_target.png)',
      '## Time', _time_table(wall_seconds, runs),
      *([] if mlperf is None else ['## MLPerf', _mlperf_section(mlperf, summary)]),
      '## Plots', *plots,
      '## Per seed', _per_seed_table(runs),
  ])
  return files.write_text(os.path.join(out_dir, 'report.md'), text)


def _link_to_report(out_dir: str, name: str, subdir: str) -> str:
  """`name`, linked to `subdir/report.md` when the study runner wrote one there."""
  if os.path.isfile(os.path.join(out_dir, subdir, 'report.md')):
    return f'[{name}]({subdir}/report.md)'
  return name


def _comparison_rows(studies: Sequence[Study],
                     out_dir: str | None = None) -> tuple[list[str], list[list[str]]]:
  """Header and rows of the comparison table; names linked to studies in `out_dir`."""
  header = ['Config', 'Reached target / runs', 'Median final test accuracy',
            'Median train accuracy', 'Median steps to target', 'Median seconds to target',
            'MLPerf score (s)', 'Kaplan-Meier median steps to target']
  rows = [[_link_to_report(out_dir, name, name) if out_dir else name, _reached(s),
           _percent(s['median_final_accuracy']), _percent(s['median_final_train_accuracy']),
           _number(s['median_steps_to_target']), _number(s['median_seconds_to_target']),
           _number(s['mlperf_score_seconds']),
           _number((s.get('time_to_target') or {}).get('median_steps'))]
          for name, s, _ in studies]
  return header, rows


def comparison_table(studies: Sequence[Study]) -> str:
  """The comparison table (the paper's Table 2 columns) as fixed-width text.

  Args:
    studies: (name, summary, runs) of each configuration.

  Returns:
    The table, one line per configuration under a header, for the console.
  """
  return _text_table(*_comparison_rows(studies))


def _differences_table(differences: dict[str, dict[str, Any]]) -> str:
  """Rows: the config keys whose values differ; columns: the configurations."""
  names = list(differences)
  keys = sorted({key for values in differences.values() for key in values})
  rows = [[f'`{key}`'] + [str(differences[name].get(key, _MISSING)) for name in names]
          for key in keys]
  return _markdown_table(['Key'] + names, rows)


def _overrides_section(overrides: dict[str, Any]) -> str:
  """The command line's --config.KEY=VALUE settings, applied to every config."""
  if not overrides:
    return 'No `--config.KEY=VALUE` overrides: each configuration is its file\'s.'
  flags = ' '.join(f'`--config.{key}={_value(value)}`' for key, value in overrides.items())
  return f'Applied to every configuration from the command line: {flags}.'


def _p(value: float | None) -> str:
  """A p-value as a reader wants it: two significant digits, small ones bounded."""
  if value is None:
    return _MISSING
  if value < 0.001:
    return '< 0.001'
  return f'{value:.2g}' if value < 0.1 else f'{value:.2f}'


def _p_text(value: float) -> str:
  formatted = _p(value)
  return f'p {formatted}' if formatted.startswith('<') else f'p = {formatted}'


def _points(value: float) -> str:
  """A difference of accuracies (fractions) in percentage points, signed."""
  return f'{100 * value:+.1f}'


def _seeds_needed(pair: dict) -> str:
  needed = pair['seeds_per_config_for_80_percent_power']
  if needed is not None:
    return str(needed)
  return pair['reasons'].get('seeds_per_config_for_80_percent_power', _MISSING)


def _accuracy_verdict(pair: dict, p_key: str) -> str:
  a, b, p = pair['a'], pair['b'], pair[p_key]
  if p is None:
    return f"The final accuracies cannot be compared ({pair['reasons'].get('mann_whitney_p')})."
  difference = pair['difference_in_median_final_accuracy']
  if p >= statistics.SIGNIFICANCE_LEVEL:
    words = (f'**No evidence that the final accuracies of {a} and {b} differ** '
             f'(Mann-Whitney {_p_text(p)})')
  else:
    higher, lower = (a, b) if difference >= 0 else (b, a)
    words = (f'**The final accuracies of {a} and {b} differ** (Mann-Whitney {_p_text(p)}): '
             f"{higher}'s median is {abs(100 * difference):.1f} points above {lower}'s")
  low, high = pair['difference_in_median_final_accuracy_ci95']
  if low is not None:
    words += (f'; the 95% interval of the difference in median final accuracy ({a} − {b}) '
              f'is {_points(low)} to {_points(high)} points')
  needed = pair['seeds_per_config_for_80_percent_power']
  if needed is not None:
    words += (f'; about {needed} seeds per config would detect a difference of this size '
              f'({_points(difference)} points) 80% of the time at the 5% level')
  elif 'more than' in pair['reasons'].get('seeds_per_config_for_80_percent_power', ''):
    words += (f'; more than {statistics.POWER_GRID[-1]} seeds per config would be needed to '
              f'detect a difference of this size ({_points(difference)} points) 80% of the time')
  return words + '.'


def _paired_verdict(pair: dict, p_key: str) -> str:
  if pair[p_key] is None:
    reason = pair['reasons'].get('wilcoxon_p')
    return f'No paired test ({reason}).' if reason else ''
  seeds = pair['paired_seeds']
  return (f'Paired by seed (seeds {seeds[0]}–{seeds[-1]}, same initialisation and data '
          f'order on both sides): Wilcoxon signed-rank {_p_text(pair[p_key])}.')


def _target_verdict(pair: dict, fisher_key: str, logrank_key: str) -> str:
  (reached_a, runs_a), (reached_b, runs_b) = pair['reached_target']
  hits = f"{pair['a']} reached the target in {reached_a} of {runs_a} runs, {pair['b']} in " \
         f'{reached_b} of {runs_b}'
  fisher = pair[fisher_key]
  if fisher is None:
    return f'{hits}.'
  differ = ('the hit rates differ' if fisher < statistics.SIGNIFICANCE_LEVEL
            else 'no evidence that the hit rates differ')
  words = f'{hits}: {differ} (Fisher exact {_p_text(fisher)})'
  logrank = pair[logrank_key]
  if logrank is None:
    words += f"; the times to target cannot be compared ({pair['reasons'].get('logrank_p')})"
  else:
    differ = ('the times to target differ' if logrank < statistics.SIGNIFICANCE_LEVEL
              else 'no evidence that the times to target differ')
    words += (f'; {differ}, counting a run that missed as censored (log-rank '
              f'{_p_text(logrank)})')
  return words + '.'


def pairwise_verdict(pair: dict, adjusted: bool = False) -> str:
  """The verdict on one pair of configs in plain words, with the numbers behind it.

  Args:
    pair: an entry of `statistics.compare_studies`.
    adjusted: use the Holm-adjusted p-values (with more than two configs).

  Returns:
    A paragraph: do the final accuracies differ, how large is the difference,
    how many seeds would settle it; do the hit rates and times to target differ.
  """
  suffix = '_holm' if adjusted else ''
  parts = [_accuracy_verdict(pair, f'mann_whitney_p{suffix}'),
           _paired_verdict(pair, f'wilcoxon_p{suffix}'),
           _target_verdict(pair, f'fisher_exact_p{suffix}', f'logrank_p{suffix}')]
  if adjusted:
    parts.append('(p-values adjusted for the comparisons of every pair, Holm.)')
  return ' '.join(part for part in parts if part)


def _pairwise_table(pairs: Sequence[dict], adjusted: bool) -> str:
  def p(pair: dict, key: str) -> str:
    return f'{_p(pair[key])} ({_p(pair[key + "_holm"])})' if adjusted else _p(pair[key])

  def interval(pair: dict) -> str:
    low, high = pair['difference_in_median_final_accuracy_ci95']
    return _MISSING if low is None else f'{_points(low)} to {_points(high)}'

  rows = [[f"{pair['a']} − {pair['b']}",
           _points(pair['difference_in_median_final_accuracy'])
           if pair['difference_in_median_final_accuracy'] is not None else _MISSING,
           interval(pair), p(pair, 'mann_whitney_p'), p(pair, 'wilcoxon_p'),
           ' vs '.join(f'{r} / {n}' for r, n in pair['reached_target']),
           p(pair, 'fisher_exact_p'), p(pair, 'logrank_p'), _seeds_needed(pair)]
          for pair in pairs]
  note = ' (Holm-adjusted)' if adjusted else ''
  return _markdown_table(
      ['Pair (a − b)', 'Difference in median final accuracy (points)', '95% CI (bootstrap)',
       f'Mann-Whitney p{note}', f'Wilcoxon p, paired by seed{note}', 'Reached target',
       f'Fisher exact p{note}', f'Log-rank p{note}', 'Seeds per config for 80% power'],
      rows)


def _pairwise_section(pairs: Sequence[dict]) -> str:
  adjusted = len({name for pair in pairs for name in (pair['a'], pair['b'])}) > 2
  verdicts = [pairwise_verdict(pair, adjusted) for pair in pairs]
  how = ('Final accuracies: the difference of the medians with a two-sample percentile '
         'bootstrap interval (9,999 resamples), the Mann-Whitney U test and, when both '
         'configs ran the same seeds, the Wilcoxon signed-rank test on the per-seed '
         'differences; a run without a final accuracy (diverged) counts as 0%. Reaching the '
         "target: Fisher's exact test on reached / missed. Time to target: the log-rank "
         'test, a missed run censored as in the studies. Seeds per config for 80% power: '
         "the smallest number of seeds on the grid "
         f"{', '.join(str(n) for n in statistics.POWER_GRID)} at which Mann-Whitney at the "
         "5% level rejects in 80% of 1,000 resamples drawn from each config's observed "
         'final accuracies; it is only as good as those runs are representative. All from '
         '`scipy.stats`.')
  if adjusted:
    how += (' With more than two configs, each p-value is also given adjusted for the '
            'comparisons of every pair (Holm), in parentheses; the verdicts use the '
            'adjusted ones.')
  return '\n\n'.join([*verdicts, _pairwise_table(pairs, adjusted), how])


def write_comparison_report(out_dir: str, studies: list[Study], wall_seconds: float,
                            differences: dict[str, dict[str, Any]] | None = None,
                            overrides: dict[str, Any] | None = None,
                            pairwise: list[dict] | None = None,
                            unfinished: Sequence[dict] | None = None) -> str:
  """Writes `out_dir/report.md` with comparison.png and comparison_curves.png.

  Args:
    out_dir: directory of the report (created if missing).
    studies: (name, summary, runs) of each configuration.
    wall_seconds: wall time of all the studies together.
    differences: for each configuration, the config keys on which the
      configurations differ and its values (seeds excluded); shown as a table.
    overrides: the command line's --config.KEY=VALUE settings, applied to
      every configuration.
    pairwise: `statistics.compare_studies` of the studies, or None to compute it.
    unfinished: planned runs without a result (study.json's 'unfinished' of
      every configuration), listed in a section of their own.

  Returns:
    The path of report.md; comparison.png, comparison_curves.png and
    time_to_target.png (every config's Kaplan-Meier curve) lie next to it.
  """
  os.makedirs(out_dir, exist_ok=True)
  if pairwise is None:
    pairwise = statistics.compare_studies([(name, runs) for name, _, runs in studies])
  _plot_time_to_target(os.path.join(out_dir, 'time_to_target.png'),
                       'Fraction of runs that reached the target',
                       [(name, s['time_to_target']) for name, s, _ in studies])
  _plot_comparison(os.path.join(out_dir, 'comparison.png'), studies)
  _plot_comparison_curves(os.path.join(out_dir, 'comparison_curves.png'), studies)
  targets = ', '.join(_percent(t) for t in _distinct_targets(studies)) or _MISSING
  all_runs = [run for _, _, runs in studies for run in runs]
  text = '\n\n'.join([
      f'# Comparison of {len(studies)} configurations',
      f'Target eval accuracy {targets}. "Test" accuracy is the accuracy on the validation '
      'split, as the paper calls it; train accuracy is on the last logged training batch. '
      'Medians count a run that never reached the target as infinitely slow (the paper\'s and '
      "MLPerf's convention); the Kaplan-Meier median censors it at its last eval instead. The "
      "MLPerf score is the olympic mean of the first 5 runs' seconds to target.",
      _markdown_table(*_comparison_rows(studies, out_dir)),
      *_unfinished_section(unfinished),
      *(['## Do they differ?', _pairwise_section(pairwise)] if pairwise else []),
      *(['## What differs', _differences_table(differences)] if differences else []),
      '## Command-line overrides', _overrides_section(overrides or {}),
      '## Time', _time_table(wall_seconds, all_runs, 'Comparison'),
      '## Plots',
      '![Final eval accuracy of each configuration, box plots](comparison.png)',
      '![Eval accuracy against training step, one colour per configuration]'
      '(comparison_curves.png)',
      '![Fraction of runs that reached the target against step, Kaplan-Meier, one curve '
      'and 95% band per configuration](time_to_target.png)',
  ])
  return files.write_text(os.path.join(out_dir, 'report.md'), text)


def _rank(trials: Sequence[dict]) -> list[dict]:
  """Best median final accuracy first; trials without one last, by trial number."""
  def key(trial: dict) -> tuple[bool, float, int]:
    median = trial['summary'].get('median_final_accuracy')
    return (not _finite(median), -median if _finite(median) else 0.0, trial['trial'])
  return sorted(trials, key=key)


def _search_table(out_dir: str, axes: Sequence[str], ranked: Sequence[dict]) -> str:
  """The ranked trials with their params; trials linked to trial_<k>/report.md."""
  rows = [[str(rank), _link_to_report(out_dir, str(t['trial']), f"trial_{t['trial']}"),
           *[_value(t['params'].get(a)) for a in axes],
           _percent(t['summary'].get('median_final_accuracy')),
           _percent_range(t['summary'].get('final_accuracy_quartiles', (None, None))),
           _reached(t['summary']), _number(t['summary'].get('median_steps_to_target'))]
          for rank, t in enumerate(ranked, start=1)]
  return _markdown_table(['Rank', 'Trial', *axes, 'Median final accuracy', 'Quartiles',
                          'Reached target / runs', 'Median steps to target'], rows)


def write_search_report(out_dir: str, search_space_axes: list[str], trials: list[dict],
                        wall_seconds: float, unfinished: Sequence[dict] | None = None) -> str:
  """Writes `out_dir/report.md` with search_axes.png for a hyperparameter search.

  Args:
    out_dir: directory of the report (created if missing).
    search_space_axes: the searched parameters, keys of each trial's 'params'.
    trials: {'trial': int, 'params': {axis: value}, 'summary': summary dict}.
    wall_seconds: wall time of the whole search.
    unfinished: planned runs without a result, listed in a section of their own.

  Returns:
    The path of report.md, which ranks the trials by median final accuracy.
  """
  os.makedirs(out_dir, exist_ok=True)
  ranked = _rank(trials)
  _plot_search_axes(os.path.join(out_dir, 'search_axes.png'), search_space_axes, ranked)
  table = _search_table(out_dir, search_space_axes, ranked)
  best = ''
  if ranked and _finite(ranked[0]['summary'].get('median_final_accuracy')):
    top = ranked[0]
    params = ', '.join(f'{a} = {_value(top["params"].get(a))}' for a in search_space_axes)
    best = (f"Best: trial {top['trial']}, median final accuracy "
            f"{_percent(top['summary']['median_final_accuracy'])} ({params}).")
  text = '\n\n'.join(filter(None, [
      f'# Search over {len(search_space_axes)} axes, {len(trials)} trials',
      f'Wall time {_seconds(wall_seconds)}. {best}',
      *_unfinished_section(unfinished),
      '## Trials, best first', table,
      '## Plots',
      '![Median final accuracy against each search axis](search_axes.png)',
  ]))
  return files.write_text(os.path.join(out_dir, 'report.md'), text)
