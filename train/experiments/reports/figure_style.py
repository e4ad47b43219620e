"""The look every figure of the reports shares: fonts, resolution, the target
line, the colours of configs, and how a figure is written (atomically)."""

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from train.common import files
from train.experiments.reports import markdown

DPI = 120
RC = {
    'font.size': 11, 'axes.titlesize': 12, 'axes.labelsize': 11,
    'xtick.labelsize': 10, 'ytick.labelsize': 10, 'legend.fontsize': 9,
    'axes.grid': True, 'grid.alpha': 0.3,
}
# Above the curves (zorder 2), below the points of the box plots (zorder 3).
TARGET_STYLE = {'color': 'tab:red', 'linestyle': '--', 'linewidth': 1.5, 'zorder': 2.5}


def save(fig: Figure, path: str) -> None:
  with files.atomic_path(path, suffix='.tmp.png') as tmp:  # The suffix sets the format.
    fig.savefig(tmp, dpi=DPI)


def target_line(ax: Axes, target: float | None) -> None:
  if markdown.finite(target):
    ax.axhline(100 * target, label=f'target {100 * target:.2f}%', **TARGET_STYLE)


def config_colors(count: int) -> list:
  return [matplotlib.colormaps['tab10'](i % 10) for i in range(count)]
