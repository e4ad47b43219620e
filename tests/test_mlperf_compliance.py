"""MLPerf logs that the official checkers accept (mlperf-logging, ruleset 4.0.0).

One short closed-division LARS run on the embedded data, trained once through
the command line (a module fixture), makes the log most tests here read: the
compliance checker's SUCCESS on it, its failures on edited copies, the result
summarizer's score of a 5-run study made from it. The rest checks logs written
from configs without training, the closed-division validation, the eval
cadence and the reference convergence points (RCPs).
"""

import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from fractions import Fraction

import ml_collections
import pytest
from mlperf_logging.compliance_checker import mlp_compliance
from mlperf_logging.mllog import constants as mlc
from mlperf_logging.result_summarizer import result_summarizer
from mlperf_logging.system_desc_checker import system_desc_checker

from configs import mlperf_lars_32k
from configs import nesterov_b
from train.common import files
from train.experiments import plan as plan_lib
from train.experiments import study
from train.mlperf import results
from train.mlperf import rules
from train.run import budget
from train.run import mllog
from train.run import record
from train.run import validation

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RULESET = mllog.RULESET
TOKEN = ':::MLLOG '

# The closed LARS recipe at embedded scale: embedded_lars.py's optimizer, with
# the closed rules' target and cadence: 6 epochs (470 steps), evals every 4
# epochs with offset 1 (after epochs 2 and 6), and a warmup of 100 steps instead
# of 50, which keeps every seed stable. Calibrated on 2026-11-24 on 2 CPU cores
# (XLA optimisation level 1): seeds 0-7 ended at 0.808, 0.806, 0.822, 0.791,
# 0.789, 0.815, 0.767 and 0.852 (mean 0.81, all above 0.759); with only 5 epochs,
# or 50 warmup steps, a third or more of the seeds ended below 0.759. Heavy ball
# on biases and BN, the reference decay length and the seed-fixed data order
# (2026-12-02) changed every seed's numbers; SEED still reaches 0.759 (this
# file passes), the other seeds were not measured again.
EPOCHS = 6.0
EVAL_OFFSET = 1
WARMUP_STEPS = 100.0
SEED = 7  # 0.852 at calibration: the widest margin, should round-off send it elsewhere.
CLOSED_LARS_CONFIG = '''"""embedded_lars.py in the MLPerf closed division: target 75.9%, 4-epoch cadence."""

from configs import embedded_lars


def get_config():
  config = embedded_lars.get_config()
  config.data_dir = {data_dir!r}
  config.seed = {seed}
  config.mlperf.submission_division = 'closed'
  config.target_accuracy = 0.759
  config.stop_at_target = True
  config.num_train_steps = 0
  config.num_epochs = {epochs}
  config.eval_every_steps = 0
  config.eval_every_epochs = 4.0
  config.eval_offset_epochs = {offset}
  config.lr.warmup_steps = {warmup}
  config.log_every_steps = 100
  return config
'''


def _load_config(path: str) -> ml_collections.ConfigDict:
  spec = importlib.util.spec_from_file_location('closed_lars_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def _events(path: str) -> list[dict]:
  with open(path) as f:
    return [json.loads(line[len(TOKEN):]) for line in f if line.startswith(TOKEN)]


def _write_events(path: str, events: list[dict]) -> None:
  with open(path, 'w') as f:
    for event in events:
      f.write(TOKEN + json.dumps(event) + '\n')


def _metadata(event: dict) -> dict:
  """An event's metadata without the caller's file and line."""
  return {k: v for k, v in event['metadata'].items() if k not in ('file', 'lineno')}


def _values(events: list[dict]) -> dict:
  return {e['key']: e['value'] for e in events if e['event_type'] == 'POINT_IN_TIME'}


def _check(path: str) -> tuple[bool, str]:
  """The compliance checker's verdict through its Python API, and its messages."""
  checker = mlp_compliance.make_checker('training', RULESET, quiet=True, werror=False)
  try:
    valid = checker.check_file(path, f'training_{RULESET}/common.yaml')
  except FileNotFoundError as e:  # Rules it has no file for (opt_name 'nesterov').
    valid = False
    checker.put_message(str(e))
  finally:
    mlp_compliance.enqueued_configs.clear()  # A module global it may leave filled.
  return valid, ' '.join([*checker.overwritable.values(), *checker.not_overwritable])


@pytest.fixture(scope='module')
def lars_run(tmp_path_factory, tiny_data_dir) -> dict:
  """The closed LARS run, by `python main.py`: its config, result.json and log.

  About 30 s on 2 quiet cores once the embedded data is built (conftest.py's
  tiny_build): compiling 7 s, training and evaluating 23 s.
  """
  root = tmp_path_factory.mktemp('closed_lars')
  config_file = root / 'closed_lars.py'
  config_file.write_text(CLOSED_LARS_CONFIG.format(
      data_dir=tiny_data_dir, seed=SEED, epochs=EPOCHS, offset=EVAL_OFFSET,
      warmup=WARMUP_STEPS))
  workdir = root / 'run'
  # The suite compiles at XLA optimisation level 0 (conftest.py), which runs
  # this 470-step training several times slower; level 1 compiles about as fast
  # and runs at nearly full speed.
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             XLA_FLAGS='--xla_backend_optimization_level=1')
  proc = subprocess.run(
      [sys.executable, os.path.join(REPO, 'main.py'), f'--config={config_file}',
       f'--workdir={workdir}'], capture_output=True, text=True, cwd=REPO, env=env,
      timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(workdir / 'result.json') as f:
    result = json.load(f)
  return {'config_file': str(config_file), 'config': _load_config(str(config_file)),
          'result': result, 'log': str(workdir / 'mlperf.log')}


@pytest.fixture(scope='module')
def checker_output(lars_run, tmp_path_factory) -> str:
  """What `python -m mlperf_logging.compliance_checker` prints on the run's log."""
  cwd = tmp_path_factory.mktemp('checker')
  proc = subprocess.run(
      [sys.executable, '-m', 'mlperf_logging.compliance_checker', '--usage', 'training',
       '--ruleset', RULESET, '--log_output', str(cwd / 'checker.log'), lars_run['log']],
      capture_output=True, text=True, cwd=cwd, timeout=120)
  return f'exit status {proc.returncode}\n{proc.stdout}{proc.stderr}'


# The log of a real run.

@pytest.mark.slow  # Reads lars_run: a 470-step closed LARS run by main.py (about 80 s).
def test_compliance_checker_prints_success(lars_run, checker_output):
  assert lars_run['result']['status'] == 'success', lars_run['result']['evals']
  assert 'exit status 0' in checker_output, checker_output
  assert 'SUCCESS' in checker_output, checker_output
  # The closed LARS rules ran: 4.0.0's, which take LARS's keys from 3.1.0.
  for rule_file in ('training_4.0.0/closed_common.yaml', 'training_4.0.0/closed_resnet.yaml',
                    'training_3.1.0/closed_resnet_lars.yaml'):
    assert rule_file in checker_output, checker_output


@pytest.mark.slow  # Reads lars_run: a 470-step closed LARS run by main.py (about 80 s).
def test_log_records_the_run(lars_run):
  config, result = lars_run['config'], lars_run['result']
  events = _events(lars_run['log'])
  keys = [e['key'] for e in events]
  assert keys[:2] == [mlc.CACHE_CLEAR, mlc.INIT_START]
  assert keys.index(mlc.INIT_STOP) < keys.index(mlc.RUN_START) < keys.index(mlc.BLOCK_START)
  assert keys[-1] == mlc.RUN_STOP and keys.count(mlc.RUN_STOP) == 1
  values = _values(events)
  run_budget = budget.resolve_budget(config)
  assert run_budget.num_train_steps == 470
  assert values == {
      mlc.CACHE_CLEAR: True,
      mlc.SUBMISSION_BENCHMARK: 'resnet',
      mlc.SUBMISSION_ORG: 'large-batch-harness',
      mlc.SUBMISSION_DIVISION: 'closed',
      mlc.SUBMISSION_STATUS: 'research',
      mlc.SUBMISSION_PLATFORM: 'unknown',
      mlc.SEED: SEED,
      mlc.GLOBAL_BATCH_SIZE: 128,
      mlc.GRADIENT_ACCUMULATION_STEPS: 1,
      mlc.TRAIN_SAMPLES: 10_000,
      mlc.EVAL_SAMPLES: 1_000,
      mlc.MODEL_BN_SPAN: 64,
      mlc.OPT_NAME: 'lars',
      mlc.LARS_OPT_BASE_LEARNING_RATE: 10.0,
      mlc.LARS_OPT_END_LR: 1e-4,
      mlc.LARS_OPT_LR_DECAY_POLY_POWER: 2,
      mlc.LARS_OPT_LR_DECAY_STEPS: 470 - 100 + 1,  # T - t_warmup + 1.
      mlc.LARS_OPT_LEARNING_RATE_WARMUP_EPOCHS: 100 / 78.25,
      mlc.LARS_OPT_MOMENTUM: 0.9,
      mlc.LARS_OPT_WEIGHT_DECAY: 1e-4,
      mlc.LARS_EPSILON: 0.0,
      mlc.EVAL_ACCURACY: result['evals'][-1]['accuracy'],
  }
  # Whole epochs, numbered from 1: blocks of epochs 1-2 and 3-6, evals after 2 and 6.
  blocks = [_metadata(e) for e in events if e['key'] == mlc.BLOCK_START]
  assert blocks == [{'first_epoch_num': 1, 'epoch_count': 2},
                    {'first_epoch_num': 3, 'epoch_count': 4}][:len(blocks)]
  logged = [e for e in events if e['key'] == mlc.EVAL_ACCURACY]
  assert [e['metadata']['epoch_num'] for e in logged] == [2, 6][:len(logged)]
  assert [e['value'] for e in logged] == [e['accuracy'] for e in result['evals']]
  assert [e['step'] for e in result['evals']] == [157, 470][:len(logged)]
  assert result['epochs_to_target'] == logged[-1]['metadata']['epoch_num']
  # seconds_to_target is the logged interval from run_start to run_stop.
  times = {e['key']: e['time_ms'] for e in events}
  logged_seconds = (times[mlc.RUN_STOP] - times[mlc.RUN_START]) / 1000
  assert result['seconds_to_target'] == pytest.approx(logged_seconds, abs=0.05)


def _edit(key: str, change):
  """An edit of a log: `change(event)` returns the new event, or None to drop it."""
  def apply(events: list[dict]) -> list[dict]:
    edited = [change(dict(e)) if e['key'] == key else e for e in events]
    return [e for e in edited if e is not None]
  return apply


def _set_value(value):
  return lambda e: {**e, 'value': value}


@pytest.mark.slow  # Reads lars_run: a 470-step closed LARS run by main.py (about 80 s).
@pytest.mark.parametrize('edit,message', [
    (_edit(mlc.LARS_EPSILON, _set_value(1e-9)), 'lars_epsilon'),
    (_edit(mlc.LARS_OPT_END_LR, _set_value(0.0)), 'lars_opt_end_learning_rate'),
    (_edit(mlc.LARS_OPT_LR_DECAY_POLY_POWER, _set_value(1)),
     'lars_opt_learning_rate_decay_poly_power'),
    (_edit(mlc.LARS_OPT_WEIGHT_DECAY, _set_value(3e-4)), 'lars_opt_weight_decay'),
    (_edit(mlc.LARS_OPT_WEIGHT_DECAY, lambda e: None), 'lars_opt_weight_decay'),
    (_edit(mlc.OPT_NAME, _set_value('nesterov')), 'opt_name'),
    (_edit(mlc.EVAL_ACCURACY, _set_value(0.75)), 'eval_accuracy'),
    (_edit(mlc.RUN_STOP, lambda e: None), 'run_stop'),
    (_edit(mlc.CACHE_CLEAR, lambda e: None), 'cache_clear'),
])
def test_checker_fails_on_a_wrong_log(lars_run, tmp_path, edit, message):
  """The checker is strict on this log: the same log with one wrong key fails."""
  path = str(tmp_path / 'mlperf.log')
  shutil.copyfile(lars_run['log'], path)
  assert _check(path) == (True, '')
  _write_events(path, edit(_events(lars_run['log'])))
  valid, messages = _check(path)
  assert not valid
  assert message in messages


# Studies: the results folder and the summarizer's score.

def _variant(events: list[dict], seed: int, time_factor: float | None) -> list[dict]:
  """The run's log as another seed's: its clock stretched by `time_factor`, or,
  for None, missing the target (evals below 0.759, run_stop aborted)."""
  start = next(e['time_ms'] for e in events if e['key'] == mlc.RUN_START)
  out = []
  for e in events:
    e = dict(e)
    if e['key'] == mlc.SEED:
      e['value'] = seed
    if time_factor is not None and e['time_ms'] > start:
      e['time_ms'] = start + round((e['time_ms'] - start) * time_factor)
    if time_factor is None and e['key'] == mlc.EVAL_ACCURACY:
      e['value'] = min(e['value'], 0.7)
    if time_factor is None and e['key'] == mlc.RUN_STOP:
      e['metadata'] = {**e['metadata'], 'status': 'aborted'}
    out.append(e)
  return out


def _variant_result(result: dict, seed: int, time_factor: float | None) -> dict:
  result = dict(result, seed=seed)
  if time_factor is None:
    return dict(result, status='aborted', reached_target=False, steps_to_target=None,
                seconds_to_target=None, epochs_to_target=None)
  return dict(result, seconds_to_target=result['seconds_to_target'] * time_factor)


def _write_variant_runs(directory: str, config: ml_collections.ConfigDict, lars_run: dict,
                        factors: dict[int, float | None]) -> None:
  """A finished study of 5 seeds made from the real run: seed s takes factors[s]."""
  events = _events(lars_run['log'])
  config.seed = 0
  for seed, factor in factors.items():
    run_dir = os.path.join(directory, f'seed_{seed}')
    os.makedirs(run_dir)
    seeded = config.copy_and_resolve_references()
    seeded.seed = seed
    record.write_config(seeded, run_dir)
    files.write_json(os.path.join(run_dir, 'result.json'),
                     _variant_result(lars_run['result'], seed, factor))
    _write_events(os.path.join(run_dir, 'mlperf.log'), _variant(events, seed, factor))
  plan_lib.write_spec(directory, {'kind': 'study',
                               'configs': {'closed_lars': json.loads(config.to_json())}})


@pytest.mark.slow  # Reads lars_run: a 470-step closed LARS run by main.py (about 80 s).
def test_summarizer_score_agrees_with_study_json(lars_run, tmp_path):
  """A 5-run study, its runs made from the real one: four converged, one not.

  The study resumes the 5 finished run directories, writes study.json and its
  results folder; the summarizer scores the folder its own way: a run counts as
  converged when its log passes the compliance checker (closed_resnet.yaml
  wants an eval_accuracy >= 0.759), and the olympic mean drops the fastest run
  and the non-converged one.
  """
  config = lars_run['config'].copy_and_resolve_references()
  factors = {0: 1.0, 1: 1.3, 2: 0.8, 3: None, 4: 1.6}
  directory = str(tmp_path / 'study')
  _write_variant_runs(directory, config, lars_run, factors)
  summary = study.run_study(config, 'closed_lars', directory, num_seeds=5)
  assert summary['num_runs_this_invocation'] == 0  # All five read back, none trained.

  org = results.results_folder(directory, config)
  benchmark = results.benchmark_folder(directory, config)
  assert org == os.path.join(directory, 'mlperf', 'large-batch-harness')
  assert benchmark == os.path.join(org, 'results', 'unknown', 'resnet')
  assert sorted(os.listdir(benchmark)) == [f'result_{i}.txt' for i in range(5)]
  for i in range(5):
    with open(os.path.join(benchmark, f'result_{i}.txt')) as f, \
        open(os.path.join(directory, f'seed_{i}', 'mlperf.log')) as g:
      assert f.read() == g.read()
  valid, _, _, _ = system_desc_checker.check_system_desc(
      os.path.join(org, 'systems', 'unknown.json'), 'training', RULESET)
  assert valid

  minutes, _, _ = result_summarizer._compute_strong_score_standalone(  # pylint: disable=protected-access
      'resnet', 'unknown', False, benchmark, 'training', RULESET)
  assert summary['mlperf_score_seconds'] is not None
  # ms timestamps against perf_counter seconds: a few ms apart.
  assert minutes * 60 == pytest.approx(summary['mlperf_score_seconds'], abs=0.05)
  seconds = sorted(lars_run['result']['seconds_to_target'] * f for f in factors.values() if f)
  assert summary['mlperf_score_seconds'] == pytest.approx(sum(seconds[1:]) / 3)

  # The package's RCP check of the folder and rcp_verdict agree (batch 128 is
  # below the smallest RCP, 1,632, and 6 epochs converge faster than it).
  passed, message = results.check_rcp_folder(benchmark)
  verdict = results.rcp_verdict(128, [r['epochs_to_target'] for r in summary['runs']])
  assert (verdict.passed, verdict.source) == (passed, message) == (
      False, 'Missing RCP, please submit RCP with BS = 128')
  # study.json and the report carry the same verdict and the checker commands.
  assert summary['mlperf']['rcp'] == dataclasses.asdict(verdict)
  assert summary['mlperf']['results_folder'] == os.path.join('mlperf', 'large-batch-harness')
  with open(os.path.join(directory, 'report.md')) as f:
    report_text = f.read()
  assert 'RCP check at batch 128: fails (Missing RCP' in report_text
  assert (f'python -m mlperf_logging.package_checker mlperf/large-batch-harness training '
          f'{RULESET}') in report_text


# Logs written from configs, without training.

def _synthetic_log(path: str, config: ml_collections.ConfigDict, accuracy: float) -> None:
  """The log a run of `config` would write, with `accuracy` at its last eval."""
  run_budget = budget.resolve_budget(config)
  logger = mllog.MlperfLogger(path)
  logger.event(mlc.CACHE_CLEAR, True)
  logger.start(mlc.INIT_START)
  for key, value in mllog.hyperparameters(config, run_budget,
                                                num_eval_examples=50_000).items():
    logger.event(key, value)
  logger.end(mlc.INIT_STOP)
  logger.start(mlc.RUN_START)
  points = budget.eval_points(config, run_budget)
  last = 0.0
  for i, point in enumerate(points):
    block = {'first_epoch_num': mllog.number(last + 1)}
    logger.start(mlc.BLOCK_START, metadata={
        **block, 'epoch_count': mllog.number(point.epoch - last)})
    logger.end(mlc.BLOCK_STOP, metadata=block)
    epoch = {'epoch_num': mllog.number(point.epoch)}
    logger.start(mlc.EVAL_START, metadata=epoch)
    logger.event(mlc.EVAL_ACCURACY, accuracy if i == len(points) - 1 else 0.5, metadata=epoch)
    logger.end(mlc.EVAL_STOP, metadata=epoch)
    last = point.epoch
  logger.end(mlc.RUN_STOP, metadata={'status': 'success'})
  logger.close()


def test_mlperf_lars_32k_logs_the_closed_recipe(tmp_path):
  """The recipe's preamble has exactly the rules' names and values."""
  config = mlperf_lars_32k.get_config()
  rules.validate_run_config(config, num_devices=1, check_data=False)
  path = str(tmp_path / 'mlperf.log')
  _synthetic_log(path, config, accuracy=0.7597)
  assert _check(path) == (True, '')
  events = _events(path)
  values = _values(events)
  assert {k: values[k] for k in values if k.startswith('lars') or k == mlc.OPT_NAME} == {
      mlc.OPT_NAME: 'lars',
      mlc.LARS_OPT_BASE_LEARNING_RATE: 29.0,
      mlc.LARS_OPT_END_LR: 1e-4,
      mlc.LARS_OPT_LR_DECAY_POLY_POWER: 2,
      mlc.LARS_OPT_LR_DECAY_STEPS: 2512 - 706 + 1,  # The decay's length, as v0.7 logs it.
      mlc.LARS_OPT_LEARNING_RATE_WARMUP_EPOCHS: 706 / 39.25,
      mlc.LARS_OPT_MOMENTUM: 0.929,
      mlc.LARS_OPT_WEIGHT_DECAY: 1e-4,
      mlc.LARS_EPSILON: 0.0,
  }
  assert (values[mlc.GLOBAL_BATCH_SIZE], values[mlc.MODEL_BN_SPAN]) == (32_768, 64)
  assert (values[mlc.TRAIN_SAMPLES], values[mlc.SUBMISSION_DIVISION]) == (1_281_167, 'closed')
  # Evals every 4 epochs, offset 3: at 4, 8, ..., 64, the end of the budget.
  epochs = [e['metadata']['epoch_num'] for e in events if e['key'] == mlc.EVAL_ACCURACY]
  assert epochs == list(range(4, 65, 4))


def test_sgd_recipe_logs_the_sgd_keys(tmp_path):
  config = mlperf_lars_32k.get_config('epochs')  # Warmup of 18 whole epochs.
  config.optimizer.name = 'momentum'
  config.optimizer.momentum = 0.9
  rules.validate_run_config(config, num_devices=1, check_data=False)
  path = str(tmp_path / 'mlperf.log')
  _synthetic_log(path, config, accuracy=0.76)
  values = _values(_events(path))
  assert values[mlc.OPT_NAME] == 'sgd'
  assert {k: v for k, v in values.items() if k.startswith('sgd')} == {
      'sgd_opt_base_learning_rate': 29.0, 'sgd_opt_end_learning_rate': 1e-4,
      'sgd_opt_learning_rate_decay_poly_power': 2,
      'sgd_opt_learning_rate_decay_steps': 1806.5, 'sgd_opt_momentum': 0.9,
      'sgd_opt_weight_decay': 1e-4}
  assert values[mlc.OPT_LR_WARMUP_EPOCHS] == 18.0
  assert not any(k.startswith('lars') for k in values)
  assert _check(path) == (True, '')


def test_nesterov_is_logged_as_itself_in_the_open_division(tmp_path):
  config = nesterov_b.get_config()
  path = str(tmp_path / 'mlperf.log')
  _synthetic_log(path, config, accuracy=0.7592)
  values = _values(_events(path))
  assert (values[mlc.OPT_NAME], values[mlc.SUBMISSION_DIVISION]) == ('nesterov', 'open')
  assert values[mlc.OPT_BASE_LR] == 7.05 and values[mlc.OPT_END_LR] == 6e-6
  assert values['opt_momentum'] == pytest.approx(1 - 0.02397)
  assert values[mlc.OPT_LR_DECAY_STEPS] == 2512 - 706 + 1  # Configuration B's decay.
  assert _check(path) == (True, '')  # The open rules.
  # Claimed as closed, the checker refuses it, and so does the harness.
  _write_events(path, _edit(mlc.SUBMISSION_DIVISION, _set_value('closed'))(_events(path)))
  valid, messages = _check(path)
  assert not valid and 'opt_name' in messages
  config.mlperf.submission_division = 'closed'
  with pytest.raises(validation.ConfigError, match=r'optimizer.name=.nesterov.*open'):
    rules.validate_run_config(config, num_devices=1, check_data=False)


# The closed division's rules in validation.

@pytest.mark.parametrize('key,value', [
    ('optimizer.name', 'adamw'),
    ('optimizer.bn_bias_name', 'same'),
    ('optimizer.lars_epsilon', 1e-9),
    ('optimizer.trust_coefficient', 0.002),
    ('optimizer.l2', 1.5e-4),
    ('optimizer.l2_on_bn_bias', True),
    ('lr.final', 0.0),
    ('lr.decay_power', 1.0),
    ('lr.warmup_power', 2.0),
    ('lr.schedule', 'cosine'),
    ('label_smoothing', 0.15),
    ('target_accuracy', 0.75),
    ('eval_every_epochs', 8.0),
    ('eval_offset_epochs', 0),  # Evals at 1, 5, ..., 61: the 64-epoch budget ends off them.
    ('model.activation', 'silu'),  # AlgoPerf's variant, not the reference ResNet-50.
])
def test_closed_division_refuses_what_its_rules_forbid(key, value):
  config = mlperf_lars_32k.get_config()
  *parents, leaf = key.split('.')
  node = config
  for part in parents:
    node = node[part]
  if key == 'optimizer.name':
    config.optimizer.weight_decay, config.optimizer.l2 = 1e-4, 0.0
  node[leaf] = value
  with pytest.raises(validation.ConfigError) as info:
    rules.validate_run_config(config, num_devices=1, check_data=False)
  message = str(info.value)
  assert info.value.key == key, message
  assert 'closed division' in message and "submission_division='open'" in message
  assert '\n' not in message
  config.mlperf.submission_division = 'open'
  rules.validate_run_config(config, num_devices=1, check_data=False)


def test_closed_division_rules_in_detail():
  config = mlperf_lars_32k.get_config()
  for l2 in (5e-5, 2e-4, 1.6e-3):  # 1e-4 * 2^k.
    config.optimizer.l2 = l2
    rules.validate_run_config(config, num_devices=1, check_data=False)
  config.global_batch_size = 16_384  # LARS momentum is 0.9 below 32k.
  with pytest.raises(validation.ConfigError, match=r'optimizer.momentum=0.929.*below batch'):
    rules.validate_run_config(config, num_devices=1, check_data=False)
  config = mlperf_lars_32k.get_config()
  config.eval_offset_epochs = 1
  with pytest.raises(validation.ConfigError, match=r'eval_offset_epochs=1.*allowed: 3, so '
                     r'that the budget of 64 epochs ends on an eval'):
    rules.validate_run_config(config, num_devices=1, check_data=False)
  config.num_train_steps = 2500  # 63.7 epochs: no offset ends on it.
  with pytest.raises(validation.ConfigError, match=r'num_train_steps=2500.*63.69'):
    rules.validate_run_config(config, num_devices=1, check_data=False)
  # SGD: momentum 0.9, a base rate in multiples of 0.001, whole warmup epochs.
  config = mlperf_lars_32k.get_config()
  config.optimizer.name = 'momentum'
  with pytest.raises(validation.ConfigError, match=r'optimizer.momentum=0.929.*sgd_opt'):
    rules.validate_run_config(config, num_devices=1, check_data=False)
  config.optimizer.momentum = 0.9
  with pytest.raises(validation.ConfigError, match=r'lr.warmup_steps=706.0.*whole number'):
    rules.validate_run_config(config, num_devices=1, check_data=False)
  config.lr.warmup_steps = 706.5  # 18 epochs of 39.25 steps.
  rules.validate_run_config(config, num_devices=1, check_data=False)
  config.lr.peak = 29.0005
  with pytest.raises(validation.ConfigError, match=r'lr.peak=29.0005.*multiple of 0.001'):
    rules.validate_run_config(config, num_devices=1, check_data=False)


# The eval cadence.

def test_eval_offset_is_mlperfs():
  """Offset k evaluates after epochs k + 1, k + 5, ... (numbered from 1)."""
  config = mlperf_lars_32k.get_config()  # 39.25 steps per epoch, 64 epochs.
  run_budget = budget.resolve_budget(config)
  for offset, first in [(0, 1), (1, 2), (2, 3), (3, 4)]:
    config.eval_offset_epochs = offset
    points = budget.eval_points(config, run_budget)
    epochs = list(range(first, 65, 4))
    assert [p.epoch for p in points[:len(epochs)]] == epochs
    assert [p.step for p in points[:len(epochs)]] == [-(-e * 157 // 4) for e in epochs]
    assert points[-1] == budget.EvalPoint(2512, 64.0)  # The end of the budget.
  # NVIDIA's v3.1 ResNet config at batch 3,264: EVAL_OFFSET=2 "targets epoch 35".
  config.global_batch_size, config.eval_offset_epochs = 3264, 2
  config.num_train_steps, config.num_epochs = 0, 37.0
  config.lr.warmup_steps, config.lr.warmup_epochs = 0.0, 2.0
  points = budget.eval_points(config, budget.resolve_budget(config))
  assert [p.epoch for p in points] == [3, 7, 11, 15, 19, 23, 27, 31, 35, 37]
  # A cadence in steps ignores the offset.
  config.eval_every_epochs, config.eval_every_steps = None, 1000
  steps = [p.step for p in budget.eval_points(config, budget.resolve_budget(config))]
  assert steps[:3] == [1000, 2000, 3000]


def test_eval_offset_must_be_below_the_period():
  config = mlperf_lars_32k.get_config()
  config.eval_offset_epochs = 4
  with pytest.raises(validation.ConfigError, match=r'eval_offset_epochs=4.*\[0, eval_every'):
    rules.validate_run_config(config, num_devices=1, check_data=False)
  with pytest.raises(ValueError, match='eval_offset_epochs'):
    budget.first_eval_epoch(4.0, 4)


# Reference convergence points.

def test_rcp_interpolation_matches_hand_computed_values():
  """Pruned 4.0.0 RCPs (olympic means of the reference runs), linear in between."""
  anchors = {3264: Fraction(457, 13), 32768: Fraction(56), 49152: Fraction(68),
             67840: Fraction(1116, 13)}  # 35.15, 56.0, 68.0, 85.85.
  for batch_size, mean in anchors.items():
    record, source = results.rcp_record(batch_size)
    assert source == 'RCP found'
    assert record['RCP Mean'] == pytest.approx(float(mean), rel=1e-12)

  def interpolated(batch_size: int, low: int, high: int) -> float:
    weight = Fraction(batch_size - low, high - low)
    return float(anchors[low] + weight * (anchors[high] - anchors[low]))

  for batch_size, low, high in [(16_384, 3264, 32768), (40_960, 32768, 49152),
                                (58_880, 49152, 67840), (65_536, 49152, 67840)]:
    record, source = results.rcp_record(batch_size)
    assert source == 'RCP Interpolation'
    assert record['RCP Mean'] == pytest.approx(interpolated(batch_size, low, high), rel=1e-12)
  assert results.rcp_record(40_960)[0]['RCP Mean'] == pytest.approx(62.0)
  # The full RCP tables have 58,880 -> 80 and 65,536 -> 84.5 epochs, but the
  # checker prunes points that converge slower than their neighbours' line.
  assert results.rcp_record(58_880)[0]['RCP Mean'] == pytest.approx(77.2898, abs=1e-4)
  assert results.rcp_record(100_000) == (
      None, 'Missing RCP, please submit RCP with BS = 100000')


def test_mlperf_lars_32k_against_its_rcp():
  """Batch 32,768 has an RCP: 56 epochs; a mean below ~55.44 would be too fast.

  The recipe's 64-epoch budget with evals every 4 epochs (offset 3) reaches
  75.9% at epoch 56, 60 or 64 when it does (Nado et al.: 35 of 50 runs within
  64 epochs), so it passes; a recipe whose runs converged at 52 epochs would not.
  """
  config = mlperf_lars_32k.get_config()
  verdict = results.rcp_verdict(config.global_batch_size, [60, 64, 64, 64, None])
  assert verdict == results.RcpVerdict(
      batch_size=32_768, source='RCP found', rcp_mean_epochs=56.0,
      min_epochs=pytest.approx(55.445, abs=1e-3), mean_epochs=64.0, passed=True,
      score_normalization=1.0)
  faster = results.rcp_verdict(32_768, [56, 56, 56, 56, 60])
  assert faster.passed and faster.score_normalization == 1.0
  too_fast = results.rcp_verdict(32_768, [52, 52, 52, 56, 56])
  assert not too_fast.passed and too_fast.mean_epochs == pytest.approx(160 / 3)
  assert not results.rcp_verdict(32_768, [56, 60, 64, None, None]).passed
