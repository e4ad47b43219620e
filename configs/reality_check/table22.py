"""Nado et al., Appendix D.4, Table 22: Table 21 with L2 in [1e-5, 1e-4].

"Here we focus in more on tuning the L2 regularization": Nesterov momentum, 2,512
steps, virtual batch 64, L2 on the kernels (`optimizer.l2`), the MLPerf
polynomial schedule with its own hyperparameters (see
configs/reality_check/table21.py).

Table 22 (37 trials), as printed:
  t_warmup     638
  p_warmup     [1.5, 3.0]         linear
  p_decay      [1.5, 2.5]         linear
  eta_0        0.12
  eta_peak     7.05
  eta_final    [1e-6, 5e-4]       log
  1 - mu       0.02397
  lambda       [1e-5, 1e-4]       log     L2
  tau          0.15
  gamma_0      [0.4, 1.0]         linear
  rho          0.94
  epsilon      4e-6

Command (needs ImageNet prepared in data_dir and accelerators for batch 32,768):
  python main.py --config=configs/reality_check/table22.py --search --workdir=runs/table22

Budget in steps: T = 2,512, t_warmup = 638.

Expected (paper): none reported for this table alone; Table 23 narrows lambda to
[5e-5, 6e-5].
"""

import ml_collections

from configs import search_space
from configs.reality_check import nesterov_journey
from configs.reality_check import table21

NUM_TRIALS = 37


def get_config() -> ml_collections.ConfigDict:
  return table21.get_config()


def get_search() -> search_space.Search:
  return nesterov_journey.one_stage(table21.space(weight_decay=search_space.Range(
      'optimizer.l2', 1e-5, 1e-4, scale='log')), NUM_TRIALS)
