"""The grid behind this harness's Table 3 AdamW+ row: AdamW with Goyal et al.'s
recipe and without L2, batch 16K, 90 epochs (You et al., LAMB paper, Appendix
H.1, Tables 24 and 25).

Part of the paper's fourth AdamW tuning set ("AdamW+ with disabled L2
regularization"; the larger weight decays are grid_table23_adamw_goyal.py). The
paper's Table 3 value for AdamW+, 0.7307, comes from its third set, with the
pipeline's L2 0.01 as well (Tables 21 and 22), which `adamw` here does not read;
configs/lamb_paper/table3.py:adamw_goyal is therefore this grid's best point.
The grid (`get_search`, one run per point, as in the paper;
configs/lamb_paper/grids.py), 40 points:
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
  return table3.get_config('adamw_goyal')


def get_search() -> search_space.Search:
  return grids.grid('tables_24_25', {'lr.peak': grids.ADAMW_RATES,
                                     'optimizer.weight_decay': (1e-4, 1e-5)})
