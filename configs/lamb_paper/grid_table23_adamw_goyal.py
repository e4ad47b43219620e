"""AdamW with Goyal et al.'s recipe and without L2 at the larger weight decays,
batch 16K, 90 epochs (You et al., LAMB paper, Appendix H.1, Table 23).

Part of the paper's fourth AdamW tuning set ("AdamW+ with disabled L2
regularization"; the smaller weight decays are grid_tables24_25_adamw_goyal.py).
Everything but the rate, the weight decay and L2 (0 here) is
configs/lamb_paper/table3.py:adamw_goyal. The grid (`get_search`, one run per
point, as in the paper; configs/lamb_paper/grids.py), 20 points:
  lr.peak                 10 rates from 0.0001 to 0.008
  optimizer.weight_decay  1e-2, 1e-3

Budget in steps: T = 7,038 per run.

Expected (Table 23): every point fails to learn but one: lr 0.008 with weight
decay 1e-3 reaches 0.1330 top-1 (0.1329956), the others 0.0010 to 0.0197.

Command (a grid search; needs ImageNet prepared in data_dir, and accelerators for
batch 16,384):
  python main.py --config=configs/lamb_paper/grid_table23_adamw_goyal.py --search \\
      --workdir=runs/table23
"""

import ml_collections

from configs import search_space
from configs.lamb_paper import grids
from configs.lamb_paper import table3


def get_config() -> ml_collections.ConfigDict:
  config = table3.get_config('adamw_goyal')
  config.optimizer.l2 = 0.0
  config.lr.peak = 0.008  # Table 23's best point.
  config.optimizer.weight_decay = 1e-3
  return config


def get_search() -> search_space.Search:
  return grids.grid('table_23', {'lr.peak': grids.ADAMW_GOYAL_SHORT_RATES,
                                 'optimizer.weight_decay': (1e-2, 1e-3)})
