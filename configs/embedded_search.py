"""A quasi-random search on the embedded data: Table 9's method at laptop scale.

`embedded_nesterov.py` with a search space in the style of the paper's Table 9
(ranges around the embedded task's working values), to try the search machinery
on a CPU: each trial is a few tens of seconds.

Command:
  python main.py --config=configs/embedded_search.py --num_trials=8 --num_seeds=2

Budget in steps: the same as embedded_nesterov.py.

Expected: trials spread from chance (10%) for rates far off to above the target
near the embedded Nesterov config's values; the report ranks them.
"""

import ml_collections

from configs import embedded_nesterov
from configs import search_space


def get_config() -> ml_collections.ConfigDict:
  return embedded_nesterov.get_config()


def get_search_space() -> list[search_space.Axis]:
  return [
      search_space.Range('lr.peak', 1e-2, 10.0, scale='log'),
      search_space.Range('optimizer.momentum', 1e-2, 0.5, scale='log', one_minus=True),
      search_space.Range('optimizer.l2', 1e-5, 1e-2, scale='log'),
      search_space.Range('label_smoothing', 0.0, 0.2, scale='linear'),
  ]
