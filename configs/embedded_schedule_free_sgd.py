"""Schedule-Free SGD (optax.contrib.schedule_free_sgd) on the embedded data.

Defazio et al. (2024), "The Road Less Scheduled": SGD steps on z, their
running average x, and gradients taken at y = b1 * x + (1 - b1) * z, with b1
in `optimizer.momentum` (0.9, the authors' default). The rate warms up and then
holds ('step' with no boundaries): the averaging replaces the decay. Evals
read the average x, as the authors require (optim/schedule_free.py). L2 on
kernels joins the gradient at y, as in the authors' SGD. Everything else is
`embedded_nesterov.py`'s. The authors start SGD at a rate 10-50x above a
scheduled one's.

Command:
  python main.py --config=configs/embedded_schedule_free_sgd.py --num_seeds=5
  python main.py --config=configs/embedded_schedule_free_sgd.py --num_trials=8 --num_seeds=2

Budget in steps: the same as embedded_lars.py (400 steps at batch 128).

Expected: see docs/configs.md's "Today's optimizers" (measured on 2 CPU cores).
"""

import ml_collections

from configs import embedded_nesterov
from configs import search_space


def get_config() -> ml_collections.ConfigDict:
  config = embedded_nesterov.get_config()
  config.optimizer.name = 'schedule_free_sgd'
  config.optimizer.bn_bias_name = 'same'
  config.optimizer.momentum = 0.9
  config.optimizer.l2 = 5e-4
  config.lr.schedule = 'step'  # No boundaries: the warmup, then the peak held.
  config.lr.step_boundaries_epochs = ()
  config.lr.warmup_power = 1.0
  config.lr.peak = 10.0
  return config


def get_search_space() -> list[search_space.Axis]:
  return [
      search_space.Range('lr.peak', 0.1, 100.0, scale='log'),
      search_space.Range('optimizer.momentum', 1e-2, 0.5, scale='log', one_minus=True),
      search_space.Range('optimizer.l2', 1e-5, 1e-2, scale='log'),
      search_space.Range('lr.warmup_steps', 10.0, 200.0, scale='linear'),
  ]
