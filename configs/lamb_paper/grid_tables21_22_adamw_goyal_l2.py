"""The grid behind Table 3's AdamW+: AdamW with Goyal et al.'s recipe and the
pipeline's L2 0.01 as well as weight decay, batch 16K, 90 epochs (You et al., LAMB
paper, Appendix H.1, Tables 21 and 22).

The paper's third AdamW tuning set ("AdamW+ with default L2 regularization"): the
larger weight decays in Table 21, the smaller in Table 22; together they are one
grid. Everything but the rate and the weight decay is
configs/lamb_paper/table3.py:adamw_goyal, this grid's best point (L2 is
`optimizer.l2` on the kernels, added to the gradient before Adam's moments, beside
the decoupled weight decay: docs/configs.md). The grid (`get_search`, one run per
point, as in the paper; configs/lamb_paper/grids.py), 40 points:
  lr.peak                 10 rates from 0.0001 to 0.008
  optimizer.weight_decay  1e-2, 1e-3 (Table 21), 1e-4, 1e-5 (Table 22)
  optimizer.l2            0.01 at every point

Budget in steps: T = 7,038 per run.

Expected (Tables 21 and 22): the best point is lr 0.002 with weight decay 1e-4 at
0.7307 top-1 (0.73065186), Table 3's value; with weight decay 1e-5 the best is
lr 0.0004 at 0.6774, and no run with 1e-2 or 1e-3 learns (0.0009 to 0.0119).

Command (a grid search; needs ImageNet prepared in data_dir, and accelerators for
batch 16,384):
  python main.py --config=configs/lamb_paper/grid_tables21_22_adamw_goyal_l2.py --search \\
      --workdir=runs/tables21_22
"""

import ml_collections

from configs import search_space
from configs.lamb_paper import grids
from configs.lamb_paper import table3


def get_config() -> ml_collections.ConfigDict:
  return table3.get_config('adamw_goyal')


def get_search() -> search_space.Search:
  return grids.grid('tables_21_22', {'lr.peak': grids.ADAMW_GOYAL_SHORT_RATES,
                                     'optimizer.weight_decay': (1e-2, 1e-3, 1e-4, 1e-5)})
