"""Kill and resume: a run stopped anywhere ends exactly as the uninterrupted run.

One driver process (tests/resume_driver.py) runs a tiny config in forked
children: once uninterrupted, then interrupted and resumed: SIGKILL during an
eval, right after a checkpoint save started, and SIGTERM mid-epoch (which saves
and exits) followed by a SIGKILL in the last epoch and a corrupted newest
checkpoint. Every resumed run must end with bit-identical parameters, BN
statistics and evals (CPU, same process layout), and say it was resumed.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from configs import embedded_lars
from train.common import config_dicts

# Slow tier: every test reads one fixture that runs the killed and resumed trainings (80 s).
pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# 512 training examples at batch 64: 8 steps an epoch, 3 epochs; an eval after
# each epoch (200 examples, 4 batches); a checkpoint every 4 steps, 2 kept.
OVERRIDES = {
    'dataset': 'embedded_shapes/tiny',
    'model.width': 4,
    'global_batch_size': 64,
    'eval_batch_size': 64,
    'num_train_steps': 24,
    'eval_every_steps': 8,
    'log_every_steps': 2,
    'lr.warmup_steps': 3.0,
    'stop_at_target': False,
    'checkpoint.every_steps': 4,
    'checkpoint.every_seconds': 0.0,
    'checkpoint.max_to_keep': 2,
}

# Each scenario: its launches, in order. A delay lets the run's asynchronous
# saves finish before the kill, as they would in a run killed a while after.
SCENARIOS = {
    'during_eval': [{'kill': ['eval_batch', 16], 'delay': 1.0}, {}],
    'after_checkpoint': [{'kill': ['checkpoint', 12]}, {}],
    # SIGTERM at step 10, then SIGKILL at 22 and the newest checkpoint (20)
    # corrupted before the last launch, which falls back to 16.
    'sigterm_then_corrupt': [{'kill': ['train_step', 10], 'signal': 'SIGTERM'},
                             {'kill': ['train_step', 22], 'delay': 1.0},
                             {'corrupt_newest_before': True}],
}
PREEMPTED_EXIT = 3


@pytest.fixture(scope='module')
def runs(tmp_path_factory, tiny_data_dir):
  root = tmp_path_factory.mktemp('resume')
  config = config_dicts.with_overrides(embedded_lars.get_config(),
                                      {**OVERRIDES, 'data_dir': tiny_data_dir})
  names = ['uninterrupted', *SCENARIOS]
  attempts = [[{}], *SCENARIOS.values()]
  spec = {'config': json.loads(config.to_json()),
          'scenarios': [{'workdir': str(root / n), 'attempts': a}
                        for n, a in zip(names, attempts)]}
  spec_path = root / 'spec.json'
  spec_path.write_text(json.dumps(spec))
  proc = subprocess.run([sys.executable, os.path.join(REPO, 'tests', 'resume_driver.py'),
                         str(spec_path)], capture_output=True, text=True, cwd=REPO,
                        timeout=600, env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  report = json.loads(proc.stdout.strip().splitlines()[-1])
  return {name: {'dir': root / name, 'outcomes': outcomes}
          for name, outcomes in zip(names, report)}


def _result(run) -> dict:
  return json.loads((run['dir'] / 'result.json').read_text())


def _params(run) -> dict[str, np.ndarray]:
  with np.load(run['dir'] / 'params.npz') as f:
    return dict(f)


@pytest.mark.parametrize('name', list(SCENARIOS))
def test_resumed_run_is_identical(runs, name):
  reference, run = runs['uninterrupted'], runs[name]
  exits = [o['exit'] for o in run['outcomes'] if 'exit' in o]
  # -9: killed by SIGKILL.
  assert exits == ([PREEMPTED_EXIT, -9, 0] if name == 'sigterm_then_corrupt' else [-9, 0])
  assert runs['uninterrupted']['outcomes'] == [{'exit': 0}]

  ref_params, params = _params(reference), _params(run)
  assert ref_params.keys() == params.keys()
  for key in ref_params:
    np.testing.assert_array_equal(params[key], ref_params[key], err_msg=key)
  ref, res = _result(reference), _result(run)
  for key in ('final_eval_accuracy', 'final_train_accuracy', 'steps_completed', 'status',
              'reached_target', 'steps_to_target', 'epochs_to_target'):
    assert res[key] == ref[key], key
  strip = lambda evals: [{k: e[k] for k in ('step', 'epoch', 'accuracy', 'loss')} for e in evals]
  assert strip(res['evals']) == strip(ref['evals'])
  assert len(res['evals']) == 3
  assert (ref['resumed'], ref['num_resumes']) == (False, 0)
  assert res['resumed'] and res['num_resumes'] == len(exits) - 1
  assert res['seconds_lost_to_interruptions'] > 0


def test_resumed_mlperf_log_continues_the_cut_log(runs):
  """The log keeps what came before the checkpoint, marks the resume, and goes on."""
  def events(name):
    lines = (runs[name]['dir'] / 'mlperf.log').read_text().splitlines()
    return [json.loads(line.split(' ', 1)[1]) for line in lines]
  ref = events('uninterrupted')
  for name in SCENARIOS:
    log = events(name)
    keys = [e['key'] for e in log]
    assert keys.count('harness_resume') == len(SCENARIOS[name]) - 1, name
    assert keys.count('run_start') == keys.count('run_stop') == 1, name
    # Without the resume marker, the same events as the uninterrupted run, in order.
    assert [k for k in keys if k != 'harness_resume'] == [e['key'] for e in ref], name
    accuracies = [e['value'] for e in log if e['key'] == 'eval_accuracy']
    assert accuracies == [e['value'] for e in ref if e['key'] == 'eval_accuracy'], name


def test_corrupt_checkpoint_falls_back_and_says_so(runs):
  """The last launch of sigterm_then_corrupt finds step 20 corrupt and takes 16."""
  run = runs['sigterm_then_corrupt']
  assert 'corrupted' in run['outcomes'][2]
  stderr = (run['dir'] / 'stderr.txt').read_text()
  assert 'checkpoint of step 20' in stderr and 'cannot be read' in stderr
  assert 'resuming from the checkpoint of step 16' in stderr


def test_resumes_start_from_the_expected_checkpoints(runs):
  """SIGTERM saves the step it stopped at; SIGKILL loses the steps after the
  last finished save; a save the kill cut short is never listed."""
  resumed = {name: _result(runs[name])['resumed_from_steps'] for name in SCENARIOS}
  assert resumed['during_eval'] == [16]  # Saved after step 16, before its eval.
  assert resumed['after_checkpoint'] in ([8], [12])  # 12 if its save finished.
  assert resumed['sigterm_then_corrupt'] == [10, 16]
  stderr = (runs['sigterm_then_corrupt']['dir'] / 'stderr.txt').read_text()
  assert 'SIGTERM' in stderr
