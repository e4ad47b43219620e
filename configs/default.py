"""Every key of the harness, at the values of the MLPerf ResNet-50 v1.5 LARS recipe.

This file defines all keys; every other config file starts from it and overrides
what its experiment changes, so a key is never invented elsewhere and a misspelt
override is an error. Keys are named after the symbols of Nado et al., "A Large
Batch Optimizer Reality Check" (section 2.1). The values are those of the recipe
in `mlperf_lars_32k.py` (ImageNet, batch 32,768, 2,512 steps), and the input keys
carry the MLPerf reference's preprocessing constants.

The embedded runs that need no ImageNet start from here too: see
`embedded_lars.py`, which a bare `python main.py` runs.
"""

import ml_collections
from ml_collections import config_dict


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0

  # Data. `data_dir` is the tfds data directory; the embedded dataset is built
  # there on first use, ImageNet must be prepared there beforehand
  # (python -m input_pipeline.prepare_imagenet).
  config.dataset = 'imagenet2012'
  config.data_dir = '~/tensorflow_datasets'
  config.image_size = 224
  config.eval_batch_size = 1024

  # Preprocessing, with the MLPerf reference's constants.
  config.input = ml_collections.ConfigDict()
  # Random-resized crop for training (tf.image.sample_distorted_bounding_box with
  # the whole image as the box; the whole image when no window fits).
  config.input.crop_area_range = (0.05, 1.0)
  config.input.crop_aspect_ratio_range = (0.75, 1.33)
  config.input.crop_min_object_covered = 0.1
  config.input.crop_max_attempts = 10
  config.input.resize_method = 'bicubic'  # Or 'bilinear'.
  config.input.random_flip = True
  # Eval: central crop of image_size / (image_size + eval_crop_padding) of the
  # shorter side (224 / 256 at the defaults), resized to image_size.
  config.input.eval_crop_padding = 32
  # Normalisation constants on the 0-255 scale; applied on the device.
  config.input.mean_rgb = (0.485 * 255, 0.456 * 255, 0.406 * 255)
  config.input.stddev_rgb = (0.229 * 255, 0.224 * 255, 0.225 * 255)
  config.input.prefetch_batches = 2
  # tf.data tuning. `deterministic`: the training stream keeps its order, so a
  # seed fixes the run; False lets the parallel decoding finish out of order, so
  # that a slow image no longer holds up its batch (faster only when the input
  # is the bottleneck): the same augmented images, in an order that differs by
  # a few places from run to run. Eval is always in order.
  config.input.deterministic = True
  # `cache_eval`: keep the preprocessed validation images in memory after the
  # first eval, so later evals skip reading and decoding ('always', 'never', or
  # 'auto': cache when this process's share, examples * image_size**2 * 3
  # bytes, takes under half of the memory free at start; 7.5 GB for ImageNet's
  # 50,000 images at 224 px on one host).
  config.input.cache_eval = 'auto'

  # Budget: either `num_train_steps`, or `num_epochs` (then num_train_steps must
  # be 0 and the steps are derived in code). An epoch is counted as MLPerf counts
  # it: each block of `epochs_per_block` epochs is rounded up to whole steps
  # (ImageNet at batch 32,768: 157 steps per 4 epochs, 39.25 steps per epoch).
  config.global_batch_size = 32_768
  config.num_train_steps = 2_512
  config.num_epochs = config_dict.placeholder(float)
  config.epochs_per_block = 4

  # Model: ResNet-50 v1.5 with virtual-batch BatchNorm.
  config.model = ml_collections.ConfigDict()
  config.model.depth = 50
  config.model.width = 64
  config.model.version = 'v1.5'
  config.model.stem = 'imagenet'  # 7x7/2 conv + 3x3/2 max-pool; 'small': 3x3/1 conv.
  config.model.virtual_batch_size = 64
  config.model.bn_momentum = 0.9
  config.model.bn_epsilon = 1e-5
  config.model.last_bn_scale = 0.0
  config.model.dtype = 'float32'

  # Workload variants (AlgoPerf's imagenet_resnet_silu and imagenet_resnet_gelu;
  # its large_bn_init variant is model.last_bn_scale = 8): the activation in
  # place of every ReLU, 'relu', 'silu' or 'gelu' (tanh-approximated, as flax
  # and AlgoPerf compute it).
  config.model.activation = 'relu'

  # Optimizer: `name` for weights (kernels), `bn_bias_name` for biases and BN
  # parameters; 'same' uses `name` for everything. The recipe's biases and BN
  # parameters take heavy ball with the rate outside the accumulator
  # (v = mu*v + g; w -= lr*v), as flax.optim.Momentum in the MLPerf v0.7 Google
  # JAX submission that produced the paper's LARS numbers.
  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.name = 'lars'
  config.optimizer.bn_bias_name = 'momentum'
  config.optimizer.momentum = 0.929  # 1 - mu = 0.071.
  config.optimizer.l2 = 1e-4
  config.optimizer.l2_on_bn_bias = False
  config.optimizer.trust_coefficient = 0.001
  config.optimizer.lars_epsilon = 0.0
  # Adam, AdamW and the LAMB family (lamb, n_lamb, nn_lamb; `eps` is AdaGrad's
  # too). `weight_decay` is decoupled weight decay (adamw and the LAMB family);
  # like `l2`, it applies to weights only unless `l2_on_bn_bias`.
  config.optimizer.b1 = 0.9
  config.optimizer.b2 = 0.999
  config.optimizer.eps = 1e-8
  config.optimizer.weight_decay = 0.0
  # Adam's division of the moments by 1 - b^t (adam, adamw, lamb, n_lamb,
  # nn_lamb). The LAMB paper's Appendix E drops it from LAMB (False), arguing
  # that a warmup does the same.
  config.optimizer.bias_correction = True
  # AdaGrad ('adagrad', optax.adagrad): the starting value of the sum of squared
  # gradients (optax's default); its `eps` is optimizer.eps, inside the root.
  config.optimizer.initial_accumulator_value = 0.1
  # The norm of the layer-wise trust ratio of lars, lamb, n_lamb and nn_lamb:
  # 'l2' (the papers'), 'l1' or 'linf' (the LAMB paper's Appendix F). Both norms
  # of a ratio (the weights' and the update's) are taken in it.
  config.optimizer.trust_ratio_norm = 'l2'

  # Today's optimizers through optax: nadamw, lion, schedule_free_sgd,
  # schedule_free_adamw and muon read the keys above (b1, b2, eps, momentum,
  # and l2 for schedule_free_sgd, weight_decay for the others; see
  # optim/optimizers.py). Muon alone has one of its own: its orthogonalised
  # updates are scaled to this RMS (optax's consistent_rms, about AdamW's), so
  # that the AdamW it runs on the head shares its rate; None scales them by
  # sqrt(max(1, fan_out / fan_in)) instead (Jordan's).
  config.optimizer.muon_consistent_rms = 0.2

  config.label_smoothing = 0.1

  # Learning rate. Schedules: 'piecewise_polynomial' (Reality Check, section
  # 2.1.4), 'cosine' (section 4), 'linear' (from peak to peak * decay_factor;
  # Tables 9-11), 'piecewise_polynomial_factor' (below), 'step' (down by
  # step_factor at epochs; LAMB paper, Table 3). Warmup is either `warmup_steps`
  # (fractional allowed) or `warmup_epochs` (then warmup_steps must be 0). The
  # decay ends at `decay_steps` (None: the end of the budget) and holds `final`
  # after it ('step' reads neither).
  config.lr = ml_collections.ConfigDict()
  config.lr.schedule = 'piecewise_polynomial'
  config.lr.init = 0.0
  config.lr.peak = 29.0
  config.lr.final = 1e-4
  config.lr.warmup_steps = 706.0
  config.lr.warmup_epochs = config_dict.placeholder(float)
  config.lr.warmup_power = 1.0
  config.lr.decay_power = 2.0
  config.lr.decay_steps = config_dict.placeholder(float)
  config.lr.decay_factor = 0.01
  # 'step' (Goyal et al. 2017, the LAMB paper's Table 3): after the warmup the
  # rate is lr.peak, multiplied by `step_factor` at each of these epochs.
  config.lr.step_boundaries_epochs = (30.0, 60.0, 80.0)
  config.lr.step_factor = 0.1
  # Batch-size scaling (LAMB paper, Table 5): the peak rate is lr.peak times
  # (global_batch_size / reference_batch_size) ** {'none': 0, 'sqrt': 0.5,
  # 'linear': 1}; with warmup_batch_scaling='linear' the warmup in epochs grows
  # in proportion to the batch ("linear-epoch warmup").
  config.lr.batch_scaling = 'none'
  config.lr.warmup_batch_scaling = 'none'
  config.lr.reference_batch_size = 256
  # The Reality Check's Nesterov tuning (Appendix D.4, Tables 12-19).
  # 'piecewise_polynomial_factor' is 'piecewise_polynomial' decaying to
  # peak * decay_factor instead of `final`. `hold_from_step` (None: off; a step
  # count > 0, may be fractional) stops any schedule there: from that step on,
  # the rate stays at its value at that step (init2winit's `decay_end`, the
  # tables' t_decay), above the decay's final rate unless the decay had ended.
  config.lr.hold_from_step = config_dict.placeholder(float)

  # Target and evaluation.
  config.target_accuracy = 0.759
  config.stop_at_target = True
  # Eval cadence: every `eval_every_steps` steps, or every `eval_every_epochs`
  # epochs (then eval_every_steps must be 0; MLPerf evaluates every 4 epochs,
  # 157 steps at batch 32,768). The end of the budget is always evaluated too.
  config.eval_every_steps = 0
  config.eval_every_epochs = 4.0
  # MLPerf's offset of that cadence (rules: "every 4 epochs with offset 0, 1, 2
  # or 3"), as the reference implementations define it: evals after epochs
  # offset + 1, offset + 1 + eval_every_epochs, ... counted from 1. Offset 3
  # evaluates at epochs 4, 8, ..., 64, so the recipe's 64-epoch budget ends on
  # an eval; offset 0 would evaluate at 1, 5, ..., 61. An integer in
  # [0, eval_every_epochs); not used with the cadence in steps.
  config.eval_offset_epochs = 3
  config.log_every_steps = 50
  # Steps after whose update each layer's LARS/LAMB trust ratio is logged
  # (TensorBoard and trust_ratios.json; the LAMB paper's Figures 9-14). Empty:
  # nothing is computed and the run is the same as without the key.
  config.trust_ratio_log_steps = ()

  # Checkpoints (Orbax, asynchronous) in WORKDIR/checkpoints: every so many
  # steps and/or seconds (0 turns either off; seconds are checked at log
  # steps), keeping the newest max_to_keep. SIGTERM always saves one. A run
  # started again in the same workdir resumes from the newest readable one.
  config.checkpoint = ml_collections.ConfigDict()
  config.checkpoint.every_steps = 0
  config.checkpoint.every_seconds = 600.0
  config.checkpoint.max_to_keep = 2

  # A profiler trace (jax.profiler, for TensorBoard's profile plugin or
  # Perfetto) of num_steps train steps from first_step, written by process 0
  # into WORKDIR/plugins/profile; 0 steps: none. A run that ends before the
  # trace's last step writes no trace.
  config.profile = ml_collections.ConfigDict()
  config.profile.num_steps = 0
  config.profile.first_step = 10

  # MLPerf log metadata.
  config.mlperf = ml_collections.ConfigDict()
  config.mlperf.submission_org = 'large-batch-harness'
  config.mlperf.submission_platform = 'unknown'
  config.mlperf.submission_division = 'closed'
  config.mlperf.submission_status = 'research'
  return config
