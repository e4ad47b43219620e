"""The model package: the ResNet family and its construction from the config.

Imports no TensorFlow, tfds or clu, so the trainer and the benchmark can build a
model without paying for (or clashing with) a TensorFlow import.
"""

from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from choices import check_choice
from models.resnet import get_resnet

_DTYPES = {
    'float32': jnp.float32,
    'bfloat16': jnp.bfloat16,
}


def get_dtype(name: str) -> Any:
  """The jnp dtype called `name`; raises ValueError naming the valid ones."""
  check_choice('model dtype', name, _DTYPES)
  return _DTYPES[name]


def create_model(config: ml_collections.ConfigDict, num_classes: int) -> nn.Module:
  """The ResNet that `config.model` describes.

  Args:
    config: the harness config; reads `config.model.{depth, width, version,
      stem, virtual_batch_size, bn_momentum, bn_epsilon, last_bn_scale, activation,
      dtype}`.
    num_classes: outputs of the head (the dataset's class count).

  Raises:
    ValueError: for an unknown depth, version, stem, activation or dtype.
  """
  model_config = config.model
  # ResNet checks version, stem and activation itself, at construction.
  return get_resnet(model_config.depth)(
      num_classes=num_classes,
      width=model_config.width,
      version=model_config.version,
      stem=model_config.stem,
      virtual_batch_size=model_config.virtual_batch_size,
      bn_momentum=model_config.bn_momentum,
      bn_epsilon=model_config.bn_epsilon,
      last_bn_scale=model_config.last_bn_scale,
      activation=model_config.activation,
      dtype=get_dtype(model_config.dtype))


def count_params(variables_or_params: Mapping[str, Any]) -> int:
  """Number of parameters (elements, not bytes).

  Takes either the `params` collection or the whole variables dict (from which
  only `params` counts, not `batch_stats`); works on arrays and on the
  ShapeDtypeStructs of `jax.eval_shape`.
  """
  params = variables_or_params.get('params', variables_or_params)
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(params))
