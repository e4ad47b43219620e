"""Nado et al., Appendix D.4, Table 10: Table 9's search at 2,658 steps.

"Same as Table 9 but trained for 2,658 steps ("68 epochs" as defined by MLPerf
epoch calculations) for 50 trials": Nesterov momentum, virtual batch 128, linear
decay over the whole budget from eta_0 to eta_0 * eta_decay_factor, lambda on
every variable (`optimizer.l2` with `l2_on_bn_bias`: init2winit's weight decay
for Nesterov is added to the gradient; see configs/nesterov_search_table9.py).

Table 10 (50 trials), as printed (Table 9's space):
  eta_0              [1e-3, 50]                log
  eta_decay_factor   {1e-4, 1e-3, 1e-2, 1e-1}  discrete
  1 - mu             [1e-3, 1]                 log
  lambda             [1e-5, 1e-1]              log     weight decay, on all variables
  tau                [1e-2, 0.2]               linear

get_config() starts where Table 9's does: Configuration B's eta_0, mu, lambda
and tau, decay factor 1e-2.

Command (needs ImageNet prepared in data_dir and accelerators for batch 32,768):
  python main.py --config=configs/reality_check/table10.py --search --workdir=runs/table10

Budget in steps: T = 2,658, no warmup, linear decay over all of it.

Expected (paper): none reported; a test of how a shorter budget changes tuning.
"""

import ml_collections

from configs import search_space
from configs.reality_check import nesterov_journey

NUM_TRIALS = 50


def get_config() -> ml_collections.ConfigDict:
  return nesterov_journey.linear_decay_config(
      nesterov_journey.STEPS_68_EPOCHS, decay_every_variable=True, decay_factor=1e-2)


def get_search() -> search_space.Search:
  return nesterov_journey.one_stage(nesterov_journey.table_9_space(), NUM_TRIALS)
