"""LAMB without Adam's bias correction, and with other norms in its trust ratio
(You et al., LAMB paper, Appendices E and F).

Appendix E drops the division of the moments by 1 - b^t, arguing that a warmup
has the same effect (optimizer.bias_correction = False). Appendix F takes both
norms of the layer-wise trust ratio, the weights' and the update's, in L1 or
L-infinity instead of L2 (optimizer.trust_ratio_norm).

Not given by the paper, and chosen here: the batch size, which neither appendix
names. The base is Table 5's untuned recipe at 32K (configs/lamb_resnet.py,
batch_32k; the batch of Appendix D); `--config.global_batch_size` moves all of
them, since the recipe scales its rate and warmup with the batch.

Budget in epochs: 90 (3,533 steps at 32K, as configs/lamb_resnet.py counts them).

Variants (`--config=configs/lamb_paper/lamb_ablations.py:VARIANT`):
  (none)              LAMB as in Table 5: bias correction, L2 norms
  no_bias_correction  without bias correction (Appendix E)
  norm_l1             the trust ratio in L1 norms (Appendix F)
  norm_linf           the trust ratio in L-infinity norms (Appendix F)

Expected (You et al.): the base reaches 76.42% top-1 at 32K (Table 5). Appendix E:
no drop in validation accuracy without bias correction. Appendix F (its Figure
3): the three norms differ by less than 0.1 points. The paper prints no other
number.

Command (needs ImageNet prepared in data_dir, and accelerators for batch 32,768):
  python main.py --config=configs/lamb_paper/lamb_ablations.py:norm_l1 --workdir=runs/lamb_l1
"""

import ml_collections

from configs import lamb_resnet
from configs import variants


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  config = lamb_resnet.get_config('batch_32k')
  return variants.apply_variant(config, variant, VARIANTS, 'lamb_paper/lamb_ablations.py')


def _no_bias_correction(config: ml_collections.ConfigDict) -> None:
  config.optimizer.bias_correction = False


def _norm(norm: str) -> variants.Variant:
  def apply(config: ml_collections.ConfigDict) -> None:
    config.optimizer.trust_ratio_norm = norm
  return apply


VARIANTS = {
    'no_bias_correction': _no_bias_correction,
    'norm_l1': _norm('l1'),
    'norm_linf': _norm('linf'),
}
