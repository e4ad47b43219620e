"""The embedded default: MLPerf-style LARS on the embedded shapes dataset.

Every key of the harness is defined here; the other config files import this one
and override what their experiment changes. Keys are named after the symbols of
Nado et al., "A Large Batch Optimizer Reality Check" (section 2.1).

Command (the same as a bare `python main.py`):
  python main.py --config=configs/default.py --workdir=runs/default

Budget in steps: 600 steps at batch 128 (7.7 epochs of the 10,000 training images).

Expected (measured over seeds 0-7 on 2 CPU cores): a ResNet-10 of width 8 on 32x32
crops of the embedded 10-class shapes dataset first reaches 75% at step 300-400
(median 350) and ends at 87-96% (median 91.5%) after 600 steps; with
stop_at_target the whole command, dataset build and compilation included, takes
about 1 min 40 s. See the README for the figures.
"""

import ml_collections
from ml_collections import config_dict


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0

  # Data. `data_dir` is the tfds data directory; the embedded dataset is built
  # there on first use, ImageNet must be prepared there beforehand.
  config.dataset = 'embedded_shapes'
  config.data_dir = '~/tensorflow_datasets'
  config.image_size = 32
  config.eval_batch_size = 500

  config.input = ml_collections.ConfigDict()
  # Random-resized crop for training (tf.image.sample_distorted_bounding_box).
  config.input.crop_area_range = (0.25, 1.0)
  config.input.crop_aspect_ratio_range = (0.75, 1.33)
  config.input.crop_min_object_covered = 0.1
  config.input.crop_max_attempts = 10
  config.input.resize_method = 'bicubic'
  config.input.random_flip = True
  # Eval: central crop of image_size / (image_size + eval_crop_padding) of the
  # shorter side (32 for ImageNet at 224, i.e. the usual 224/256).
  config.input.eval_crop_padding = 4
  # Normalisation constants on the 0-255 scale; applied on the device.
  config.input.mean_rgb = (0.485 * 255, 0.456 * 255, 0.406 * 255)
  config.input.stddev_rgb = (0.229 * 255, 0.224 * 255, 0.225 * 255)
  config.input.shuffle_buffer_size = 10_000
  config.input.prefetch_batches = 2

  # Budget: either `num_train_steps`, or `num_epochs` (then num_train_steps must
  # be 0 and the steps are derived in code). An epoch is counted as MLPerf counts
  # it: each block of `epochs_per_block` epochs is rounded up to whole steps
  # (ImageNet at batch 32,768: 157 steps per 4 epochs, 39.25 steps per epoch).
  config.global_batch_size = 128
  config.num_train_steps = 600
  config.num_epochs = config_dict.placeholder(float)
  config.epochs_per_block = 4

  # Model: ResNet family, defaults chosen for the small embedded images.
  config.model = ml_collections.ConfigDict()
  config.model.depth = 10
  config.model.width = 8
  config.model.version = 'v1.5'
  config.model.stem = 'small'  # 'imagenet': 7x7/2 conv + 3x3/2 max-pool.
  config.model.virtual_batch_size = 64
  config.model.bn_momentum = 0.9
  config.model.bn_epsilon = 1e-5
  config.model.last_bn_scale = 0.0
  config.model.dtype = 'float32'

  # Optimizer: `name` for weights (kernels), `bn_bias_name` for biases and BN
  # parameters; 'same' uses `name` for everything.
  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.name = 'lars'
  config.optimizer.bn_bias_name = 'mlperf_momentum'
  config.optimizer.momentum = 0.9
  config.optimizer.l2 = 1e-4
  config.optimizer.l2_on_bn_bias = False
  config.optimizer.trust_coefficient = 0.001
  config.optimizer.lars_epsilon = 0.0
  # Adam, AdamW and LAMB. `weight_decay` is decoupled weight decay (adamw, lamb);
  # like `l2`, it applies to weights only unless `l2_on_bn_bias`.
  config.optimizer.b1 = 0.9
  config.optimizer.b2 = 0.999
  config.optimizer.eps = 1e-8
  config.optimizer.weight_decay = 0.0

  config.label_smoothing = 0.1

  # Learning rate. Schedules: 'piecewise_polynomial' (Reality Check, section
  # 2.1.4), 'cosine' (section 4), 'linear' (from peak to peak * decay_factor;
  # Tables 9-11). Warmup is either `warmup_steps` (fractional allowed) or
  # `warmup_epochs` (then warmup_steps must be 0). The decay ends at
  # `decay_steps` (None: the end of the budget) and holds `final` after it.
  config.lr = ml_collections.ConfigDict()
  config.lr.schedule = 'piecewise_polynomial'
  config.lr.init = 0.0
  config.lr.peak = 10.0
  config.lr.final = 1e-4
  config.lr.warmup_steps = 50.0
  config.lr.warmup_epochs = config_dict.placeholder(float)
  config.lr.warmup_power = 1.0
  config.lr.decay_power = 2.0
  config.lr.decay_steps = config_dict.placeholder(float)
  config.lr.decay_factor = 0.01
  # Batch-size scaling (LAMB paper, Table 5): the peak rate is lr.peak times
  # (global_batch_size / reference_batch_size) ** {'none': 0, 'sqrt': 0.5,
  # 'linear': 1}; with warmup_batch_scaling='linear' the warmup in epochs grows
  # in proportion to the batch ("linear-epoch warmup").
  config.lr.batch_scaling = 'none'
  config.lr.warmup_batch_scaling = 'none'
  config.lr.reference_batch_size = 256

  # Target and evaluation.
  config.target_accuracy = 0.75
  config.stop_at_target = True
  # Eval cadence: every `eval_every_steps` steps, or every `eval_every_epochs`
  # epochs (then eval_every_steps must be 0; MLPerf evaluates every 4 epochs).
  config.eval_every_steps = 50
  config.eval_every_epochs = config_dict.placeholder(float)
  config.log_every_steps = 25

  # MLPerf log metadata.
  config.mlperf = ml_collections.ConfigDict()
  config.mlperf.submission_org = 'large-batch-harness'
  config.mlperf.submission_platform = 'unknown'
  config.mlperf.submission_division = 'closed'
  config.mlperf.submission_status = 'research'
  return config
