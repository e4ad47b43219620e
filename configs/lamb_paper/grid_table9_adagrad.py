"""The grid behind Table 3's AdaGrad: AdaGrad at a constant rate, batch 16K, 90
epochs (You et al., LAMB paper, Appendix H.1, Table 9).

Everything but the rate is configs/lamb_paper/table3.py:adagrad (see there for
what the paper leaves open). The grid (`get_search`, one run per point, as in the
paper; configs/lamb_paper/grids.py):
  lr.peak  27 rates from 0.0001 to 50

Budget in steps: T = 7,038 per run.

Expected (Table 9): the best point is lr 0.4 at 0.5538 top-1 (0.553833), Table 3's
value; the grid's runs range from 0.0010 (lr 50) to that.

Command (a grid search; needs ImageNet prepared in data_dir, and accelerators for
batch 16,384):
  python main.py --config=configs/lamb_paper/grid_table9_adagrad.py --search \\
      --workdir=runs/table9
"""

import ml_collections

from configs import search_space
from configs.lamb_paper import grids
from configs.lamb_paper import table3


def get_config() -> ml_collections.ConfigDict:
  return table3.get_config('adagrad')


def get_search() -> search_space.Search:
  return grids.grid('table_9', {'lr.peak': grids.ADAGRAD_RATES})
