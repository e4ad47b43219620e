"""Batch-size scaling studies (configs/search_space.Scaling, `main.py --scaling`):
the critical-batch rule against tables worked by hand, the study's checks, the
report, and finished studies made without training.

`_FakeWork` 'trains' each run at once, as the staged-search tests do: its steps
to target follow a curve that scales perfectly at small batches and not at large
ones, grow away from the best learning rate, and miss when past the run's
budget. An independent test then recomputes every median and the critical batch
size from the runs' result.json files alone and checks scaling.json against
them. One slow test runs `main.py --scaling=tuned` for real on the tiny data.
"""

import json
import math
import os
import pathlib
import re
import subprocess
import sys
import time

import pytest

from configs import embedded_nesterov
from configs import embedded_scaling
from configs import search_space as ss
from tests import study_runs
from train.common import files
from train.experiments import critical_batch
from train.experiments import plan as plan_lib
from train.experiments import scaling
from train.experiments import scaling_spec
from train.experiments.reports import scaling as scaling_report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# --- the rule, on tables worked by hand ----------------------------------------------

# Shallue et al.'s shape: steps halve with the batch, then fall slower, then stop.
#   batch     64    128   256   512   1024
#   median   800    400   220   180    170
#   perfect  800    400   200   100     50      (800 * 64 / B)
#   ratio      1      1   1.1   1.8    3.4      (median / perfect)
# 512 is the last within 2x: the critical batch size; 1024 is the first beyond.
SIZES = (64, 128, 256, 512, 1024)


def test_the_rule_on_a_curve_that_leaves_perfect_scaling():
  rule = critical_batch.critical_batch_size(SIZES, [800, 400, 220, 180, 170])
  assert rule.perfect_steps == (800, 400, 200, 100, 50)
  assert rule.ratios == pytest.approx((1, 1, 1.1, 1.8, 3.4))
  assert (rule.batch_size, rule.lower_bound, rule.first_beyond) == (512, False, 1024)
  assert rule.reason == ('batch size 1024 takes 3.40 times the steps of perfect scaling from '
                         'batch 64, more than 2')


def test_a_ratio_of_exactly_k_is_within_and_every_size_within_is_a_lower_bound():
  # 128: 100 steps where perfect scaling says 50: ratio 2, kept.
  rule = critical_batch.critical_batch_size((64, 128), [100, 100])
  assert (rule.batch_size, rule.lower_bound, rule.ratios) == (128, True, (1.0, 2.0))
  assert rule.reason.startswith('every batch size up to 128 takes at most 2 times')
  assert critical_batch.critical_batch_size((64, 128), [100, 100.5]).batch_size == 64


def test_a_miss_is_beyond_any_factor_and_ends_the_curve():
  # 256 missed (inf); 512's 120 steps (ratio 1.2) come after it and do not count.
  rule = critical_batch.critical_batch_size((64, 128, 256, 512), [800, 450, math.inf, 120])
  assert (rule.batch_size, rule.first_beyond, rule.lower_bound) == (128, 256, False)
  assert rule.ratios[2] == math.inf and rule.ratios[3] == pytest.approx(1.2)
  assert rule.reason == 'batch size 256 missed the target'
  # NaN is a miss too.
  assert critical_batch.critical_batch_size((64, 128), [800, math.nan]).first_beyond == 128


def test_the_smallest_batch_missing_leaves_no_line_and_no_critical_batch():
  rule = critical_batch.critical_batch_size((64, 128), [math.inf, 300])
  assert rule.batch_size is None and rule.perfect_steps == (None, None)
  assert 'the smallest batch size (64) missed the target' in rule.reason
  assert critical_batch.critical_batch_size((64, 128), [None, None]).batch_size is None


def test_only_the_measured_prefix_counts():
  # 256 and 512 not measured: at least 128, said so.
  rule = critical_batch.critical_batch_size((64, 128, 256, 512), [800, 420, None, None])
  assert (rule.batch_size, rule.lower_bound) == (128, True)
  assert rule.reason.endswith('(the larger ones are not measured yet)')
  # A gap: 128 not measured, so 256's ratio (1.0) is not read.
  gap = critical_batch.critical_batch_size((64, 128, 256), [800, None, 200])
  assert (gap.batch_size, gap.lower_bound, gap.ratios) == (64, True, (1.0, None, 1.0))


@pytest.mark.parametrize('sizes,steps,factor,message', [
    ((128, 64), [1, 1], 2, 'must be positive and increasing'),
    ((64, 64), [1, 1], 2, 'must be positive and increasing'),
    ((64, 128), [1], 2, '2 batch sizes but 1 step counts'),
    ((64, 128), [0, 1], 2, 'must be > 0 (or inf for a miss), not 0'),
    ((64, 128), [1, 1], 0.5, 'the factor k must be at least 1'),
])
def test_what_the_rule_refuses(sizes, steps, factor, message):
  with pytest.raises(ValueError, match=re.escape(message)):
    critical_batch.critical_batch_size(sizes, steps, factor)


# --- get_scaling() checks ---------------------------------------------------------------

_GRID = ss.Stage('rate', (ss.Choice('lr.peak', (0.25, 0.5, 1.0)),), mode='grid')


@pytest.mark.parametrize('study,mode,message', [
    (ss.Search(stages=(_GRID,)), 'tuned', 'returned Search, not a configs.search_space.Scaling'),
    (ss.Scaling((64,)), 'untuned', 'give a tuple of 2 or more integers > 0'),
    (ss.Scaling((128, 64)), 'untuned', 'must increase (each size once)'),
    (ss.Scaling((64, 128), seeds=0), 'untuned', 'seeds=0; give 1 or more'),
    (ss.Scaling((64, 128), num_train_steps=(10,)), 'untuned', 'one integer > 0 per batch size'),
    (ss.Scaling((64, 128)), 'tuned', '--scaling=tuned needs the stages of a search'),
    (ss.Scaling((64, 128), stages=(ss.Stage('b', (ss.Choice('global_batch_size', (64,)),),
                                            mode='grid'),)), 'tuned',
     "stage 1 ('b') searches global_batch_size"),
    (ss.Scaling((64, 128), stages=(ss.Stage('x', (ss.Range('lr.peak', 0.1, 1.0),),
                                            mode='grid'),)), 'tuned',
     "its stages: stage 1 ('x'): a grid runs Choice axes only"),
])
def test_check_scaling_names_the_problem(study, mode, message):
  with pytest.raises(scaling_spec.ScalingError, match=re.escape(message)):
    scaling_spec.check_scaling(study, embedded_nesterov.get_config(), mode)


def test_embedded_rehearsal_is_valid_and_as_documented():
  config, study = embedded_scaling.get_config(), embedded_scaling.get_scaling()
  scaling_spec.check_scaling(study, config, 'tuned')
  assert len(study.batch_sizes) >= 4 and study.search.metric == 'median_steps_to_target'
  at = [scaling_spec.batch_config(config, study, i) for i in range(len(study.batch_sizes))]
  assert [c.global_batch_size for c in at] == [64, 128, 256, 512]
  assert [c.num_train_steps for c in at] == [800, 400, 300, 200]
  # 6 runs a batch size tuned (3 grid points, then 3 seeds), as the docstring says.
  assert len(study.stages[0].space[0].values) + study.seeds == 6
  assert embedded_scaling.__doc__.count('--scaling=') == 2


# --- finished studies, without training ---------------------------------------------------

BEST_PEAK = 0.5  # Where the fake steps are fewest (lr.peak, before batch scaling).
SEED_STEPS = 20  # Each seed takes this many more steps than the one before.


def fake_steps(batch_size: int, peak: float, seed: int) -> int:
  """Steps to target: 40,000 * (1 + B / 256) examples at the best rate (perfect
  scaling at small B, not at large), a quarter more per octave away from it."""
  examples = 40_000 * (1 + batch_size / 256)
  return round(examples / batch_size * (1 + 0.25 * abs(math.log2(peak / BEST_PEAK)))
               ) + SEED_STEPS * seed


class _FakeWork:
  """A scaling study's `Work`: each run's result.json at once, reaching the
  target at `fake_steps` unless that is past its budget."""

  def __init__(self):
    self.ran: list[str] = []

  def __call__(self, plan: plan_lib.Plan) -> bool:
    for run in plan.runs:
      if not os.path.exists(run.result_path):
        os.makedirs(run.run_dir, exist_ok=True)
        files.write_json(os.path.join(run.run_dir, 'config.json'), run.config)
        files.write_json(run.result_path, self.result(run.config))
        self.ran.append(run.run_dir)
    return True

  @staticmethod
  def result(config: dict) -> dict:
    steps = fake_steps(config['global_batch_size'], config['lr']['peak'], config['seed'])
    budget = config['num_train_steps']
    reached = steps <= budget
    stop = steps if reached else budget
    return {'status': 'reached_target' if reached else 'aborted', 'seed': config['seed'],
            'reached_target': reached, 'steps_to_target': steps if reached else None,
            'seconds_to_target': stop / 10 if reached else None,
            'epochs_to_target': None, 'final_eval_accuracy': 0.7 if reached else 0.5,
            'final_train_accuracy': 0.7, 'resumed': False, 'target_accuracy': 0.7,
            'num_train_steps': budget, 'run_seconds': stop / 10, 'init_seconds': 0.0,
            'evals': [{'step': stop, 'epoch': 1.0, 'accuracy': 0.7 if reached else 0.5,
                       'loss': 1.0, 'seconds': stop / 10}]}


# At the best rate, 0.5, seed 0 takes round(40,000 * (1 + B/256) / B) steps:
# 781, 469, 312 and 234 at batch 64, 128, 256, 512 (Python rounds 312.5 to even).
# Confirmed seeds 1-3 (the grid ran seed 0), 20 steps apart:
#   batch   64: 801, 821, 841              median 821
#   batch  128: 489, 509, 529              median 509   ratio 509*128/(821*64) = 1.24
#   batch  256: 332, 352, miss (372 > 360) median 352   ratio 352*256/(821*64) = 1.71
#   batch  512: 234 or more > 200 at every rate: no trial reached the target, a miss
# The critical batch size is 256; 512 is the first beyond.
_TUNED = ss.Scaling(batch_sizes=(64, 128, 256, 512), stages=(_GRID,), seeds=3,
                    num_train_steps=(1000, 600, 360, 200))


def _tuned_study(directory: str) -> tuple[dict, _FakeWork]:
  work = _FakeWork()
  summary = scaling.run_scaling(embedded_scaling.get_config(), 'fake', _TUNED, 'tuned',
                                directory, work, num_devices=1)
  return summary, work


@pytest.fixture(scope='module')
def tuned(tmp_path_factory) -> tuple[pathlib.Path, dict, _FakeWork]:
  """The finished tuned study above, made once: its directory, summary and work.
  The tests below read it, or write its report again."""
  directory = tmp_path_factory.mktemp('tuned')
  summary, work = _tuned_study(str(directory))
  return directory, summary, work


def _independent(directory: str, sizes, confirm: str, factor: float = 2.0) -> dict:
  """Every median and the critical batch size, recomputed from the runs'
  result.json files alone: a run that missed is infinitely slow; a batch size
  with no runs (its search found no point) missed; the rule by hand."""
  medians = {size: study_runs.median_steps_to_target(
      os.path.join(directory, f'batch_{size}', confirm)) for size in sizes}
  critical = None
  smallest = sizes[0]
  if math.isfinite(medians[smallest]):
    for size in sizes:
      if medians[size] * size > factor * medians[smallest] * smallest:
        break
      critical = size
  return {'medians': medians, 'critical': critical}


def test_the_critical_batch_size_recomputed_from_the_result_files(tuned):
  tmp_path, summary, _ = tuned
  on_disk = json.loads((tmp_path / 'scaling.json').read_text())
  expected = _independent(str(tmp_path), _TUNED.batch_sizes, 'confirm')
  assert expected == {'medians': {64: 821, 128: 509, 256: 352, 512: math.inf},
                      'critical': 256}  # As worked by hand above.
  assert on_disk['critical_batch_size'] == expected['critical'] == summary['critical_batch_size']
  assert on_disk['first_batch_size_beyond'] == 512
  assert not on_disk['critical_batch_size_is_lower_bound'] and on_disk['complete']
  for point in on_disk['points']:
    median = expected['medians'][point['batch_size']]
    assert point['median_steps_to_target'] == (median if math.isfinite(median) else None)
    assert point['counted_as'] == ('measured' if math.isfinite(median) else 'missed')


def test_a_tuned_study_chooses_each_batch_and_confirms_it_on_fresh_seeds(tuned):
  tmp_path, summary, work = tuned
  points = {p['batch_size']: p for p in summary['points']}
  for size in (64, 128, 256):
    point = points[size]
    assert point['params'] == {'lr.peak': BEST_PEAK} and point['seeds'] == [1, 2, 3]
    assert point['directory'] == f'batch_{size}/confirm'
    # The searched rate at batch 128, scaled linearly (embedded_scaling.py's rule).
    assert point['peak_learning_rate'] == pytest.approx(BEST_PEAK * size / 128)
  assert points[256]['steps_to_target'] == [332, 352, None]
  assert (points[256]['fastest_seed_steps'], points[256]['slowest_seed_steps']) == (332, None)
  assert points[128]['ratio_to_perfect'] == pytest.approx(509 * 128 / (821 * 64))
  assert points[64]['perfect_scaling_steps'] == 821
  assert (points[512]['state'], points[512]['num_runs']) == ('no point', 0)
  # 4 batch sizes, a grid of 3 each; 3 batch sizes confirmed over 3 seeds.
  assert len(work.ran) == 4 * 3 + 3 * 3
  assert sorted(os.listdir(tmp_path)) == [
      'batch_128', 'batch_256', 'batch_512', 'batch_64', 'report.md', 'scaling.json',
      'steps_to_target.png', 'study_spec.json']
  assert (tmp_path / 'batch_64' / 'staged_search.json').exists()
  # Re-run: everything is read back, nothing runs again.
  again = _FakeWork()
  assert scaling.run_scaling(embedded_scaling.get_config(), 'fake', _TUNED, 'tuned',
                             str(tmp_path), again, num_devices=1)['complete']
  assert again.ran == []
  # Another mode (or another get_scaling()) in the same directory is refused.
  with pytest.raises(plan_lib.StudyDirError, match='holds another study'):
    scaling.run_scaling(embedded_scaling.get_config(), 'fake', _TUNED, 'untuned',
                        str(tmp_path), _FakeWork(), num_devices=1)


def test_the_report_of_a_tuned_study(tuned):
  tmp_path, summary, _ = tuned
  text = (tmp_path / 'report.md').read_text()
  for part in ('# Batch-size scaling: fake', 'Complete.',
               '| 256 | measured | 360 (eval every 20) | lr.peak = 0.5 | 1 | 2 of 3 | 352 | '
               '332 – ∞ |',
               '| 512 | no trial reached the target |',
               '**Critical batch size: 256 (batch size 512 missed the target).**',
               'k = 2 times the steps of perfect scaling', 'Shallue et al. (2019)',
               '![steps_to_target.png](steps_to_target.png)'):
    assert part in text, part
  console = scaling_report.text_table(summary).splitlines()
  assert console[0].split() == ['batch', 'peak', 'lr', 'reached', 'median', 'steps', 'seeds',
                                'min-max', 'x', 'perfect', 'state']
  assert console[4].split()[:6] == ['256', '1', '2/3', '352', '332', '–']
  fig = scaling_report.scaling_figure(summary)
  (ax,) = fig.axes
  lines = {line.get_label(): line for line in ax.get_lines()}
  x, y = lines['perfect scaling from batch 64'].get_data()
  assert list(x) == [64, 128, 256, 512] and list(y) == [821, 410.5, 205.25, 102.625]
  assert list(lines['2× perfect scaling (the rule\'s limit)'].get_data()[1]) == [
      1642, 821, 410.5, 205.25]
  assert list(lines['median of 3 seeds'].get_data()[1]) == [821, 509, 352]
  assert list(lines['critical batch size 256'].get_xdata()) == [256, 256]
  assert (ax.get_xscale(), ax.get_yscale()) == ('log', 'log')
  assert (tmp_path / 'steps_to_target.png').stat().st_size > 0


def test_an_untuned_study_scales_the_rate_by_the_configs_rule(tmp_path):
  config = embedded_scaling.get_config()
  config.lr.batch_scaling = 'sqrt'
  study = ss.Scaling(batch_sizes=(64, 256), seeds=2, num_train_steps=(1000, 400))
  summary = scaling.run_scaling(config, 'quick', study, 'untuned', str(tmp_path), _FakeWork(),
                                num_devices=1)
  first, second = summary['points']
  # lr.peak 0.5 at batch 128, scaled by sqrt(B / 128).
  assert first['peak_learning_rate'] == pytest.approx(0.5 * math.sqrt(0.5))
  assert second['peak_learning_rate'] == pytest.approx(0.5 * math.sqrt(2))
  # Seeds 0 and 1 at lr.peak 0.5: 781, 801 -> 791; 312, 332 -> 322.
  assert (first['median_steps_to_target'], second['median_steps_to_target']) == (791, 322)
  assert first['directory'] == 'batch_64' and first['params'] == {}
  assert summary['critical_batch_size'] == 256 and summary['critical_batch_size_is_lower_bound']
  assert summary['lr_batch_scaling'] == 'sqrt' and summary['mode'] == 'untuned'
  assert (tmp_path / 'batch_256' / 'study.json').exists()
  assert 'Untuned: each batch size ran the config as it is for 2 seeds, its peak' in (
      tmp_path / 'report.md').read_text()


def test_a_study_stopped_midway_reports_where_it_stands(tmp_path):
  def stop_at_256(plan: plan_lib.Plan) -> bool:
    if '/batch_256' in plan.directory:
      return False  # As --nowait leaves it: the workers go on without the command.
    return _FakeWork()(plan)
  summary = scaling.run_scaling(embedded_scaling.get_config(), 'fake', _TUNED, 'tuned',
                                str(tmp_path), stop_at_256, num_devices=1)
  assert not summary['complete']
  assert [p['counted_as'] for p in summary['points']] == [
      'measured', 'measured', 'not measured', 'not measured']
  assert [p['state'] for p in summary['points']][2:] == ['searching', 'not started']
  assert summary['critical_batch_size'] == 128 and summary['critical_batch_size_is_lower_bound']
  assert 'Not finished: batch size 256 is searching' in (tmp_path / 'report.md').read_text()


def test_main_py_report_on_a_scaling_study_prints_the_curve(tuned, capsys):
  from train.cli import flags as cli_flags  # pylint: disable=g-import-not-at-top
  from train.cli import jobs  # pylint: disable=g-import-not-at-top
  from train.cli import runners  # pylint: disable=g-import-not-at-top
  tmp_path = tuned[0]
  (tmp_path / 'report.md').unlink()
  runners.run_report(jobs.Job(cli_flags.JobKind.REPORT, 'study', {}, str(tmp_path)))
  lines = capsys.readouterr().out.splitlines()
  assert lines[0].split()[:2] == ['batch', 'peak'] and lines[5].split()[:4] == [
      '512', '—', '0/0', '∞']
  assert lines[-2:] == ['critical batch size: 256 (batch size 512 missed the target)',
                        f'report: {tmp_path}/report.md']
  assert (tmp_path / 'report.md').exists()


# --- main.py --scaling, trained for real --------------------------------------------------

_TINY_SCALING = '''"""A tiny scaling study for tests/test_scaling.py."""
from configs import embedded_nesterov
from configs import search_space as ss


def get_config():
  config = embedded_nesterov.get_config()
  config.model.virtual_batch_size = 16
  return config


def get_scaling():
  rate = ss.Stage('rate', (ss.Choice('lr.peak', (0.1,)),), mode='grid')
  return ss.Scaling(batch_sizes=(16, 32), stages=(rate,), seeds=1, num_train_steps=(2, 2))
'''


@pytest.mark.slow  # Trains 4 runs of 2 steps on the tiny data through main.py.
def test_main_py_scaling_runs_each_batch_size_and_reports(tiny_data_dir, tmp_path):
  config_file = tmp_path / 'tiny_scaling.py'
  config_file.write_text(_TINY_SCALING)
  workdir = tmp_path / 'study'
  # A target every eval reaches: each run stops at its first eval, step 1.
  overrides = {**study_runs.QUICK_TINY, 'data_dir': tiny_data_dir, 'target_accuracy': 0.001,
               'stop_at_target': True, 'eval_every_steps': 1, 'lr.warmup_steps': 0.0}
  overrides.pop('global_batch_size')
  command = [sys.executable, 'main.py', f'--config={config_file}', '--scaling=tuned',
             f'--workdir={workdir}', *(f'--config.{k}={v}' for k, v in overrides.items())]
  start = time.monotonic()
  done = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                        timeout=study_runs.HANG_GUARD_SECONDS, check=False)
  print(f'main.py --scaling=tuned: {time.monotonic() - start:.1f} s')
  assert done.returncode == 0, done.stderr[-3000:]
  lines = done.stdout.splitlines()
  assert lines[-1] == f'report: {workdir}/report.md'
  assert lines[-2] == ('critical batch size: at least 32 (every batch size up to 32 takes at '
                       'most 2 times the steps of perfect scaling from batch 16)')
  summary = json.loads((workdir / 'scaling.json').read_text())
  assert [p['median_steps_to_target'] for p in summary['points']] == [1, 1]
  assert [p['seeds'] for p in summary['points']] == [[1], [1]]
  for size in (16, 32):
    result = json.loads((workdir / f'batch_{size}' / 'confirm' / 'seed_1' /
                         'result.json').read_text())
    assert (result['global_batch_size'], result['steps_completed']) == (size, 1)
  assert _independent(str(workdir), (16, 32), 'confirm')['critical'] == 32
