"""AdamW with Goyal et al.'s recipe and without L2 at the smaller weight decays,
batch 16K, 90 epochs (You et al., LAMB paper, Appendix H.1, Tables 24 and 25).

Part of the paper's fourth AdamW tuning set ("AdamW+ with disabled L2
regularization"; the larger weight decays are grid_table23_adamw_goyal.py). Table
3's AdamW+ (0.7307) comes from the third set, with the pipeline's L2 0.01 as well
(grid_tables21_22_adamw_goyal_l2.py); this set's best is 0.0083 below it.
Everything but the rate, the weight decay and L2 (0 here) is
configs/lamb_paper/table3.py:adamw_goyal. The grid (`get_search`, one run per
point, as in the paper; configs/lamb_paper/grids.py), 40 points:
  lr.peak                 20 rates from 0.0001 to 0.05
  optimizer.weight_decay  1e-4 (Table 24), 1e-5 (Table 25)

Budget in steps: T = 7,038 per run.

Expected (Tables 24 and 25): the best point is lr 0.008 with weight decay 1e-4 at
0.7224 top-1 (0.7223918); with weight decay 1e-5 the best is lr 0.014 at 0.7109.

Command (a grid search; needs ImageNet prepared in data_dir, and accelerators for
batch 16,384):
  python main.py --config=configs/lamb_paper/grid_tables24_25_adamw_goyal.py --search \\
      --workdir=runs/tables24_25
"""

import ml_collections

from configs import search_space
from configs.lamb_paper import grids
from configs.lamb_paper import table3


def get_config() -> ml_collections.ConfigDict:
  config = table3.get_config('adamw_goyal')
  config.optimizer.l2 = 0.0
  config.lr.peak = 0.008  # Table 24's best point.
  config.optimizer.weight_decay = 1e-4
  return config


def get_search() -> search_space.Search:
  return grids.grid('tables_24_25', {'lr.peak': grids.ADAMW_RATES,
                                     'optimizer.weight_decay': (1e-4, 1e-5)})
