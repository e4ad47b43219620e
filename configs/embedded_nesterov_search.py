"""Tuning Nesterov on the embedded data as the paper did: the rehearsal of Table 4's protocol.

The Reality Check tuned each optimizer of its Table 4 in three steps (Appendix
D.3, Table 8): a quasi-random search of the learning rate eta and lambda over an
"initial range" of discrete np.logspace grids, a search over a continuous
"final range" around what won, then the best point over 5 seeds; a trial
counted toward a budget only if it did not diverge. `get_search()` is that
protocol at laptop scale, for `embedded_nesterov.py`'s Nesterov momentum (mu =
0.9 throughout, as the paper fixed its momentum for Table 4): `python main.py
--search` runs it as one command (docs/tuning.md).

  1. initial   4 feasible trials (at most 8 drawn), 1 seed each, over
                 eta      {0.1, 0.316, 1, 3.16, 10}     np.logspace(-1, 1, 5)
                 lambda   {1e-5, 1e-4, 1e-3, 1e-2}      np.logspace(-5, -2, 4) (L2)
  2. final     3 feasible trials (at most 6 drawn), 1 seed each, continuous log
               ranges narrowed to the 2 best initial trials (`narrow_to_best`):
               each axis from the value tried just below them to the one just
               above, inside eta [0.05, 20] and lambda [1e-6, 3e-2]
  3. confirm   the best final trial over 5 seeds that no trial ran (seeds 1-5)

Trials are ranked by their median final eval accuracy. The paper's budgets are
far larger (50 and 25 trials); here a stage is a handful of single-seed trials,
so the choice is noisier than the paper's.

Command:
  python main.py --config=configs/embedded_nesterov_search.py --search \
      --workdir=runs/embedded_nesterov_search

Budget in steps: embedded_nesterov.py's, 400 steps at batch 128 (5.1 epochs), 50
warmup, evals every 50; the stages are small (12 runs in all) so that the whole
search fits in 10 minutes on 2 cores (4 min 41 s measured quiet: docs/tuning.md).

Expected: see docs/tuning.md's measured run (2 CPU cores): the confirmed point's
median final accuracy over 5 seeds, beside the 78.4% of embedded_nesterov.py's
hand-set values (docs/embedded.md).
"""

import ml_collections
import numpy as np

from configs import embedded_nesterov
from configs import search_space


def get_config() -> ml_collections.ConfigDict:
  return embedded_nesterov.get_config()


def _logspace(low: float, high: float, num: int) -> tuple[float, ...]:
  """np.logspace's points as plain floats (Table 8 writes its grids so)."""
  return tuple(float(v) for v in np.logspace(low, high, num))


def get_search() -> search_space.Search:
  initial = search_space.Stage(
      name='initial', mode='quasi_random', num_trials=4, max_draws=8, seeds_per_trial=1,
      space=(search_space.Choice('lr.peak', _logspace(-1, 1, 5)),
             search_space.Choice('optimizer.l2', _logspace(-5, -2, 4))))
  final = search_space.Stage(
      name='final', mode='quasi_random', num_trials=3, max_draws=6, seeds_per_trial=1,
      narrow_to_best=2,
      space=(search_space.Range('lr.peak', 0.05, 20.0, scale='log'),
             search_space.Range('optimizer.l2', 1e-6, 3e-2, scale='log')))
  return search_space.Search(stages=(initial, final), confirm_seeds=5,
                             metric='median_final_accuracy')
