"""AdamW at a constant rate with the pipeline's L2 0.01 as well as weight decay,
batch 16K, 90 epochs (You et al., LAMB paper, Appendix H.1, Tables 13 to 16).

The paper's first AdamW tuning set ("AdamW with default L2 regularization"), one
table per weight decay; together they are one grid. Everything but the rate, the
weight decay and L2 is configs/lamb_paper/table3.py:adamw, the best point of the
second set (Tables 17 to 20, without L2: grid_tables17_20_adamw.py). L2 is
`optimizer.l2` on the kernels, added to the gradient before Adam's moments, beside
the decoupled weight decay (docs/configs.md). The grid (`get_search`, one run per
point, as in the paper; configs/lamb_paper/grids.py), 80 points:
  lr.peak                 20 rates from 0.0001 to 0.05
  optimizer.weight_decay  1e-5 (Table 13), 1e-4 (14), 1e-3 (15), 1e-2 (16)
  optimizer.l2            0.01 at every point

Budget in steps: T = 7,038 per run.

Expected (Tables 13 to 16): the best point is lr 0.0002 with weight decay 1e-4 at
0.5651 top-1 (0.56514484), below the set without L2 (0.6727, Table 3's AdamW);
the best of each weight decay is 0.5543 (lr 0.0002), 0.5651, 0.4289 (lr 0.0002)
and 0.0095 (lr 0.002).

Command (a grid search; needs ImageNet prepared in data_dir, and accelerators for
batch 16,384):
  python main.py --config=configs/lamb_paper/grid_tables13_16_adamw_l2.py --search \\
      --workdir=runs/tables13_16
"""

import ml_collections

from configs import search_space
from configs.lamb_paper import grids
from configs.lamb_paper import table3


def get_config() -> ml_collections.ConfigDict:
  config = table3.get_config('adamw')
  config.optimizer.l2 = table3.PIPELINE_L2
  config.lr.peak = 0.0002  # Table 14's best point.
  config.optimizer.weight_decay = 1e-4
  return config


def get_search() -> search_space.Search:
  return grids.grid('tables_13_16', {'lr.peak': grids.ADAMW_RATES,
                                     'optimizer.weight_decay': grids.ADAMW_WEIGHT_DECAYS})
