"""The first Nesterov search space of Nado et al. (Appendix D.4, Table 9).

The start of the paper's "Nesterov tuning journey" (the later tables are in
configs/reality_check/): Nesterov momentum on every parameter, batch 32,768,
virtual batch 128, 2,815 steps ("72 epochs" as MLPerf v0.6 counted them:
floor(72 * 1,281,167 / 32,768); MLPerf's block rounding would give 2,826, so the
budget is in steps), and a linear decay over the whole budget from eta_0 to
eta_0 * eta_decay_factor, with no warmup.

Table 9 (251 trials), as printed:
  eta_0              [1e-3, 50]                log
  eta_decay_factor   {1e-4, 1e-3, 1e-2, 1e-1}  discrete
  1 - mu             [1e-3, 1]                 log
  lambda             [1e-5, 1e-1]              log     weight decay, on all variables
  tau                [1e-2, 0.2]               linear

lambda: the table calls it "weight decay, which is applied to all variables". In
init2winit, the code behind the table, Nesterov's weight decay is
flax.optim.Momentum's, added to the gradient before the momentum: the harness's
`optimizer.l2`, here with `optimizer.l2_on_bn_bias` (every variable). Decoupled
weight decay would differ (docs/configs.md, "Where the printed paper and its
code differ"). gamma_0, rho and epsilon are not in the table: the MLPerf
recipe's 0, 0.9 and 1e-5, init2winit's defaults for its MLPerf ResNet-50.

get_config() is where the trials start, at Configuration B's eta_0, mu, lambda
and tau and decay factor 1e-2; each trial replaces the searched values. Every
trial runs the whole budget and is ranked by its final accuracy.

Commands (need ImageNet prepared in data_dir and accelerators for batch 32,768):
  python main.py --config=configs/nesterov_search_table9.py --search --workdir=runs/table9
  python main.py --config=configs/nesterov_search_table9.py --num_trials=251 \\
      --workdir=runs/table9_plain
(the first counts 251 trials that did not diverge, `get_search()`; the second,
today's plain search of `get_search_space()`, draws 251).

Budget in steps: T = 2,815, no warmup, linear decay over all of it.

Expected (paper): none for this table alone. It was a first guess; its
refinements (Tables 10-23) led to Configurations A (75.97% median over 50 seeds)
and B (75.92%).
"""

import ml_collections

from configs import search_space
from configs.reality_check import nesterov_journey

NUM_TRIALS = 251


def get_config() -> ml_collections.ConfigDict:
  return nesterov_journey.linear_decay_config(
      nesterov_journey.STEPS_72_EPOCHS, decay_every_variable=True, decay_factor=1e-2)


def get_search() -> search_space.Search:
  return nesterov_journey.one_stage(get_search_space(), NUM_TRIALS)


def get_search_space() -> list[search_space.Axis]:
  return nesterov_journey.table_9_space()
