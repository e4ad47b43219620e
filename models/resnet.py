"""ResNet v1 / v1.5 in the Flax ImageNet example idiom, with MLPerf conventions.

Follows the MLPerf v0.7 JAX ResNet-50 and init2winit's `mlperf_resnet`: convs
without bias and Flax's default (LeCun normal) kernel init, virtual batch norm
(64 examples per group by default, momentum 0.9, epsilon 1e-5), the last BN
of each residual branch initialised to `last_bn_scale` (0 makes every block
start as the identity on its shortcut, which lets very large batches warm up
stably), and a dense head with N(0, 0.01^2) weights computed in float32.

Parameters are always float32; `dtype` is the compute type of convolutions and
activations (bfloat16 on accelerators). Normalisation statistics and the head
stay in float32.

The activation is ReLU by default; 'silu' and 'gelu' (tanh-approximated, as
`flax.linen.gelu` computes it) replace every ReLU, in the stem, inside each
block and after each residual sum, as AlgoPerf's imagenet_resnet_silu and
imagenet_resnet_gelu workloads do.

Module names are fixed (`conv_init`, `stage2_block1/conv1`, `.../proj_bn`,
`head`) so that tests, optimizer masks and checkpoints can address layers by
path.
"""

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from choices import check_choice
from models.virtual_batch_norm import VirtualBatchNorm

ModuleDef = Any

# 'v1.5' (torchvision, MLPerf) strides the 3x3 conv of a bottleneck; 'v1.0' (the
# original paper) strides its first 1x1, which skips 3/4 of the input positions.
VERSIONS = ('v1.0', 'v1.5')

# Every ReLU of the network, or its replacement (AlgoPerf's workload variants).
# flax's gelu is the tanh approximation, the one AlgoPerf's JAX and PyTorch
# workloads both use.
_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    'relu': nn.relu,
    'silu': nn.silu,
    'gelu': nn.gelu,
}
ACTIVATIONS = tuple(_ACTIVATIONS)


def get_activation(name: str) -> Callable[[jax.Array], jax.Array]:
  """The activation function called `name`; a ValueError names the valid ones."""
  check_choice('ResNet activation', name, ACTIVATIONS)
  return _ACTIVATIONS[name]


def _projection_shortcut(x: jax.Array, features: int, strides: int,
                         conv: ModuleDef, norm: ModuleDef) -> jax.Array:
  """The identity, or a strided 1x1 conv + BN where the shape changes."""
  if x.shape[-1] == features and strides == 1:
    return x
  x = conv(features, (1, 1), strides, name='proj_conv')(x)
  return norm(name='proj_bn')(x)


class BasicBlock(nn.Module):
  """3x3 -> BN -> act -> 3x3 -> BN, + shortcut, act (ResNet-10/18/34); act is
  ReLU unless the model names another activation."""
  filters: int
  conv: ModuleDef
  norm: ModuleDef
  strides: int = 1
  version: str = 'v1.5'  # A basic block has a single place for the stride.
  last_bn_scale: float = 0.0
  act: Callable[[jax.Array], jax.Array] = nn.relu

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = self.conv(self.filters, (3, 3), self.strides, name='conv1')(x)
    y = self.act(self.norm(name='bn1')(y))
    y = self.conv(self.filters, (3, 3), name='conv2')(y)
    y = self.norm(scale_init=nn.initializers.constant(self.last_bn_scale),
                  name='bn2')(y)
    shortcut = _projection_shortcut(x, self.filters, self.strides, self.conv,
                                    self.norm)
    return self.act(y + shortcut)


class BottleneckBlock(nn.Module):
  """1x1 -> 3x3 -> 1x1 (4x filters), BN after each, + shortcut (ResNet-50+);
  the activation (ReLU by default) follows the first two BNs and the sum."""
  filters: int
  conv: ModuleDef
  norm: ModuleDef
  strides: int = 1
  version: str = 'v1.5'
  last_bn_scale: float = 0.0
  act: Callable[[jax.Array], jax.Array] = nn.relu

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    check_choice('ResNet version', self.version, VERSIONS)
    if self.version == 'v1.0':
      strides_1x1, strides_3x3 = self.strides, 1
    else:
      strides_1x1, strides_3x3 = 1, self.strides
    y = self.conv(self.filters, (1, 1), strides_1x1, name='conv1')(x)
    y = self.act(self.norm(name='bn1')(y))
    y = self.conv(self.filters, (3, 3), strides_3x3, name='conv2')(y)
    y = self.act(self.norm(name='bn2')(y))
    y = self.conv(4 * self.filters, (1, 1), name='conv3')(y)
    y = self.norm(scale_init=nn.initializers.constant(self.last_bn_scale),
                  name='bn3')(y)
    shortcut = _projection_shortcut(x, 4 * self.filters, self.strides,
                                    self.conv, self.norm)
    return self.act(y + shortcut)


def _imagenet_stem(x: jax.Array, width: int, conv: ModuleDef, norm: ModuleDef,
                   act: Callable[[jax.Array], jax.Array]) -> jax.Array:
  """7x7/2 conv, BN, activation, 3x3/2 max-pool: 224x224 -> 56x56."""
  # Explicit (3, 3) padding as in MLPerf/torchvision; 'SAME' would pad (2, 3)
  # for an even input, moving the sampling grid by one input pixel and making
  # pretrained weights and reference numbers not quite comparable.
  x = conv(width, (7, 7), 2, padding=((3, 3), (3, 3)), name='conv_init')(x)
  x = act(norm(name='bn_init')(x))
  return nn.max_pool(x, (3, 3), strides=(2, 2), padding='SAME')


def _small_stem(x: jax.Array, width: int, conv: ModuleDef, norm: ModuleDef,
                act: Callable[[jax.Array], jax.Array]) -> jax.Array:
  """3x3/1 conv, BN, activation and no pooling, for 32x32 images (CIFAR-style)."""
  x = conv(width, (3, 3), name='conv_init')(x)
  return act(norm(name='bn_init')(x))


_STEMS: dict[str, Callable[..., jax.Array]] = {
    'imagenet': _imagenet_stem,
    'small': _small_stem,
}
STEMS = tuple(_STEMS)


class ResNet(nn.Module):
  """ResNet v1/v1.5; `__call__` maps NHWC images to float32 logits.

  Attributes:
    stage_sizes: residual blocks per stage; stage i has width * 2**i filters
      and, after the first, starts with a stride-2 block.
    block_cls: BasicBlock or BottleneckBlock.
    num_classes: outputs of the dense head.
    width: filters of the stem and the first stage (64 for the standard nets).
    version: 'v1.5' or 'v1.0' (where a bottleneck puts its stride).
    stem: 'imagenet' (7x7/2 conv + max-pool) or 'small' (3x3/1 conv, for
      32x32 inputs).
    virtual_batch_size: examples per batch-norm group in training.
    bn_momentum: rho of the BN moving averages (weight of the old value).
    bn_epsilon: BN epsilon.
    last_bn_scale: initial scale of the last BN of each residual branch
      (AlgoPerf's bn_init_scale: 0 in its base workload, 8 in its
      imagenet_resnet_large_bn_init variant).
    activation: 'relu', 'silu' or 'gelu', in place of every ReLU.
    dtype: compute dtype of convolutions and activations.
  """
  stage_sizes: Sequence[int]
  block_cls: ModuleDef
  num_classes: int
  width: int = 64
  version: str = 'v1.5'
  stem: str = 'imagenet'
  virtual_batch_size: int = 64
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5
  last_bn_scale: float = 0.0
  activation: str = 'relu'
  dtype: Any = jnp.float32

  def __post_init__(self):
    # Fail at construction, before any data or device is touched, rather than
    # when the model is first traced.
    check_choice('ResNet version', self.version, VERSIONS)
    check_choice('ResNet stem', self.stem, STEMS)
    check_choice('ResNet activation', self.activation, ACTIVATIONS)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    conv = functools.partial(nn.Conv, use_bias=False, padding='SAME',
                             dtype=self.dtype, param_dtype=jnp.float32)
    norm = functools.partial(
        VirtualBatchNorm, use_running_average=not train,
        virtual_batch_size=self.virtual_batch_size, momentum=self.bn_momentum,
        epsilon=self.bn_epsilon, dtype=self.dtype)

    act = get_activation(self.activation)
    x = _STEMS[self.stem](x, self.width, conv, norm, act)
    for i, num_blocks in enumerate(self.stage_sizes):
      for j in range(num_blocks):
        x = self.block_cls(
            filters=self.width * 2**i, conv=conv, norm=norm,
            strides=2 if i > 0 and j == 0 else 1, version=self.version,
            last_bn_scale=self.last_bn_scale, act=act,
            name=f'stage{i + 1}_block{j + 1}')(x)

    # The head runs in float32: a bfloat16 mean over 7x7 positions and bfloat16
    # logits would cost accuracy for no measurable speed.
    x = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
    return nn.Dense(self.num_classes,
                    kernel_init=nn.initializers.normal(stddev=0.01),
                    bias_init=nn.initializers.zeros, dtype=jnp.float32,
                    param_dtype=jnp.float32, name='head')(x)


ResNet10 = functools.partial(ResNet, stage_sizes=(1, 1, 1, 1),
                             block_cls=BasicBlock)
ResNet18 = functools.partial(ResNet, stage_sizes=(2, 2, 2, 2),
                             block_cls=BasicBlock)
ResNet34 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3),
                             block_cls=BasicBlock)
# The smallest bottleneck network: tests run the bottleneck-only features
# (v1.0 against v1.5) through it in a fraction of ResNet-50's compile time.
ResNet14 = functools.partial(ResNet, stage_sizes=(1, 1, 1, 1),
                             block_cls=BottleneckBlock)
ResNet50 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3),
                             block_cls=BottleneckBlock)
ResNet101 = functools.partial(ResNet, stage_sizes=(3, 4, 23, 3),
                              block_cls=BottleneckBlock)
ResNet152 = functools.partial(ResNet, stage_sizes=(3, 8, 36, 3),
                              block_cls=BottleneckBlock)
ResNet200 = functools.partial(ResNet, stage_sizes=(3, 24, 36, 3),
                              block_cls=BottleneckBlock)

MODELS_BY_DEPTH: dict[int, Callable[..., ResNet]] = {
    10: ResNet10,
    14: ResNet14,
    18: ResNet18,
    34: ResNet34,
    50: ResNet50,
    101: ResNet101,
    152: ResNet152,
    200: ResNet200,
}


def get_resnet(depth: int) -> Callable[..., ResNet]:
  """The ResNet partial for `depth`; a ValueError names the valid depths."""
  check_choice('ResNet depth', depth, tuple(MODELS_BY_DEPTH))
  return MODELS_BY_DEPTH[depth]
