"""Short real runs, from a config to the files of a run, on the tiny embedded data."""

import glob
import json
import os
import subprocess
import sys

import pytest

from configs import embedded_lars
from tests import test_record
from train.common import config_dicts
from train.run import loop

# Slow tier: each test is a real training run (40-90 s).
pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY_OVERRIDES = {
    'dataset': 'embedded_shapes/tiny',
    'model.width': 8,
    'global_batch_size': 64,
    'eval_batch_size': 64,  # 200 eval examples: the last batch is padded.
    'num_train_steps': 12,
    'eval_every_steps': 6,
    'log_every_steps': 3,
    'lr.warmup_steps': 3.0,
    'stop_at_target': True,
}


def _tiny_config(data_dir, **overrides):
  return config_dicts.with_overrides(
      embedded_lars.get_config(), {**TINY_OVERRIDES, **overrides, 'data_dir': str(data_dir)})


def _mllog_events(path):
  events = []
  with open(path) as f:
    for line in f:
      assert line.startswith(':::MLLOG '), line
      events.append(json.loads(line[len(':::MLLOG '):]))
  return events


def _check_run_files(workdir, config):
  with open(os.path.join(workdir, 'result.json')) as f:
    result = json.load(f)
  with open(os.path.join(workdir, 'config.json')) as f:
    assert json.load(f) == json.loads(config.to_json())
  assert glob.glob(os.path.join(workdir, 'events.out.tfevents.*'))
  # The run's hyperparameters, for TensorBoard's HParams view across runs.
  hparams = test_record.hparams_written(workdir)
  assert hparams['seed'] == config.seed
  assert hparams['global_batch_size'] == config.global_batch_size
  assert hparams['target_accuracy'] == pytest.approx(config.target_accuracy)

  # result.json agrees with its own evals.
  evals = result['evals']
  assert [e['step'] for e in evals] == sorted(e['step'] for e in evals)
  assert result['final_eval_accuracy'] == evals[-1]['accuracy']
  reached = [e for e in evals if e['accuracy'] >= config.target_accuracy]
  assert result['reached_target'] == bool(reached)
  if reached:
    assert result['status'] == 'success'
    assert result['steps_to_target'] == reached[0]['step']
    assert result['seconds_to_target'] == reached[0]['seconds']
  else:
    assert result['status'] == 'aborted'
    assert result['steps_to_target'] is None and result['seconds_to_target'] is None
  for e in evals:
    assert 0.0 <= e['accuracy'] <= 1.0 and e['loss'] > 0
    assert e['epoch'] == pytest.approx(e['step'] * config.global_batch_size / 512)
  assert result['images_per_second'] > 0
  assert result['seed'] == config.seed
  assert result['global_batch_size'] == config.global_batch_size

  # ... and with mlperf.log.
  events = _mllog_events(os.path.join(workdir, 'mlperf.log'))
  keys = [e['key'] for e in events]
  for key in ['cache_clear', 'init_start', 'init_stop', 'run_start', 'run_stop',
              'block_start', 'block_stop', 'eval_start', 'eval_stop', 'seed',
              'global_batch_size', 'opt_name', 'train_samples', 'eval_samples']:
    assert key in keys, key
  assert keys.index('init_stop') < keys.index('run_start') < keys.index('run_stop')
  logged = [e for e in events if e['key'] == 'eval_accuracy']
  assert [e['value'] for e in logged] == [e['accuracy'] for e in evals]
  assert [e['metadata']['epoch_num'] for e in logged] == [e['epoch'] for e in evals]
  run_stop = next(e for e in events if e['key'] == 'run_stop')
  assert run_stop['metadata']['status'] == result['status']
  assert next(e for e in events if e['key'] == 'eval_samples')['value'] == 200
  return result


def test_main_trains_and_writes_every_file(tmp_path, tiny_data_dir):
  """The command line: a run that stops at a reachable target, logging the LARS
  trust ratios at steps 2 and 5 (which changes none of its numbers)."""
  workdir = tmp_path / 'run'
  args = [f'--config.{k}={v}' for k, v in TINY_OVERRIDES.items()]
  args += [f'--config.data_dir={tiny_data_dir}', '--config.target_accuracy=0.05',
           '--config.trust_ratio_log_steps=(2,5)', f'--workdir={workdir}']
  proc = subprocess.run([sys.executable, os.path.join(REPO, 'main.py'), *args],
                        capture_output=True, text=True, timeout=300, cwd=REPO)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert f'results in {workdir}' in proc.stdout
  assert 'images/s' in proc.stderr  # Progress lines on the console.
  config = _tiny_config(tiny_data_dir, target_accuracy=0.05, trust_ratio_log_steps=(2, 5))
  result = _check_run_files(str(workdir), config)
  assert result['status'] == 'success'
  assert result['steps_to_target'] == 6  # The first eval reaches 5%.
  assert len(result['evals']) == 1
  with open(workdir / 'trust_ratios.json') as f:
    logged = json.load(f)
  assert logged['steps'] == [2, 5]
  assert 'conv_init/kernel' in logged['trust_ratios']  # LARS's kernels; BN has none.
  assert all(len(r) == 2 and min(r) > 0 for r in logged['trust_ratios'].values())
  tags = test_record.scalar_tags_written(str(workdir))
  assert {f'trust_ratio/{name}' for name in logged['trust_ratios']} <= tags
  assert (workdir / 'trust_ratios.png').stat().st_size > 0


def test_run_without_reaching_target_trains_the_whole_budget(tmp_path, tiny_data_dir):
  config = _tiny_config(tiny_data_dir, target_accuracy=0.999)
  result = loop.train_and_evaluate(config, str(tmp_path / 'run'))
  _check_run_files(str(tmp_path / 'run'), config)
  assert result['status'] == 'aborted'
  assert [e['step'] for e in result['evals']] == [6, 12]
  assert result['steps_completed'] == 12
