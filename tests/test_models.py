"""Tests of the model package: parameter counts, strides, init, virtual BN.

The full-size networks are only traced (`jax.eval_shape`), never computed; the
numerical tests run on tiny variants so the file stays fast on 2 CPU cores.
"""

import functools
import os
import pathlib
import subprocess
import sys

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import models
from configs import embedded_lars as default_config
from models import resnet
from models.virtual_batch_norm import VirtualBatchNorm

# Threefry random bits take XLA:CPU ~0.4 s to compile per parameter shape, which
# would dominate this file; RBG keys compile far faster and init the same way.
_KEY = jax.random.key(0, impl='rbg')
_REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _shape(*shape, dtype=jnp.float32):
  return jax.ShapeDtypeStruct(shape, dtype)


def _init_shapes(model, image_size, train=False):
  init = functools.partial(model.init, train=train)
  return jax.eval_shape(init, _KEY, _shape(2, image_size, image_size, 3))


def _tiny(**kwargs):
  """A ResNet-10 of width 8 for 32x32 images; `kwargs` override any field."""
  fields = dict(num_classes=10, width=8, stem='small', virtual_batch_size=4)
  return resnet.ResNet10(**{**fields, **kwargs})


def _flat(tree):
  return {'/'.join(path): leaf
          for path, leaf in flax.traverse_util.flatten_dict(tree).items()}


def _images(batch=8, size=32, channels=3, seed=1):
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.standard_normal((batch, size, size, channels)),
                     jnp.float32)


@functools.cache
def _tiny_variables():
  """Variables of `_tiny()`, initialised once for the whole file."""
  return jax.jit(functools.partial(_tiny().init, train=False))(_KEY, _images())


# ----------------------------------------------------------------- sizes


@pytest.mark.parametrize('depth, version, expected', [
    (18, 'v1.5', 11_689_512),
    (34, 'v1.5', 21_797_672),
    (50, 'v1.5', 25_557_032),
    (50, 'v1.0', 25_557_032),
    (101, 'v1.5', 44_549_160),
    (152, 'v1.5', 60_192_808),
])
def test_parameter_counts_match_the_reference_networks(depth, version,
                                                       expected):
  model = resnet.get_resnet(depth)(num_classes=1000, version=version)
  variables = _init_shapes(model, 224)
  assert models.count_params(variables) == expected
  assert models.count_params(variables['params']) == expected


def test_every_depth_has_its_stage_sizes_and_block():
  expected = {
      10: ((1, 1, 1, 1), resnet.BasicBlock),
      14: ((1, 1, 1, 1), resnet.BottleneckBlock),
      18: ((2, 2, 2, 2), resnet.BasicBlock),
      34: ((3, 4, 6, 3), resnet.BasicBlock),
      50: ((3, 4, 6, 3), resnet.BottleneckBlock),
      101: ((3, 4, 23, 3), resnet.BottleneckBlock),
      152: ((3, 8, 36, 3), resnet.BottleneckBlock),
      200: ((3, 24, 36, 3), resnet.BottleneckBlock),
  }
  assert set(resnet.MODELS_BY_DEPTH) == set(expected)
  for depth, (stage_sizes, block_cls) in expected.items():
    model = resnet.get_resnet(depth)(num_classes=1)
    assert tuple(model.stage_sizes) == stage_sizes
    assert model.block_cls is block_cls


def test_imagenet_resnet50_layer_shapes():
  params = _init_shapes(resnet.ResNet50(num_classes=1000), 224)['params']
  assert params['conv_init']['kernel'].shape == (7, 7, 3, 64)
  assert params['stage1_block1']['proj_conv']['kernel'].shape == (1, 1, 64, 256)
  assert 'proj_conv' not in params['stage1_block2']
  assert params['stage4_block3']['conv3']['kernel'].shape == (1, 1, 512, 2048)
  assert params['head']['kernel'].shape == (2048, 1000)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))


# ----------------------------------------------------------------- v1 / v1.5


def _conv_output_sizes(version):
  """Spatial size of each conv output in stage 2, block 1 of a ResNet-50."""
  model = resnet.ResNet50(num_classes=5, width=8, version=version)
  variables = _init_shapes(model, 64)

  def apply(variables, x):
    return model.apply(variables, x, train=False, capture_intermediates=True,
                       mutable=['intermediates'])

  logits, state = jax.eval_shape(apply, variables, _shape(2, 64, 64, 3))
  block = state['intermediates']['stage2_block1']
  sizes = {name: block[name]['__call__'][0].shape[1]
           for name in ('conv1', 'conv2', 'conv3', 'proj_conv')}
  return sizes, variables['params'], logits


def test_v15_strides_the_3x3_conv_and_v10_the_first_1x1():
  # 64x64 input: the stem leaves 16x16, stage 2 halves it to 8x8.
  v15, v15_params, v15_logits = _conv_output_sizes('v1.5')
  v10, v10_params, v10_logits = _conv_output_sizes('v1.0')
  assert v15 == {'conv1': 16, 'conv2': 8, 'conv3': 8, 'proj_conv': 8}
  assert v10 == {'conv1': 8, 'conv2': 8, 'conv3': 8, 'proj_conv': 8}
  # Where the stride sits changes no kernel.
  assert (jax.tree.map(lambda s: s.shape, v15_params)
          == jax.tree.map(lambda s: s.shape, v10_params))
  assert v15_logits.shape == v10_logits.shape == (2, 5)


# ----------------------------------------------------------------- init


def _bn_scales_and_biases(params):
  """{path of a BN layer: (scale, bias)}; a BN is what has a `scale`."""
  flat = _flat(params)
  return {path[:-len('/scale')]: (leaf, flat[path[:-len('scale')] + 'bias'])
          for path, leaf in flat.items() if path.endswith('/scale')}


# A basic block needs a projection only where the stage changes the shape; a
# bottleneck widens 4x, so the first block of the first stage projects too.
@pytest.mark.parametrize('block_cls, last_bn, projections', [
    (resnet.BasicBlock, 'bn2', 1), (resnet.BottleneckBlock, 'bn3', 2)])
@pytest.mark.parametrize('last_bn_scale', [0.0, 0.4138])
def test_last_bn_scale_init(block_cls, last_bn, projections, last_bn_scale):
  # Two stages of two blocks: identity and projection shortcuts, both strides.
  model = _tiny(stage_sizes=(2, 2), block_cls=block_cls, num_classes=200,
                last_bn_scale=last_bn_scale)
  # Eager, not jitted: the two scales share every compiled op but one.
  params = model.init(_KEY, _images(batch=1, size=8), train=False)['params']
  bns = _bn_scales_and_biases(params)
  assert sum(path.endswith('/proj_bn') for path in bns) == projections
  last = {path for path in bns if path.endswith('/' + last_bn)}
  assert len(last) == 4
  for path, (scale, bias) in bns.items():
    expected_scale = np.float32(last_bn_scale if path in last else 1.0)
    np.testing.assert_array_equal(scale, expected_scale, err_msg=path)
    np.testing.assert_array_equal(bias, 0.0, err_msg=path)

  kernel = np.asarray(params['head']['kernel'])
  assert kernel.size >= 3200  # Enough samples for a 5% check of the std.
  np.testing.assert_allclose(kernel.std(), 0.01, rtol=0.05)
  assert abs(kernel.mean()) < 0.001
  np.testing.assert_array_equal(params['head']['bias'], 0.0)


@pytest.mark.parametrize('block_cls, filters', [(resnet.BasicBlock, 8),
                                                (resnet.BottleneckBlock, 2)])
def test_block_with_zero_last_bn_is_the_identity(block_cls, filters):
  norm = functools.partial(VirtualBatchNorm, use_running_average=False,
                           virtual_batch_size=2)
  conv = functools.partial(nn.Conv, use_bias=False, padding='SAME')
  block = block_cls(filters=filters, conv=conv, norm=norm, last_bn_scale=0.0)
  # A block's input comes out of a ReLU, so the identity needs it nonnegative.
  x = nn.relu(_images(batch=4, size=6, channels=8))
  y, _ = jax.jit(block.init_with_output)(_KEY, x)
  np.testing.assert_array_equal(y, x)



# ----------------------------------------------------------------- activation


def _np_conv(x, kernel, stride):
  return jax.lax.conv_general_dilated(
      x, kernel, (stride, stride), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
      precision=jax.lax.Precision.HIGHEST)


def _np_bn(x, bn):
  """Batch statistics over the whole batch (one virtual group)."""
  mean = x.mean(axis=(0, 1, 2))
  var = ((x - mean) ** 2).mean(axis=(0, 1, 2))
  return (x - mean) / np.sqrt(var + 1e-5) * bn['scale'] + bn['bias']


_ACTIVATIONS = {'relu': lambda x: np.maximum(x, 0.0),
                'silu': lambda x: x / (1 + np.exp(-x)),
                'gelu': lambda x: 0.5 * x * (1 + np.tanh(
                    np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))}


@pytest.mark.parametrize('activation', ['relu', 'silu', 'gelu'])
@pytest.mark.parametrize('block_cls', [resnet.BasicBlock, resnet.BottleneckBlock])
def test_block_applies_its_activation_where_the_relu_was(block_cls, activation):
  """A block against its forward pass written out, the activation after each BN
  but the last and after the sum; 'gelu' is the tanh approximation."""
  act = _ACTIVATIONS[activation]
  norm = functools.partial(VirtualBatchNorm, use_running_average=False,
                           virtual_batch_size=4)
  conv = functools.partial(nn.Conv, use_bias=False, padding='SAME')
  filters, channels = (8, 8) if block_cls is resnet.BasicBlock else (2, 8)
  block = block_cls(filters=filters, conv=conv, norm=norm, last_bn_scale=0.5,
                    act=resnet.get_activation(activation))
  x = _images(batch=4, size=6, channels=channels)
  y, variables = block.init_with_output(_KEY, x)
  p = jax.tree.map(np.asarray, variables['params'])
  h = np.asarray(x, np.float64)
  if block_cls is resnet.BasicBlock:
    h = act(_np_bn(_np_conv(h, p['conv1']['kernel'], 1), p['bn1']))
    h = _np_bn(_np_conv(h, p['conv2']['kernel'], 1), p['bn2'])
  else:
    h = act(_np_bn(_np_conv(h, p['conv1']['kernel'], 1), p['bn1']))
    h = act(_np_bn(_np_conv(h, p['conv2']['kernel'], 1), p['bn2']))
    h = _np_bn(_np_conv(h, p['conv3']['kernel'], 1), p['bn3'])
  expected = act(h + np.asarray(x, np.float64))
  np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-4, atol=1e-4)


def test_the_activation_replaces_every_relu_and_defaults_to_it(monkeypatch):
  """Every activation site of the network calls the chosen function, the stem's
  included, and no other: 1 + 2 per basic block, 1 + 3 per bottleneck. The
  parameters are the same whatever the activation."""
  calls = []
  for name, function in list(resnet._ACTIVATIONS.items()):  # pylint: disable=protected-access
    monkeypatch.setitem(resnet._ACTIVATIONS, name,  # pylint: disable=protected-access
                        functools.partial(lambda f, n, x: calls.append(n) or f(x),
                                          function, name))
  assert models.create_model(default_config.get_config(), 10).activation == 'relu'
  shapes = {}
  for activation in ('relu', 'silu', 'gelu'):
    for depth, sites in ((10, 1 + 2 * 4), (14, 1 + 3 * 4)):
      calls.clear()
      model = resnet.get_resnet(depth)(num_classes=10, width=4, stem='small',
                                       virtual_batch_size=2, activation=activation)
      shapes[activation, depth] = _init_shapes(model, 8)
      assert calls == [activation] * sites, (activation, depth)
  for depth in (10, 14):
    assert shapes['relu', depth] == shapes['silu', depth] == shapes['gelu', depth]



# ----------------------------------------------------------------- tiny model


def test_tiny_model_trains_and_evaluates():
  model, variables = _tiny(), _tiny_variables()
  assert set(variables) == {'params', 'batch_stats'}
  x = _images()

  train_step = jax.jit(functools.partial(model.apply, train=True,
                                         mutable=['batch_stats']))
  logits, updates = train_step(variables, x)
  assert logits.shape == (8, 10) and logits.dtype == jnp.float32
  old, new = _flat(variables['batch_stats']), _flat(updates['batch_stats'])
  assert old.keys() == new.keys()
  assert all(not np.allclose(old[k], new[k]) for k in old)

  evaluate = jax.jit(functools.partial(model.apply, train=False))
  eval_logits = evaluate({**variables, **updates}, x)
  assert eval_logits.shape == (8, 10)
  assert np.all(np.isfinite(eval_logits))
  # Eval needs no whole groups: any batch size works.
  assert evaluate(variables, x[:3]).shape == (3, 10)


def test_tiny_model_rejects_a_batch_of_partial_groups_in_training():
  with pytest.raises(ValueError, match='batch size 6 .*virtual batch size 4'):
    jax.eval_shape(
        functools.partial(_tiny().apply, train=True, mutable=['batch_stats']),
        _tiny_variables(), _shape(6, 32, 32, 3))


def test_bfloat16_model_keeps_float32_params_and_logits():
  model = _tiny(dtype=jnp.bfloat16)
  init_shapes = _init_shapes(model, 32, train=True)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(init_shapes))

  # The float32 model's variables fit: parameters do not depend on `dtype`.
  def train_step(variables, x):
    return model.apply(variables, x, train=True, capture_intermediates=True,
                       mutable=['batch_stats', 'intermediates'])

  logits, state = jax.jit(train_step)(_tiny_variables(), _images())
  assert logits.dtype == jnp.float32
  assert np.all(np.isfinite(logits))
  assert all(leaf.dtype == jnp.float32
             for leaf in jax.tree.leaves(state['batch_stats']))
  conv_out = state['intermediates']['stage1_block1']['conv1']['__call__'][0]
  assert conv_out.dtype == jnp.bfloat16
  # The float32 model on the same input agrees to bfloat16 precision.
  logits32, _ = jax.jit(functools.partial(
      _tiny().apply, train=True, mutable=['batch_stats']))(
          _tiny_variables(), _images())
  np.testing.assert_allclose(logits, logits32, atol=0.05)


# ----------------------------------------------------------------- VBN


def _reference_vbn(x, group_size, scale, bias, moving_mean, moving_var,
                   momentum, epsilon):
  """Virtual batch norm in numpy float64: the specification."""
  x = np.asarray(x, np.float64)
  groups = x.reshape((-1, group_size) + x.shape[1:])
  axes = tuple(range(1, groups.ndim - 1))
  mean = groups.mean(axes, keepdims=True)
  var = groups.var(axes, keepdims=True)
  y = (groups - mean) / np.sqrt(var + epsilon) * scale + bias
  channels = x.shape[-1]
  new_mean = (momentum * moving_mean
              + (1 - momentum) * mean.reshape(-1, channels).mean(0))
  new_var = (momentum * moving_var
             + (1 - momentum) * var.reshape(-1, channels).mean(0))
  return y.reshape(x.shape), new_mean, new_var


def _three_groups(group_size=4, dtype=jnp.float32):
  """Three groups with very different means and spreads per channel."""
  rng = np.random.default_rng(0)
  channels = 5
  groups = [loc + spread * rng.standard_normal((group_size, 3, 3, channels))
            for loc, spread in [(-3.0, 0.5), (0.0, 1.0), (6.0, 4.0)]]
  return jnp.asarray(np.concatenate(groups), dtype)


def _vbn_with_params(group_size=4, momentum=0.8, epsilon=1e-3, **kwargs):
  """A VBN and variables with non-trivial scale, bias and moving averages."""
  vbn = VirtualBatchNorm(virtual_batch_size=group_size, momentum=momentum,
                         epsilon=epsilon, **kwargs)
  channels = 5
  variables = {
      'params': {'scale': jnp.linspace(0.5, 2.0, channels),
                 'bias': jnp.linspace(-1.0, 1.0, channels)},
      'batch_stats': {'mean': jnp.linspace(-0.2, 0.2, channels),
                      'var': jnp.linspace(0.5, 1.5, channels)},
  }
  return vbn, variables


def test_vbn_variables_look_like_flax_batch_norm():
  x = _three_groups()
  ours = VirtualBatchNorm(virtual_batch_size=4).init(_KEY, x,
                                                     use_running_average=False)
  theirs = nn.BatchNorm().init(_KEY, x, use_running_average=False)
  assert (jax.tree.map(lambda a: (a.shape, a.dtype), ours)
          == jax.tree.map(lambda a: (a.shape, a.dtype), theirs))
  np.testing.assert_array_equal(ours['batch_stats']['mean'], 0.0)
  np.testing.assert_array_equal(ours['batch_stats']['var'], 1.0)


def test_vbn_training_matches_numpy_reference():
  vbn, variables = _vbn_with_params()
  x = _three_groups()
  y, updates = vbn.apply(variables, x, use_running_average=False,
                         mutable=['batch_stats'])
  expected_y, expected_mean, expected_var = _reference_vbn(
      x, 4, np.asarray(variables['params']['scale']),
      np.asarray(variables['params']['bias']),
      np.asarray(variables['batch_stats']['mean']),
      np.asarray(variables['batch_stats']['var']), momentum=0.8, epsilon=1e-3)
  assert y.dtype == jnp.float32
  np.testing.assert_allclose(y, expected_y, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(updates['batch_stats']['mean'], expected_mean,
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(updates['batch_stats']['var'], expected_var,
                             rtol=1e-5, atol=1e-5)
  # The groups differ, so whole-batch statistics would be far from these.
  whole_batch, _, _ = _reference_vbn(
      x, 12, 1.0, 0.0, 0.0, 1.0, momentum=0.8, epsilon=1e-3)
  assert not np.allclose(y, whole_batch, atol=0.1)


def test_vbn_group_output_equals_flax_batch_norm_on_that_group_alone():
  vbn, variables = _vbn_with_params()
  bn = nn.BatchNorm(momentum=0.8, epsilon=1e-3, use_running_average=False)
  x = _three_groups()
  y, _ = vbn.apply(variables, x, use_running_average=False,
                   mutable=['batch_stats'])
  for g in range(3):
    group = x[4 * g:4 * (g + 1)]
    y_group, _ = bn.apply(variables, group, mutable=['batch_stats'])
    np.testing.assert_allclose(y[4 * g:4 * (g + 1)], y_group, rtol=1e-5,
                               atol=1e-5)


def test_vbn_with_one_group_is_flax_batch_norm():
  vbn, variables = _vbn_with_params(group_size=12)
  bn = nn.BatchNorm(momentum=0.8, epsilon=1e-3, use_running_average=False)
  x = _three_groups()
  y, ours = vbn.apply(variables, x, use_running_average=False,
                      mutable=['batch_stats'])
  y_bn, theirs = bn.apply(variables, x, mutable=['batch_stats'])
  np.testing.assert_allclose(y, y_bn, rtol=1e-5, atol=1e-5)
  jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-6),
               ours, theirs)


def test_vbn_eval_uses_the_moving_averages():
  vbn, variables = _vbn_with_params()
  x = _three_groups()[:7]  # Eval needs no whole groups.
  y = vbn.apply(variables, x, use_running_average=True)
  stats = variables['batch_stats']
  params = variables['params']
  expected = ((np.asarray(x, np.float64) - np.asarray(stats['mean']))
              / np.sqrt(np.asarray(stats['var'], np.float64) + 1e-3)
              * np.asarray(params['scale']) + np.asarray(params['bias']))
  np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_vbn_init_leaves_moving_averages_alone_and_accepts_any_batch():
  vbn = VirtualBatchNorm(virtual_batch_size=4)
  x = _three_groups() * 10.0
  for batch in (12, 1):
    variables = vbn.init(_KEY, x[:batch], use_running_average=False)
    np.testing.assert_array_equal(variables['batch_stats']['mean'], 0.0)
    np.testing.assert_array_equal(variables['batch_stats']['var'], 1.0)


@pytest.mark.parametrize('batch', [6, 2, 13])
def test_vbn_rejects_a_batch_of_partial_groups(batch):
  vbn, variables = _vbn_with_params(group_size=4)
  x = jnp.ones((batch, 2, 2, 5))
  with pytest.raises(ValueError,
                     match=f'batch size {batch} .*virtual batch size 4'):
    vbn.apply(variables, x, use_running_average=False, mutable=['batch_stats'])


def test_vbn_bfloat16_keeps_float32_statistics_and_params():
  vbn, variables = _vbn_with_params(dtype=jnp.bfloat16)
  x = _three_groups(dtype=jnp.bfloat16)
  fresh = vbn.init(_KEY, x, use_running_average=False)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(fresh))

  y, updates = vbn.apply(variables, x, use_running_average=False,
                         mutable=['batch_stats'])
  assert y.dtype == jnp.bfloat16
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(updates))
  # Statistics of the bfloat16 values themselves, accumulated in float32: as
  # precise as in the float32 test, not bfloat16-coarse.
  expected_y, expected_mean, expected_var = _reference_vbn(
      np.asarray(x.astype(jnp.float32)), 4,
      np.asarray(variables['params']['scale']),
      np.asarray(variables['params']['bias']),
      np.asarray(variables['batch_stats']['mean']),
      np.asarray(variables['batch_stats']['var']), momentum=0.8, epsilon=1e-3)
  np.testing.assert_allclose(updates['batch_stats']['mean'], expected_mean,
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(updates['batch_stats']['var'], expected_var,
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(y, np.float32), expected_y,
                             rtol=1e-2, atol=2e-2)


# ----------------------------------------------------------------- config


def _config(**model_overrides):
  config = default_config.get_config()
  config.model.update(model_overrides)
  return config


def test_create_model_from_the_default_config():
  model = models.create_model(_config(), num_classes=10)
  assert isinstance(model, resnet.ResNet)
  assert model.num_classes == 10
  assert tuple(model.stage_sizes) == (1, 1, 1, 1)
  config = _config()
  assert (model.width, model.stem, model.dtype) == (config.model.width, 'small', jnp.float32)
  assert models.create_model(_config(), num_classes=3).num_classes == 3

  model = models.create_model(_config(depth=50, dtype='bfloat16',
                                      version='v1.0', stem='imagenet',
                                      virtual_batch_size=32, bn_momentum=0.8,
                                      bn_epsilon=1e-3, last_bn_scale=0.5), num_classes=1000)
  assert model.block_cls is resnet.BottleneckBlock
  assert (model.dtype, model.version, model.stem) == (
      jnp.bfloat16, 'v1.0', 'imagenet')
  assert (model.virtual_batch_size, model.bn_momentum, model.bn_epsilon,
          model.last_bn_scale) == (32, 0.8, 1e-3, 0.5)


@pytest.mark.parametrize('key, value, valid', [
    ("depth", 49, "10, 14, 18, 34, 50, 101, 152, 200"),
    ('version', 'v2', "'v1.0', 'v1.5'"),
    ('stem', 'cifar', "'imagenet', 'small'"),
    ('dtype', 'float16', "'float32', 'bfloat16'"),
    ('activation', 'tanh', "'relu', 'silu', 'gelu'"),
])
def test_create_model_rejects_unknown_values(key, value, valid):
  with pytest.raises(ValueError, match=f'unknown .*{key}.*{valid}'):
    models.create_model(_config(**{key: value}), num_classes=10)


def test_models_package_imports_no_tensorflow():
  code = ('import sys, models; '
          'bad = [m for m in ("tensorflow", "tensorflow_datasets", "clu") '
          'if m in sys.modules]; '
          'assert not bad, bad')
  subprocess.run([sys.executable, '-c', code], check=True, cwd=_REPO_ROOT)


_SHARDED_VBN_CHECK = '''
import functools, jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from models.virtual_batch_norm import VirtualBatchNorm
vbn = VirtualBatchNorm(virtual_batch_size=2, use_running_average=False)
x = jnp.asarray(np.random.default_rng(0).standard_normal((8, 4, 4, 3)),
                jnp.float32)
variables = vbn.init(jax.random.key(0, impl='rbg'), x)
step = jax.jit(functools.partial(vbn.apply, mutable=['batch_stats']))
mesh = Mesh(np.array(jax.devices()), ('data',))
sharded_x = jax.device_put(x, NamedSharding(mesh, P('data')))
jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
             step(variables, x), step(variables, sharded_x))
hlo = step.lower(variables, sharded_x).compile().as_text()
assert 'all-gather' not in hlo and 'all-to-all' not in hlo, hlo
'''


@pytest.mark.slow  # A subprocess with 4 devices (about 13 s).
def test_vbn_on_a_sharded_batch_gives_the_same_result_in_place():
  # Two examples per device, one group each: the same numbers as on one device,
  # and no activations move (only the (C,) moving-average updates are reduced
  # across devices).
  env = {**os.environ, 'XLA_FLAGS': '--xla_force_host_platform_device_count=4',
         'JAX_PLATFORMS': 'cpu'}
  subprocess.run([sys.executable, '-c', _SHARDED_VBN_CHECK], check=True,
                 cwd=_REPO_ROOT, env=env)
