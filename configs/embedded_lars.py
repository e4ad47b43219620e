"""The embedded default: MLPerf-style LARS on the embedded shapes dataset.

The LARS half of the comparison that a bare `python main.py` runs (against
`embedded_nesterov.py`): the MLPerf LARS recipe of `default.py` scaled down to a
laptop CPU. The model, the batch, the budget and the learning rate are sized for
16x16 crops of 10 classes, small enough that 10 runs fit in a few minutes on two
cores. Two input constants differ from MLPerf's, because the embedded images are
64-128 px (ImageNet's are ~400x350): crops keep at least a quarter of the image
(MLPerf: 5%, which here leaves a patch that no longer shows the shape), and the
eval crop keeps 16/20 of the shorter side (MLPerf's padding of 32 would keep a third).

Command:
  python main.py --config=configs/embedded_lars.py --workdir=runs/embedded_lars

Budget in steps: 400 steps at batch 128 (5.1 epochs of the 10,000 training images),
evals every 50 steps; runs go on past the target (stop_at_target=False) so that
the final accuracy is measured at the budget, as the paper's protocol does.

MLPerf log: the open division. The optimizer and its hyperparameters are the
closed LARS recipe's, but the closed rules also fix the target (75.9%) and the
eval cadence (every 4 epochs), which this calibration changes.

Expected: see docs/embedded.md's embedded comparison (5 seeds, measured on 2 CPU cores).
"""

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.dataset = 'embedded_shapes'
  config.image_size = 16
  config.eval_batch_size = 500

  config.input.crop_area_range = (0.25, 1.0)
  config.input.eval_crop_padding = 4

  config.global_batch_size = 128
  config.num_train_steps = 400

  config.model.depth = 10
  config.model.width = 8
  config.model.stem = 'small'

  config.optimizer.momentum = 0.9
  config.lr.peak = 10.0
  config.lr.warmup_steps = 50.0

  # Calibrated so that most seeds, not all, reach it within the budget; the
  # studies measure accuracy at the end of the budget, as the paper does.
  config.target_accuracy = 0.70
  config.stop_at_target = False
  config.eval_every_steps = 50
  config.eval_every_epochs = None
  config.log_every_steps = 25
  config.mlperf.submission_division = 'open'  # Target and cadence are not MLPerf's.
  return config
