"""The budget arithmetic: MLPerf epochs, warmup in epochs, batch-size scaling."""

import pathlib
import subprocess
import sys

import ml_collections
import pytest

from configs import embedded_lars
from train.run import budget

_REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
IMAGENET = 1_281_167
# LAMB paper, Table 5: batch size -> (learning rate, warmup epochs) with sqrt LR
# scaling and linear-epoch warmup from 0.04 and 20 epochs at 32K.
LAMB_TABLE_5 = {
    512: (4 / (2**3.0 * 100), 0.3125),
    1024: (4 / (2**2.5 * 100), 0.625),
    2048: (4 / (2**2.0 * 100), 1.25),
    4096: (4 / (2**1.5 * 100), 2.5),
    8192: (4 / (2**1.0 * 100), 5.0),
    16384: (4 / (2**0.5 * 100), 10.0),
    32768: (4 / (2**0.0 * 100), 20.0),
}
# Steps per block of 4 epochs, ceil(4 * 1,281,167 / B), worked out by hand.
STEPS_PER_BLOCK = {512: 10_010, 1024: 5005, 2048: 2503, 3264: 1571, 4096: 1252,
                   8192: 626, 16384: 313, 32768: 157}


def _imagenet_config(batch_size: int, **overrides) -> ml_collections.ConfigDict:
  config = embedded_lars.get_config()
  config.dataset = 'imagenet2012'
  config.global_batch_size = batch_size
  for key, value in overrides.items():
    node, _, name = key.rpartition('.')
    (config.lr if node == 'lr' else config)[name] = value
  return config


def _mlperf_lars(batch_size: int = 32_768) -> ml_collections.ConfigDict:
  return _imagenet_config(batch_size, num_train_steps=0, num_epochs=64.0,
                          **{'lr.warmup_steps': 0.0, 'lr.warmup_epochs': 18.0})


def _lamb(batch_size: int) -> ml_collections.ConfigDict:
  return _imagenet_config(
      batch_size, num_train_steps=0, num_epochs=90.0,
      **{'lr.peak': 0.04, 'lr.final': 0.0, 'lr.decay_power': 1.0,
         'lr.warmup_steps': 0.0, 'lr.warmup_epochs': 20.0,
         'lr.batch_scaling': 'sqrt', 'lr.warmup_batch_scaling': 'linear',
         'lr.reference_batch_size': 32_768})


def test_steps_per_epoch_imagenet_32k():
  assert budget.steps_per_epoch(IMAGENET, 32_768, 4) == 39.25  # 157 steps per block.
  assert budget.steps_per_epoch(IMAGENET, 32_768, 1) == 40.0
  assert budget.steps_per_epoch(IMAGENET, 32_768, 2) == 39.5  # ceil(78.2) / 2.


@pytest.mark.parametrize('batch_size', sorted(STEPS_PER_BLOCK))
def test_steps_per_epoch_rounds_each_block_up(batch_size):
  assert budget.steps_per_epoch(IMAGENET, batch_size, 4) == STEPS_PER_BLOCK[batch_size] / 4


def test_steps_per_epoch_exact_division():
  assert budget.steps_per_epoch(1000, 100, 4) == 10.0
  assert budget.steps_per_epoch(1000, 1000, 1) == 1.0


@pytest.mark.parametrize('args', [(0, 32, 4), (100, 0, 4), (100, 32, 0), (100, 32.0, 4)])
def test_steps_per_epoch_rejects_bad_arguments(args):
  with pytest.raises(ValueError, match='must be an integer > 0'):
    budget.steps_per_epoch(*args)


def test_mlperf_lars_budget_in_epochs():
  """64 epochs of 39.25 steps = 2,512 steps; 18 warmup epochs = 706.5 steps."""
  b = budget.resolve_budget(_mlperf_lars())
  assert b == budget.Budget(
      num_train_examples=IMAGENET, steps_per_epoch=39.25, num_train_steps=2512,
      num_epochs=64.0, warmup_steps=706.5, warmup_epochs=18.0, decay_steps=2512.0,
      peak_learning_rate=10.0, eval_every_steps=b.eval_every_steps)
  assert isinstance(b.num_train_steps, int)


def test_eval_cadence_in_steps_or_epochs():
  config = _mlperf_lars()
  assert budget.resolve_budget(config).eval_every_steps == config.eval_every_steps
  config.eval_every_steps = 0
  config.eval_every_epochs = 4.0
  assert budget.resolve_budget(config).eval_every_steps == 157  # One MLPerf block.
  config.eval_every_epochs = 1.0
  assert budget.resolve_budget(config).eval_every_steps == 40  # 39.25 rounded up.
  config.eval_every_steps = 10
  with pytest.raises(ValueError, match='eval_every_epochs=1.0 and eval_every_steps=10'):
    budget.resolve_budget(config)


def test_budget_follows_batch_size_override():
  """The steps are derived, so a batch override on the command line rescales them."""
  b = budget.resolve_budget(_mlperf_lars(3264))
  assert b.steps_per_epoch == 392.75
  assert b.num_train_steps == 64 // 4 * 1571
  assert b.warmup_steps == 18 * 392.75


@pytest.mark.parametrize('batch_size', sorted(LAMB_TABLE_5))
def test_lamb_table_5(batch_size):
  """90 epochs (22.5 blocks: the last half block rounded up), sqrt LR, linear-epoch warmup."""
  peak, warmup_epochs = LAMB_TABLE_5[batch_size]
  b = budget.resolve_budget(_lamb(batch_size))
  per_block = STEPS_PER_BLOCK[batch_size]
  assert b.steps_per_epoch == per_block / 4
  assert b.num_train_steps == 22 * per_block + -(-per_block // 2)
  assert b.peak_learning_rate == pytest.approx(peak, rel=1e-12)
  assert budget.peak_learning_rate(_lamb(batch_size)) == pytest.approx(peak, rel=1e-12)
  assert b.warmup_epochs == pytest.approx(warmup_epochs, rel=1e-12)
  assert b.warmup_steps == pytest.approx(warmup_epochs * per_block / 4, rel=1e-12)
  assert b.decay_steps == b.num_train_steps


def test_lamb_512_by_hand():
  b = budget.resolve_budget(_lamb(512))
  assert b.peak_learning_rate == pytest.approx(0.005, rel=1e-12)
  assert b.warmup_epochs == 0.3125
  assert b.warmup_steps == 0.3125 * 2502.5
  assert b.num_train_steps == 225_225  # 22.5 blocks of 10,010: a whole number.


def test_epochs_inside_a_block_round_up():
  config = _mlperf_lars()
  config.num_epochs = 2.5  # 2.5 * 39.25 = 98.125 steps.
  config.lr.warmup_epochs = 1.0
  b = budget.resolve_budget(config)
  assert b.num_train_steps == 99
  assert b.num_epochs == 99 / 39.25
  config.num_epochs = 90.0  # 3,532.5 steps.
  assert budget.resolve_budget(config).num_train_steps == 3533


def test_whole_epochs_do_not_round_up_on_float_error():
  # 7 steps per block of 3 epochs: 27 epochs * (7 / 3) is 63.00000000000001 in
  # floats, yet 9 whole blocks are exactly 63 steps.
  config = embedded_lars.get_config()
  config.num_train_steps, config.num_epochs, config.epochs_per_block = 0, 27.0, 3
  config.global_batch_size = 100
  config.lr.warmup_steps = 1.0
  b = budget.resolve_budget(config, num_train_examples=233)  # ceil(699 / 100) = 7.
  assert b.steps_per_epoch == 7 / 3
  assert b.num_train_steps == 63


@pytest.mark.parametrize('batch_scaling,peak', [('none', 10.0), ('sqrt', 20.0),
                                                ('linear', 40.0)])
def test_peak_learning_rate(batch_scaling, peak):
  config = embedded_lars.get_config()
  config.global_batch_size, config.lr.reference_batch_size = 1024, 256
  config.lr.batch_scaling = batch_scaling
  assert budget.peak_learning_rate(config) == peak
  assert budget.resolve_budget(config).peak_learning_rate == peak


def test_budget_in_steps():
  config = embedded_lars.get_config()  # 400 steps, 50 warmup steps, embedded_shapes.
  b = budget.resolve_budget(config)
  assert b.num_train_examples == 10_000
  assert b.steps_per_epoch == 78.25  # ceil(4 * 10,000 / 128) / 4 = 313 / 4.
  assert b.num_train_steps == 400
  assert b.num_epochs == 400 / 78.25
  assert b.warmup_steps == 50.0
  assert b.warmup_epochs == 50 / 78.25
  assert b.decay_steps == 400.0
  assert b.peak_learning_rate == 10.0


def test_steps_and_epochs_give_the_same_budget():
  in_epochs = budget.resolve_budget(_mlperf_lars())
  in_steps = _imagenet_config(32_768, num_train_steps=2512,
                              **{'lr.warmup_steps': 706.5})
  assert budget.resolve_budget(in_steps) == in_epochs


def test_decay_steps_override():
  config = _mlperf_lars()
  config.lr.decay_steps = 2400.0
  b = budget.resolve_budget(config)
  assert (b.num_train_steps, b.decay_steps) == (2512, 2400.0)


def test_warmup_in_epochs_without_batch_scaling():
  config = _mlperf_lars(16_384)
  b = budget.resolve_budget(config)
  assert b.warmup_epochs == 18.0
  assert b.warmup_steps == 18 * 78.25


@pytest.mark.parametrize('overrides,keys', [
    ({'num_epochs': 64.0}, 'num_epochs.*num_train_steps'),  # num_train_steps still 400.
    ({'lr.warmup_epochs': 2.0}, 'lr.warmup_epochs.*lr.warmup_steps'),  # Still 50 steps.
    ({'lr.warmup_batch_scaling': 'linear'}, 'lr.warmup_batch_scaling.*lr.warmup_epochs'),
    ({'lr.batch_scaling': 'cubic'}, 'lr.batch_scaling.*linear, none, sqrt'),
    ({'lr.warmup_batch_scaling': 'sqrt', 'lr.warmup_epochs': 1.0, 'lr.warmup_steps': 0.0},
     'lr.warmup_batch_scaling.*linear, none'),
    ({'num_train_steps': 0}, 'num_train_steps'),
    ({'num_train_steps': 0, 'num_epochs': -1.0}, 'num_epochs'),
    ({'lr.warmup_steps': 600.0}, 'lr.warmup_steps'),
    ({'lr.warmup_steps': 0.0, 'lr.warmup_epochs': 8.0}, 'lr.warmup_epochs'),  # 626 steps.
    ({'lr.decay_steps': 40.0}, 'lr.decay_steps'),
])
def test_inconsistent_keys_raise(overrides, keys):
  config = embedded_lars.get_config()
  for key, value in overrides.items():
    node, _, name = key.rpartition('.')
    (config.lr if node == 'lr' else config)[name] = value
  with pytest.raises(ValueError, match=keys) as error:
    budget.resolve_budget(config)
  assert '\n' not in str(error.value)


def test_unknown_dataset_raises():
  config = embedded_lars.get_config()
  config.dataset = 'cifar10'
  with pytest.raises(ValueError, match='imagenet2012'):
    budget.resolve_budget(config)


def test_imports_no_tensorflow():
  code = ('import sys; import train.run.budget; '
          'assert "tensorflow" not in sys.modules, "tensorflow imported"')
  subprocess.run([sys.executable, '-c', code], check=True, cwd=_REPO_ROOT)
