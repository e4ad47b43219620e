"""The learning-rate schedules of config files, drawn side by side: the Reality
Check's Figure 1 is

  python -m train.cli.schedule_figure configs/mlperf_lars_32k.py configs/nesterov_b.py \
      --out=figure_1.png

Each config's rate at every step of its budget comes from the function its runs
use (train/run/budget.py's `learning_rate_fn`, through optim/schedules.py), with
the budget resolved for the config's dataset, so the figure follows the configs
as they are. Config files are named as main.py names them, `FILE.py[:VARIANT]`.
Nothing is trained and no data is read: the dataset's size is a known fact.
"""

import argparse
import os
import sys

import jax
import ml_collections
import numpy as np

from train.cli import config_files
from train.common import errors
from train.experiments.reports import optimizer_plots
from train.run import budget


def schedule_curve(config: ml_collections.ConfigDict) -> tuple[np.ndarray, np.ndarray]:
  """Every step of the config's budget, 0 to T, and the learning rate at each."""
  num_steps = budget.resolve_budget(config).num_train_steps
  steps = np.arange(num_steps + 1)
  # A schedule takes one step count, as the optimizer calls it: mapped over all.
  rates = jax.vmap(budget.learning_rate_fn(config))(steps)
  return steps, np.asarray(rates, dtype=float)


def config_curves(specs: list[str]) -> list[optimizer_plots.Curve]:
  """(name, steps, rates) of each `FILE.py[:VARIANT]`; ValueError naming the one that fails."""
  curves = []
  for text in specs:
    spec = config_files.parse_spec(text)
    config = config_files.load_config(spec)
    try:
      steps, rates = schedule_curve(config)
    except ValueError as e:
      raise ValueError(f'{spec}: {errors.one_line(e)}') from None
    curves.append((spec.name, steps, rates))
  return curves


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog='python -m train.cli.schedule_figure', description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('configs', nargs='+', metavar='FILE.py[:VARIANT]',
                      help='the config files whose schedules to draw, in order.')
  parser.add_argument('--out', default='schedules.png',
                      help='the PNG to write, a new file (default: schedules.png).')
  return parser


def main(argv: list[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  if os.path.lexists(args.out):
    errors.fail(f'--out={args.out} exists; name a new file, or move that one aside first')
  try:
    curves = config_curves(args.configs)
  except ValueError as e:
    errors.fail(str(e))
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  optimizer_plots.schedules(args.out, curves)
  print(args.out)
  return 0


if __name__ == '__main__':
  sys.exit(main())
