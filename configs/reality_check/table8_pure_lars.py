"""Nado et al., Table 8 (Appendix D.3): the search behind Table 4's LARS / LARS row.

Weights: LARS; biases and BN parameters: LARS. 6,000 steps at batch 32,768, a cosine
decay from eta to 0, everything else configs/cosine_6000.py's `pure_lars` row, which
get_config() returns: its values are Table 8's Best column. lambda is L2
(`optimizer.l2`, footnote 21), on every variable (one optimizer for the whole
model).

Table 8, as printed:
  name     Initial Range                Final Range          Best
  eta      [1, 30]                      [10, 30]             14.18
  lambda   [1e-4, 1e-1]                 [5e-5, 5e-4]         5.278e-5

The Final Range of lambda reaches below the Initial Range (5e-5 < 1e-4), as
printed; the best lambda, 5.278e-5, lies in that part.

The protocol (`get_search()`, configs/reality_check/cosine_protocol.py): 50
feasible trials in the Initial Range, 25 in the Final Range, then the best point
of the Final Range for 5 seeds, ranked by the final accuracy.

Command (needs ImageNet prepared in data_dir and accelerators for batch 32,768):
  python main.py --config=configs/reality_check/table8_pure_lars.py --search \\
      --workdir=runs/table8_pure_lars

Budget in steps: T = 6,000, no warmup.

Expected (Nado et al., Table 4): the confirmed point near the Best column, with
a median top-1 of 76.9% over 5 seeds.
"""

import ml_collections

from configs import cosine_6000
from configs import search_space
from configs.reality_check import cosine_protocol


def get_config() -> ml_collections.ConfigDict:
  return cosine_6000.get_config('pure_lars')


def get_search() -> search_space.Search:
  return cosine_protocol.search(
      initial=[cosine_protocol.log_range('lr.peak', 1.0, 30.0),
               cosine_protocol.log_range('optimizer.l2', 1e-4, 1e-1)],
      final=[cosine_protocol.log_range('lr.peak', 10.0, 30.0),
             cosine_protocol.log_range('optimizer.l2', 5e-5, 5e-4)])
