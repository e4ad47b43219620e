"""The LAMB paper's ResNet-50 experiments besides Table 5 (configs/lamb_paper/):
Table 3, the grids of Appendix H.1, and Appendices D, E and F, against the
numbers printed in the paper (tests/lamb_paper_printed.py). Nothing trains."""

import importlib
import itertools
import re

import pytest

from configs import default
from configs import lamb_resnet
from configs.lamb_paper import table3
from tests import lamb_paper_printed as printed
from train.experiments import search
from train.mlperf import rules
from train.run import budget

IMAGENET_TRAIN = 1_281_167
WITH_VARIANTS = ['table3', 'nesterov_lamb', 'lamb_ablations']
# Each grid file and the printed tables it runs.
GRIDS = {'grid_table9_adagrad': (9,), 'grid_table10_adagrad_goyal': (10,),
         'grid_table11_adam': (11,), 'grid_table12_adam_goyal': (12,),
         'grid_tables13_16_adamw_l2': (13, 14, 15, 16),
         'grid_tables17_20_adamw': (17, 18, 19, 20),
         'grid_tables21_22_adamw_goyal_l2': (21, 22), 'grid_table23_adamw_goyal': (23,),
         'grid_tables24_25_adamw_goyal': (24, 25)}
# Table 3's rows: the variant of table3.py, Table 3's column, and the printed
# tables whose best point the paper reports there (AdamW's: every tuning set).
TABLE_3_ROWS = {'adagrad': ('adagrad', (9,)), 'adagrad_goyal': ('adagrad+', (10,)),
                'adam': ('adam', (11,)), 'adam_goyal': ('adam+', (12,)),
                'adamw': ('adamw', (13, 14, 15, 16, 17, 18, 19, 20)),
                'adamw_goyal': ('adamw+', (21, 22, 23, 24, 25))}
# The AdamW tables' L2 column: the pipeline's L2, or none.
PRINTED_L2 = {'default (0.01)': 0.01, 'disable': 0.0}


def _module(name: str):
  return importlib.import_module(f'configs.lamb_paper.{name}')


def _rows(tables: tuple[int, ...]) -> list[dict]:
  """The printed rows of `tables`: lr, weight decay (AdamW), L2 (AdamW) and accuracy."""
  rows = []
  for table in tables:
    for line in printed.TABLES[table].strip().splitlines():
      cells = line.split('\t')
      rows.append({'lr': float(cells[0]), 'accuracy': float(cells[-1]),
                   'weight_decay': float(cells[1]) if len(cells) == 4 else None,
                   'l2': PRINTED_L2[cells[2]] if len(cells) == 4 else None})
  return rows


def _best(tables: tuple[int, ...]) -> dict:
  return max(_rows(tables), key=lambda row: row['accuracy'])


def _all_configs():
  for name in WITH_VARIANTS:
    yield name, ''
    for variant in _module(name).VARIANTS:
      yield name, variant
  for name in GRIDS:
    yield name, ''


def _config(name: str, variant: str = ''):
  module = _module(name)
  return module.get_config(variant) if variant else module.get_config()


@pytest.mark.parametrize('name,variant', list(_all_configs()))
def test_config_validates_and_documents_itself(name, variant):
  config = _config(name, variant)
  rules.validate_run_config(config, num_devices=1, check_data=False)
  doc = _module(name).__doc__
  assert f'python main.py --config=configs/lamb_paper/{name}.py' in doc
  assert 'Budget in steps' in doc or 'Budget in epochs' in doc
  assert re.search(r'^Expected\b', doc, re.M), 'an Expected line: what a run gives'
  if variant:
    assert re.search(rf'\b{re.escape(variant)}\b', doc.partition('Variants')[2]), variant
  assert set(config.to_dict()) == set(default.get_config().to_dict())


@pytest.mark.parametrize('variant', sorted(TABLE_3_ROWS))
def test_table_3_rows_are_the_printed_best_points(variant):
  column, tables = TABLE_3_ROWS[variant]
  best = _best(tables)
  # Table 3 prints the best run of the row's tuning tables, to 4 places.
  assert round(best['accuracy'], 4) == printed.TABLE_3[column]
  config = table3.get_config(variant)
  assert config.lr.peak == best['lr']
  if best['weight_decay'] is not None:
    assert config.optimizer.name == 'adamw'
    assert (config.optimizer.weight_decay, config.optimizer.l2) == (best['weight_decay'],
                                                                   best['l2'])


def test_table_3_docstring_gives_every_printed_value():
  doc = table3.__doc__.partition('Variants')[2]
  lines = {'(none)': printed.TABLE_3['lamb'],
           'momentum_goyal': printed.TABLE_3['momentum'],
           **{variant: printed.TABLE_3[column] for variant, (column, _) in TABLE_3_ROWS.items()}}
  for variant, value in lines.items():
    assert re.search(rf'^  {re.escape(variant)} .*-> {value:.4f}', doc, re.M), variant
  assert set(lines) - {'(none)'} == set(table3.VARIANTS)


def _lr_at_epoch(config, epoch: float) -> float:
  """The rate at the step nearest `epoch`, at ImageNet's 78.25 steps per epoch at 16K."""
  step = round(epoch * budget.resolve_budget(config, IMAGENET_TRAIN).steps_per_epoch)
  return float(budget.learning_rate_fn(config, IMAGENET_TRAIN)(step))


def test_table_3_schedules():
  for variant in ('adagrad', 'adam', 'adamw'):
    config = table3.get_config(variant)
    assert budget.resolve_budget(config, IMAGENET_TRAIN).num_train_steps == 7_038
    for epoch in (0, 29, 31, 89.9):  # A constant rate.
      assert _lr_at_epoch(config, epoch) == pytest.approx(config.lr.peak, rel=1e-6)
  for variant in ('adagrad_goyal', 'adam_goyal', 'adamw_goyal'):
    config = table3.get_config(variant)
    peak = config.lr.peak
    # 5 warmup epochs from 0, then x0.1 at epochs 30, 60 and 80.
    expected = {0: 0.0, 2: peak * round(2 * 78.25) / (5 * 78.25), 5: peak, 29.5: peak,
                30.5: peak / 10, 59.5: peak / 10, 60.5: peak / 100, 80.5: peak / 1000,
                89.9: peak / 1000}
    for epoch, rate in expected.items():
      assert _lr_at_epoch(config, epoch) == pytest.approx(rate, rel=1e-3, abs=1e-9), (variant,
                                                                                      epoch)
  momentum = table3.get_config('momentum_goyal')
  # Goyal et al.: from 0.1 to 0.1 per 256 images (6.4 at 16K) in 5 epochs.
  assert _lr_at_epoch(momentum, 0) == pytest.approx(0.1)
  assert _lr_at_epoch(momentum, 10) == pytest.approx(6.4)
  assert _lr_at_epoch(momentum, 65) == pytest.approx(0.064)
  assert (momentum.optimizer.momentum, momentum.optimizer.l2) == (0.9, 1e-4)


def test_table_3_lamb_is_table_5_at_16k():
  ours = table3.get_config().to_dict()
  table_5 = lamb_resnet.get_config('batch_16k').to_dict()
  differing = {key for key in ours if ours[key] != table_5[key]}
  assert differing == {'num_train_steps', 'num_epochs', 'target_accuracy'}
  assert (ours['num_train_steps'], ours['target_accuracy']) == (7_038, 0.763)


@pytest.mark.parametrize('name', sorted(GRIDS))
def test_grids_are_the_printed_tables(name):
  module = _module(name)
  grid = module.get_search()
  assert (len(grid.stages), grid.confirm_seeds) == (1, 0)
  stage = grid.stages[0]
  assert (stage.mode, stage.seeds_per_trial) == ('grid', 1)
  rows = _rows(GRIDS[name])
  axes = {axis.key: axis.values for axis in stage.space}
  printed_axes = {'lr.peak': [row['lr'] for row in rows]}
  if rows[0]['weight_decay'] is not None:
    printed_axes['optimizer.weight_decay'] = [row['weight_decay'] for row in rows]
  # Each axis's values in the printed order; every printed point in the grid, and
  # no other.
  assert axes == {key: tuple(dict.fromkeys(values)) for key, values in printed_axes.items()}
  points = set(itertools.product(*axes.values()))
  assert points == set(zip(*printed_axes.values())) and len(rows) == len(points)
  config = module.get_config()
  search.check_space(stage.space, config)
  trials = []
  for point in points:  # Every trial is a valid run.
    trial = search.apply_params(config, dict(zip(axes, point)))
    rules.validate_run_config(trial, num_devices=1, check_data=False)
    trials.append(trial)
  if rows[0]['l2'] is not None:  # AdamW's: each trial has its printed L2.
    printed_l2 = {(row['lr'], row['weight_decay']): row['l2'] for row in rows}
    assert {(trial.lr.peak, trial.optimizer.weight_decay): trial.optimizer.l2
            for trial in trials} == printed_l2


@pytest.mark.parametrize('name', sorted(GRIDS))
def test_grid_base_is_its_best_point(name):
  module = _module(name)
  best = _best(GRIDS[name])
  config = module.get_config()
  assert config.lr.peak == best['lr']
  if best['weight_decay'] is not None:
    assert (config.optimizer.weight_decay, config.optimizer.l2) == (best['weight_decay'],
                                                                   best['l2'])
  assert f'{best["accuracy"]:.4f} top-1' in ' '.join(module.__doc__.split())


def test_nesterov_lamb_uses_dozat_settings():
  module = _module('nesterov_lamb')
  base = module.get_config().to_dict()
  assert base == lamb_resnet.get_config('batch_32k').to_dict()
  for name in ('n_lamb', 'nn_lamb'):
    config = module.get_config(name)
    assert config.optimizer.name == name
    assert (config.optimizer.b1, config.optimizer.b2, config.optimizer.eps) == (0.975, 0.999, 1e-8)
    assert config.global_batch_size == 32_768
    changed = {key for key in base['optimizer']
               if base['optimizer'][key] != config.optimizer.to_dict()[key]}
    assert changed == {'name', 'b1', 'eps'}  # b2 is LAMB's 0.999 already.


def test_lamb_ablations_change_one_thing():
  module = _module('lamb_ablations')
  base = module.get_config().to_dict()
  assert base == lamb_resnet.get_config('batch_32k').to_dict()
  expected = {'no_bias_correction': ('bias_correction', False),
              'norm_l1': ('trust_ratio_norm', 'l1'), 'norm_linf': ('trust_ratio_norm', 'linf')}
  assert set(expected) == set(module.VARIANTS)
  for variant, (key, value) in expected.items():
    ablated = module.get_config(variant).to_dict()
    diff = {(group, k): v for group in base if isinstance(base[group], dict)
            for k, v in ablated[group].items() if base[group][k] != v}
    assert diff == {('optimizer', key): value}, variant
