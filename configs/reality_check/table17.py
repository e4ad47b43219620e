"""Nado et al., Appendix D.4, Table 17: a sweep of lambda at twenty values per decade.

Nesterov momentum, 2,815 steps, virtual batch 64, at the best point of Table 15
with Table 16's peak rate, a linear warmup of 500 steps, then a quadratic decay
towards eta_peak * eta_decay_factor, held from t_decay (see
configs/reality_check/table12.py). Only lambda, on the kernels only
(`optimizer.l2`: init2winit's Nesterov weight decay is added to the gradient),
changes, "to test how high the regularization has to be".

Table 17, as printed:
  eta_peak           4.118
  eta_decay_factor   8.144e-5
  t_decay            2250
  1 - mu             0.02397
  lambda             {{0.5x10^a, 10^a, ...} for all a in {-3, ..., 0}} + {1.0,}
  tau                0.07786

The grid is read as Table 16's (configs/reality_check/table16.py): a in
range(-3, 0) (-3 to -1) and 1.0 appended to close the last decade, each decade
{0.5, 1.0, 1.5, ..., 9.5} x 10^a, nineteen values and the next power of ten
making the caption's twenty. 0.5 x 10^a is also 5 x 10^(a-1), so the grid has
56 distinct values, from 5e-4 to 1.0. One seed each (the caption names none).

Command (needs ImageNet prepared in data_dir and accelerators for batch 32,768):
  python main.py --config=configs/reality_check/table17.py --search --workdir=runs/table17

Budget in steps: T = 2,815, t_warmup = 500, the rate held from step 2,250.

Expected (paper): Table 19 narrows lambda to [7e-3, 7e-2] "based off the results
of Table 17" (the paper gives no accuracy).
"""

import ml_collections

from configs import search_space
from configs.reality_check import nesterov_journey
from configs.reality_check import table16

HALF_STEPS = [m / 2 for m in range(1, 20)]  # 0.5, 1.0, ..., 9.5
WEIGHT_DECAYS = nesterov_journey.decade_grid(HALF_STEPS, range(-3, 0), last=1.0)


def get_config() -> ml_collections.ConfigDict:
  return table16.get_config()


def get_search() -> search_space.Search:
  return nesterov_journey.sweep([search_space.Choice('optimizer.l2', WEIGHT_DECAYS)])
