"""AdaGrad (optax.adagrad) on the embedded shapes dataset, with a search space.

Duchi et al.'s AdaGrad, as the LAMB paper's baselines run it (configs/lamb_paper/):
each weight's step is the rate times its gradient over the root of its running
sum of squared gradients (from optimizer.initial_accumulator_value). Every
parameter takes it; L2 on kernels only, added to the gradient first. Everything
else is `embedded_nesterov.py`'s (model, data, batch, budget, target, warmup and
quadratic decay), the decay ending at 0 so that it scales with any searched peak.

Command:
  python main.py --config=configs/embedded_adagrad.py --num_seeds=5
  python main.py --config=configs/embedded_adagrad.py --num_trials=8 --num_seeds=2

Budget in steps: the same as embedded_lars.py (400 steps at batch 128).

Expected: see docs/configs.md's "Today's optimizers" (measured on 2 CPU cores).
"""

import ml_collections

from configs import embedded_nesterov
from configs import search_space


def get_config() -> ml_collections.ConfigDict:
  config = embedded_nesterov.get_config()
  config.optimizer.name = 'adagrad'
  config.optimizer.bn_bias_name = 'same'
  config.optimizer.l2 = 5e-4
  # optax's starting sum of 0.1 damps the first steps of a network whose
  # gradients are small; trials found 1e-4 far better here (docs/configs.md).
  config.optimizer.initial_accumulator_value = 1e-4
  config.lr.peak = 0.3
  config.lr.final = 0.0
  return config


def get_search_space() -> list[search_space.Axis]:
  return [
      search_space.Range('lr.peak', 1e-2, 10.0, scale='log'),
      search_space.Range('optimizer.l2', 1e-5, 1e-2, scale='log'),
      search_space.Range('optimizer.initial_accumulator_value', 1e-5, 1.0, scale='log'),
  ]
