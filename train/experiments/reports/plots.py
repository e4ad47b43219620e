"""The figures of studies, comparisons and searches, after the Reality Check's:
final accuracies as box plots with the points and a dashed target line (its
Figure 4; boxes are quartiles, whiskers min and max), eval curves, a run's
learning rate against the step, Kaplan-Meier curves of the time to target, a
search's median accuracy against each axis, and a staged search's metric
against each axis (its diverged trials marked). An optimizer's own figures
(schedules side by side, trust ratios, performance profiles) are
optimizer_plots.py's; the look they share is figure_style.py's.

Each function writes one PNG at `path`, through a `Figure` rather than pyplot,
whose global state would need a display and leak between figures.
`comparison_figure` (Figure 4) also returns its `Figure` unsaved, so that a
test can read back what it draws.
"""

import math
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from train.experiments.reports import figure_style
from train.experiments.reports import markdown
from train.experiments.reports import sections

Study = sections.Study

# With more seeds than this a per-seed legend no longer reads; one entry instead.
_MAX_SEED_LEGEND = 10
# The zoomed panel of the eval curves shows the evaluations after this fraction
# of the run, where the accuracy approaches the target.
ZOOM_FROM = 0.5



def _final_accuracies(runs: Sequence[dict]) -> list[float]:
  """Final eval accuracies in percent, runs without one left out."""
  return [100 * run['final_eval_accuracy'] for run in runs
          if markdown.finite(run.get('final_eval_accuracy'))]


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


def final_accuracy(path: str, name: str, runs: Sequence[dict],
                   target: float | None) -> None:
  """One study's final accuracies: a box plot with a point per seed (Figure 4)."""
  accuracies = _final_accuracies(runs)
  with matplotlib.rc_context(figure_style.RC):
    fig = Figure(figsize=(6.4, 5.2), layout='constrained')
    ax = fig.add_subplot()
    _box_plot(ax, [accuracies], [name], ['tab:blue'])
    figure_style.target_line(ax, target)
    missing = len(runs) - len(accuracies)
    note = f' ({missing} without an accuracy)' if missing else ''
    ax.set_title(f'{name}: final eval accuracy over {len(runs)} seeds{note}')
    ax.set_ylabel('final eval top-1 accuracy (%)')
    ax.set_xlabel('box: quartiles and median; whiskers: min and max')
    ax.legend(handles=[Line2D([], [], marker='o', linestyle='', color='tab:blue',
                              label='one run (seed)'),
                       *ax.get_legend_handles_labels()[0]], loc='best')
    figure_style.save(fig, path)


def _eval_points(run: dict) -> tuple[np.ndarray, np.ndarray]:
  evals = run.get('evals') or []
  steps = np.array([e['step'] for e in evals], dtype=float)
  accuracies = np.array([100 * e['accuracy'] if markdown.finite(e.get('accuracy')) else np.nan
                         for e in evals], dtype=float)
  return steps, accuracies


def _zoom_limits(curves: Sequence[tuple[np.ndarray, np.ndarray]],
                 target: float | None) -> tuple[tuple[float, float], tuple[float, float]] | None:
  """x and y limits around the evaluations late in the runs, and the target."""
  last_step = max((s.max() for s, _ in curves if len(s)), default=None)
  if last_step is None:
    return None
  late = np.concatenate([a[(s >= ZOOM_FROM * last_step) & np.isfinite(a)] for s, a in curves])
  if not len(late):
    return None
  values = np.append(late, 100 * target) if markdown.finite(target) else late
  pad = max(0.15 * (values.max() - values.min()), 0.2)
  return ((ZOOM_FROM * last_step, last_step * 1.02),
          (values.min() - pad, values.max() + pad))


def _style_curve_axes(ax: Axes, target: float | None, title: str) -> None:
  figure_style.target_line(ax, target)
  ax.set_title(title)
  ax.set_xlabel('training step')
  ax.set_ylabel('eval top-1 accuracy (%)')


def _seed_colors(count: int) -> list:
  if count <= _MAX_SEED_LEGEND:
    return [matplotlib.colormaps['tab10'](i) for i in range(count)]
  return list(matplotlib.colormaps['viridis'](np.linspace(0, 0.9, count)))


def eval_curves(path: str, name: str, runs: Sequence[dict],
                target: float | None) -> None:
  """One study's eval accuracy against the step, a line per seed, and a panel zoomed
  on the end of training."""
  curves = [_eval_points(run) for run in runs]
  colors = _seed_colors(len(runs))
  with matplotlib.rc_context(figure_style.RC):
    fig = Figure(figsize=(12, 5), layout='constrained')
    full, zoom = fig.subplots(1, 2)
    few = len(runs) <= _MAX_SEED_LEGEND
    for ax in (full, zoom):
      for run, (steps, accuracies), color in zip(runs, curves, colors):
        ax.plot(steps, accuracies, marker='o' if few else None, markersize=3,
                linewidth=1.2 if few else 0.8, color=color, alpha=0.85 if few else 0.6,
                label=f"seed {run['seed']}" if few else None)
    _style_curve_axes(full, target, f'{name}: eval accuracy, one line per seed')
    _style_curve_axes(zoom, target, f'last {100 * (1 - ZOOM_FROM):.0f}% of training, '
                      'near the target')
    limits = _zoom_limits(curves, target)
    if limits:
      zoom.set_xlim(*limits[0])
      zoom.set_ylim(*limits[1])
    handles = full.get_legend_handles_labels()[0]
    if not few:
      handles.insert(0, Line2D([], [], color=colors[0], label=f'{len(runs)} seeds'))
    full.legend(handles=handles, loc='lower right', ncols=2 if len(handles) > 6 else 1)
    figure_style.save(fig, path)


def learning_rate(path: str, name: str, steps: Sequence[int],
                  rates: Sequence[float]) -> None:
  """The learning-rate schedule against the step, its peak marked (Figure 1)."""
  with matplotlib.rc_context(figure_style.RC):
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
    figure_style.save(fig, path)


def distinct_targets(studies: Sequence[Study]) -> list[float]:
  """The target accuracies of the studies, each once, in order."""
  return sorted({s['target_accuracy'] for _, s, _ in studies
                 if markdown.finite(s.get('target_accuracy'))})


def _box_label(name: str, runs: Sequence[dict]) -> str:
  """The config's name over the runs its box holds; a run without an accuracy
  (diverged) is in no box, and the label says so."""
  held = len(_final_accuracies(runs))
  missing = len(runs) - held
  if not missing:
    return f'{name}\n({held} runs)'
  return f'{name}\n({held} of {len(runs)} runs; {missing} without an accuracy)'


def comparison_figure(studies: Sequence[Study]) -> Figure:
  """Every config's final accuracies side by side, a box plot each, with the target
  as a line (the Reality Check's Figure 4: each ablation over its seeds)."""
  names = [name for name, _, _ in studies]
  with matplotlib.rc_context(figure_style.RC):
    fig = Figure(figsize=(max(6.4, 1.7 * len(studies) + 3), 5.4), layout='constrained')
    ax = fig.add_subplot()
    _box_plot(ax, [_final_accuracies(runs) for _, _, runs in studies],
              [_box_label(name, runs) for name, _, runs in studies],
              figure_style.config_colors(len(studies)))
    for target in distinct_targets(studies):
      figure_style.target_line(ax, target)
    _rotate_long_labels(ax, names)
    runs_per_config = sorted({len(runs) for _, _, runs in studies})
    seeds = ' or '.join(str(n) for n in runs_per_config)
    ax.set_title(f'Final eval accuracy, {seeds} seeds per configuration')
    ax.set_ylabel('final eval top-1 accuracy (%)')
    ax.set_xlabel('box: quartiles and median; whiskers: min and max; points: one run each')
    ax.legend(loc='best')
  return fig


def comparison(path: str, studies: Sequence[Study]) -> None:
  """Writes `comparison_figure(studies)` to `path`."""
  with matplotlib.rc_context(figure_style.RC):
    figure_style.save(comparison_figure(studies), path)


def comparison_curves(path: str, studies: Sequence[Study]) -> None:
  """Every seed's eval curve, a colour per config, and the end of training zoomed."""
  colors = figure_style.config_colors(len(studies))
  with matplotlib.rc_context(figure_style.RC):
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
    targets = distinct_targets(studies)
    for ax, title in ((full, 'Eval accuracy, thin lines: one per seed'),
                      (zoom, f'last {100 * (1 - ZOOM_FROM):.0f}% of training, near the target')):
      _style_curve_axes(ax, None, title)
      for target in targets:
        figure_style.target_line(ax, target)
    limits = _zoom_limits(all_curves, targets[0] if targets else None)
    if limits:
      zoom.set_xlim(*limits[0])
      zoom.set_ylim(*limits[1])
    full.legend(handles=handles + full.get_legend_handles_labels()[0], loc='lower right')
    figure_style.save(fig, path)


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
                      markdown.finite(t['summary'].get('median_final_accuracy')) else np.nan
                      for t in trials])
  ax.scatter(positions, medians, s=30, color='tab:blue', alpha=0.8, label='trial')
  if best is not None:
    i = next(i for i, t in enumerate(trials) if t is best)
    ax.scatter([positions[i]], [medians[i]], s=180, marker='*', color='tab:orange',
               edgecolors='black', zorder=4, label=f"best (trial {best['trial']})")
  figure_style.target_line(ax, target)
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


def search_axes(path: str, axes: Sequence[str], ranked: Sequence[dict]) -> None:
  """Each trial's median final accuracy against each searched axis, the best starred."""
  has_best = ranked and markdown.finite(ranked[0]['summary'].get('median_final_accuracy'))
  best = ranked[0] if has_best else None
  targets = [t['summary'].get('target_accuracy') for t in ranked]
  target = next((t for t in targets if markdown.finite(t)), None)
  columns = min(3, max(len(axes), 1))
  rows = math.ceil(max(len(axes), 1) / columns)
  with matplotlib.rc_context(figure_style.RC):
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
    figure_style.save(fig, path)


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


def time_to_target(path: str, title: str, curves: Sequence[tuple[str, dict]]) -> None:
  """Kaplan-Meier curves: the fraction of runs that reached the target by each step."""
  colors = figure_style.config_colors(len(curves))
  end = 1.04 * max((max(ttt['steps'], default=0.0) for _, ttt in curves), default=0.0) or 1.0
  with matplotlib.rc_context(figure_style.RC):
    fig = Figure(figsize=(8, 5), layout='constrained')
    ax = fig.add_subplot()
    for (name, ttt), color in zip(curves, colors):
      steps, fraction, low, high = _survival_curve(ttt, end)
      median = ttt.get('median_steps')
      label = (f"{name}: {ttt['num_events']} of {ttt['num_runs']} reached it, median "
               f"{markdown.number(median) if markdown.finite(median) else 'not reached'}")
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
    figure_style.save(fig, path)


def _scale_x(ax: Axes, positions: np.ndarray, categories: list[str] | None) -> None:
  """Categories at 0, 1, ...; else every position in view (autoscaling skips the
  points drawn in axes coordinates), on a log axis for positive values spanning
  more than a decade."""
  distinct = np.unique(positions[np.isfinite(positions)])
  if categories is not None:
    ax.set_xticks(range(len(categories)), categories)
    ax.set_xlim(-0.5, len(categories) - 0.5)
  elif len(distinct) and np.all(distinct > 0) and distinct.max() / distinct.min() > 10:
    _log_scale(ax, distinct)
    pad = (distinct.max() / distinct.min()) ** 0.05
    ax.set_xlim(distinct.min() / pad, distinct.max() * pad)
  elif len(distinct) > 1:
    pad = 0.05 * (distinct.max() - distinct.min())
    ax.set_xlim(distinct.min() - pad, distinct.max() + pad)


def _count(n: int, what: str) -> str:
  return f'{n} {what}' + ('' if n == 1 else 's')


def staged_axis(path: str, axis: str, stages: Sequence[tuple[str, Sequence[dict]]],
                metric_label: str, chosen: dict | None) -> None:
  """One searched axis of a staged search: each finished trial's metric against
  its value on `axis`, a colour per stage; trials with a diverged seed as red
  crosses along the bottom (they have no metric to place); the chosen trial starred.

  `stages`: (stage name, points) with each point {'value', 'metric' (already in
  the plotted unit, None when missing), 'diverged'}; `chosen`: one such point.
  """
  every = [p for _, points in stages for p in points] + ([chosen] if chosen else [])
  positions, categories = _axis_positions([p['value'] for p in every])
  place = dict(zip(map(id, every), positions))
  colors = figure_style.config_colors(len(stages))
  with matplotlib.rc_context(figure_style.RC):
    fig = Figure(figsize=(6.4, 4.4), layout='constrained')
    ax = fig.subplots()
    for (name, points), color in zip(stages, colors):
      kept = [p for p in points if not p['diverged'] and markdown.finite(p['metric'])]
      ax.scatter([place[id(p)] for p in kept], [p['metric'] for p in kept], s=30,
                 color=color, alpha=0.8, label=f"{name} ({_count(len(kept), 'trial')})")
    diverged = [p for _, points in stages for p in points if p['diverged']]
    if diverged:
      # x in data, y in axes coordinates: along the bottom, whatever the metric's range.
      ax.scatter([place[id(p)] for p in diverged], [0.03] * len(diverged), s=40, marker='x',
                 color='tab:red', transform=ax.get_xaxis_transform(), clip_on=False,
                 label=f"diverged ({_count(len(diverged), 'trial')})")
    if chosen is not None and markdown.finite(chosen['metric']):
      ax.scatter([place[id(chosen)]], [chosen['metric']], s=180, marker='*',
                 color='tab:orange', edgecolors='black', zorder=4, label='chosen')
    _scale_x(ax, positions, categories)
    ax.set_xlabel(axis)
    ax.set_ylabel(metric_label)
    ax.set_title(f'{axis}: {metric_label} of each trial')
    fig.legend(handles=ax.get_legend_handles_labels()[0], loc='outside lower center', ncols=2)
    figure_style.save(fig, path)
