"""Batch-size scaling on the embedded data: the rehearsal of `main.py --scaling`.

Shallue et al. (2019) measure the steps a workload needs to reach a target at
each batch size, each batch size tuned on its own, and find perfect scaling
(twice the batch, half the steps) up to a critical batch size and diminishing
returns past it. `get_scaling()` is that study at laptop scale for
`embedded_nesterov.py`'s Nesterov momentum on the embedded data (10,000
training images), at 4 batch sizes:

  batch size      64     128    256    512
  step budget     800    400    300    200      (5.1, 5.1, 7.6, 10.1 epochs)

The two smallest keep embedded_nesterov.py's 5.1 epochs; the two largest get
more epochs, since a fixed epoch budget would demand perfect scaling (the
Reality Check, Section 4). Runs stop at the 70% target (stop_at_target), so a
budget costs its whole length only for a run that misses. The warmup (0.64
epochs, embedded_nesterov.py's 50 steps at batch 128) and the eval cadence
(every half epoch) are in epochs, so both follow the batch size: evals every
79, 40, 20 and 10 steps, the resolution of each batch size's steps to target.

  tuned      at each batch size, a grid of 3 peak rates, 1 seed each, ranked by
             steps to target, then the best over 3 seeds that no trial ran
             (seeds 1-3): 6 runs a batch size, 24 in all
  untuned    each batch size for 3 seeds (seeds 0-2), 12 runs in all

The peak rate is lr.peak scaled linearly from batch 128 (lr.batch_scaling =
'linear', lr.reference_batch_size = 128): untuned, embedded_nesterov.py's 0.5 at
128 becomes 0.25 at 64 and 2.0 at 512; tuned, the grid {0.25, 0.5, 1.0} of
lr.peak is scaled the same way at each batch size, so it spans a factor of 4
around the linear rule's rate. `--config.lr.batch_scaling=sqrt` gives the
square-root rule instead, `none` the same rate at every batch size.

Commands:
  python main.py --config=configs/embedded_scaling.py --scaling=tuned \
      --workdir=runs/embedded_scaling
  python main.py --config=configs/embedded_scaling.py --scaling=untuned \
      --workdir=runs/embedded_scaling_untuned

Budget in steps: per batch size, above (`Scaling.num_train_steps`); the config's
own 400 steps are batch 128's.

Expected: see docs/scaling.md's embedded rehearsal (measured on 2 CPU cores):
the median steps to 70% at each batch size, the perfect-scaling line from batch
64 and the critical batch size. Designed to take at most 15 minutes on 2 cores
(tuned); the untuned curve about half that. Measured on 2026-12-08 on the quiet
2-core machine: tuned 12 min 13 s, untuned 5 min 35 s; the critical batch size
256 by both.
"""

import ml_collections

from configs import embedded_nesterov
from configs import search_space

BATCH_SIZES = (64, 128, 256, 512)
NUM_TRAIN_STEPS = (800, 400, 300, 200)
SEEDS = 3
# lr.peak at the reference batch (128), scaled linearly to each batch size.
PEAK_RATES = (0.25, 0.5, 1.0)


def get_config() -> ml_collections.ConfigDict:
  config = embedded_nesterov.get_config()
  config.lr.batch_scaling = 'linear'
  config.lr.reference_batch_size = 128
  config.lr.warmup_steps = 0.0
  config.lr.warmup_epochs = 0.64
  config.eval_every_steps = 0
  config.eval_every_epochs = 0.5
  config.eval_offset_epochs = 0
  config.stop_at_target = True
  return config


def get_scaling() -> search_space.Scaling:
  grid = search_space.Stage(name='rate', mode='grid', seeds_per_trial=1,
                            space=(search_space.Choice('lr.peak', PEAK_RATES),))
  return search_space.Scaling(batch_sizes=BATCH_SIZES, stages=(grid,), seeds=SEEDS,
                              num_train_steps=NUM_TRAIN_STEPS)
