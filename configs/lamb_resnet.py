"""Untuned LAMB on ResNet-50 across batch sizes (You et al., LAMB paper, Table 5).

90 epochs at every batch size, with the paper's two scaling rules computed in code
from `global_batch_size`: the peak learning rate scales with the square root of the
batch (0.04 at 32K, so 4 / (2^3 * 100) = 0.005 at 512) and the warmup, stated in
epochs, in proportion to it (20 epochs at 32K, 0.3125 at 512). After the linear
warmup the rate decays linearly to 0 (eta_t = eta_0 * (1 - t/T)). b1 = 0.9,
b2 = 0.999 as the paper says.

Not given by the paper, and chosen here: LAMB on every parameter with weight decay
0.01 (the value of the LAMB authors' BERT setup) on kernels only, epsilon 1e-6
(LAMB's reference default), and everything else from the MLPerf pipeline
(configs/mlperf_lars_32k.py: ResNet-50 v1.5, label smoothing 0.1, gamma_0 = 0,
virtual batch 64).

Budget in epochs: 90, each 4-epoch block rounded up to whole steps as MLPerf does
(3,533 steps at 32K). The accuracy is read after the whole budget.

Variants (`--config=configs/lamb_resnet.py:VARIANT`):
  batch_512, batch_1k, batch_2k, batch_4k, batch_8k, batch_16k, batch_32k (or none).

Expected (You et al., Table 5): top-1 after 90 epochs of 76.96, 77.06, 77.11, 76.92,
76.89, 76.66 and 76.42 % for those batch sizes, in that order.

Command (needs ImageNet prepared in data_dir):
  python main.py --config=configs/lamb_resnet.py:batch_8k --workdir=runs/lamb_8k
"""

import ml_collections

from configs import mlperf_lars_32k
from configs import variants

_BATCH_SIZES = {'batch_512': 512, 'batch_1k': 1024, 'batch_2k': 2048, 'batch_4k': 4096,
                'batch_8k': 8192, 'batch_16k': 16_384, 'batch_32k': 32_768}


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  config = mlperf_lars_32k.get_config()
  config.global_batch_size = 32_768
  config.num_train_steps = 0
  config.num_epochs = 90.0

  config.optimizer.name = 'lamb'
  config.optimizer.bn_bias_name = 'same'
  config.optimizer.b1 = 0.9
  config.optimizer.b2 = 0.999
  config.optimizer.eps = 1e-6
  config.optimizer.l2 = 0.0
  config.optimizer.weight_decay = 0.01

  config.lr.schedule = 'piecewise_polynomial'
  config.lr.init = 0.0
  config.lr.peak = 0.04
  config.lr.final = 0.0
  config.lr.warmup_steps = 0.0
  config.lr.warmup_epochs = 20.0
  config.lr.warmup_power = 1.0
  config.lr.decay_power = 1.0
  config.lr.batch_scaling = 'sqrt'
  config.lr.warmup_batch_scaling = 'linear'
  config.lr.reference_batch_size = 32_768

  config.stop_at_target = False
  config.mlperf.submission_division = 'open'
  return variants.apply_variant(config, variant, VARIANTS, 'lamb_resnet.py')


def _batch(size: int):
  def apply(config: ml_collections.ConfigDict) -> None:
    config.global_batch_size = size
  return apply


VARIANTS = {name: _batch(size) for name, size in _BATCH_SIZES.items()}
