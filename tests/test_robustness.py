"""Robustness comparisons: the workload variants of --robustness, the drop from the
base and its verdict on fabricated finished studies, robustness.json recomputed
independently from the runs' own result files, a rerun's plan, and one tiny
command end to end."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from configs import embedded_robustness
from tests import finished_studies
from tests import study_runs
from train.experiments import drops
from train.experiments import plan as plan_lib
from train.experiments import robustness
from train.experiments import statistics
from train.experiments import study
from train.experiments import workloads

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = finished_studies.TARGET  # 0.7
# Fabricated runs of 5 seeds on each workload: (final accuracy, steps to target);
# None for an accuracy is a diverged run, None for steps a run that missed.
BASE = [(0.80, 200), (0.82, 250), (0.84, 200), (0.81, 300), (0.83, 250)]
# 10 points worse on every seed, and slower: 2 of 5 miss.
WORSE = [(0.70, 400), (0.72, 450), (0.74, None), (0.71, 500), (0.73, None)]
# As good as the base, one seed diverged.
DIVERGED = [(0.80, 200), (None, None), (0.84, 200), (0.81, 300), (0.83, 250)]


def _result(seed: int, accuracy: float | None, steps: int | None) -> dict:
  """A result.json dict (tests/finished_studies.py's) with this final accuracy."""
  run = finished_studies.run_result(seed, steps)
  run['final_eval_accuracy'] = accuracy
  if accuracy is None:
    run['status'] = 'diverged'
  return run


def _study(name: str, runs: list[tuple[float | None, int | None]]) -> dict:
  results = [_result(seed, accuracy, steps) for seed, (accuracy, steps) in enumerate(runs)]
  return {'name': name, **statistics.summarize(results), 'runs': results}


# The variants of --robustness.

def test_variants_change_one_workload_key_each():
  base = embedded_robustness.get_config()
  variants = workloads.parse_variants(
      ['activation=silu', ' activation=gelu', 'last_bn_scale=8', 'last_bn_scale=0.5'], base)
  configs = workloads.workload_configs(base, variants)
  assert list(configs) == ['base', 'activation_silu', 'activation_gelu', 'last_bn_scale_8',
                           'last_bn_scale_0.5']
  assert configs['base'] is base
  for name, config in list(configs.items())[1:]:
    assert len(workloads.changes(base, config)) == 1, name
    assert config.mlperf.submission_division == 'open'
    assert config.optimizer.to_dict() == base.optimizer.to_dict()
    assert config.target_accuracy == base.target_accuracy
  assert configs['last_bn_scale_8'].model.last_bn_scale == 8.0
  assert configs['activation_gelu'].model.activation == 'gelu'
  # AlgoPerf's variants are recognised by the model options, not by the name.
  assert [workloads.algoperf_workload(c) for c in configs.values()] == [
      '', 'silu', 'gelu', 'bn_scale_8', None]


@pytest.mark.parametrize('entries,message', [
    (['width=16'], 'width is not a workload key'),
    (['silu'], "entry 'silu' is not KEY=VALUE"),
    (['activation=relu'], "is the base config's own model.activation"),
    (['last_bn_scale=0'], "is the base config's own model.last_bn_scale"),
    (['last_bn_scale=8', 'last_bn_scale=8.0'], 'names the variant last_bn_scale_8 twice'),
    (['last_bn_scale=nan'], "'nan' is not a finite number"),
    ([], '--robustness= names no variant'),
])
def test_variants_refused(entries, message):
  with pytest.raises(workloads.RobustnessInputError, match=message):
    workloads.parse_variants(entries, embedded_robustness.get_config())


# The drop and its verdict, on fabricated finished studies.

def test_a_real_drop_and_a_diverged_seed_on_fabricated_studies():
  base, worse, diverged = _study('base', BASE), _study('w', WORSE), _study('d', DIVERGED)
  found = drops.variant_drops(base, [worse, diverged])
  json.dumps(found, allow_nan=False)
  by_name = {drop['variant']: drop for drop in found}
  drop = by_name['w']
  assert drop['median_final_accuracy']['drop'] == pytest.approx(0.82 - 0.72)
  low, high = drop['median_final_accuracy']['drop_ci95']
  assert 0 < low <= 0.10 <= high
  steps = drop['median_steps_to_target']
  assert (steps['base'], steps['variant'], steps['increase']) == (250, 500, 250)
  assert steps['ratio'] == 2.0 and steps['reason'] is None
  assert drop['median_seconds_to_target']['increase'] == pytest.approx(
      250 * finished_studies.SECONDS_PER_STEP)
  assert drop['reached_target'] == [[5, 5], [3, 5]]
  pair = drop['comparison']
  assert (pair['a'], pair['b'], pair['paired_seeds']) == ('base', 'w', [0, 1, 2, 3, 4])
  assert pair['mann_whitney_p_holm'] < 0.05
  assert pair['verdict'].startswith('**The final accuracies of base and w differ**')
  assert 'adjusted for the comparisons of each variant with the base' in pair['verdict']
  # The diverged seed counts as 0 in the drop: the median of 0, 0.80, 0.81, 0.83,
  # 0.84 is 0.81, one point under the base's 0.82.
  same = by_name['d']
  assert same['median_final_accuracy']['drop'] == pytest.approx(0.01)
  assert same['median_final_accuracy']['variant'] == 0.81
  assert same['median_steps_to_target']['increase'] == 0 and same['reached_target'][1] == [4, 5]
  assert same['comparison']['verdict'].startswith('**No evidence that the final accuracies')


def test_holm_spans_the_variants_only():
  """Two variants: each p-value is adjusted over 2 comparisons with the base (not the
  3 pairs a comparison of the 3 would test), by Holm's rule worked by hand."""
  base, worse, diverged = _study('base', BASE), _study('w', WORSE), _study('d', DIVERGED)
  pairs = [drop['comparison'] for drop in drops.variant_drops(base, [worse, diverged])]
  p = [pair['mann_whitney_p'] for pair in pairs]
  small, large = sorted(p)
  expected = {small: min(1.0, 2 * small), large: max(min(1.0, 2 * small), large)}
  assert [pair['mann_whitney_p_holm'] for pair in pairs] == [expected[x] for x in p]
  # With one variant nothing is adjusted, and the verdict says nothing of Holm.
  [alone] = drops.variant_drops(base, [worse])
  assert alone['comparison']['mann_whitney_p_holm'] == alone['comparison']['mann_whitney_p']
  assert 'Holm' not in alone['comparison']['verdict']


def test_a_variant_that_misses_has_no_rise_and_says_why():
  misses = _study('m', [(0.6, None)] * 4 + [(0.75, 400)])
  [drop] = drops.variant_drops(_study('base', BASE), [misses])
  steps = drop['median_steps_to_target']
  assert (steps['variant'], steps['increase'], steps['ratio']) == (None, None, None)
  assert steps['reason'] == 'fewer than half the runs of m reached the target'


# A finished robustness comparison, written without training, and recomputed.

def _plan_of(directory: str, variants: list[str], num_seeds: int = 2) -> plan_lib.Plan:
  """The plan a robustness command of embedded_robustness.py writes, from fresh configs."""
  base = embedded_robustness.get_config()
  return study.plan_comparison(
      workloads.workload_configs(base, workloads.parse_variants(variants, base)), directory,
      num_seeds, name='embedded_robustness', kind=plan_lib.PlanKind.ROBUSTNESS)


def test_the_same_command_resumes_and_another_is_refused(tmp_path):
  """Re-running a robustness command plans the same study again (its workers then
  read back what finished); other variants in the same directory are refused."""
  first = _plan_of(str(tmp_path), ['activation=silu'])
  again = _plan_of(str(tmp_path), ['activation=silu'])
  assert again.runs == first.runs and again.created == first.created
  assert [run.label for run in again.runs] == [
      'base seed 0', 'activation_silu seed 0', 'base seed 1', 'activation_silu seed 1']
  assert plan_lib.read_plan(str(tmp_path)).kind == plan_lib.PlanKind.ROBUSTNESS
  with pytest.raises(plan_lib.StudyDirError, match='holds another study'):
    _plan_of(str(tmp_path), ['activation=gelu'])


def _finished_robustness(directory: str) -> plan_lib.Plan:
  """The plan of embedded_robustness.py on SiLU and BN scale 8, 5 seeds, each run's
  config.json and a fabricated result.json in place."""
  plan = _plan_of(directory, ['activation=silu', 'last_bn_scale=8'], num_seeds=5)
  fabricated = {'base': BASE, 'activation_silu': WORSE, 'last_bn_scale_8': DIVERGED}
  for run in plan.runs:
    os.makedirs(run.run_dir)
    with open(os.path.join(run.run_dir, 'config.json'), 'w') as f:
      json.dump(run.config, f)
    accuracy, steps = fabricated[run.entry][run.seed]
    with open(run.result_path, 'w') as f:
      json.dump(_result(run.seed, accuracy, steps), f)
  return plan


def _recomputed(directory: str, workload: str) -> tuple[np.ndarray, float]:
  """From DIR/<workload>/seed_*/result.json alone: the final accuracies (a
  diverged run as 0) and the median steps to target (a miss infinitely slow)."""
  accuracies, steps = [], []
  for seed in range(5):
    with open(os.path.join(directory, workload, f'seed_{seed}', 'result.json')) as f:
      run = json.load(f)
    accuracies.append(run['final_eval_accuracy'] or 0.0)
    steps.append(run['steps_to_target'] if run['reached_target'] else math.inf)
  return np.array(accuracies), float(np.median(steps))


def test_robustness_json_recomputed_from_the_result_files(tmp_path):
  """robustness.json and report.md from the plan's finished runs, as
  study.write_report writes them (less each workload's own study report, whose
  dozen figures the study tests cover), against numpy and scipy on the files."""
  directory = str(tmp_path)
  plan = _finished_robustness(directory)
  studies = []
  for entry in plan.entries:
    results = study.run_states(plan, entry.name).results
    studies.append({'name': entry.name, **statistics.summarize(results), 'runs': results})
  robustness.write_robustness(plan, studies, 1.0, [])
  with open(tmp_path / 'robustness.json') as f:
    summary = json.load(f)
  assert (summary['base'], summary['variants']) == ('base', ['activation_silu',
                                                            'last_bn_scale_8'])
  base_accuracies, base_steps = _recomputed(directory, 'base')
  p_values = []
  for drop in summary['drops']:
    accuracies, steps = _recomputed(directory, drop['variant'])
    assert drop['median_final_accuracy']['drop'] == pytest.approx(
        np.median(base_accuracies) - np.median(accuracies), abs=1e-12)
    rise = drop['median_steps_to_target']
    assert rise['base'] == base_steps
    assert rise['increase'] == (steps - base_steps if math.isfinite(steps) else None)
    pair = drop['comparison']
    p = stats.mannwhitneyu(base_accuracies, accuracies, alternative='two-sided').pvalue
    assert pair['mann_whitney_p'] == pytest.approx(p, rel=1e-12)
    p_values.append(p)
  smaller = min(p_values)
  for drop, p in zip(summary['drops'], p_values):  # Holm over the two variants, by hand.
    expected = min(1.0, 2 * p) if p == smaller else max(min(1.0, 2 * smaller), p)
    assert drop['comparison']['mann_whitney_p_holm'] == pytest.approx(expected, rel=1e-12)
  # Each workload's targets: the runs' own, MLPerf's for its model, AlgoPerf's published.
  targets = {w['name']: w for w in summary['workloads']}
  assert targets['base']['change'] == {} and targets['base']['mlperf_target'] == 0.759
  assert targets['base']['algoperf']['validation_target'] == 0.77431
  assert targets['activation_silu']['change'] == {'model.activation': 'silu'}
  assert targets['activation_silu']['mlperf_target'] is None
  assert targets['activation_silu']['algoperf'] == {
      'workload': 'imagenet_resnet_silu', 'validation_target': 0.75445, 'test_target': 0.6323}
  assert {w['target_accuracy'] for w in summary['workloads']} == {TARGET}
  report = (tmp_path / 'report.md').read_text()
  assert report.startswith('# Robustness of embedded_robustness to 2 workload variants')
  assert '| activation_silu | `model.activation = silu` | 70.00% | — | 75.445% / 63.23% ' \
         '(imagenet_resnet_silu) |' in report
  assert '| base | (the config as tuned) | 70.00% | 75.9% | 77.431% / 65.60%' in report
  assert '| activation_silu | 3 / 5 | 72.00% | +10.0 |' in report
  assert ("**activation_silu**: the median final accuracy is 10.0 points below the base's "
          '(95% interval of the drop +') in report
  assert 'the median steps to target go from 250 to 500 (×2.00).' in report
  for drop in summary['drops']:
    assert drop['comparison']['verdict'] in report
  assert all((tmp_path / name).stat().st_size > 0
             for name in ('comparison.png', 'comparison_curves.png', 'time_to_target.png'))


@pytest.mark.slow  # Trains 2 tiny runs by main.py.
def test_main_py_robustness_runs_and_reports(tiny_data_dir, tmp_path):
  workdir = str(tmp_path / 'robustness')
  args = ['--config=configs/embedded_robustness.py', '--robustness=activation=silu',
          '--num_seeds=1', f'--workdir={workdir}',
          *[f'--config.{k}={v}' for k, v in {**study_runs.QUICK_TINY,
                                              'data_dir': tiny_data_dir}.items()]]
  command = [sys.executable, os.path.join(REPO, 'main.py'), *args]
  first = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                         timeout=study_runs.HANG_GUARD_SECONDS, check=False)
  assert first.returncode == 0, first.stderr[-3000:]
  assert first.stdout.splitlines()[-1] == f'report: {workdir}/report.md'
  assert 'Drop in the median (points)' in first.stdout and 'activation_silu' in first.stdout
  results = study_runs.results(workdir)
  assert sorted(results) == ['activation_silu/seed_0', 'base/seed_0']
  with open(os.path.join(workdir, 'activation_silu', 'seed_0', 'config.json')) as f:
    assert json.load(f)['model']['activation'] == 'silu'
  with open(os.path.join(workdir, 'base', 'seed_0', 'config.json')) as f:
    assert json.load(f)['model']['activation'] == 'relu'
  with open(os.path.join(workdir, 'robustness.json')) as f:
    summary = json.load(f)
  [drop] = summary['drops']
  assert drop['variant'] == 'activation_silu' and drop['comparison']['paired_seeds'] == [0]
  assert drop['median_final_accuracy']['drop'] == pytest.approx(
      results['base/seed_0']['final_eval_accuracy']
      - results['activation_silu/seed_0']['final_eval_accuracy'], abs=1e-12)
  assert os.path.exists(os.path.join(workdir, 'report.md'))
