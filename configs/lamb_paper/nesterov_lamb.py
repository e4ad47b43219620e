"""LAMB with Nesterov momentum at batch 32K: N-LAMB and NN-LAMB (You et al., LAMB
paper, Appendix D, Algorithms 3 and 4).

N-LAMB puts Nesterov's momentum into LAMB's first moment, as Nadam does into
Adam's (Dozat, 2016); NN-LAMB into both moments (optimizer.name 'n_lamb',
'nn_lamb'; optim/). Both use Dozat's settings, as the paper does: b1 = 0.975,
b2 = 0.999, eps = 1e-8. The paper compares them with LAMB at 32K, which is this
file's base config: Table 5's untuned recipe (configs/lamb_resnet.py, batch_32k),
so `--compare=configs/lamb_paper/nesterov_lamb.py:*` runs the appendix's Figure 1
without its momentum baseline.

Not given by the paper, and chosen here: everything but the optimizer and its
three settings is LAMB's 32K recipe (peak rate 0.04, 20 warmup epochs, linear
decay to 0, weight decay 0.01 on kernels).

Budget in epochs: 90 (3,533 steps at 32K, as configs/lamb_resnet.py counts them).

Variants (`--config=configs/lamb_paper/nesterov_lamb.py:VARIANT`):
  (none)   LAMB, b1 = 0.9, b2 = 0.999, eps 1e-6 (Table 5's 32K row)
  n_lamb   N-LAMB, b1 = 0.975, b2 = 0.999, eps 1e-8
  nn_lamb  NN-LAMB, b1 = 0.975, b2 = 0.999, eps 1e-8

Expected (You et al., Appendix D and its Figure 1): N-LAMB and NN-LAMB reach
"a comparable accuracy" to LAMB's 76.42% top-1 at 32K (Table 5); the paper
prints no number for them.

Command (needs ImageNet prepared in data_dir, and accelerators for batch 32,768):
  python main.py --config=configs/lamb_paper/nesterov_lamb.py:n_lamb --workdir=runs/n_lamb
"""

import ml_collections

from configs import lamb_resnet
from configs import variants


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  config = lamb_resnet.get_config('batch_32k')
  return variants.apply_variant(config, variant, VARIANTS, 'lamb_paper/nesterov_lamb.py')


def _dozat(name: str) -> variants.Variant:
  def apply(config: ml_collections.ConfigDict) -> None:
    config.optimizer.name = name
    config.optimizer.b1 = 0.975
    config.optimizer.b2 = 0.999
    config.optimizer.eps = 1e-8
  return apply


VARIANTS = {'n_lamb': _dozat('n_lamb'), 'nn_lamb': _dozat('nn_lamb')}
