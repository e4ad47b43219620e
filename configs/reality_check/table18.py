"""Nado et al., Appendix D.4, Table 18: a sweep of BatchNorm's rho and epsilon.

Nesterov momentum, 2,815 steps, virtual batch 64, lambda on the kernels only
(`optimizer.l2`), at the best point of Table 15 with Table 16's peak rate, a
linear warmup of 500 steps, then a quadratic decay towards
eta_peak * eta_decay_factor, held from t_decay (see
configs/reality_check/table12.py). Only BN's momentum rho (`model.bn_momentum`)
and epsilon (`model.bn_epsilon`) change.

Table 18, as printed:
  eta_peak           4.118
  eta_decay_factor   8.144e-5
  t_decay            2250
  1 - mu             0.02397
  lambda             0.009992
  tau                0.07786
  rho                {0.0, 0.1, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.995, 0.999}
  epsilon            {1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1}

The table lists both axes in one space, so the sweep is their product: 11 x 7 =
77 points, one seed each (the caption names no seeds; it could also have been
two sweeps of one axis each, at the other's MLPerf value).

Command (needs ImageNet prepared in data_dir and accelerators for batch 32,768):
  python main.py --config=configs/reality_check/table18.py --search --workdir=runs/table18

Budget in steps: T = 2,815, t_warmup = 500, the rate held from step 2,250.

Expected (paper): Table 19 then searches rho in [0.45, 0.55] and epsilon in
[5e-6, 5e-5] (the paper gives no accuracy).
"""

import ml_collections

from configs import search_space
from configs.reality_check import nesterov_journey
from configs.reality_check import table16

BN_MOMENTA = (0.0, 0.1, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.995, 0.999)
BN_EPSILONS = (1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


def get_config() -> ml_collections.ConfigDict:
  return table16.get_config()


def get_search() -> search_space.Search:
  return nesterov_journey.sweep([search_space.Choice('model.bn_momentum', BN_MOMENTA),
                                 search_space.Choice('model.bn_epsilon', BN_EPSILONS)])
