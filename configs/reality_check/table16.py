"""Nado et al., Appendix D.4, Table 16: a sweep of the peak rate for the largest stable one.

Nesterov momentum, 2,815 steps, virtual batch 64, lambda on the kernels only
(`optimizer.l2`), at the best point of Table 15, a linear warmup of 500 steps,
then a quadratic decay towards eta_peak * eta_decay_factor, held from t_decay
(see configs/reality_check/table12.py). Only eta_peak changes, over a grid,
"each for three random seeds".

Table 16, as printed:
  eta_peak           {{10^a, 2x10^a, ..., 9x10^a} for all a in {-3, ..., 2}} + {100,}
  eta_decay_factor   8.144e-5
  t_decay            2250
  1 - mu             0.02397
  lambda             0.009992
  tau                0.07786

The grid is read as Python would build it, a in range(-3, 2) (-3 to 1) and 100
appended to close the last decade: 46 values from 0.001 to 100, the caption's
"ten values per order of magnitude" counting each decade's next power of ten.
Read with a = 2 included, 100 would be there twice and the grid would run to
900.

Command (needs ImageNet prepared in data_dir and accelerators for batch 32,768):
  python main.py --config=configs/reality_check/table16.py --search --workdir=runs/table16

Budget in steps: T = 2,815, t_warmup = 500, the rate held from step 2,250.

Expected (paper): the largest stable peak rate; Tables 17 and 18 then fix
eta_peak = 4.118 and Table 19 searches [2, 8] (the paper gives no accuracy).
"""

import ml_collections

from configs import search_space
from configs.reality_check import nesterov_journey

SEEDS_PER_POINT = 3
PEAKS = nesterov_journey.decade_grid(range(1, 10), range(-3, 2), last=100.0)


def get_config() -> ml_collections.ConfigDict:
  return nesterov_journey.quadratic_hold_config(
      nesterov_journey.STEPS_72_EPOCHS, virtual_batch_size=64)


def get_search() -> search_space.Search:
  return nesterov_journey.sweep([search_space.Choice('lr.peak', PEAKS)],
                                seeds_per_trial=SEEDS_PER_POINT)
