"""Tuning Nesterov on the embedded data as the paper did: the rehearsal of Table 4's protocol.

The Reality Check tuned each optimizer of its Table 4 in three steps (Appendix
D.3, Table 8): a quasi-random search over an "initial range" of discrete
np.logspace grids, a search over a continuous "final range" around what won,
then the best point over 5 seeds; a trial counted toward a budget only if it
did not diverge. `get_search()` is that protocol at laptop scale, for
`embedded_nesterov.py`'s Nesterov momentum: `python main.py --search` runs it
as one command (docs/tuning.md).

  1. initial   6 feasible trials (at most 12 drawn), 1 seed each, over
                 eta_0    {0.01, 0.0316, 0.1, 0.316, 1, 3.16, 10}  (np.logspace(-2, 1, 7))
                 mu       {0.7, 0.9, 0.97, 0.99}  (1 - mu in {0.3, 0.1, 0.03, 0.01})
                 lambda   {1e-5, 1e-4, 1e-3, 1e-2}  (L2, np.logspace(-5, -2, 4))
  2. final     4 feasible trials (at most 8 drawn), 1 seed each, continuous log ranges
               narrowed to the 3 best initial trials (`narrow_to_best`): each axis
               from the value tried just below them to the one just above, inside
               eta_0 [0.01, 10], 1 - mu [0.01, 0.3], lambda [1e-5, 1e-2]
  3. confirm   the best final trial over 5 seeds that no trial ran (seeds 1-5)

Trials are ranked by their median final eval accuracy. The paper's budgets are
far larger (50 and 25 trials, 3 or more seeds); here a stage is a handful of
single-seed trials, so the choice is noisier than the paper's.

Command:
  python main.py --config=configs/embedded_nesterov_search.py --search \
      --workdir=runs/embedded_nesterov_search

Budget in steps: 250 steps at batch 128 (3.2 epochs), 50 warmup, evals every 50;
shorter than embedded_nesterov.py's 400 so that the whole search fits in 10
minutes on 2 cores.

Expected: see docs/tuning.md (measured on 2 CPU cores): some initial trials
diverge at eta_0 = 10 and are drawn again; the confirmed point reaches a median
final accuracy near embedded_nesterov.py's at this budget.
"""

import ml_collections
import numpy as np

from configs import embedded_nesterov
from configs import search_space


def get_config() -> ml_collections.ConfigDict:
  config = embedded_nesterov.get_config()
  config.num_train_steps = 250
  return config


def _logspace(low: int, high: int, num: int) -> tuple[float, ...]:
  """np.logspace's points as plain floats (Table 8 writes its grids so)."""
  return tuple(float(v) for v in np.logspace(low, high, num))


def get_search() -> search_space.Search:
  initial = search_space.Stage(
      name='initial', mode='quasi_random', num_trials=6, max_draws=12, seeds_per_trial=1,
      space=(search_space.Choice('lr.peak', _logspace(-2, 1, 7)),
             search_space.Choice('optimizer.momentum', (0.7, 0.9, 0.97, 0.99)),
             search_space.Choice('optimizer.l2', _logspace(-5, -2, 4))))
  final = search_space.Stage(
      name='final', mode='quasi_random', num_trials=4, max_draws=8, seeds_per_trial=1,
      narrow_to_best=3,
      space=(search_space.Range('lr.peak', 1e-2, 10.0, scale='log'),
             search_space.Range('optimizer.momentum', 1e-2, 0.3, scale='log',
                                one_minus=True),
             search_space.Range('optimizer.l2', 1e-5, 1e-2, scale='log')))
  return search_space.Search(stages=(initial, final), confirm_seeds=5,
                             metric='median_final_accuracy')
