"""Nado et al., Appendix D.4, Table 19: the ranges narrowed by Tables 16-18, BN included.

Nesterov momentum, 2,815 steps, virtual batch 64, lambda on the kernels only
(`optimizer.l2`: init2winit's Nesterov weight decay is added to the gradient), a
linear warmup of 500 steps, then a quadratic decay towards
eta_peak * eta_decay_factor, held from t_decay (see
configs/reality_check/table12.py).

Table 19 (50 trials), as printed:
  eta_peak           [2.0, 8.0]             log
  eta_decay_factor   [4e-5, 1.6e-4]         linear
  t_decay            [2100, 2400]           linear
  1 - mu             [0.012, 0.04]          log
  lambda             [7e-3, 7e-2]           log
  tau                [0.04, 0.1]            linear
  rho                [0.45, 0.55]           linear
  epsilon            [5e-6, 5e-5]           linear

get_config() starts from the values Tables 16-18 fix, with the MLPerf recipe's
BN values (rho 0.9, epsilon 1e-5).

Command (needs ImageNet prepared in data_dir and accelerators for batch 32,768):
  python main.py --config=configs/reality_check/table19.py --search --workdir=runs/table19

Budget in steps: T = 2,815, t_warmup = 500, the rate held from t_decay.

Expected (paper): none reported; the next table (20) moves to the 2,512-step
budget and L2.
"""

import ml_collections

from configs import search_space
from configs.reality_check import nesterov_journey
from configs.reality_check import table16

NUM_TRIALS = 50


def get_config() -> ml_collections.ConfigDict:
  return table16.get_config()


def get_search() -> search_space.Search:
  return nesterov_journey.one_stage([
      search_space.Range('lr.peak', 2.0, 8.0, scale='log'),
      search_space.Range('lr.decay_factor', 4e-5, 1.6e-4, scale='linear'),
      search_space.Range('lr.hold_from_step', 2100.0, 2400.0, scale='linear'),
      search_space.Range('optimizer.momentum', 0.012, 0.04, scale='log', one_minus=True),
      search_space.Range('optimizer.l2', 7e-3, 7e-2, scale='log'),
      search_space.Range('label_smoothing', 0.04, 0.1, scale='linear'),
      search_space.Range('model.bn_momentum', 0.45, 0.55, scale='linear'),
      search_space.Range('model.bn_epsilon', 5e-6, 5e-5, scale='linear'),
  ], NUM_TRIALS)
