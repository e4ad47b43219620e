"""Nado et al., Appendix D.4, Table 13: Table 12's schedule at 2,815 steps.

Nesterov momentum, 2,815 steps, virtual batch 128, lambda on the kernels only
(`optimizer.l2`), a linear warmup of 500 steps, then a quadratic decay towards
eta_peak * eta_decay_factor, held from t_decay (as in Table 12: init2winit's
`decay_end`; see configs/reality_check/table12.py). The decay factor is now a
continuous log range.

Table 13 (50 trials), as printed:
  eta_peak           [1e-1, 32]             log
  eta_decay_factor   [3e-5, 3e-4]           log
  t_decay            [2533, 2.815]          linear   read as [2533, 2815]
  1 - mu             [1e-4, 1e-1]           log
  lambda             [1e-4, 1e-1]           log
  tau                [5e-2, 0.15]           linear

t_decay's printed upper end, 2.815, is the budget 2,815 with its comma printed as
a decimal point (2533 is 0.9 of it).

get_config() starts from the values Tables 16-18 fix (the best of Table 15).

Command (needs ImageNet prepared in data_dir and accelerators for batch 32,768):
  python main.py --config=configs/reality_check/table13.py --search --workdir=runs/table13

Budget in steps: T = 2,815, t_warmup = 500, the rate held from t_decay.

Expected (paper): none reported.
"""

import ml_collections

from configs import search_space
from configs.reality_check import nesterov_journey

NUM_TRIALS = 50


def get_config() -> ml_collections.ConfigDict:
  return nesterov_journey.quadratic_hold_config(
      nesterov_journey.STEPS_72_EPOCHS, virtual_batch_size=128)


def get_search() -> search_space.Search:
  return nesterov_journey.one_stage(space(one_minus_mu=(1e-4, 1e-1), weight_decay=(1e-4, 1e-1)),
                                    NUM_TRIALS)


def space(*, one_minus_mu: tuple[float, float], weight_decay: tuple[float, float]
          ) -> list[search_space.Axis]:
  """Tables 13-15's space; Table 14 narrows 1 - mu and lambda."""
  return [
      search_space.Range('lr.peak', 1e-1, 32.0, scale='log'),
      search_space.Range('lr.decay_factor', 3e-5, 3e-4, scale='log'),
      search_space.Range('lr.hold_from_step', 2533.0, 2815.0, scale='linear'),
      search_space.Range('optimizer.momentum', *one_minus_mu, scale='log', one_minus=True),
      search_space.Range('optimizer.l2', *weight_decay, scale='log'),
      search_space.Range('label_smoothing', 5e-2, 0.15, scale='linear'),
  ]
