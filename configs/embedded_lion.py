"""Lion (optax.lion) on the embedded shapes dataset, with a search space.

Chen et al. (2023), "Symbolic Discovery of Optimization Algorithms": each step
is the sign of b1 * m + (1 - b1) * g, so every coordinate moves by the rate;
the momentum m then takes b2 (0.99, the paper's). The paper runs Lion at a rate
3-10x below AdamW's and a weight decay 3-10x above; on this small network the
trials found it best near NAdamW's rate all the same (docs/configs.md, "Today's
optimizers"). Every parameter takes it; weight decay (decoupled, scaled by the
rate) on kernels only. Everything else is `embedded_nesterov.py`'s, the decay
ending at 0.

Command:
  python main.py --config=configs/embedded_lion.py --num_seeds=5
  python main.py --config=configs/embedded_lion.py --num_trials=8 --num_seeds=2

Budget in steps: the same as embedded_lars.py (400 steps at batch 128).

Expected: see docs/configs.md's "Today's optimizers" (measured on 2 CPU cores).
"""

import ml_collections

from configs import embedded_nesterov
from configs import search_space


def get_config() -> ml_collections.ConfigDict:
  config = embedded_nesterov.get_config()
  config.optimizer.name = 'lion'
  config.optimizer.bn_bias_name = 'same'
  config.optimizer.l2 = 0.0
  config.optimizer.b1 = 0.9
  config.optimizer.b2 = 0.99
  config.optimizer.weight_decay = 0.5
  config.lr.peak = 0.03
  config.lr.final = 0.0
  return config


def get_search_space() -> list[search_space.Axis]:
  return [
      search_space.Range('lr.peak', 1e-4, 1e-1, scale='log'),
      search_space.Range('optimizer.b1', 1e-2, 0.5, scale='log', one_minus=True),
      search_space.Range('optimizer.b2', 1e-3, 1e-1, scale='log', one_minus=True),
      search_space.Range('optimizer.weight_decay', 1e-2, 10.0, scale='log'),
  ]
