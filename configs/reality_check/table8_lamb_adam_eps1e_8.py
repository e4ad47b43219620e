"""Nado et al., Table 8 (Appendix D.3): the search behind Table 4's LAMB / Adam (eps 1e-8) row.

Weights: LAMB; biases and BN parameters: Adam (eps 1e-8). 6,000 steps at batch
32,768, a cosine decay from eta to 0, everything else configs/cosine_6000.py's
`lamb_adam_eps1e-8` row, which get_config() returns: its values are Table 8's Best
column. lambda is decoupled weight decay (`optimizer.weight_decay`, footnote 21), on
the kernels only: 0 on biases and BN, which Adam takes (Appendix D.3).

Table 8, as printed:
  name     Initial Range                Final Range          Best
  eta      [1e-3, 1]                    [1e-2, 8e-2]         0.02569
  lambda   [1e-2, 4]                    [1, 8]               2.500

The Final Range of lambda reaches above the Initial Range (8 > 4), as printed.

The protocol (`get_search()`, configs/reality_check/cosine_protocol.py): 50
feasible trials in the Initial Range, 25 in the Final Range, then the best point
of the Final Range for 5 seeds, ranked by the final accuracy.

Command (needs ImageNet prepared in data_dir and accelerators for batch 32,768):
  python main.py --config=configs/reality_check/table8_lamb_adam_eps1e_8.py --search \\
      --workdir=runs/table8_lamb_adam_eps1e_8

Budget in steps: T = 6,000, no warmup.

Expected (Nado et al., Table 4): the confirmed point near the Best column, with
a median top-1 of 76.3% over 5 seeds.
"""

import ml_collections

from configs import cosine_6000
from configs import search_space
from configs.reality_check import cosine_protocol


def get_config() -> ml_collections.ConfigDict:
  return cosine_6000.get_config('lamb_adam_eps1e-8')


def get_search() -> search_space.Search:
  return cosine_protocol.search(
      initial=[cosine_protocol.log_range('lr.peak', 1e-3, 1.0),
               cosine_protocol.log_range('optimizer.weight_decay', 1e-2, 4.0)],
      final=[cosine_protocol.log_range('lr.peak', 1e-2, 8e-2),
             cosine_protocol.log_range('optimizer.weight_decay', 1.0, 8.0)])
