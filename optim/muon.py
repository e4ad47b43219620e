"""Muon on a ResNet: the conv kernels as matrices, AdamW for the rest.

Muon (Jordan et al., 2024; `optax.contrib.muon`) orthogonalises the momentum of
a weight matrix by Newton-Schulz iterations. A conv kernel of shape (kh, kw,
c_in, c_out) is the matrix of an (kh * kw * c_in) -> c_out map, the input patch
to the output channel, so its reduction axes are (0, 1, 2) and its output axis
3: optax reshapes it to that matrix, orthogonalises it and reshapes it back.

Everything else in the weights group, here the dense head's kernel, goes to the
AdamW that optax's muon runs beside it (in Nesterov's form, NAdamW: optax passes
muon's `nesterov=True` on to it), as Muon's authors keep the input and output
layers on AdamW; biases and BN parameters take `optimizer.bn_bias_name` (AdamW
in the harness's Muon configs). optax's `consistent_rms` (Liu et al.,
2025) scales each orthogonalised update to an RMS of consistent_rms, about
AdamW's, so that one learning rate and one weight decay serve both halves;
None keeps Jordan's scale, sqrt(max(1, c_out / (kh * kw * c_in))).
"""

import jax
import optax
from optax import contrib

# optax's recommended consistent_rms, the default of optimizer.muon_consistent_rms.
CONSISTENT_RMS = 0.2

# A Flax conv kernel: (kh, kw, c_in, c_out).
CONV_KERNEL = contrib.MuonDimensionNumbers(reduction_axis=(0, 1, 2), output_axis=3)


def conv_kernel_dimension_numbers(params: optax.Params) -> optax.Params:
  """CONV_KERNEL for each rank-4 parameter, None (to AdamW) for the others."""
  return jax.tree.map(lambda p: CONV_KERNEL if p.ndim == 4 else None, params)
