"""The grid behind Table 3's Adam: Adam at a constant rate, batch 16K, 90 epochs
(You et al., LAMB paper, Appendix H.1, Table 11).

Everything but the rate is configs/lamb_paper/table3.py:adam (see there for what
the paper leaves open). The grid (`get_search`, one run per point, as in the
paper; configs/lamb_paper/grids.py):
  lr.peak  11 rates from 0.0001 to 0.01

Budget in steps: T = 7,038 per run.

Expected (Table 11): the best point is lr 0.001 at 0.6604 top-1, Table 3's value;
the grid's runs range from 0.3673 (lr 0.01) to that.

Command (a grid search; needs ImageNet prepared in data_dir, and accelerators for
batch 16,384):
  python main.py --config=configs/lamb_paper/grid_table11_adam.py --search \\
      --workdir=runs/table11
"""

import ml_collections

from configs import search_space
from configs.lamb_paper import grids
from configs.lamb_paper import table3


def get_config() -> ml_collections.ConfigDict:
  return table3.get_config('adam')


def get_search() -> search_space.Search:
  return grids.grid('table_11', {'lr.peak': grids.ADAM_RATES})
