"""The grid behind Table 3's Adam+: Adam with Goyal et al.'s recipe, batch 16K, 90
epochs (You et al., LAMB paper, Appendix H.1, Table 12).

Everything but the peak rate is configs/lamb_paper/table3.py:adam_goyal (5 warmup
epochs, x0.1 at epochs 30, 60 and 80). The grid (`get_search`, one run per point,
as in the paper; configs/lamb_paper/grids.py):
  lr.peak  19 rates from 0.0001 to 0.1

Budget in steps: T = 7,038 per run.

Expected (Table 12): the best point is lr 0.002 at 0.7348 top-1 (0.73476154), Table
3's value; the grid's runs range from 0.4030 (lr 0.1) to that.

Command (a grid search; needs ImageNet prepared in data_dir, and accelerators for
batch 16,384):
  python main.py --config=configs/lamb_paper/grid_table12_adam_goyal.py --search \\
      --workdir=runs/table12
"""

import ml_collections

from configs import search_space
from configs.lamb_paper import grids
from configs.lamb_paper import table3


def get_config() -> ml_collections.ConfigDict:
  return table3.get_config('adam_goyal')


def get_search() -> search_space.Search:
  return grids.grid('table_12', {'lr.peak': grids.ADAM_GOYAL_RATES})
