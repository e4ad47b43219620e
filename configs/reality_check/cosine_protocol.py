"""Table 8's protocol (Reality Check, Appendix D.3): what the table8_*.py files share.

Not a config file. Every row of Table 4 was tuned the same way: the initial rate
eta and the L2 or weight-decay lambda, by quasi-random search, "50 or more
trials" in the table's Initial Range, then 25 in its Final Range, then the best
point of the latter for 5 seeds. The budgets count feasible trials, "trials that
do not diverge during training" (LAMB on every parameter needed 67 to get 25).
Everything else is configs/cosine_6000.py's row: 6,000 steps, a cosine decay
from eta to 0, gamma_0 = 1, each run ranked by its final accuracy.

An Initial Range printed as "np.logspace(a, b, n)" is a discrete axis of exactly
numpy's values; one printed as an interval, like every Final Range, is a
continuous log axis ("All hyperparameters were tuned on a logarithmic scale").
"""

from typing import Sequence

import numpy as np

from configs import search_space

INITIAL_TRIALS = 50
FINAL_TRIALS = 25
CONFIRM_SEEDS = 5


def logspace(key: str, start: float, stop: float, num: int) -> search_space.Choice:
  """The discrete axis np.logspace(start, stop, num), as Table 8 prints it."""
  return search_space.Choice(key, tuple(float(v) for v in np.logspace(start, stop, num)))


def log_range(key: str, low: float, high: float) -> search_space.Range:
  return search_space.Range(key, low, high, scale='log')


def search(initial: Sequence[search_space.Axis], final: Sequence[search_space.Axis]
           ) -> search_space.Search:
  """Initial Range, then Final Range, then the best final point for 5 seeds."""
  return search_space.Search(
      stages=(search_space.Stage('initial', tuple(initial), num_trials=INITIAL_TRIALS),
              search_space.Stage('final', tuple(final), num_trials=FINAL_TRIALS)),
      confirm_seeds=CONFIRM_SEEDS)
