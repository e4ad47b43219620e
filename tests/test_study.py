"""Studies over seeds, comparisons and quasi-random search, on the tiny embedded data."""

import json
import os
import signal
import subprocess
import sys
import time

import ml_collections
import pytest

from configs import embedded_lars
from configs import embedded_nesterov
from configs import nesterov_search_table9
from tests import study_runs
from train.cli import config_files
from train.common import config_dicts
from train.experiments import search
from train.experiments import plan as plan_lib
from train.experiments import study
from train.experiments import verdicts
from train.run import loop
from train.run import record

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Tiny runs: 8 steps of ResNet-10 width 4 on 512 training images, 2 evals.
TINY = study_runs.QUICK_TINY


def _tiny(config: ml_collections.ConfigDict, data_dir) -> ml_collections.ConfigDict:
  return config_dicts.with_overrides(config, {**TINY, 'data_dir': str(data_dir)})


@pytest.fixture
def data_dir(tiny_data_dir):
  return tiny_data_dir


# Search spaces.

def test_trials_are_reproducible_and_extend():
  space = nesterov_search_table9.get_search_space()
  five = search.draw_trials(space, 5, seed=0)
  assert search.draw_trials(space, 5, seed=0) == five
  assert search.draw_trials(space, 8, seed=0)[:5] == five  # More trials keep the first.
  assert search.draw_trials(space, 5, seed=1) != five


def test_trials_stay_in_table_9_ranges():
  trials = search.draw_trials(nesterov_search_table9.get_search_space(), 64, seed=0)
  peaks = [t['lr.peak'] for t in trials]
  assert all(1e-3 <= p <= 50.0 for p in peaks)
  # Log scale: about half the points below the geometric midpoint sqrt(1e-3 * 50).
  below = sum(p < (1e-3 * 50.0) ** 0.5 for p in peaks)
  assert 24 <= below <= 40
  assert {t['lr.decay_factor'] for t in trials} == {1e-4, 1e-3, 1e-2, 1e-1}
  assert all(1e-3 <= 1 - t['optimizer.momentum'] <= 1.0 for t in trials)
  assert all(1e-5 <= t['optimizer.l2'] <= 1e-1 for t in trials)
  smoothing = [t['label_smoothing'] for t in trials]
  assert all(0.01 <= s <= 0.2 for s in smoothing)
  # Linear scale: about half below the arithmetic midpoint.
  assert 24 <= sum(s < 0.105 for s in smoothing) <= 40


def test_search_space_errors_name_the_axis():
  config = embedded_lars.get_config()
  with pytest.raises(ValueError, match='lr.peek.*not a config key'):
    search.check_space([search.Range('lr.peek', 0.1, 1.0)], config)
  with pytest.raises(ValueError, match='log scale needs low > 0'):
    search.Range('lr.peak', 0.0, 1.0, scale='log')
  with pytest.raises(ValueError, match='twice'):
    search.check_space([search.Range('lr.peak', 0.1, 1.0),
                        search.Choice('lr.peak', (1.0,))], config)


def test_apply_params_keeps_int_keys_int():
  config = search.apply_params(embedded_lars.get_config(),
                               {'num_train_steps': 99.6, 'lr.peak': 0.5})
  assert config.num_train_steps == 100 and isinstance(config.num_train_steps, int)
  assert config.lr.peak == 0.5
  assert embedded_lars.get_config().lr.peak == 10.0  # The original is untouched.


# Config specs.

def test_config_specs_expand_variants_and_carry_overrides():
  specs = config_files.expand(config_files.parse_spec(
      os.path.join(REPO, 'configs', 'nesterov_b.py:*')))
  assert [s.name for s in specs] == ['nesterov_b', 'nesterov_b.warmup_power_1']
  nesterov = config_dicts.with_overrides(embedded_nesterov.get_config(),
                                         {'seed': 7, 'lr.peak': 2.0})
  assert (nesterov.seed, nesterov.lr.peak, nesterov.optimizer.name) == (7, 2.0, 'nesterov')


# Studies.

@pytest.mark.slow  # Trains tiny runs.
def test_study_runs_seeds_compiles_once_and_resumes(data_dir, tmp_path):
  config = _tiny(embedded_lars.get_config(), data_dir)
  workdir = str(tmp_path / 'study')
  first = study.run_study(config, 'tiny', workdir, num_seeds=2)
  assert first['seeds'] == [0, 1] and first['num_runs'] == 2
  assert first['num_runs_this_invocation'] == 2
  runs = first['runs']
  assert [r['seed'] for r in runs] == [0, 1]
  assert runs[0]['compile_seconds'] > 0 and runs[1]['compile_seconds'] == 0.0
  # Seeds differ: other initialisation and data, so other accuracies or losses.
  assert runs[0]['evals'] != runs[1]['evals']
  for seed in (0, 1):
    with open(os.path.join(workdir, f'seed_{seed}', 'config.json')) as f:
      assert json.load(f)['seed'] == seed
  with open(os.path.join(workdir, 'study.json')) as f:
    on_disk = json.load(f)
  assert on_disk['num_reached_target'] == sum(r['reached_target'] for r in runs)
  assert on_disk['sum_run_seconds'] == pytest.approx(sum(r['run_seconds'] for r in runs))
  for name in ('report.md', 'final_accuracy.png', 'eval_curves.png', 'learning_rate.png'):
    assert os.path.getsize(os.path.join(workdir, name)) > 0, name

  # An interrupted third seed: its partial files are kept aside and it runs again.
  os.makedirs(os.path.join(workdir, 'seed_2'))
  with open(os.path.join(workdir, 'seed_2', 'mlperf.log'), 'w') as f:
    f.write('partial\n')
  mtime = os.path.getmtime(os.path.join(workdir, 'seed_0', 'result.json'))
  second = study.run_study(config, 'tiny', workdir, num_seeds=3)
  assert second['num_runs'] == 3 and second['num_runs_this_invocation'] == 1
  assert second['runs'][:2] == runs  # Finished seeds are read back, not re-run.
  assert os.path.getmtime(os.path.join(workdir, 'seed_0', 'result.json')) == mtime
  assert os.path.exists(os.path.join(workdir, 'seed_2.interrupted.1', 'mlperf.log'))


@pytest.mark.slow  # Trains tiny runs.
def test_study_with_a_diverging_seed_completes_and_reports_it(data_dir, tmp_path,
                                                              monkeypatch):
  """Seed 1 runs at a learning rate of 1e30: its loss turns NaN, the loop ends
  it as diverged, and the study goes on with seed 2 and counts it as missed."""
  config = _tiny(embedded_lars.get_config(), data_dir)
  config.log_every_steps = 2
  train_and_evaluate = loop.train_and_evaluate

  def diverge_seed_1(run_config, workdir, *args, **kwargs):
    if run_config.seed != 1:
      return train_and_evaluate(run_config, workdir, *args, **kwargs)
    result = train_and_evaluate(config_dicts.with_overrides(run_config, {'lr.peak': 1e30}),
                                workdir, *args, **kwargs)
    record.write_config(run_config, workdir)  # The plan's, as the study checks.
    return result

  monkeypatch.setattr(loop, 'train_and_evaluate', diverge_seed_1)
  workdir = str(tmp_path / 'study')
  summary = study.run_study(config, 'tiny', workdir, num_seeds=3)
  runs = summary['runs']
  assert [r['status'] for r in runs][1] == 'diverged'
  assert [r['status'] != 'diverged' for r in runs] == [True, False, True]
  diverged = runs[1]
  assert diverged['diverged'] and not diverged['reached_target']
  assert diverged['final_eval_accuracy'] is None and diverged['steps_completed'] < 8
  assert runs[2]['steps_completed'] == 8 and runs[2]['final_eval_accuracy'] > 0
  assert summary['num_diverged'] == 1
  with open(os.path.join(workdir, 'seed_1', 'mlperf.log')) as f:
    run_stop = [line for line in f if '"run_stop"' in line]
  assert len(run_stop) == 1 and '"status": "aborted"' in run_stop[0]
  with open(os.path.join(workdir, 'report.md')) as f:
    text = f.read()
  assert '| Diverged runs (NaN or infinite loss) | 1 |' in text
  assert '| diverged |' in text  # Seed 1's status in the per-seed table.


def test_study_refuses_a_directory_of_another_study(data_dir, tmp_path):
  config = _tiny(embedded_lars.get_config(), data_dir)
  workdir = str(tmp_path / 'study')
  other = config.copy_and_resolve_references()
  other.lr.peak = 5.0
  plan_lib.write_spec(workdir, {'kind': 'study', 'configs': {'tiny': json.loads(other.to_json())}})
  # The message names both values of the key that differs.
  with pytest.raises(plan_lib.StudyDirError,
                     match=r'holds another study .*configs.tiny.lr.peak: 5.0 there, 10.0 here'):
    study.run_study(config, 'tiny', workdir, num_seeds=1)
  with open(tmp_path / 'notes.txt', 'w') as f:
    f.write('mine')
  with pytest.raises(plan_lib.StudyDirError, match='not empty'):
    study.run_study(config, 'tiny', str(tmp_path), num_seeds=1)
  assert (tmp_path / 'notes.txt').read_text() == 'mine'


@pytest.mark.slow  # Trains tiny runs.
def test_search_runs_trials_and_ranks_them(data_dir, tmp_path):
  config = _tiny(embedded_nesterov.get_config(), data_dir)
  space = [search.Range('lr.peak', 0.05, 2.0), search.Choice('label_smoothing', (0.0, 0.1))]
  trials = study.run_search(config, 'tiny_search', space, str(tmp_path), num_trials=2,
                            num_seeds=1)
  params = search.draw_trials(space, 2, seed=0)
  assert [t['params'] for t in trials] == params
  for k, p in enumerate(params):
    with open(tmp_path / f'trial_{k}' / 'seed_0' / 'config.json') as f:
      saved = json.load(f)
    assert saved['lr']['peak'] == p['lr.peak']
    assert saved['label_smoothing'] == p['label_smoothing']
  with open(tmp_path / 'search.json') as f:
    assert len(json.load(f)['trials']) == 2
  assert (tmp_path / 'search_axes.png').stat().st_size > 0
  assert 'trial_0' in (tmp_path / 'report.md').read_text()


def test_comparison_statistics_of_fake_studies():
  """comparison.json's pairwise entries, without training: plain JSON with a verdict."""
  def runs(accuracies):
    return [{'seed': i, 'status': 'success', 'reached_target': a >= 0.7,
             'steps_to_target': 300 if a >= 0.7 else None, 'final_eval_accuracy': a,
             'num_train_steps': 400,
             'evals': [{'step': 400, 'epoch': 5.0, 'accuracy': a}]}
            for i, a in enumerate(accuracies)]
  studies = [{'name': 'lars', 'runs': runs([0.669, 0.684, 0.783, 0.705, 0.771])},
             {'name': 'nesterov', 'runs': runs([0.751, 0.763, 0.750, 0.741, 0.709])},
             {'name': 'sgd', 'runs': runs([0.60, 0.61, 0.62, 0.63, 0.64])}]
  pairwise = verdicts.comparison_statistics(studies)
  json.dumps(pairwise, allow_nan=False)
  assert [(p['a'], p['b']) for p in pairwise] == [('lars', 'nesterov'), ('lars', 'sgd'),
                                                 ('nesterov', 'sgd')]
  assert all('Holm' in p['verdict'] for p in pairwise)
  assert pairwise[0]['verdict'].startswith('**No evidence that the final accuracies of lars '
                                           'and nesterov differ**')
  assert verdicts.comparison_statistics(studies[:2])[0]['verdict'].count('Holm') == 0


# The command line.

def _main(args, **kwargs):
  streams = {'stdout': subprocess.PIPE, 'stderr': subprocess.PIPE, **kwargs}
  return subprocess.Popen([sys.executable, os.path.join(REPO, 'main.py'), *args],
                          cwd=REPO, text=True, **streams)


def _tiny_flags(data_dir):
  return [f'--config.{k}={v}' for k, v in {**TINY, 'data_dir': data_dir}.items()]


def _check_comparison_report(workdir: str, comparison: dict, studies: dict, pair: dict) -> None:
  """The comparison's plots, report and recorded overrides."""
  assert os.path.exists(os.path.join(workdir, 'comparison.png'))
  assert os.path.exists(os.path.join(workdir, 'time_to_target.png'))
  for s in studies.values():
    assert len(s['reached_target_ci95']) == 2 and 'median_steps' in s['time_to_target']
  with open(os.path.join(workdir, 'report.md')) as f:
    text = f.read()
  assert pair['verdict'] in text
  # The report names what differs between the configs, and not the shared overrides
  # (those have a section of their own, as in the spec and comparison.json).
  differs = text.partition('## What differs')[2].partition('## ')[0]
  assert '| `optimizer.name` | lars | nesterov |' in differs
  assert '`num_train_steps`' not in differs
  assert '`--config.num_train_steps=8`' in text.partition('## Command-line overrides')[2]
  with open(os.path.join(workdir, 'study_spec.json')) as f:
    spec_overrides = json.load(f)['overrides']
  assert spec_overrides == comparison['overrides']
  assert spec_overrides['num_train_steps'] == 8 and spec_overrides['lr.warmup_steps'] == 2.0


@pytest.mark.slow  # Trains by main.py, killed and resumed (50-200 s).
def test_comparison_killed_between_seeds_resumes_from_the_command_line(data_dir, tmp_path):
  """A comparison from the CLI, SIGKILLed after its first seed, then re-run as is."""
  workdir = str(tmp_path / 'comparison')
  args = ['--compare=configs/embedded_lars.py,configs/embedded_nesterov.py',
          '--num_seeds=2', f'--workdir={workdir}', *_tiny_flags(str(data_dir))]
  first_result = os.path.join(workdir, 'embedded_lars', 'seed_0', 'result.json')
  # Output to a file, not a pipe nobody reads while waiting: a full pipe would
  # stop the command. The guard only ends a hung command; how long the first
  # seed takes (compiles included, on a busy machine) decides nothing.
  with open(tmp_path / 'first.err', 'w+') as err:
    proc = _main(args, stdout=subprocess.DEVNULL, stderr=err)
    hang_guard = time.monotonic() + 1800
    while not os.path.exists(first_result) and proc.poll() is None:
      assert time.monotonic() < hang_guard, 'the comparison hung before its first result'
      time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    err.seek(0)
    assert os.path.exists(first_result), err.read()[-3000:]
  assert not os.path.exists(os.path.join(workdir, 'comparison.json'))
  with open(first_result) as f:
    finished = f.read()

  proc = _main(args)
  out, err = proc.communicate(timeout=600)
  assert proc.returncode == 0, err[-2000:]
  assert 'embedded_lars' in out and 'embedded_nesterov' in out and 'report.md' in out
  with open(first_result) as f:
    assert f.read() == finished  # Not run again.
  assert 'finished earlier' in err
  with open(os.path.join(workdir, 'comparison.json')) as f:
    comparison = json.load(f)
  assert comparison['names'] == ['embedded_lars', 'embedded_nesterov']
  # The pair compared: same seeds on both sides, so the Wilcoxon test is paired by seed.
  [pair] = comparison['pairwise']
  assert (pair['a'], pair['b'], pair['paired_seeds']) == ('embedded_lars', 'embedded_nesterov',
                                                          [0, 1])
  for key in ('difference_in_median_final_accuracy', 'difference_in_median_final_accuracy_ci95',
              'mann_whitney_p', 'wilcoxon_p', 'fisher_exact_p', 'logrank_p',
              'seeds_per_config_for_80_percent_power', 'mann_whitney_p_holm', 'verdict'):
    assert key in pair, key
  studies = {s['name']: s for s in comparison['studies']}
  assert [s['num_runs'] for s in studies.values()] == [2, 2]
  ran_before_kill = 4 - sum(s['num_runs_this_invocation'] for s in studies.values())
  assert 1 <= ran_before_kill <= 3
  assert studies['embedded_lars']['num_runs_this_invocation'] <= 1
  for name, optimizer in (('embedded_lars', 'lars'), ('embedded_nesterov', 'nesterov')):
    for seed in (0, 1):
      with open(os.path.join(workdir, name, f'seed_{seed}', 'config.json')) as f:
        saved = json.load(f)
      # The command line's overrides reached both configs; their own keys stayed.
      assert saved['num_train_steps'] == 8 and saved['optimizer']['name'] == optimizer
      assert saved['seed'] == seed
    assert os.path.exists(os.path.join(workdir, name, 'study.json'))
  _check_comparison_report(workdir, comparison, studies, pair)
