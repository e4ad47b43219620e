"""ResNet-50 at batch 16K for 90 epochs: LAMB against tuned adaptive optimizers and
momentum (You et al., LAMB paper, Table 3).

Each adaptive optimizer runs twice: plain, at a constant rate, and with Goyal et
al.'s recipe ("+" in the paper; `_goyal` here): a linear warmup from 0 over 5
epochs, then the rate times 0.1 at epochs 30, 60 and 80 (lr.schedule 'step').
Each row's rate (and AdamW's weight decay and L2) is the best point of the
paper's own grids (Appendix H.1, Tables 9 to 25; configs/lamb_paper/grid_*.py).
LAMB is Table 5's untuned recipe at 16K (configs/lamb_resnet.py:batch_16k).
The momentum row is Goyal et al.'s, whose number the paper copies from them.

Not given by the paper, and chosen here:
- The pipeline of configs/lamb_resnet.py (MLPerf's: ResNet-50 v1.5, label
  smoothing 0.1, gamma_0 = 0, virtual batch 64) for every adaptive row.
- "Plain" is a constant rate: the paper contrasts these rows only with the
  recipe added.
- L2 0.01 on the kernels for AdaGrad and Adam: the AdamW tables call L2 0.01
  the pipeline's "default", and Tables 9 to 12 do not say it was turned off.
- b1 = 0.9, b2 = 0.999, eps = 1e-8 (TensorFlow's Adam defaults); AdaGrad's
  accumulator starts at 0.1 (TensorFlow's and optax's default).
- AdamW+'s L2 0.01 (Table 22's, beside its weight decay) is added to the
  gradient before Adam's moments, as adam's L2 is; the weight decay stays
  decoupled. Until `adamw` read L2, adamw_goyal was the best point without L2
  (Table 24: lr 0.008 -> 0.7224), now grid_tables24_25_adamw_goyal.py's config.
- Momentum (Goyal et al., section 5.1): rate 0.1 per 256 images (6.4 at 16K),
  warmed up from 0.1 over 5 epochs; momentum 0.9 with the rate inside the
  velocity (their eq. 10; `mlperf_momentum`); L2 1e-4 on kernels only;
  BatchNorm over 32 images; gamma_0 = 0; no label smoothing. They used the
  Nesterov form of it, which the harness does not have with the rate inside.

Budget in steps: T = 7,038 (Appendix H.1's "90 epochs, 7038 iterations" at batch
16,384). Epoch-stated lengths (warmup, the recipe's boundaries, evals) convert at
MLPerf's 78.25 steps per epoch (313 steps per 4-epoch block), so 90 epochs by
that count would be 7,043 steps, as in configs/lamb_resnet.py:batch_16k.

Variants (`--config=configs/lamb_paper/table3.py:VARIANT`), with Table 3's value:
  (none)          LAMB                                          -> 0.7666
  adagrad         AdaGrad, lr 0.4 (Table 9)                     -> 0.5538
  adagrad_goyal   AdaGrad+, lr 14 (Table 10)                    -> 0.7201
  adam            Adam, lr 0.001 (Table 11)                     -> 0.6604
  adam_goyal      Adam+, lr 0.002 (Table 12)                    -> 0.7348
  adamw           AdamW, lr 0.002, wd 1e-5 (Table 17)           -> 0.6727
  adamw_goyal     AdamW+, lr 0.002, wd 1e-4, L2 0.01 (Table 22) -> 0.7307
  momentum_goyal  momentum with Goyal et al.'s recipe           -> 0.7520

Expected (You et al., Table 3): top-1 after the whole budget as listed above, one
run each; the target is about 0.763 (Goyal et al.).

Command (needs ImageNet prepared in data_dir, and accelerators for batch 16,384):
  python main.py --config=configs/lamb_paper/table3.py:adam_goyal --workdir=runs/adam_goyal
"""

import ml_collections

from configs import lamb_resnet
from configs import variants

NUM_TRAIN_STEPS = 7_038
# "The target accuracy is around 0.763 (Goyal et al., 2017)": Table 3's caption.
TARGET_ACCURACY = 0.763


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  config = lamb_resnet.get_config('batch_16k')
  config.num_epochs = None
  config.num_train_steps = NUM_TRAIN_STEPS
  config.target_accuracy = TARGET_ACCURACY
  return variants.apply_variant(config, variant, VARIANTS, 'lamb_paper/table3.py')


def _adaptive(config: ml_collections.ConfigDict, name: str, peak: float, *,
              l2: float = 0.0, weight_decay: float = 0.0) -> None:
  """`name` on every parameter at a constant rate `peak`, tuned at 16K (no batch scaling)."""
  config.optimizer.name = name
  config.optimizer.bn_bias_name = 'same'
  config.optimizer.l2 = l2
  config.optimizer.weight_decay = weight_decay
  config.optimizer.b1 = 0.9
  config.optimizer.b2 = 0.999
  config.optimizer.eps = 1e-8
  config.lr.schedule = 'step'
  config.lr.init = 0.0
  config.lr.peak = peak
  config.lr.warmup_epochs = None
  config.lr.warmup_steps = 0.0
  config.lr.step_boundaries_epochs = ()
  config.lr.batch_scaling = 'none'
  config.lr.warmup_batch_scaling = 'none'


def _goyal(config: ml_collections.ConfigDict) -> None:
  """Goyal et al.'s recipe: 5 warmup epochs, then x0.1 at epochs 30, 60 and 80."""
  config.lr.schedule = 'step'
  config.lr.warmup_steps = 0.0
  config.lr.warmup_epochs = 5.0
  config.lr.step_boundaries_epochs = (30.0, 60.0, 80.0)
  config.lr.step_factor = 0.1


def _row(name: str, peak: float, *, goyal: bool, l2: float = 0.0,
         weight_decay: float = 0.0) -> variants.Variant:
  def apply(config: ml_collections.ConfigDict) -> None:
    _adaptive(config, name, peak, l2=l2, weight_decay=weight_decay)
    if goyal:
      _goyal(config)
  return apply


# The pipeline's L2 that the AdamW tables call "default (0.01)".
PIPELINE_L2 = 0.01


def _momentum_goyal(config: ml_collections.ConfigDict) -> None:
  config.optimizer.name = 'mlperf_momentum'
  config.optimizer.bn_bias_name = 'same'
  config.optimizer.momentum = 0.9
  config.optimizer.l2 = 1e-4
  config.optimizer.weight_decay = 0.0
  _goyal(config)
  config.lr.init = 0.1
  config.lr.peak = 0.1  # Per 256 images: 6.4 at 16K.
  config.lr.batch_scaling = 'linear'
  config.lr.reference_batch_size = 256
  config.lr.warmup_batch_scaling = 'none'
  config.label_smoothing = 0.0
  config.model.virtual_batch_size = 32


VARIANTS = {
    'adagrad': _row('adagrad', 0.4, goyal=False, l2=PIPELINE_L2),
    'adagrad_goyal': _row('adagrad', 14.0, goyal=True, l2=PIPELINE_L2),
    'adam': _row('adam', 0.001, goyal=False, l2=PIPELINE_L2),
    'adam_goyal': _row('adam', 0.002, goyal=True, l2=PIPELINE_L2),
    'adamw': _row('adamw', 0.002, goyal=False, weight_decay=1e-5),
    'adamw_goyal': _row('adamw', 0.002, goyal=True, l2=PIPELINE_L2, weight_decay=1e-4),
    'momentum_goyal': _momentum_goyal,
}
