"""The grid behind Table 3's AdamW: AdamW at a constant rate without L2, batch 16K,
90 epochs (You et al., LAMB paper, Appendix H.1, Tables 17 to 20).

The paper's second AdamW tuning set ("AdamW with disabled L2 regularization"), one
table per weight decay; together they are one grid. Everything but the rate and
the weight decay is configs/lamb_paper/table3.py:adamw. The grid (`get_search`, one
run per point, as in the paper; configs/lamb_paper/grids.py), 80 points:
  lr.peak                 20 rates from 0.0001 to 0.05
  optimizer.weight_decay  1e-5 (Table 17), 1e-4 (18), 1e-3 (19), 1e-2 (20)

The paper's first set (Tables 13 to 16) is the same grid with the pipeline's L2
0.01 as well: grid_tables13_16_adamw_l2.py.

Budget in steps: T = 7,038 per run.

Expected (Tables 17 to 20): the best point is lr 0.002 with weight decay 1e-5 at
0.6727 top-1 (0.67266846), Table 3's value; the best of each weight decay is
0.6727, 0.6724 (lr 0.002), 0.6208 (lr 0.004) and 0.0814 (lr 0.006).

Command (a grid search; needs ImageNet prepared in data_dir, and accelerators for
batch 16,384):
  python main.py --config=configs/lamb_paper/grid_tables17_20_adamw.py --search \\
      --workdir=runs/tables17_20
"""

import ml_collections

from configs import search_space
from configs.lamb_paper import grids
from configs.lamb_paper import table3


def get_config() -> ml_collections.ConfigDict:
  return table3.get_config('adamw')


def get_search() -> search_space.Search:
  return grids.grid('tables_17_20', {'lr.peak': grids.ADAMW_RATES,
                                     'optimizer.weight_decay': grids.ADAMW_WEIGHT_DECAYS})
