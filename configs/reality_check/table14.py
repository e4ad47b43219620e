"""Nado et al., Appendix D.4, Table 14: Table 13 with narrower 1 - mu and lambda.

Nesterov momentum, 2,815 steps, virtual batch 128, lambda on the kernels only
(`optimizer.l2`), a linear warmup of 500 steps, then a quadratic decay towards
eta_peak * eta_decay_factor, held from t_decay (see configs/reality_check/table12.py).

Table 14 (50 trials), as printed:
  eta_peak           [1e-1, 32]             log
  eta_decay_factor   [3e-5, 3e-4]           log
  t_decay            [2533, 2.815]          linear   read as [2533, 2815]
  1 - mu             [5e-3, 1e-1]           log
  lambda             [1e-2, 1e-1]           log
  tau                [5e-2, 0.15]           linear

get_config() starts from the values Tables 16-18 fix (the best of Table 15).

Command (needs ImageNet prepared in data_dir and accelerators for batch 32,768):
  python main.py --config=configs/reality_check/table14.py --search --workdir=runs/table14

Budget in steps: T = 2,815, t_warmup = 500, the rate held from t_decay.

Expected (paper): none reported.
"""

import ml_collections

from configs import search_space
from configs.reality_check import nesterov_journey
from configs.reality_check import table13

NUM_TRIALS = 50


def get_config() -> ml_collections.ConfigDict:
  return table13.get_config()


def get_search() -> search_space.Search:
  return nesterov_journey.one_stage(space(), NUM_TRIALS)


def space() -> list[search_space.Axis]:
  """Table 13's space with 1 - mu in [5e-3, 1e-1] and lambda in [1e-2, 1e-1]."""
  return table13.space(one_minus_mu=(5e-3, 1e-1), weight_decay=(1e-2, 1e-1))
