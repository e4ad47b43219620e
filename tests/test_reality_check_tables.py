"""The Reality Check's Appendix D as config files: every value against its printed table.

Table 8 (Appendix D.3, the searches behind Table 4) and Tables 9-23 (Appendix
D.4, the Nesterov tuning journey). The printed values are written once below,
as the tables print them; the tests read the configs and searches the files
give, loaded by path as the command line loads them. No test trains.
"""

import glob
import itertools
import os
import re

import numpy as np
import pytest

from configs import cosine_6000
from configs import default
from configs import search_space
from train.cli import config_files
from train.experiments import search
from train.mlperf import rules

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE_9 = 'configs/nesterov_search_table9.py'


def _path(name: str) -> str:
  return TABLE_9 if name == 'table9' else f'configs/reality_check/{name}.py'


# --- Table 8, as printed -------------------------------------------------------
# Per row: Table 4's variant of cosine_6000.py, the optimizers (weights, BN/bias),
# then eta's and lambda's Initial Range, Final Range and Best. ('logspace', a, b, n)
# is np.logspace(a, b, n); (low, high) an interval on a log scale.

TABLE_8 = {
    'table8_nesterov': dict(
        variant='nesterov', optimizers=('nesterov', 'nesterov'),
        eta=(('logspace', -.5, .5, 10), (0.8, 3), 1.173),
        lam=(('logspace', -4, -3, 10), (3e-4, 1e-3), 3.026e-4)),
    'table8_lars_momentum': dict(
        variant='lars_momentum', optimizers=('lars', 'momentum'),
        eta=(('logspace', 0, 2, 10), (10, 40), 14.49),
        lam=(('logspace', -5, -2, 10), (5e-5, 2e-4), 1.708e-4)),
    'table8_pure_lars': dict(
        variant='pure_lars', optimizers=('lars', 'lars'),
        eta=((1, 30), (10, 30), 14.18),
        lam=((1e-4, 1e-1), (5e-5, 5e-4), 5.278e-5)),
    'table8_adam_eps1e_8': dict(
        variant='adam_eps1e-8', optimizers=('adam', 'adam'), eps=1e-8,
        eta=((1e-3, 1), (4e-3, 2e-2), 0.004596),
        lam=((1e-2, 4), (2e-1, 1), 0.6182)),
    'table8_adam_eps1e_6': dict(
        variant='adam_eps1e-6', optimizers=('adam', 'adam'), eps=1e-6,
        eta=(('logspace', -3, 0, 10), (3e-3, 1e-2), 3.332e-3),
        lam=(('logspace', -2, 0.5, 6), (0.5, 2), 1.055)),
    'table8_pure_lamb': dict(
        variant='pure_lamb', optimizers=('lamb', 'lamb'),
        eta=(('logspace', -4, 0, 30), (4e-3, 5e-2), 0.01134),
        lam=(('logspace', -5, -2, 4), (1e-2, 0.1), 0.02657)),
    'table8_lamb_adam_eps1e_8': dict(
        variant='lamb_adam_eps1e-8', optimizers=('lamb', 'adam'), eps=1e-8,
        eta=((1e-3, 1), (1e-2, 8e-2), 0.02569),
        lam=((1e-2, 4), (1, 8), 2.500)),
    'table8_lamb_adam_eps1e_6': dict(
        variant='lamb_adam_eps1e-6', optimizers=('lamb', 'adam'), eps=1e-6,
        eta=(('logspace', -3, 0, 10), (1e-2, 8e-2), 0.03378),
        lam=(('logspace', -2, 0.5, 6), (1, 8), 4.197)),
}

# Footnote 21: L2 for LARS and Nesterov, weight decay for LAMB and Adam (the
# harness's decoupled one: adamw).
HARNESS_NAMES = {'nesterov': 'nesterov', 'lars': 'lars', 'momentum': 'momentum',
                 'adam': 'adamw', 'lamb': 'lamb'}
LAMBDA_KEY = {'nesterov': 'optimizer.l2', 'lars': 'optimizer.l2',
              'adam': 'optimizer.weight_decay', 'lamb': 'optimizer.weight_decay'}


# --- Tables 9-23, as printed ---------------------------------------------------
# Axes by config key ('1 - optimizer.momentum' is 1 - mu): ('log'|'linear', low,
# high), or a set of discrete values. t_decay is `lr.decay_steps` under the
# linear decay (Tables 9-11) and `lr.hold_from_step` under the quadratic decay
# (Tables 12-19, init2winit's decay_end). The printed "[2392, 2.658]" and
# "[2533, 2.815]" are the budgets with their commas printed as decimal points.

ETA, FACTOR, MU, LAM, TAU = ('lr.peak', 'lr.decay_factor', '1 - optimizer.momentum',
                             'optimizer.l2', 'label_smoothing')
RHO, EPS, HOLD = 'model.bn_momentum', 'model.bn_epsilon', 'lr.hold_from_step'
T_WARMUP, P_WARMUP, P_DECAY = 'lr.warmup_steps', 'lr.warmup_power', 'lr.decay_power'
ETA_0, ETA_FINAL, GAMMA_0 = 'lr.init', 'lr.final', 'model.last_bn_scale'

TABLE_9_SPACE = {ETA: ('log', 1e-3, 50.0), FACTOR: {1e-4, 1e-3, 1e-2, 1e-1},
                 MU: ('log', 1e-3, 1.0), LAM: ('log', 1e-5, 1e-1),
                 TAU: ('linear', 1e-2, 2e-1)}
TABLE_14_SPACE = {ETA: ('log', 1e-1, 32.0), FACTOR: ('log', 3e-5, 3e-4),
                  HOLD: ('linear', 2533, 2815), MU: ('log', 5e-3, 1e-1),
                  LAM: ('log', 1e-2, 1e-1), TAU: ('linear', 5e-2, 0.15)}
# What Tables 16-18 fix (the best of Table 15).
TABLE_16_FIXED = {FACTOR: 8.144e-5, HOLD: 2250, MU: 0.02397, LAM: 0.009992, TAU: 0.07786}
TABLES_21_23_FIXED = {T_WARMUP: 638, ETA_0: 0.12, ETA: 7.05, MU: 0.02397, TAU: 0.15,
                      RHO: 0.94, EPS: 4e-6}


def _tables_21_to_23(lam):
  return {P_WARMUP: ('linear', 1.5, 3.0), P_DECAY: ('linear', 1.5, 2.5),
          ETA_FINAL: ('log', 1e-6, 5e-4), LAM: lam, GAMMA_0: ('linear', 0.4, 1.0)}


# Per table: budget T, virtual batch, whether lambda reaches biases and BN,
# schedule shape, trials (None: a sweep), axes and fixed values.
LINEAR, QUADRATIC, MLPERF = 'linear decay', 'warmup, quadratic decay, hold', 'mlperf polynomial'
JOURNEY = {
    'table9': dict(steps=2815, virtual_batch=128, on_bn_bias=True, shape=LINEAR,
                   trials=251, space=TABLE_9_SPACE, fixed={}),
    'table10': dict(steps=2658, virtual_batch=128, on_bn_bias=True, shape=LINEAR,
                    trials=50, space=TABLE_9_SPACE, fixed={}),
    'table11': dict(steps=2658, virtual_batch=128, on_bn_bias=False, shape=LINEAR, trials=50,
                    space={ETA: ('log', 1e-1, 20.0), FACTOR: {1e-5, 1e-4, 1e-3},
                           'lr.decay_steps': ('linear', 2392, 2658), MU: ('log', 1e-3, 1.0),
                           LAM: ('log', 1e-5, 2e-1), TAU: ('linear', 1e-2, 2e-1)},
                    fixed={}),
    'table12': dict(steps=2658, virtual_batch=128, on_bn_bias=False, shape=QUADRATIC,
                    trials=50,
                    space={ETA: ('log', 1e-1, 32.0), FACTOR: {1e-5, 1e-4, 1e-3},
                           HOLD: ('linear', 2392, 2658), MU: ('log', 1e-4, 1e-1),
                           LAM: ('log', 1e-4, 1e-1), TAU: ('linear', 5e-2, 0.15)},
                    fixed={}),
    'table13': dict(steps=2815, virtual_batch=128, on_bn_bias=False, shape=QUADRATIC,
                    trials=50,
                    space={**TABLE_14_SPACE, MU: ('log', 1e-4, 1e-1), LAM: ('log', 1e-4, 1e-1)},
                    fixed={}),
    'table14': dict(steps=2815, virtual_batch=128, on_bn_bias=False, shape=QUADRATIC,
                    trials=50, space=TABLE_14_SPACE, fixed={}),
    'table15': dict(steps=2815, virtual_batch=64, on_bn_bias=False, shape=QUADRATIC,
                    trials=50, space=TABLE_14_SPACE, fixed={}),
    'table16': dict(steps=2815, virtual_batch=64, on_bn_bias=False, shape=QUADRATIC,
                    trials=None, space={ETA: 'Table 16 grid'}, fixed=TABLE_16_FIXED),
    'table17': dict(steps=2815, virtual_batch=64, on_bn_bias=False, shape=QUADRATIC,
                    trials=None, space={LAM: 'Table 17 grid'},
                    fixed={**TABLE_16_FIXED, ETA: 4.118, LAM: None}),
    'table18': dict(steps=2815, virtual_batch=64, on_bn_bias=False, shape=QUADRATIC,
                    trials=None,
                    space={RHO: {0.0, 0.1, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.995, 0.999},
                           EPS: {1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1}},
                    fixed={**TABLE_16_FIXED, ETA: 4.118}),
    'table19': dict(steps=2815, virtual_batch=64, on_bn_bias=False, shape=QUADRATIC, trials=50,
                    space={ETA: ('log', 2.0, 8.0), FACTOR: ('linear', 4e-5, 1.6e-4),
                           HOLD: ('linear', 2100, 2400), MU: ('log', 0.012, 0.04),
                           LAM: ('log', 7e-3, 7e-2), TAU: ('linear', 0.04, 0.1),
                           RHO: ('linear', 0.45, 0.55), EPS: ('linear', 5e-6, 5e-5)},
                    fixed={}),
    'table20': dict(steps=2512, virtual_batch=64, on_bn_bias=False, shape=MLPERF, trials=229,
                    space={T_WARMUP: ('linear', 300, 800), P_WARMUP: ('linear', 0.7, 2.0),
                           ETA_0: ('log', 0.1, 1.0), ETA: ('log', 5.0, 9.0),
                           ETA_FINAL: ('log', 1e-5, 5e-5), GAMMA_0: ('linear', 0.0, 0.6)},
                    fixed={P_DECAY: 1.8, MU: 0.02397, LAM: 5e-5, TAU: 0.15, RHO: 0.94,
                           EPS: 4e-6}),
    'table21': dict(steps=2512, virtual_batch=64, on_bn_bias=False, shape=MLPERF, trials=15,
                    space=_tables_21_to_23(('log', 5e-5, 1e-3)), fixed=TABLES_21_23_FIXED),
    'table22': dict(steps=2512, virtual_batch=64, on_bn_bias=False, shape=MLPERF, trials=37,
                    space=_tables_21_to_23(('log', 1e-5, 1e-4)), fixed=TABLES_21_23_FIXED),
    'table23': dict(steps=2512, virtual_batch=64, on_bn_bias=False, shape=MLPERF, trials=37,
                    space=_tables_21_to_23(('linear', 5e-5, 6e-5)), fixed=TABLES_21_23_FIXED),
}


def _table_16_peaks():
  """{1, ..., 9} x 10^a for a in -3..1, and 100: ten values per decade with its end."""
  return sorted({round(k * 10.0 ** a, 12) for a in range(-3, 2) for k in range(1, 10)}
                | {100.0})


def _table_17_weight_decays():
  """{0.5, 1.0, ..., 9.5} x 10^a for a in -3..-1, and 1.0: twenty per decade."""
  return sorted({round(k * 0.5 * 10.0 ** a, 12) for a in range(-3, 0) for k in range(1, 20)}
                | {1.0})


GRIDS = {'Table 16 grid': _table_16_peaks(), 'Table 17 grid': _table_17_weight_decays()}

ALL_NAMES = sorted(TABLE_8) + sorted(JOURNEY)


def _module(name):
  return config_files.load_module(os.path.join(REPO, _path(name)))


def _config(name, variant=''):
  return config_files.load_config(config_files.ConfigSpec(os.path.join(REPO, _path(name)),
                                                          variant))


def _variants(name):
  return ['', *sorted(getattr(_module(name), 'VARIANTS', {}))]


def _axes(stage):
  return {axis.label: axis for axis in stage.space}


def _value(config, key):
  """A config value by the label of its axis: '1 - KEY' is 1 - the value."""
  one_minus = key.startswith('1 - ')
  node = config
  for part in key.removeprefix('1 - ').split('.'):
    node = node[part]
  return 1 - node if one_minus else node


def _assert_axis(axis, printed, where):
  if isinstance(printed, str):
    printed = GRIDS[printed]
    assert isinstance(axis, search_space.Choice), where
    assert list(axis.values) == pytest.approx(printed, rel=1e-12), where
  elif isinstance(printed, set):
    assert isinstance(axis, search_space.Choice), where
    assert sorted(axis.values) == sorted(printed), where
  else:
    scale, low, high = printed
    assert isinstance(axis, search_space.Range), where
    assert (axis.scale, axis.low, axis.high) == (scale, low, high), where


# --- every file ----------------------------------------------------------------

def test_every_table_of_appendix_d_has_a_config_file():
  found = {os.path.splitext(os.path.basename(p))[0]
           for p in glob.glob(os.path.join(REPO, 'configs', 'reality_check', 'table*.py'))}
  assert found | {'table9'} == set(ALL_NAMES)
  assert len(TABLE_8) == 8 and sorted(JOURNEY) == sorted(f'table{n}' for n in range(9, 24))


@pytest.mark.parametrize('name', ALL_NAMES)
def test_config_validates_and_documents_itself(name):
  module = _module(name)
  for variant in _variants(name):
    config = _config(name, variant)  # As the command line loads it: keys checked.
    rules.validate_run_config(config, num_devices=1, check_data=False)
    assert set(config.to_dict()) == set(default.get_config().to_dict())
    if variant:
      assert re.search(rf'\b{re.escape(variant)}\b', module.__doc__.partition('Variants')[2])
  doc = module.__doc__
  assert f'python main.py --config={_path(name)}' in doc
  assert 'Budget in steps' in doc
  assert re.search(r'^Expected\b', doc, re.M), 'an Expected line: what the paper reports'
  assert all(len(line) <= 100 for line in doc.splitlines())


@pytest.mark.parametrize('name', ALL_NAMES)
def test_every_axis_names_a_config_key_and_every_value_it_takes_validates(name):
  for variant in _variants(name):
    config = _config(name, variant)
    for stage in _module(name).get_search().stages:
      search.check_space(stage.space, config)
      # Each axis at its ends (or each of its values), the others at the base.
      for axis in stage.space:
        ends = axis.values if isinstance(axis, search_space.Choice) else (
            axis.value(0.0), axis.value(1.0))
        for value in ends:
          trial = search.apply_params(config, {axis.key: value})
          rules.validate_run_config(trial, num_devices=1, check_data=False)


@pytest.mark.parametrize('name', ['table16', 'table17', 'table18'])
def test_every_point_of_a_sweep_validates(name):
  config = _config(name)
  (stage,) = _module(name).get_search().stages
  for values in itertools.product(*(axis.values for axis in stage.space)):
    trial = search.apply_params(config, dict(zip((a.key for a in stage.space), values)))
    rules.validate_run_config(trial, num_devices=1, check_data=False)


# --- Table 8 -------------------------------------------------------------------

def _assert_table_8_axis(axis, printed, key, where):
  assert axis.key == key, where
  if printed[0] == 'logspace':
    _, start, stop, num = printed
    assert isinstance(axis, search_space.Choice), where
    assert axis.values == tuple(np.logspace(start, stop, num)), where
  else:
    assert isinstance(axis, search_space.Range), where
    assert (axis.scale, axis.low, axis.high) == ('log', *printed), where


@pytest.mark.parametrize('name', sorted(TABLE_8))
def test_table_8_search_is_the_printed_one(name):
  row = TABLE_8[name]
  key = LAMBDA_KEY[row['optimizers'][0]]
  found = _module(name).get_search()
  assert [s.name for s in found.stages] == ['initial', 'final']
  assert [(s.mode, s.num_trials, s.seeds_per_trial) for s in found.stages] == [
      ('quasi_random', 50, 1), ('quasi_random', 25, 1)]
  assert (found.confirm_seeds, found.metric) == (5, 'median_final_accuracy')
  for stage, column in zip(found.stages, (0, 1)):
    assert [a.key for a in stage.space] == ['lr.peak', key]
    _assert_table_8_axis(stage.space[0], row['eta'][column], 'lr.peak', f'{name} eta')
    _assert_table_8_axis(stage.space[1], row['lam'][column], key, f'{name} lambda')


@pytest.mark.parametrize('name', sorted(TABLE_8))
def test_table_8_config_is_table_4s_row_at_the_best_values(name):
  row = TABLE_8[name]
  weights, bn_bias = row['optimizers']
  config = _config(name)
  assert config.to_dict() == cosine_6000.get_config(row['variant']).to_dict()
  same = HARNESS_NAMES[weights] == HARNESS_NAMES[bn_bias]
  assert config.optimizer.name == HARNESS_NAMES[weights]
  assert config.optimizer.bn_bias_name == ('same' if same else HARNESS_NAMES[bn_bias])
  assert (config.lr.peak, _value(config, LAMBDA_KEY[weights])) == (row['eta'][2], row['lam'][2])
  # Footnote 21: the other form of regularisation is off.
  other = ({'optimizer.l2', 'optimizer.weight_decay'} - {LAMBDA_KEY[weights]}).pop()
  assert _value(config, other) == 0.0
  if weights in ('lars', 'lamb') and not same:  # Appendix D.3: lambda = 0 on BN/biases.
    assert not config.optimizer.l2_on_bn_bias
  if weights in ('lars', 'lamb') and same:
    assert config.optimizer.l2_on_bn_bias
  if 'eps' in row:
    assert config.optimizer.eps == row['eps']
  assert (config.num_train_steps, config.lr.schedule, config.lr.warmup_steps) == (
      6000, 'cosine', 0.0)
  assert (config.model.last_bn_scale, config.stop_at_target) == (1.0, False)


# --- Tables 9-23 ---------------------------------------------------------------

def _assert_shape(config, shape, name):
  lr = config.lr
  if shape == LINEAR:
    assert (lr.schedule, lr.warmup_steps, lr.hold_from_step) == ('linear', 0.0, None), name
  elif shape == QUADRATIC:
    assert lr.schedule == 'piecewise_polynomial_factor', name
    assert (lr.init, lr.warmup_steps, lr.warmup_power, lr.decay_power) == (
        0.0, 500.0, 1.0, 2.0), name
    assert (lr.decay_steps, lr.hold_from_step is not None) == (None, True), name
  else:
    assert (lr.schedule, lr.decay_steps, lr.hold_from_step) == (
        'piecewise_polynomial', None, None), name


@pytest.mark.parametrize('name', sorted(JOURNEY))
def test_journey_table_is_the_printed_one(name):
  table = JOURNEY[name]
  config = _config(name)
  assert (config.num_train_steps, config.model.virtual_batch_size) == (
      table['steps'], table['virtual_batch'])
  assert config.global_batch_size == 32_768
  assert (config.optimizer.name, config.optimizer.bn_bias_name) == ('nesterov', 'same')
  # Weight decay or L2, lambda is added to the gradient (init2winit's flax.optim
  # Momentum weight decay, or its L2 in the loss): `optimizer.l2` always.
  assert config.optimizer.weight_decay == 0.0
  assert config.optimizer.l2_on_bn_bias is table['on_bn_bias']
  _assert_shape(config, table['shape'], name)
  assert config.stop_at_target is False  # Ranked by the final accuracy.

  found = _module(name).get_search()
  (stage,) = found.stages
  assert (found.confirm_seeds, found.metric) == (0, 'median_final_accuracy')
  if table['trials'] is None:
    assert (stage.mode, stage.num_trials) == ('grid', 0)
  else:
    assert (stage.mode, stage.num_trials, stage.seeds_per_trial) == (
        'quasi_random', table['trials'], 1)
  axes = _axes(stage)
  assert set(axes) == set(table['space'])
  for key, printed in table['space'].items():
    _assert_axis(axes[key], printed, f'{name} {key}')
  for key, printed in table['fixed'].items():
    if printed is not None:  # None: swept here, fixed in the table it comes from.
      assert _value(config, key) == pytest.approx(printed, rel=1e-12), f'{name} {key}'


def test_table_16_sweeps_each_peak_for_three_seeds():
  (stage,) = _module('table16').get_search().stages
  assert (stage.mode, stage.seeds_per_trial) == ('grid', 3)
  (axis,) = stage.space
  assert len(axis.values) == 46 and (axis.values[0], axis.values[-1]) == (1e-3, 100.0)
  assert 0.003 in axis.values and 0.7 in axis.values  # Exact decimals, not 3 * 0.001.


def test_table_17_sweeps_twenty_weight_decays_per_decade():
  (stage,) = _module('table17').get_search().stages
  (axis,) = stage.space
  assert len(axis.values) == 56 and (axis.values[0], axis.values[-1]) == (5e-4, 1.0)
  # Each a gives 0.5, 1.0, ..., 9.5 x 10^a: nineteen, and the next power of ten
  # the twentieth. 0.5 x 10^a is also 5 x 10^(a-1): 3 x 19 + 1 - 2 values.
  for a in (-3, -2, -1):
    assert all(float(f'{k / 2}e{a}') in axis.values for k in range(1, 20)), a


def test_table_18_sweeps_the_product_of_rho_and_epsilon():
  (stage,) = _module('table18').get_search().stages
  assert [len(axis.values) for axis in stage.space] == [11, 7]


def test_table_12_variants_change_the_warmup_only():
  base = _config('table12').to_dict()
  for variant, warmup in [('warmup_250', 250.0), ('warmup_977', 977.0)]:
    config = _config('table12', variant)
    assert config.lr.warmup_steps == warmup
    changed = {**config.to_dict(), 'lr': {**config.lr.to_dict(), 'warmup_steps': 500.0}}
    assert changed == base


def test_tables_21_to_23_start_at_configuration_a_with_an_initial_rate():
  """Configuration A (Table 5) lies in Table 23's space; eta_0 = 0.12 is fixed there."""
  config = _config('table23')
  assert (config.lr.warmup_power, config.lr.decay_power, config.lr.final) == (
      2.497, 1.955, 6e-6)
  assert (config.optimizer.l2, config.model.last_bn_scale) == (5.8e-5, 0.4138)
  for axis in _module('table23').get_search().stages[0].space:
    value = _value(config, axis.label)
    assert axis.low <= value <= axis.high, axis.key
