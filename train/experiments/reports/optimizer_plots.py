"""Figures of how an optimizer behaves, apart from a study's accuracies: its
learning-rate schedules side by side (the Reality Check's Figure 1), a run's
layer-wise trust ratios over training (the LAMB paper's Figures 9-14), and
AlgoPerf's performance profiles across workloads (train/experiments/profiles.py).

Each writing function has an unsaved twin returning the `Figure` where a test
reads back what is drawn (`schedules_figure`, `performance_profile_figure`).
"""

import math
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from train.experiments.reports import figure_style


Curve = tuple[str, Sequence[float], Sequence[float]]  # (name, steps, learning rates).


def schedules_figure(curves: Sequence[Curve]) -> Figure:
  """Several learning-rate schedules against the step (the Reality Check's Figure 1).

  Left, each schedule's own rates; right, each divided by its peak, where only
  the shapes differ (the paper's LARS and Nesterov B differ, rescaling aside,
  only in the warmup's power).
  """
  colors = figure_style.config_colors(len(curves))
  with matplotlib.rc_context(figure_style.RC):
    fig = Figure(figsize=(12, 4.8), layout='constrained')
    rates_ax, shape_ax = fig.subplots(1, 2)
    for (name, steps, rates), color in zip(curves, colors):
      rates = np.asarray(rates, dtype=float)
      peak = int(np.argmax(rates))
      rates_ax.plot(steps, rates, linewidth=2, color=color,
                    label=f'{name}: peak {rates[peak]:.4g} at step {int(steps[peak]):,}')
      shape_ax.plot(steps, rates / rates[peak], linewidth=2, color=color, label=name)
    rates_ax.set_title('Learning rate')
    rates_ax.set_ylabel('learning rate')
    shape_ax.set_title('Learning rate / its peak: the shapes')
    shape_ax.set_ylabel('fraction of the peak rate')
    for ax in (rates_ax, shape_ax):
      ax.set_xlabel('training step')
      ax.set_ylim(bottom=0)
      ax.legend(loc='upper right')
  return fig


def schedules(path: str, curves: Sequence[Curve]) -> None:
  """Writes `schedules_figure(curves)` to `path`."""
  with matplotlib.rc_context(figure_style.RC):
    figure_style.save(schedules_figure(curves), path)


def _layer_ticks(ax: Axes, names: Sequence[str], axis: str) -> None:
  """Layer names as tick labels, thinned to at most 40."""
  every = max(1, math.ceil(len(names) / 40))
  positions = np.arange(0, len(names), every)
  labels = [names[i] for i in positions]
  if axis == 'x':
    ax.set_xticks(positions, labels, rotation=90, fontsize=6)
  else:
    ax.set_yticks(positions, labels, fontsize=6)


def trust_ratios(path: str, name: str, steps: Sequence[int],
                 ratios: dict[str, Sequence[float]]) -> None:
  """Each layer's trust ratio at each logged step (a run's trust_ratios.json).

  Left, as the LAMB paper's Figures 9-14 (one iteration each): the ratio against
  the layer, one line per logged step, early steps dark and late ones light.
  Right: the same numbers as a map of layer against step, on a log colour scale.
  Layers are in the file's order (natural name order).
  """
  names = list(ratios)
  values = np.array([ratios[n] for n in names], dtype=float)  # Layers x steps.
  positive = bool(np.all(values > 0))
  with matplotlib.rc_context(figure_style.RC):
    fig = Figure(figsize=(14, max(5.0, 0.09 * len(names) + 2.5)), layout='constrained')
    lines, grid = fig.subplots(1, 2, width_ratios=(3, 2))
    colors = matplotlib.colormaps['viridis'](np.linspace(0, 0.9, len(steps)))
    for j, (step, color) in enumerate(zip(steps, colors)):
      lines.plot(np.arange(len(names)), values[:, j], marker='.', markersize=3,
                 linewidth=1, color=color, label=f'step {step:,}')
    if positive:
      lines.set_yscale('log')
    lines.set_xlabel('layer')
    lines.set_ylabel('trust ratio')
    lines.set_title(f'{name}: trust ratio of each layer')
    _layer_ticks(lines, names, 'x')
    if len(steps) <= 12:
      lines.legend(loc='best')
    shown = np.log10(values) if positive else values
    image = grid.imshow(shown, aspect='auto', interpolation='nearest', cmap='viridis')
    fig.colorbar(image, ax=grid, label='log10 trust ratio' if positive else 'trust ratio')
    grid.set_xticks(np.arange(len(steps)), [f'{s:,}' for s in steps], rotation=90)
    grid.set_xlabel('step')
    _layer_ticks(grid, names, 'y')
    grid.set_title('over training')
    grid.grid(False)
    figure_style.save(fig, path)


# Profiles that coincide stay apart by their line style (and colour).
_PROFILE_LINESTYLES = ('-', '--', '-.', ':')


def performance_profile_figure(curves: Sequence[tuple[str, np.ndarray, np.ndarray]],
                               r_max: float, title: str) -> Figure:
  """Performance profiles (AlgoPerf, after Dolan and Moré): for each optimizer,
  the fraction of workloads rho on which its time to target is within tau times
  the fastest, a step function of tau from 1 to `r_max`.

  Args:
    curves: (label, tau, rho) of each optimizer: the steps of its profile,
      rho holding from each tau to the next.
    r_max: the right end of the axis, AlgoPerf's cut-off.
    title: the figure's title.
  """
  colors = figure_style.config_colors(len(curves))
  with matplotlib.rc_context(figure_style.RC):
    fig = Figure(figsize=(8, 5), layout='constrained')
    ax = fig.add_subplot()
    for k, ((label, taus, levels), color) in enumerate(zip(curves, colors)):
      ax.step(taus, levels, where='post', color=color, linewidth=2.2, alpha=0.9,
              linestyle=_PROFILE_LINESTYLES[k % len(_PROFILE_LINESTYLES)], label=label)
    ax.set_xlim(1.0, r_max)
    ax.set_ylim(-0.02, 1.02)
    ax.xaxis.set_major_formatter(ticker.FormatStrFormatter('%g×'))
    ax.set_xlabel('tau: time to target over the fastest optimizer\'s on the workload')
    ax.set_ylabel('rho(tau): fraction of workloads within tau')
    ax.set_title(title)
    ax.legend(loc='lower right', title='optimizer: AlgoPerf score')
  return fig


def performance_profile(path: str, curves: Sequence[tuple[str, np.ndarray, np.ndarray]],
                        r_max: float, title: str) -> None:
  """Writes `performance_profile_figure` as a PNG."""
  figure_style.save(performance_profile_figure(curves, r_max, title), path)
