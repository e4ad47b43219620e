"""Nado et al., Table 8 (Appendix D.3): the search behind Table 4's Nesterov / Nesterov row.

Weights: Nesterov; biases and BN parameters: Nesterov. 6,000 steps at batch 32,768,
a cosine decay from eta to 0, everything else configs/cosine_6000.py's `nesterov`
row, which get_config() returns: its values are Table 8's Best column. lambda is L2
(`optimizer.l2`, footnote 21), on the kernels only (cosine_6000.py keeps the LARS
pipeline's rule: the paper does not say otherwise).

Table 8, as printed:
  name     Initial Range                Final Range          Best
  eta      np.logspace(-.5, .5, 10)     [0.8, 3]             1.173
  lambda   np.logspace(-4, -3, 10)      [3e-4, 1e-3]         3.026e-4

The protocol (`get_search()`, configs/reality_check/cosine_protocol.py): 50
feasible trials in the Initial Range, 25 in the Final Range, then the best point
of the Final Range for 5 seeds, ranked by the final accuracy.

Command (needs ImageNet prepared in data_dir and accelerators for batch 32,768):
  python main.py --config=configs/reality_check/table8_nesterov.py --search \\
      --workdir=runs/table8_nesterov

Budget in steps: T = 6,000, no warmup.

Expected (Nado et al., Table 4): the confirmed point near the Best column, with
a median top-1 of 76.7% over 5 seeds.
"""

import ml_collections

from configs import cosine_6000
from configs import search_space
from configs.reality_check import cosine_protocol


def get_config() -> ml_collections.ConfigDict:
  return cosine_6000.get_config('nesterov')


def get_search() -> search_space.Search:
  return cosine_protocol.search(
      initial=[cosine_protocol.logspace('lr.peak', -0.5, 0.5, 10),
               cosine_protocol.logspace('optimizer.l2', -4, -3, 10)],
      final=[cosine_protocol.log_range('lr.peak', 0.8, 3.0),
             cosine_protocol.log_range('optimizer.l2', 3e-4, 1e-3)])
