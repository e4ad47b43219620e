"""Nado et al., Table 8 (Appendix D.3): the search behind Table 4's LAMB / LAMB row.

Weights: LAMB; biases and BN parameters: LAMB. 6,000 steps at batch 32,768, a cosine
decay from eta to 0, everything else configs/cosine_6000.py's `pure_lamb` row, which
get_config() returns: its values are Table 8's Best column. lambda is decoupled
weight decay (`optimizer.weight_decay`, footnote 21), on every variable (one
optimizer for the whole model).

Table 8, as printed:
  name     Initial Range                Final Range          Best
  eta      np.logspace(-4, 0, 30)       [4e-3, 5e-2]         0.01134
  lambda   np.logspace(-5, -2, 4)       [1e-2, 0.1]          0.02657

Most trials of this row diverged: the paper drew 67 to get the 25 feasible
trials of its final stage, which is why a stage counts feasible trials and draws
up to 4 times as many. The Final Range of lambda lies above the Initial Range
(which ends at 1e-2), as printed.

The protocol (`get_search()`, configs/reality_check/cosine_protocol.py): 50
feasible trials in the Initial Range, 25 in the Final Range, then the best point
of the Final Range for 5 seeds, ranked by the final accuracy.

Command (needs ImageNet prepared in data_dir and accelerators for batch 32,768):
  python main.py --config=configs/reality_check/table8_pure_lamb.py --search \\
      --workdir=runs/table8_pure_lamb

Budget in steps: T = 6,000, no warmup.

Expected (Nado et al., Table 4): the confirmed point near the Best column, with
a median top-1 of 27.3% over 5 seeds.
"""

import ml_collections

from configs import cosine_6000
from configs import search_space
from configs.reality_check import cosine_protocol


def get_config() -> ml_collections.ConfigDict:
  return cosine_6000.get_config('pure_lamb')


def get_search() -> search_space.Search:
  return cosine_protocol.search(
      initial=[cosine_protocol.logspace('lr.peak', -4, 0, 30),
               cosine_protocol.logspace('optimizer.weight_decay', -5, -2, 4)],
      final=[cosine_protocol.log_range('lr.peak', 4e-3, 5e-2),
             cosine_protocol.log_range('optimizer.weight_decay', 1e-2, 0.1)])
