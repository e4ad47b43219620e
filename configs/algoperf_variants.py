"""AlgoPerf's ResNet-50 workload variants, on top of the MLPerf LARS recipe.

AlgoPerf (MLCommons algorithmic-efficiency) tests whether a training algorithm
survives small changes to a workload. Its ImageNet ResNet-50 has three variants
(algoperf/workloads/imagenet_resnet/imagenet_jax/workload.py, the classes
ImagenetResNetSiLUWorkload, ImagenetResNetGELUWorkload and
ImagenetResNetLargeBNScaleWorkload; registered in algoperf/workloads/workloads.py
as imagenet_resnet_silu, imagenet_resnet_gelu and imagenet_resnet_large_bn_init):
every ReLU replaced by SiLU, or by GELU (tanh-approximated in both of its
frameworks), or the last BatchNorm of each residual block initialised to scale 8
instead of 0 (`bn_init_scale`, "the scale of the initialization of the final
batch normalization", algoperf/workloads/imagenet_resnet/workload.py). The other
BN layers start at scale 1 in every variant, as here, so the BN variant is
`model.last_bn_scale = 8.0`. Here each variant changes only that in
`mlperf_lars_32k.py` (ResNet-50 v1.5, batch 32,768, 2,512 steps): a config
tuned on the base workload, run unchanged on each variant.

Variants (`--config=configs/algoperf_variants.py:VARIANT`):
  (none)      the MLPerf LARS recipe itself (configs/mlperf_lars_32k.py).
  silu        model.activation = 'silu'   (AlgoPerf's imagenet_resnet_silu).
  gelu        model.activation = 'gelu'   (imagenet_resnet_gelu).
  bn_scale_8  model.last_bn_scale = 8.0   (imagenet_resnet_large_bn_init).

Targets, top-1 on the ImageNet validation set (and AlgoPerf's test set,
ImageNet-v2), the base workload's beside each variant's. MLPerf has no
variants: its target is the base's 75.9%, and `target_accuracy` stays 0.759
for every variant here, so that a run is judged by the same bar. AlgoPerf's
targets are those its workload files state (validation_target_value,
test_target_value), set by its own target-setting runs (AlgoPerf's recipe and
budget, not this one):

  workload                        MLPerf   AlgoPerf validation   AlgoPerf test (v2)
  base (imagenet_resnet)          75.9%    77.431%               65.60%
  silu (imagenet_resnet_silu)       -      75.445%               63.23%
  gelu (imagenet_resnet_gelu)       -      76.765%               65.19%
  bn_scale_8 (_large_bn_init)       -      76.526%               64.23%

A variant's AlgoPerf target lies 1.99 (SiLU), 0.67 (GELU) and 0.91 (BN scale 8)
points under the base's.

Command (needs ImageNet prepared in data_dir, and accelerators for batch 32,768):
  python main.py --config=configs/algoperf_variants.py:silu --workdir=runs/lars32k_silu

Budget in steps: T = 2,512, t_warmup = 706, the recipe's.

MLPerf log: the open division for the variants, which are AlgoPerf's
workloads rather than MLPerf's benchmark (the closed rules refuse any
activation but ReLU); the base stays closed.

Expected: the base, as mlperf_lars_32k.py (Nado et al., median 75.97%, 35 of 50
runs reach 75.9%). No run of this recipe on the variants is published; the
robustness question is how far each variant's median falls below the base's.
"""

import ml_collections

from configs import mlperf_lars_32k
from configs import variants


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  config = mlperf_lars_32k.get_config()
  return variants.apply_variant(config, variant, VARIANTS, 'algoperf_variants.py')


def _open(config: ml_collections.ConfigDict) -> None:
  config.mlperf.submission_division = 'open'  # Not the reference ResNet-50.


def _silu(config: ml_collections.ConfigDict) -> None:
  config.model.activation = 'silu'
  _open(config)


def _gelu(config: ml_collections.ConfigDict) -> None:
  config.model.activation = 'gelu'
  _open(config)


def _bn_scale_8(config: ml_collections.ConfigDict) -> None:
  config.model.last_bn_scale = 8.0
  _open(config)


VARIANTS = {
    'bn_scale_8': _bn_scale_8,
    'gelu': _gelu,
    'silu': _silu,
}

# AlgoPerf's published targets (top-1 accuracy), from
# algoperf/workloads/imagenet_resnet/workload.py (base) and
# algoperf/workloads/imagenet_resnet/imagenet_jax/workload.py (variants):
# {variant: (validation_target_value, test_target_value)}; '' is the base.
ALGOPERF_TARGETS = {
    '': (0.77431, 0.6560),
    'silu': (0.75445, 0.6323),
    'gelu': (0.76765, 0.6519),
    'bn_scale_8': (0.76526, 0.6423),
}
# AlgoPerf's name of each workload (algoperf/workloads/workloads.py); '' is the base.
ALGOPERF_WORKLOADS = {
    '': 'imagenet_resnet',
    'silu': 'imagenet_resnet_silu',
    'gelu': 'imagenet_resnet_gelu',
    'bn_scale_8': 'imagenet_resnet_large_bn_init',
}
