"""Nesterov momentum on the embedded shapes dataset: the LARS run's counterpart.

The embedded analogue of Configuration B (`nesterov_b.py`): Nesterov momentum on
every parameter, L2 on kernels only, and LARS's schedule shape with a quadratic
warmup; everything else (model, data, batch, budget, target) is
`embedded_lars.py`'s, so that `python main.py` compares the two optimizers alone.

Command (half of the bare `python main.py` comparison):
  python main.py --config=configs/embedded_nesterov.py --num_seeds=5

Budget in steps: the same as embedded_lars.py.

Expected: see docs/embedded.md's embedded comparison table (measured on 2 CPU cores).
"""

import ml_collections

from configs import embedded_lars


def get_config() -> ml_collections.ConfigDict:
  config = embedded_lars.get_config()
  config.optimizer.name = 'nesterov'
  config.optimizer.bn_bias_name = 'same'
  config.optimizer.momentum = 0.9
  config.optimizer.l2 = 5e-4
  config.lr.peak = 0.5
  config.lr.warmup_power = 2.0
  # The MLPerf closed division allows LARS and plain SGD momentum only.
  config.mlperf.submission_division = 'open'
  return config
