"""Schedule-Free AdamW (optax.contrib.schedule_free_adamw) on the embedded data.

Defazio et al. (2024): AdamW's RMS-scaled steps on z without a first moment,
their running average x, and gradients taken at y = b1 * x + (1 - b1) * z
(`optimizer.b1`). The rate warms up and then holds ('step' with no
boundaries). Evals read the average x, as the authors require
(optim/schedule_free.py). Decoupled weight decay (scaled by the rate) on
kernels only. Everything else is `embedded_nesterov.py`'s. The authors start
AdamW at a rate 1-10x above a scheduled one's.

Command:
  python main.py --config=configs/embedded_schedule_free_adamw.py --num_seeds=5
  python main.py --config=configs/embedded_schedule_free_adamw.py --num_trials=8 --num_seeds=2

Budget in steps: the same as embedded_lars.py (400 steps at batch 128).

Expected: see docs/configs.md's "Today's optimizers" (measured on 2 CPU cores).
"""

import ml_collections

from configs import embedded_nesterov
from configs import search_space


def get_config() -> ml_collections.ConfigDict:
  config = embedded_nesterov.get_config()
  config.optimizer.name = 'schedule_free_adamw'
  config.optimizer.bn_bias_name = 'same'
  config.optimizer.l2 = 0.0
  config.optimizer.weight_decay = 0.1
  config.lr.schedule = 'step'  # No boundaries: the warmup, then the peak held.
  config.lr.step_boundaries_epochs = ()
  config.lr.warmup_power = 1.0
  config.lr.peak = 0.03
  return config


def get_search_space() -> list[search_space.Axis]:
  return [
      search_space.Range('lr.peak', 1e-3, 1.0, scale='log'),
      search_space.Range('optimizer.b1', 1e-2, 0.5, scale='log', one_minus=True),
      search_space.Range('optimizer.b2', 1e-3, 1e-1, scale='log', one_minus=True),
      search_space.Range('optimizer.weight_decay', 1e-3, 1.0, scale='log'),
      search_space.Range('lr.warmup_steps', 10.0, 200.0, scale='linear'),
  ]
