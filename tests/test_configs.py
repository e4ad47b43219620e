"""Every experiment config and variant: its values, its budget, and a short real run."""

import importlib
import re

import jax
import pytest

from configs import default
from optim import optimizers
from train.experiments import search
from train.mlperf import rules
from train.run import budget
from train.run import loop
from train.run import programs

EXPERIMENTS = ['mlperf_lars_32k', 'nesterov_a', 'nesterov_b', 'cosine_6000', 'lamb_resnet',
               'algoperf_variants']
IMAGENET_TRAIN = 1_281_167


def _all_variants():
  for name in EXPERIMENTS:
    module = importlib.import_module(f'configs.{name}')
    yield name, ''
    for variant in module.VARIANTS:
      yield name, variant


ALL = list(_all_variants())
# Config files without variants; the embedded ones run in the study tests.
SINGLE = ['embedded_lars', 'embedded_nesterov', 'embedded_search', 'embedded_nesterov_search',
          'nesterov_search_table9', 'embedded_robustness', 'embedded_scaling']
# Today's optimizers on the embedded data, each with a search space.
TODAYS = ['embedded_nadamw', 'embedded_lion', 'embedded_adagrad', 'embedded_schedule_free_sgd',
          'embedded_schedule_free_adamw', 'embedded_muon']


def _config(name, variant=''):
  module = importlib.import_module(f'configs.{name}')
  return module.get_config(variant) if variant else module.get_config()


@pytest.mark.parametrize('name,variant', ALL + [(name, '') for name in SINGLE + TODAYS])
def test_config_validates_and_documents_itself(name, variant):
  config = _config(name, variant)
  rules.validate_run_config(config, num_devices=1, check_data=False)
  doc = importlib.import_module(f'configs.{name}').__doc__
  assert 'python main.py --config=configs/' in doc
  assert 'Budget in steps' in doc or 'Budget in epochs' in doc
  assert re.search(r'^Expected\b', doc, re.M), 'an Expected line: what a run gives'
  if variant:  # Listed by name where the docstring lists its variants.
    assert re.search(rf'\b{re.escape(variant)}\b', doc.partition('Variants')[2]), variant
  # Every key is the default file's: a config never invents a key of its own.
  assert set(config.to_dict()) == set(default.get_config().to_dict())


@pytest.mark.parametrize('name', ['embedded_search', 'nesterov_search_table9'] + TODAYS)
def test_search_spaces_name_config_keys(name):
  module = importlib.import_module(f'configs.{name}')
  search.check_space(module.get_search_space(), module.get_config())


def test_table_9_search_config():
  config = _config('nesterov_search_table9')
  assert (config.num_train_steps, config.model.virtual_batch_size) == (2_815, 128)
  assert (config.lr.schedule, config.lr.warmup_steps) == ('linear', 0.0)
  assert config.optimizer.name == 'nesterov' and config.optimizer.l2_on_bn_bias
  axes = {axis.key: axis for axis in importlib.import_module(
      'configs.nesterov_search_table9').get_search_space()}
  assert (axes['lr.peak'].low, axes['lr.peak'].high, axes['lr.peak'].scale) == (
      1e-3, 50.0, 'log')
  assert axes['lr.decay_factor'].values == (1e-4, 1e-3, 1e-2, 1e-1)
  assert axes['optimizer.momentum'].one_minus
  assert (axes['optimizer.l2'].low, axes['optimizer.l2'].high) == (1e-5, 1e-1)
  assert axes['label_smoothing'].scale == 'linear'


def test_unknown_variant_names_the_valid_ones():
  with pytest.raises(ValueError, match='unknown variant.*warmup_power_1'):
    _config('nesterov_b', 'warmup_power_3')


def test_mlperf_lars_recipe_values():
  config = _config('mlperf_lars_32k')
  assert config.global_batch_size == 32_768 and config.num_train_steps == 2_512
  assert (config.lr.peak, config.lr.final, config.lr.warmup_steps) == (29.0, 1e-4, 706.0)
  assert (config.lr.warmup_power, config.lr.decay_power) == (1.0, 2.0)
  assert config.optimizer.momentum == pytest.approx(0.929)
  assert (config.optimizer.l2, config.label_smoothing) == (1e-4, 0.1)
  assert (config.model.last_bn_scale, config.model.virtual_batch_size) == (0.0, 64)
  assert (config.model.bn_epsilon, config.model.bn_momentum) == (1e-5, 0.9)
  assert (config.optimizer.name, config.optimizer.bn_bias_name) == ('lars', 'momentum')
  assert _config('mlperf_lars_32k', 'tf2_bn_bias').optimizer.bn_bias_name == 'mlperf_momentum'


def test_default_preprocessing_is_the_mlperf_reference():
  # Issue 4: every MLPerf preprocessing constant is a key with the reference's value.
  for config in (default.get_config(), _config('mlperf_lars_32k')):
    assert config.image_size == 224
    assert tuple(config.input.crop_area_range) == (0.05, 1.0)
    assert tuple(config.input.crop_aspect_ratio_range) == (0.75, 1.33)
    assert config.input.crop_min_object_covered == 0.1
    assert config.input.crop_max_attempts == 10
    assert config.input.resize_method == 'bicubic'
    assert config.input.random_flip
    assert config.input.eval_crop_padding == 32
    assert tuple(config.input.mean_rgb) == pytest.approx((123.675, 116.28, 103.53))
    assert tuple(config.input.stddev_rgb) == pytest.approx((58.395, 57.12, 57.375))
  assert (config.model.depth, config.model.version, config.image_size) == (50, 'v1.5', 224)


def test_nesterov_configurations_match_table_5():
  a, b = _config('nesterov_a'), _config('nesterov_b')
  for config in (a, b):
    assert config.optimizer.name == 'nesterov'
    assert 1 - config.optimizer.momentum == pytest.approx(0.02397)
    assert (config.lr.peak, config.lr.final) == (7.05, 6e-6)
    assert (config.optimizer.l2, config.label_smoothing) == (5.8e-5, 0.15)
    assert config.model.last_bn_scale == 0.4138
    assert not config.optimizer.l2_on_bn_bias
  assert (a.lr.warmup_steps, a.lr.warmup_power, a.lr.decay_power) == (638, 2.497, 1.955)
  assert (a.model.bn_momentum, a.model.bn_epsilon) == (0.94, 4e-6)
  assert (b.lr.warmup_steps, b.lr.warmup_power, b.lr.decay_power) == (706, 2.0, 2.0)
  assert (b.model.bn_momentum, b.model.bn_epsilon) == (0.9, 1e-5)
  # The "BN & LR tuning" ablation of A is Configuration B.
  assert _config('nesterov_a', 'bn_lr_tuning').to_dict() == b.to_dict()


def test_ablations_change_one_thing():
  base = _config('nesterov_a').to_dict()
  changes = {
      'resnet_v1': {('model', 'version'): 'v1.0'},
      'bn_init': {('model', 'last_bn_scale'): 1.0},
      'virtual_bn_256': {('model', 'virtual_batch_size'): 256},
      'l2_variables': {('optimizer', 'l2_on_bn_bias'): True},
  }
  for variant, expected in changes.items():
    ablated = _config('nesterov_a', variant).to_dict()
    diff = {(group, key): ablated[group][key]
            for group in base if isinstance(base[group], dict)
            for key in base[group] if base[group][key] != ablated[group][key]}
    assert diff == expected, variant


def test_algoperf_variants_change_one_model_key_each_and_state_their_targets():
  """Each variant is the MLPerf LARS recipe with one model key changed (and the
  open division); the docstring gives AlgoPerf's targets beside MLPerf's 75.9%."""
  module = importlib.import_module('configs.algoperf_variants')
  base = _config('algoperf_variants').to_dict()
  assert base == _config('mlperf_lars_32k').to_dict()
  changes = {'silu': {('model', 'activation'): 'silu'},
             'gelu': {('model', 'activation'): 'gelu'},
             'bn_scale_8': {('model', 'last_bn_scale'): 8.0}}
  for variant, expected in changes.items():
    changed = _config('algoperf_variants', variant).to_dict()
    diff = {(group, key): changed[group][key]
            for group in base if isinstance(base[group], dict)
            for key in base[group] if base[group][key] != changed[group][key]}
    assert diff == {**expected, ('mlperf', 'submission_division'): 'open'}, variant
    assert changed['target_accuracy'] == 0.759
  doc = module.__doc__
  assert '75.9%' in doc
  assert set(module.ALGOPERF_TARGETS) == {'', *changes}
  for validation_target, test_target in module.ALGOPERF_TARGETS.values():
    assert f'{100 * validation_target:.3f}%' in doc
    assert f'{100 * test_target:.2f}%' in doc


def test_budgets_in_steps_and_epochs_agree():
  steps = budget.resolve_budget(_config('mlperf_lars_32k'), IMAGENET_TRAIN)
  epochs = budget.resolve_budget(_config('mlperf_lars_32k', 'epochs'), IMAGENET_TRAIN)
  assert steps.num_train_steps == epochs.num_train_steps == 2_512
  assert (steps.warmup_steps, epochs.warmup_steps) == (706.0, 706.5)
  assert epochs.steps_per_epoch == 39.25
  assert steps.eval_every_steps == 157  # MLPerf's 4 epochs: one block.
  assert budget.resolve_budget(_config('lamb_resnet', 'batch_512'),
                               IMAGENET_TRAIN).eval_every_steps == 10_010


def test_lamb_resnet_scales_rate_and_warmup_with_batch():
  small = _config('lamb_resnet', 'batch_512')
  large = _config('lamb_resnet', 'batch_32k')
  assert budget.peak_learning_rate(small) == pytest.approx(4 / (2**3.0 * 100))
  assert budget.peak_learning_rate(large) == pytest.approx(0.04)
  small_budget = budget.resolve_budget(small, IMAGENET_TRAIN)
  assert small_budget.warmup_steps == pytest.approx(0.3125 * small_budget.steps_per_epoch)
  assert budget.resolve_budget(large, IMAGENET_TRAIN).num_train_steps == 3_533


def _shrink_for_cpu(config, data_dir):
  """Embedded tiny data, 32x32 images, a small batch, two steps, a small model.

  Depth and width shrink too (bottleneck variants stay bottleneck): compiling
  ResNet-50 for every variant would take the test suite past its time budget.
  The full ResNet-50 runs once, in test_full_resnet50_runs_a_step.
  """
  config.dataset = 'embedded_shapes/tiny'
  config.data_dir = str(data_dir)
  config.image_size = 32
  config.global_batch_size = max(64, config.model.virtual_batch_size)
  config.eval_batch_size = 200
  config.model.width = 8
  config.model.depth = 14 if config.model.depth >= 50 else config.model.depth
  if config.num_epochs is not None:
    config.num_epochs = 2 * config.global_batch_size / 512
  else:
    config.num_train_steps = 2
  if config.lr.warmup_epochs is not None:
    config.lr.warmup_epochs = min(config.lr.warmup_epochs, 0.5 * config.num_epochs)
  else:
    config.lr.warmup_steps = min(config.lr.warmup_steps, 1.0)
  config.eval_every_steps = 2
  config.eval_every_epochs = None
  # Two steps with an eval each are no MLPerf run: the closed division's
  # cadence (every 4 epochs) and target do not apply.
  config.mlperf.submission_division = 'open'
  return config


def _trained_kind(config) -> tuple:
  """What makes a config train differently at run time, not only in its program:
  its optimizers (the weights' and the BN/bias parameters', whose updates can
  misbehave only when run: a trust ratio of a zero norm, a state Orbax must
  save) and whether L2 reaches BN and biases. Each such kind trains once below;
  the other variants' programs are lowered. The schedules are checked value by
  value in test_schedules.py, the model versions and stems in test_models.py."""
  groups = optimizers.group_optimizer_names(config.optimizer)
  return tuple(sorted(groups.items())), config.optimizer.l2_on_bn_bias


def _one_of_each_kind() -> list[tuple[str, str]]:
  kinds, chosen = set(), []
  for name, variant in ALL:
    kind = _trained_kind(_config(name, variant))
    if kind not in kinds:
      kinds.add(kind)
      chosen.append((name, variant))
  return chosen


TRAINED = _one_of_each_kind()


def _distinct(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
  """The first of the variants that are one config (algoperf_variants.py's base
  is mlperf_lars_32k.py, nesterov_a.py:bn_lr_tuning is nesterov_b.py): lowering
  the same config twice tests nothing more."""
  seen, chosen = set(), []
  for name, variant in pairs:
    key = _config(name, variant).to_json()
    if key not in seen:
      seen.add(key)
      chosen.append((name, variant))
  return chosen


@pytest.mark.slow  # About 2 s each.
@pytest.mark.parametrize(
    'name,variant', _distinct(TRAINED + [v for v in ALL if v not in TRAINED])[len(TRAINED):])
def test_every_other_config_lowers_its_programs(name, variant, tiny_data_dir):
  """The variants that train through the code of one trained below: their init,
  train and eval steps trace and lower (no XLA compile), so that their model,
  optimizers, schedule and loss fit together."""
  config = _shrink_for_cpu(_config(name, variant), tiny_data_dir)
  rules.validate_run_config(config, num_devices=jax.device_count(), check_data=False)
  lowered = programs.lower_steps(config, num_classes=10, num_train_examples=1000)
  assert lowered.train_step.out_info[1]['loss'].shape == ()
  assert lowered.eval_step is not None


@pytest.mark.slow  # About 2 s each.
@pytest.mark.parametrize('name', TODAYS)
def test_todays_optimizers_lower_their_programs(name, tiny_data_dir):
  """Each embedded config of today's optimizers: its init, train and eval steps
  trace and lower, Muon's reshapes and Schedule-Free's eval at x included."""
  config = _shrink_for_cpu(_config(name), tiny_data_dir)
  rules.validate_run_config(config, num_devices=jax.device_count(), check_data=False)
  lowered = programs.lower_steps(config, num_classes=10, num_train_examples=1000)
  assert lowered.train_step.out_info[1]['loss'].shape == ()
  assert lowered.eval_step is not None


@pytest.mark.slow  # Compiles and trains one variant of each kind.
@pytest.mark.parametrize('name,variant', TRAINED)
def test_each_kind_of_config_trains_on_the_embedded_data(name, variant, tmp_path_factory,
                                                        tiny_data_dir):
  config = _shrink_for_cpu(_config(name, variant), tiny_data_dir)
  rules.validate_run_config(config, num_devices=jax.device_count())
  result = loop.train_and_evaluate(config, str(tmp_path_factory.mktemp('run')))
  assert result['steps_completed'] == 2
  assert len(result['evals']) == 1
  assert 0.0 <= result['final_eval_accuracy'] <= 1.0
  assert result['evals'][0]['loss'] == result['evals'][0]['loss']  # Not NaN.


@pytest.mark.slow  # Compiles ResNet-50 and runs a step and an eval (about 50 s).
def test_full_resnet50_runs_a_step(tmp_path_factory, tiny_data_dir, monkeypatch):
  """The real ResNet-50 v1.5 of the MLPerf recipe, on small images, one step.

  Its programs compile at XLA's optimisation level 1, not the suite's 0
  (conftest.py): at level 0 running the step and the eval (264 images through
  ResNet-50) cost three times what compiling does, 150 s of CPU in all against
  50 s at level 1. The programs are the same; only XLA's code for them differs.
  """
  real_compile = jax.stages.Lowered.compile

  def compile_at_level_1(lowered, compiler_options=None):
    return real_compile(lowered, {'xla_backend_optimization_level': 1,
                                  **(compiler_options or {})})
  monkeypatch.setattr(jax.stages.Lowered, 'compile', compile_at_level_1)
  config = _config('mlperf_lars_32k')
  config.dataset = 'embedded_shapes/tiny'
  config.data_dir = tiny_data_dir
  config.image_size = 32
  config.global_batch_size = 64
  config.eval_batch_size = 200
  config.num_train_steps = 1
  config.lr.warmup_steps = 0.5
  config.eval_every_steps = 1
  config.eval_every_epochs = None
  result = loop.train_and_evaluate(config, str(tmp_path_factory.mktemp('run')))
  assert result['steps_completed'] == 1 and len(result['evals']) == 1
