"""NAdamW (optax.nadamw) on the embedded shapes dataset, with a search space.

AdamW whose first moment looks one step ahead, as Dozat's Nadam does, with
decoupled weight decay in optax's convention (scaled by the rate): AlgoPerf's
baseline optimizer. Every parameter takes it; weight decay on kernels only.
Everything else is `embedded_nesterov.py`'s (model, data, batch, budget, target,
warmup and quadratic decay), the decay ending at 0 so that it scales with any
searched peak.

Command:
  python main.py --config=configs/embedded_nadamw.py --num_seeds=5
  python main.py --config=configs/embedded_nadamw.py --num_trials=8 --num_seeds=2

Budget in steps: the same as embedded_lars.py (400 steps at batch 128).

Expected: see docs/configs.md's "Today's optimizers" (measured on 2 CPU cores).
"""

import ml_collections

from configs import embedded_nesterov
from configs import search_space


def get_config() -> ml_collections.ConfigDict:
  config = embedded_nesterov.get_config()
  config.optimizer.name = 'nadamw'
  config.optimizer.bn_bias_name = 'same'
  config.optimizer.l2 = 0.0
  config.optimizer.weight_decay = 0.1
  config.lr.peak = 0.05
  config.lr.final = 0.0
  return config


def get_search_space() -> list[search_space.Axis]:
  return [
      search_space.Range('lr.peak', 1e-3, 1.0, scale='log'),
      search_space.Range('optimizer.b1', 1e-2, 0.5, scale='log', one_minus=True),
      search_space.Range('optimizer.b2', 1e-3, 1e-1, scale='log', one_minus=True),
      search_space.Range('optimizer.weight_decay', 1e-3, 1.0, scale='log'),
  ]
