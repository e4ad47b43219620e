"""Config validation: each bad value gives one line naming the key, the value and what is allowed.

main.py's handling of bad input (one line, exit status 2) is tests/test_bad_input.py.
"""

import glob
import math
import os

import pytest

from configs import default
from configs import embedded_lars
from train.cli import config_files
from train.run import memory
from train.run import validation

BAD_VALUES = [
    ('seed', -1),
    ('dataset', 'imagenet2013'),
    ('data_dir', ''),
    ('image_size', 0),
    ('image_size', 4),  # Smaller than the small stem's 8.
    ('global_batch_size', 0),
    ('global_batch_size', -64),
    ('eval_batch_size', 0),
    ('num_train_steps', 0),
    ('model.depth', 42),
    ('model.width', 0),
    ('model.version', 'v2'),
    ('model.stem', 'cifar'),
    ('model.virtual_batch_size', 0),
    ('model.virtual_batch_size', 48),  # Does not divide the batch of 128.
    ('model.bn_momentum', 1.0),
    ('model.bn_epsilon', 0.0),
    ('model.dtype', 'float16'),
    ('model.activation', 'tanh'),
    ('optimizer.name', 'adadelta'),
    ('optimizer.bn_bias_name', 'sgd'),
    ('optimizer.momentum', 1.5),
    ('optimizer.l2', -1e-4),
    ('optimizer.trust_coefficient', 0.0),
    ('label_smoothing', 1.0),
    ('lr.schedule', 'exponential'),
    ('lr.peak', 0.0),
    ('lr.warmup_steps', 400.0),  # Not shorter than the budget of 400.
    ('lr.warmup_power', 0.0),
    ('target_accuracy', 0.0),
    ('target_accuracy', 75.9),
    ('eval_every_steps', 0),
    ('input.crop_area_range', (0.5, 0.2)),
    ('input.crop_aspect_ratio_range', (0.0, 1.0)),
    ('input.resize_method', 'lanczos'),
    ('input.stddev_rgb', (1.0, 0.0, 1.0)),
    ('input.deterministic', None),
    ('input.cache_eval', 'sometimes'),
    ('input.cache_eval', 'True'),
    ('mlperf.submission_division', 'premier'),
    ('num_epochs', -1.0),
    ('epochs_per_block', 0),
    ('lr.warmup_epochs', -2.0),
    ('lr.decay_steps', 0.0),
    ('lr.decay_factor', 0.0),
    ('lr.hold_from_step', 0.0),
    ('lr.batch_scaling', 'cubic'),
    ('lr.warmup_batch_scaling', 'sqrt'),
    ('optimizer.b2', 1.0),
    ('optimizer.eps', 0.0),
    ('optimizer.weight_decay', -0.1),
    ('optimizer.initial_accumulator_value', -0.1),
    ('optimizer.trust_ratio_norm', 'l3'),
    ('optimizer.muon_consistent_rms', 0.0),
    ('lr.step_boundaries_epochs', (60.0, 30.0)),
    ('lr.step_boundaries_epochs', (0.0, 30.0)),
    ('lr.step_factor', 0.0),
    ('lr.step_factor', 10.0),
    ('trust_ratio_log_steps', (5, 5)),
    ('trust_ratio_log_steps', (0,)),
    ('trust_ratio_log_steps', (2.5,)),
]


def _set(config, key, value):
  *parents, leaf = key.split('.')
  node = config
  for part in parents:
    node = node[part]
  node[leaf] = value


@pytest.mark.parametrize('config_module', [default, embedded_lars])
def test_default_configs_are_valid(config_module):
  validation.validate_config(config_module.get_config(), num_devices=1, check_data=False)


@pytest.mark.parametrize('key,value', BAD_VALUES)
def test_bad_value_names_key_value_and_what_is_allowed(key, value):
  config = embedded_lars.get_config()
  _set(config, key, value)
  with pytest.raises(validation.ConfigError) as info:
    validation.validate_config(config, num_devices=1, check_data=False)
  message = str(info.value)
  assert info.value.key == key
  assert message.startswith(f'config error: {key}=')
  assert 'allowed' in message
  assert '\n' not in message


def test_batch_must_split_over_devices_into_virtual_batches():
  config = embedded_lars.get_config()
  config.global_batch_size = 256
  config.model.virtual_batch_size = 64
  validation.validate_config(config, num_devices=4, check_data=False)
  with pytest.raises(validation.ConfigError, match='global_batch_size'):
    validation.validate_config(config, num_devices=3, check_data=False)
  with pytest.raises(validation.ConfigError, match=r'virtual_batch_size.*per-device batch 32'):
    validation.validate_config(config, num_devices=8, check_data=False)


@pytest.mark.parametrize('key,value,match', [
    ('optimizer.trust_ratio_norm', 'l1', r"allowed: 'l2'.*no trust ratio"),
    ('trust_ratio_log_steps', (10,), r'allowed: \(\).*no trust ratio to log'),
])
def test_trust_ratio_keys_need_an_optimizer_with_one(key, value, match):
  config = embedded_lars.get_config()
  _set(config, key, value)
  validation.validate_config(config, num_devices=1, check_data=False)  # LARS has one.
  config.optimizer.name, config.optimizer.bn_bias_name = 'nesterov', 'same'
  with pytest.raises(validation.ConfigError, match=match) as info:
    validation.validate_config(config, num_devices=1, check_data=False)
  assert info.value.key == key
  config.optimizer.bn_bias_name = 'lamb'  # The BN and bias group's trust ratio counts.
  config.optimizer.l2, config.optimizer.weight_decay = 0.0, 0.0
  validation.validate_config(config, num_devices=1, check_data=False)


def test_bias_correction_off_needs_an_optimizer_with_one():
  config = embedded_lars.get_config()
  config.optimizer.bias_correction = False
  with pytest.raises(validation.ConfigError, match=r'bias_correction=False.*allowed: True'):
    validation.validate_config(config, num_devices=1, check_data=False)
  config.optimizer.bn_bias_name = 'adam'
  validation.validate_config(config, num_devices=1, check_data=False)


def _todays(name, bn_bias_name, **optimizer):
  config = embedded_lars.get_config()
  config.optimizer.name, config.optimizer.bn_bias_name = name, bn_bias_name
  config.optimizer.l2, config.optimizer.weight_decay = 0.0, 0.0
  config.optimizer.update(optimizer)
  return config


def test_muon_takes_the_kernels_only():
  validation.validate_config(_todays('muon', 'adamw'), num_devices=1, check_data=False)
  for name, bn_bias_name in (('muon', 'same'), ('adamw', 'muon')):
    with pytest.raises(validation.ConfigError,
                       match=rf"bn_bias_name='{bn_bias_name}'.*muon orthogonalises") as info:
      validation.validate_config(_todays(name, bn_bias_name), num_devices=1, check_data=False)
    assert info.value.key == 'optimizer.bn_bias_name'


def test_muon_s_own_key_needs_muon():
  config = _todays('muon', 'adamw', muon_consistent_rms=None)  # Jordan's scale.
  validation.validate_config(config, num_devices=1, check_data=False)
  config.optimizer.name = 'nadamw'
  with pytest.raises(validation.ConfigError,
                     match=r'muon_consistent_rms=None.*allowed: 0.2 \(the default\)'):
    validation.validate_config(config, num_devices=1, check_data=False)


@pytest.mark.parametrize('name,key', [('schedule_free_sgd', 'momentum'),
                                      ('schedule_free_adamw', 'b1')])
def test_schedule_free_needs_its_interpolation_above_zero(name, key):
  config = _todays('nesterov', name, **{key: 0.0})
  with pytest.raises(validation.ConfigError, match=rf'optimizer.{key}=0.0.*for {name}') as info:
    validation.validate_config(config, num_devices=1, check_data=False)
  assert info.value.key == f'optimizer.{key}'
  config.optimizer.update({key: 0.5})
  validation.validate_config(config, num_devices=1, check_data=False)


def test_schedule_free_sgd_reads_l2_and_the_others_weight_decay():
  for name in ('nadamw', 'lion', 'schedule_free_adamw'):
    with pytest.raises(validation.ConfigError, match=r'optimizer.l2=.*read optimizer.weight_decay'):
      validation.validate_config(_todays(name, 'same', l2=1e-4), num_devices=1, check_data=False)
  with pytest.raises(validation.ConfigError, match=r'optimizer.weight_decay=.*read optimizer.l2'):
    validation.validate_config(_todays('schedule_free_sgd', 'same', weight_decay=1e-4),
                               num_devices=1, check_data=False)


def test_trust_ratio_log_steps_within_the_budget():
  config = embedded_lars.get_config()  # 400 steps.
  config.trust_ratio_log_steps = (1, 400)
  validation.validate_config(config, num_devices=1, check_data=False)
  config.trust_ratio_log_steps = (1, 401)
  with pytest.raises(validation.ConfigError, match=r'allowed: steps in \[1, 400\]'):
    validation.validate_config(config, num_devices=1, check_data=False)


def test_step_boundaries_come_after_the_warmup():
  config = embedded_lars.get_config()  # 78.25 steps per epoch, 50 warmup steps.
  config.lr.schedule = 'step'
  config.lr.step_boundaries_epochs = (1.0, 3.0)
  validation.validate_config(config, num_devices=1, check_data=False)
  config.lr.step_boundaries_epochs = (0.5, 3.0)  # 39.1 steps, inside the warmup.
  with pytest.raises(validation.ConfigError,
                     match=r'step_boundaries_epochs=\(0.5, 3.0\).*after the warmup'):
    validation.validate_config(config, num_devices=1, check_data=False)


def test_regularization_no_optimizer_reads_is_refused():
  config = embedded_lars.get_config()
  config.optimizer.weight_decay = 0.01  # LARS and MLPerf momentum read l2.
  with pytest.raises(validation.ConfigError, match=r'optimizer.weight_decay=0.01.*read optimizer.l2'):
    validation.validate_config(config, num_devices=1, check_data=False)
  config.optimizer.name, config.optimizer.bn_bias_name = 'lamb', 'same'
  with pytest.raises(validation.ConfigError, match=r'optimizer.l2=0.0001.*read optimizer.weight_decay'):
    validation.validate_config(config, num_devices=1, check_data=False)
  config.optimizer.l2 = 0.0
  validation.validate_config(config, num_devices=1, check_data=False)
  # AdamW reads both (the LAMB paper's Appendix H.1 tunes it with L2 as well).
  config.optimizer.name, config.optimizer.l2 = 'adamw', 1e-2
  validation.validate_config(config, num_devices=1, check_data=False)


def test_budget_and_warmup_in_steps_or_epochs_not_both():
  config = embedded_lars.get_config()
  config.num_epochs = 5.0
  with pytest.raises(validation.ConfigError, match=r'num_train_steps=400.*allowed: 0 when num_epochs'):
    validation.validate_config(config, num_devices=1, check_data=False)
  config.num_train_steps = 0
  validation.validate_config(config, num_devices=1, check_data=False)
  config.lr.warmup_epochs = 1.0
  with pytest.raises(validation.ConfigError, match=r'lr.warmup_steps=50.0.*warmup_epochs'):
    validation.validate_config(config, num_devices=1, check_data=False)
  config.lr.warmup_steps = 0.0
  validation.validate_config(config, num_devices=1, check_data=False)
  config.lr.warmup_epochs = 6.0  # Longer than the whole budget.
  with pytest.raises(validation.ConfigError, match=r'lr.warmup_epochs=6.0'):
    validation.validate_config(config, num_devices=1, check_data=False)


def test_unprepared_imagenet_names_the_prepare_command(tmp_path):
  config = embedded_lars.get_config()
  config.dataset = 'imagenet2012'
  config.data_dir = str(tmp_path)
  with pytest.raises(validation.ConfigError, match='not prepared.*prepare_imagenet') as info:
    validation.validate_config(config, num_devices=1)
  assert info.value.key == 'dataset'


def test_an_older_imagenet_version_is_not_prepared(tmp_path):
  # A finished build of another version passes the cheap look, not the exact check.
  older = tmp_path / 'imagenet2012' / '4.0.0'
  older.mkdir(parents=True)
  (older / 'dataset_info.json').write_text('{}')
  config = embedded_lars.get_config()
  config.dataset = 'imagenet2012'
  config.data_dir = str(tmp_path)
  with pytest.raises(validation.ConfigError, match='not prepared.*prepare_imagenet'):
    validation.validate_config(config, num_devices=1)


def test_missing_data_dir(tmp_path):
  config = embedded_lars.get_config()
  config.dataset = 'imagenet2012'
  config.data_dir = str(tmp_path / 'nowhere')
  with pytest.raises(validation.ConfigError, match='data_dir'):
    validation.validate_config(config, num_devices=1)


# --- limits that single values do not show --------------------------------------


def test_memory_estimate_counts_resnet50_conv_parameters():
  # ResNet-50 has 25,557,032 parameters: 2,049,000 in the head and 53,120 in
  # BN, the rest in its convolutions.
  _, params = memory.conv_outputs_and_params(default.get_config())
  assert params == 25_557_032 - 2_049_000 - 53_120


def test_a_step_that_cannot_fit_names_the_largest_that_does():
  device = memory.DeviceMemory(bytes=2**30, where='test memory')
  config = embedded_lars.get_config()
  validation.validate_config(config, num_devices=1, check_data=False, device_memory=device)
  config.image_size = 100_000
  with pytest.raises(validation.ConfigError, match='image_size=100000 is not allowed') as e:
    validation.validate_config(config, num_devices=1, check_data=False, device_memory=device)
  largest = int(str(e.value).rpartition('at most image_size=')[2].split()[0])
  config.image_size = largest
  validation.validate_config(config, num_devices=1, check_data=False, device_memory=device)
  config.image_size, config.global_batch_size = 16, 2**30
  with pytest.raises(validation.ConfigError, match='allowed: at most .* images per device'):
    validation.validate_config(config, num_devices=1, check_data=False, device_memory=device)


def test_an_eval_step_that_cannot_fit_names_the_largest_eval_batch_that_does():
  device = memory.DeviceMemory(bytes=2**30, where='test memory')
  config = embedded_lars.get_config()
  config.eval_batch_size = 2**30
  with pytest.raises(validation.ConfigError, match='eval_batch_size=1073741824 is not allowed; '
                     'one eval step') as e:
    validation.validate_config(config, num_devices=1, check_data=False, device_memory=device)
  largest = int(str(e.value).rpartition('allowed: at most ')[2].split()[0])
  config.eval_batch_size = largest
  validation.validate_config(config, num_devices=1, check_data=False, device_memory=device)
  config.eval_batch_size = largest + 1
  with pytest.raises(validation.ConfigError, match='eval_batch_size'):
    validation.validate_config(config, num_devices=1, check_data=False, device_memory=device)
  # The benchmark compiles no eval step: its eval_batch_size is not its concern.
  validation.validate_config(config, num_devices=1, check_data=False, device_memory=device,
                             with_eval=False)


def test_prefetched_batches_that_cannot_fit_beside_the_step_are_refused():
  device = memory.DeviceMemory(bytes=2**30, where='test memory')
  config = embedded_lars.get_config()
  config.input.prefetch_batches = 2**30
  with pytest.raises(validation.ConfigError, match='input.prefetch_batches=1073741824 is not '
                     'allowed') as e:
    validation.validate_config(config, num_devices=1, check_data=False, device_memory=device)
  largest = int(str(e.value).rpartition('allowed: at most ')[2].split()[0].replace(',', ''))
  config.input.prefetch_batches = largest
  validation.validate_config(config, num_devices=1, check_data=False, device_memory=device)
  config.input.prefetch_batches = largest + 1
  with pytest.raises(validation.ConfigError, match='input.prefetch_batches'):
    validation.validate_config(config, num_devices=1, check_data=False, device_memory=device)


def test_the_eval_step_needs_less_than_the_train_step_at_one_batch():
  """Why the eval check can name the batch alone: one image that fits a train step
  fits an eval step."""
  for module in (default, embedded_lars):
    config = module.get_config()
    assert memory.eval_step_bytes(config, 64) < memory.step_bytes(config, 64)


@pytest.mark.parametrize('key, value', [('lr.peak', math.inf), ('lr.peak', math.nan),
                                        ('optimizer.momentum', -math.inf),
                                        ('input.mean_rgb', (1.0, math.nan, 2.0))])
def test_a_non_finite_number_is_named_as_such(key, value):
  config = embedded_lars.get_config()
  _set(config, key, value)
  with pytest.raises(validation.ConfigError, match=r'\(a finite one: inf, -inf and nan'):
    validation.validate_config(config, num_devices=1, check_data=False)


@pytest.mark.parametrize('key', ['input.crop_max_attempts', 'model.width',
                                 'checkpoint.max_to_keep', 'log_every_steps'])
def test_an_integer_key_beyond_int32_is_refused(key):
  config = embedded_lars.get_config()
  _set(config, key, validation.MAX_INT32 + 1)
  with pytest.raises(validation.ConfigError, match=f'{key}=2147483648 is not allowed; '
                     r'allowed: .*, at most 2,147,483,647 \(a 32-bit integer'):
    validation.validate_config(config, num_devices=1, check_data=False)


def test_a_seed_beyond_32_bits_is_refused():
  config = embedded_lars.get_config()
  config.seed = validation.MAX_SEED
  validation.validate_config(config, num_devices=1, check_data=False)
  config.seed = validation.MAX_SEED + 1
  # Why: jax.random.key keeps 32 bits, so seed 2**32 would start from seed 0's weights.
  import jax  # pylint: disable=g-import-not-at-top
  assert (jax.random.key_data(jax.random.key(config.seed))
          == jax.random.key_data(jax.random.key(0))).all()
  with pytest.raises(validation.ConfigError, match=r'allowed: an integer in \[0, 4294967295\]'):
    validation.validate_config(config, num_devices=1, check_data=False)


def test_budget_past_the_step_counter_is_refused():
  config = embedded_lars.get_config()
  config.num_train_steps = validation.MAX_TRAIN_STEPS + 1
  with pytest.raises(validation.ConfigError, match='at most 2,147,483,647 steps'):
    validation.validate_config(config, num_devices=1, check_data=False)


# The modules of configs/ that are not config files: no get_config().
_NOT_CONFIG_FILES = ('__init__.py', 'variants.py', 'search_space.py')


@pytest.mark.parametrize('path', sorted(
    path for path in glob.glob(os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs', '*.py'))
    if os.path.basename(path) not in _NOT_CONFIG_FILES))
def test_every_shipped_config_has_the_keys_of_default(path):
  """load_config checks a file's keys against configs/default.py (every variant too)."""
  module = config_files.load_module(path)
  for variant in ['', *sorted(getattr(module, 'VARIANTS', {}))]:
    config_files.load_config(config_files.ConfigSpec(path, variant))
