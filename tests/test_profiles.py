"""Performance profiles (train/experiments/profiles.py) against tables worked by
hand, the studies they read (profile_studies.py), the report, and `main.py
profile` on finished studies written without training (tests/finished_studies.py).
"""

import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests import finished_studies
from tests import study_runs
from train.experiments import profile_studies
from train.experiments import profiles
from train.experiments.reports import optimizer_plots
from train.experiments.reports import profile as profile_report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The table worked by hand: steps to target of 3 optimizers on 4 workloads
# (None: fewer than half the seeds reached the target, a miss).
#
#          w1    w2    w3    w4
#   A     100   300  miss  miss
#   B     125   200   800  miss
#   C     100   900   200  miss
#
# Fastest: w1 100 (A and C tie), w2 200 (B), w3 200 (C), w4 none.
# Ratios:  A: 100/100 = 1,    300/200 = 1.5, miss = inf,         inf
#          B: 125/100 = 1.25, 200/200 = 1,   800/200 = 4 (kept: not > 4), inf
#          C: 100/100 = 1,    900/200 = 4.5 > 4: inf,  200/200 = 1, inf
# n = 4 workloads, w4 (everyone missed) included.
# rho:  A: 1/4 on [1, 1.5), 2/4 from 1.5;
#       B: 1/4 on [1, 1.25), 2/4 on [1.25, 4), 3/4 at 4;
#       C: 2/4 from 1.
# The documentation's exact score, (1/3) * integral from 1 to 4 of rho
#   = (1/3) * mean over workloads of (4 - r) for finite r, 0 otherwise:
#       A: (3 + 2.5 + 0 + 0) / 4 / 3 = 5.5 / 12  = 11/24
#       B: (2.75 + 3 + 0 + 0) / 4 / 3 = 5.75 / 12 = 23/48
#       C: (3 + 0 + 3 + 0) / 4 / 3 = 6 / 12       = 1/2
# AlgoPerf's code: the trapezoidal rule on tau_i = 1 + i/33, i = 0..99 (h = 1/33).
# A ratio r in (tau_{j-1}, tau_j] adds 4 - tau_j + h/2 = (99 - j)/33 + 1/66;
# r = 1 (j = 0) adds all of 3:
#   r = 1:    3           = 198/66
#   r = 1.25: j = 9 (tau_8 = 1.2424, tau_9 = 1.2727): 90/33 + 1/66 = 181/66
#   r = 1.5:  j = 17 (tau_16 = 1.4848, tau_17 = 1.5152): 82/33 + 1/66 = 165/66
#             (1.5 is the middle of its interval: 2.5, as exact)
#   r = 4:    j = 99: 0 + 1/66 = 1/66 (the exact integral gives it nothing)
#       A: (198 + 165) / 66 / 4 / 3 = 363/3168 = 11/24  (= exact)
#       B: (181 + 198 + 1) / 66 / 4 / 3 = 380/3168 = 95/198 = 0.479798
#       C: (198 + 198) / 66 / 4 / 3 = 1/2
HAND_TIMES = [[100, 300, None, None], [125, 200, 800, None], [100, 900, 200, None]]
HAND_RATIOS = [[1, 1.5, math.inf, math.inf], [1.25, 1, 4, math.inf], [1, math.inf, 1, math.inf]]
HAND_SCORES = [11 / 24, 95 / 198, 1 / 2]
HAND_EXACT = [11 / 24, 23 / 48, 1 / 2]


def _hand_profile() -> profiles.Profile:
  return profiles.performance_profile(['A', 'B', 'C'], ['w1', 'w2', 'w3', 'w4'], HAND_TIMES)


def test_the_table_worked_by_hand():
  profile = _hand_profile()
  np.testing.assert_array_equal(profile.ratios, HAND_RATIOS)
  np.testing.assert_allclose(profile.scores, HAND_SCORES, rtol=1e-12)
  np.testing.assert_allclose(profile.exact_scores, HAND_EXACT, rtol=1e-12)
  assert profile.scores[1] != pytest.approx(profile.exact_scores[1], abs=1e-4)
  # AlgoPerf's grid: 100 points from 1 to 4, both ends exactly.
  assert len(profile.taus) == 100 and profile.taus[0] == 1.0 and profile.taus[-1] == 4.0
  at = lambda tau: int(np.argmin(np.abs(profile.taus - tau)))  # noqa: E731
  # rho at the grid points next to each step, read off the table above.
  assert profile.rho[0, at(1.0)] == 0.25 and profile.rho[0, at(1.4848)] == 0.25
  assert profile.rho[0, at(1.5152)] == 0.5 and profile.rho[0, -1] == 0.5
  assert profile.rho[1, at(1.2424)] == 0.25 and profile.rho[1, at(1.2727)] == 0.5
  assert profile.rho[1, -2] == 0.5 and profile.rho[1, -1] == 0.75
  assert set(profile.rho[2]) == {0.5}
  assert profile.everyone_missed() == ['w4']
  np.testing.assert_array_equal(profile.over_cutoff(), [[0, 0, 0, 0], [0, 0, 0, 0],
                                                        [0, 1, 0, 0]])


def test_the_cutoff_is_four_times_the_fastest_and_a_miss_is_infinite():
  # 400 / 100 = 4 is kept, 400.0001 / 100 is over; None, NaN and inf are misses.
  times = [[100, 100, 100, 100], [400, 400.0001, None, math.nan], [math.inf, 100, 100, 100]]
  profile = profiles.performance_profile(['fast', 'slow', 'late'], list('abcd'), times)
  np.testing.assert_array_equal(profile.ratios[1], [4, math.inf, math.inf, math.inf])
  np.testing.assert_array_equal(profile.ratios[2], [math.inf, 1, 1, 1])
  assert profile.rho[1, -1] == 0.25 and profile.rho[1, -2] == 0.0
  # 'slow' has a ratio of exactly 4 on one workload of 4: AlgoPerf's code credits
  # it h/2 = 1/66 there, / 4 workloads / 3; the exact integral nothing.
  assert profile.scores[1] == pytest.approx(1 / 66 / 4 / 3, rel=1e-12)
  assert profile.exact_scores[1] == 0.0
  np.testing.assert_allclose(profile.scores, [1.0, 1 / 792, 0.75])


def test_ties_are_each_the_fastest():
  times = [[300, 60], [300, 60], [750, 240]]
  profile = profiles.performance_profile(['a', 'b', 'c'], ['x', 'y'], times)
  np.testing.assert_array_equal(profile.ratios, [[1, 1], [1, 1], [2.5, 4]])
  assert list(profile.scores[:2]) == [1.0, 1.0] and list(profile.rho[0]) == [1.0] * 100
  # c: ratio 2.5 is the middle of (tau_49, tau_50] (adds 4 - 2.5 = 1.5 by either
  # rule), and ratio 4 adds 1/66 by the trapezoid: (1.5 + 1/66) / 2 / 3.
  assert profile.scores[2] == pytest.approx((1.5 + 1 / 66) / 6, rel=1e-12)
  assert profile.exact_scores[2] == pytest.approx(1.5 / 6, rel=1e-12)


def test_a_workload_everyone_missed_counts_against_everyone():
  profile = profiles.performance_profile(['a', 'b'], ['x', 'y', 'z'],
                                         [[100, None, 50], [200, None, None]])
  assert profile.everyone_missed() == ['y']
  np.testing.assert_array_equal(profile.ratios[:, 1], [math.inf, math.inf])
  # a is the fastest on x and z, but y is one of the 3 workloads: at most 2/3.
  assert profile.rho[0].max() == pytest.approx(2 / 3)
  assert profile.scores[0] == pytest.approx(2 / 3)
  # b: x at ratio 2 (adds 2 of 3), y and z nothing: (2 / 3) / 3.
  assert profile.exact_scores[1] == pytest.approx(2 / 9)
  every_miss = profiles.performance_profile(['a', 'b'], ['x', 'y'], [[None, None], [None, None]])
  assert list(every_miss.scores) == [0.0, 0.0] and list(every_miss.exact_scores) == [0.0, 0.0]


def test_the_step_profile_is_rho_at_every_tau():
  profile = _hand_profile()
  for row, on_grid in zip(profile.ratios, profile.rho):
    steps, levels = profiles.step_profile(row)
    # rho holds from each step to the next: look up each grid tau's level.
    index = np.searchsorted(steps, profile.taus, side='right') - 1
    np.testing.assert_array_equal(levels[index], on_grid)


@pytest.mark.parametrize('optimizers, workloads, times, message', [
    (['a'], ['x', 'y'], [[1, 2]], 'at least 2 optimizers, not 1'),
    (['a', 'b'], ['x'], [[1], [2]], 'at least 2 workloads, not 1'),
    (['a', 'a'], ['x', 'y'], [[1, 2], [1, 2]], 'optimizers are named twice'),
    (['a', 'b'], ['x', 'y'], [[1, 0], [1, 2]], 'a time to target must be > 0, not 0.0'),
    (['a', 'b'], ['x', 'y'], [[1, 2], [1]], 'every optimizer needs a time on every workload'),
    (['a', 'b'], ['x', 'y', 'z'], [[1, 2], [1, 2]], 'not 2 optimizers by 3 workloads'),
])
def test_what_a_profile_refuses(optimizers, workloads, times, message):
  with pytest.raises(ValueError, match=re.escape(message)):
    profiles.performance_profile(optimizers, workloads, times)


# --- the studies a profile reads -----------------------------------------------------

# Steps to target of each seed. batch_256: lars median 500, nesterov 350 (2 of 3
# reach it); batch_1k: lars 220, nesterov misses (1 of 3).
STEPS = {'batch_256': {'lars': [400, 500, 600], 'nesterov': [300, 350, None]},
         'batch_1k': {'lars': [200, 220, 240], 'nesterov': [None, None, 100]}}


def _write_studies(root) -> list[str]:
  """batch_256 as one comparison; batch_1k as a comparison's folder and a study:
  both forms of --studies. Returns the --studies entries."""
  finished_studies.write_comparison(str(root / 'cmp256'), STEPS['batch_256'])
  finished_studies.write_comparison(str(root / 'cmp1k'), {'lars': STEPS['batch_1k']['lars']})
  finished_studies.write_study(str(root / 'nesterov_1k'), 'nesterov',
                               STEPS['batch_1k']['nesterov'])
  return [f'batch_256={root}/cmp256', f'batch_1k:lars={root}/cmp1k/lars',
          f'batch_1k:nesterov={root}/nesterov_1k']


def test_read_studies_takes_both_forms(tmp_path):
  studies = profile_studies.read_studies(_write_studies(tmp_path), 'steps')
  assert studies.workloads == ('batch_256', 'batch_1k')
  assert studies.optimizers == ('lars', 'nesterov')
  assert studies.times() == [[500, 220], [350, None]]
  cell = studies.cell('batch_256', 'nesterov')
  assert (cell.num_runs, cell.num_reached, cell.directory) == (3, 2, str(tmp_path / 'cmp256' /
                                                                         'nesterov'))
  assert studies.target('batch_1k') == finished_studies.TARGET
  # The same studies in epochs and seconds (50 steps an epoch, 0.25 s a step).
  assert profile_studies.read_studies(_write_studies(tmp_path), 'epochs').times() == [
      [10, 4.4], [7, None]]
  assert profile_studies.read_studies(_write_studies(tmp_path), 'seconds').times() == [
      [125, 55], [87.5, None]]


def _refusal(tmp_path, entries: list[str]) -> str:
  with pytest.raises(profile_studies.ProfileInputError) as raised:
    profile_studies.read_studies(entries)
  return str(raised.value)


def test_read_studies_refuses_what_a_profile_cannot_use(tmp_path):
  entries = _write_studies(tmp_path)
  root = str(tmp_path)
  assert 'is not WORKLOAD:OPTIMIZER=DIR' in _refusal(tmp_path, ['batch_1k'])
  assert 'has an empty workload, optimizer or directory' in _refusal(tmp_path, ['x:=d'])
  assert f'{root}/cmp256 is a comparison, not one study; give it as w={root}/cmp256' in (
      _refusal(tmp_path, [f'w:lars={root}/cmp256']))
  assert f'{root}/nesterov_1k is one study, not a comparison; give it as w:OPTIMIZER=' in (
      _refusal(tmp_path, [f'w={root}/nesterov_1k']))
  # A study whose runs are not all done.
  finished_studies.write_study(f'{root}/busy', 'lars', [100], unfinished=[
      {'run': 'lars seed 1', 'seed': 1, 'state': 'running', 'detail': 'host a'},
      {'run': 'lars seed 2', 'seed': 2, 'state': 'pending', 'detail': ''}])
  assert (f'{root}/busy is not a finished study: 2 of its planned runs have no result (1 '
          'running, 1 pending)') in _refusal(tmp_path, [*entries, f'batch_4k:lars={root}/busy'])
  # A missing optimizer, another target, a study given twice.
  finished_studies.write_study(f'{root}/lars_4k', 'lars', [100])
  assert 'optimizer nesterov has no study on workload batch_4k; give batch_4k:nesterov=DIR' in (
      _refusal(tmp_path, [*entries, f'batch_4k:lars={root}/lars_4k']))
  finished_studies.write_study(f'{root}/nesterov_4k', 'nesterov', [100], target=0.75)
  assert ('workload batch_4k: its studies have different target accuracies (lars 70.00%, '
          'nesterov 75.00%)') in _refusal(tmp_path, [*entries, f'batch_4k:lars={root}/lars_4k',
                                                     f'batch_4k:nesterov={root}/nesterov_4k'])
  assert f'--studies gives {root}/nesterov_1k twice (as batch_1k:nesterov and batch_4k:' in (
      _refusal(tmp_path, [*entries, f'batch_4k:nesterov={root}/nesterov_1k']))
  # A study planned but not yet reported, and a study.json changed by hand.
  os.makedirs(f'{root}/planned')
  open(f'{root}/planned/plan.json', 'w').write('{}')
  assert (f'{root}/planned holds no study.json yet; once its runs finish, python main.py '
          f'report --workdir={root}/planned writes it') in _refusal(
              tmp_path, [*entries, f'batch_4k:lars={root}/planned'])
  study_json = tmp_path / 'nesterov_1k' / 'study.json'
  values = json.loads(study_json.read_text())
  study_json.write_text(json.dumps(values | {'median_steps_to_target': 0}))
  assert 'median_steps_to_target=0 is not a number > 0' in _refusal(tmp_path, entries)
  assert 'the time to target is in one of steps, epochs, seconds' in str(
      pytest.raises(profile_studies.ProfileInputError, profile_studies.read_studies,
                    entries, 'hours').value)


# --- the report and the command ------------------------------------------------------


def test_the_report_of_the_table_worked_by_hand(tmp_path):
  root = tmp_path / 'studies'
  entries = []
  for s, optimizer in enumerate('ABC'):
    for w, workload in enumerate(['w1', 'w2', 'w3', 'w4']):
      steps = HAND_TIMES[s][w]
      directory = finished_studies.write_study(str(root / f'{optimizer}_{workload}'),
                                               optimizer, [steps])
      entries.append(f'{workload}:{optimizer}={directory}')
  studies = profile_studies.read_studies(entries)
  profile = profile_report.profile_of(studies)
  path = profile_report.write_profile_report(str(tmp_path / 'out'), studies, profile)
  text = open(path).read()
  assert text.startswith('# Performance profile of 3 optimizers on 4 workloads')
  # Ranked by AlgoPerf's score: C 0.5, B 95/198, A 11/24.
  assert '| 1 | C | 0.5000 | 0.5000 | 2 | 2 | 1 | 1 |' in text
  assert '| 2 | B | 0.4798 | 0.4792 | 1 | 3 | 0 | 1 |' in text
  assert '| 3 | A | 0.4583 | 0.4583 | 1 | 2 | 0 | 2 |' in text
  assert ('| w2 | 70.00% | 300 steps (×1.50) | **200 steps** (×1) | 900 steps (×4.50: over 4×, '
          'counted as missed) |') in text
  assert '| w3 | 70.00% | not reached | 800 steps (×4.00) | **200 steps** (×1) |' in text
  assert 'No optimizer reached the target on w4' in text
  values = json.load(open(tmp_path / 'out' / 'profile.json'))
  assert values['score'] == pytest.approx(dict(zip('ABC', HAND_SCORES)))
  assert values['exact_score'] == pytest.approx(dict(zip('ABC', HAND_EXACT)))
  assert values['studies']['C']['w2'] | {'directory': None} == {
      'directory': None, 'median_time_to_target': 900, 'num_runs': 1,
      'num_reached_target': 1, 'ratio': None, 'counted_as': 'over_cutoff'}
  assert values['studies']['B']['w3']['ratio'] == 4.0
  assert values['everyone_missed'] == ['w4'] and len(values['tau']) == 100
  _assert_profile_png(str(tmp_path / 'out' / 'performance_profile.png'))


def _assert_profile_png(path: str) -> None:
  with Image.open(path) as image:
    assert image.format == 'PNG' and image.width >= 600 and image.height >= 400


def test_the_figure_draws_each_step_profile():
  profile = _hand_profile()
  fig = optimizer_plots.performance_profile_figure(profile_report.curves(profile), 4.0, 'hand')
  (ax,) = fig.axes
  lines = ax.get_lines()
  assert [line.get_label() for line in lines] == ['A: 0.458', 'B: 0.480', 'C: 0.500']
  # B's steps: 1/4 from 1, 2/4 from 1.25, 3/4 at 4, each held to the next tau.
  x, y = lines[1].get_data()
  assert list(x) == [1.0, 1.0, 1.25, 4.0, 4.0] and list(y) == [0.25, 0.25, 0.5, 0.75, 0.75]
  assert lines[1].get_drawstyle() == 'steps-post'
  assert ax.get_xlim() == (1.0, 4.0)


def _independent_profile(study_dirs: dict[tuple[str, str], str]) -> dict[str, float]:
  """AlgoPerf's score recomputed from the runs' result.json files alone: each
  median by hand (a run that missed is infinitely slow), ratios with the 4x
  cut-off, rho on 100 points from 1 to 4 and the trapezoidal rule by hand."""
  medians = {key: study_runs.median_steps_to_target(directory)
             for key, directory in study_dirs.items()}
  workloads = sorted({w for w, _ in medians})
  optimizers = sorted({o for _, o in medians})
  scores = {}
  taus = [1 + 3 * i / 99 for i in range(100)]
  for o in optimizers:
    ratios = []
    for w in workloads:
      best = min(medians[(w, other)] for other in optimizers)
      t = medians[(w, o)]
      ratios.append(t / best if math.isfinite(t) and t <= 4 * best else math.inf)
    rho = [sum(r <= tau for r in ratios) / len(workloads) for tau in taus]
    area = sum((taus[i + 1] - taus[i]) * (rho[i] + rho[i + 1]) / 2 for i in range(99))
    scores[o] = area / 3
  return scores


def test_main_py_profile_on_finished_studies(tmp_path):
  entries = _write_studies(tmp_path)
  out = tmp_path / 'profile'
  out.mkdir()  # An earlier profile's directory: its files are written again.
  (out / 'report.md').write_text('an earlier profile\n')
  (out / 'profile.json').write_text('{}\n')
  command = [sys.executable, 'main.py', 'profile', f'--workdir={out}',
             f'--studies={",".join(entries)}', '--profile_time=epochs']
  done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300,
                        check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  assert done.stderr == ''
  lines = done.stdout.splitlines()
  assert lines[-1] == f'report: {out}/report.md'
  assert re.match(r'1 +lars +0\.9268 +0\.9286 +1 +2 +0 +0$', lines[2]), done.stdout
  assert sorted(os.listdir(out)) == ['log.txt', 'performance_profile.png', 'profile.json',
                                     'report.md']
  assert (out / 'report.md').read_text().startswith('# Performance profile of 2 optimizers')
  values = json.load(open(out / 'profile.json'))
  assert values['time_unit'] == 'epochs' and values['workloads'] == ['batch_256', 'batch_1k']
  assert values['studies']['lars']['batch_256']['median_time_to_target'] == 10  # 500 steps.
  # lars: ratio 500/350 = 10/7 on batch_256 (j = 15: 4 - 48/33 + 1/66 = 169/66) and
  # 1 on batch_1k (3): (169/66 + 3) / 2 / 3 = 367/396; nesterov: 1 and a miss, 1/2.
  assert values['score'] == pytest.approx({'lars': 367 / 396, 'nesterov': 0.5}, rel=1e-12)
  # The same from the runs' own files (in steps: a unit cancels in the ratios),
  # computed independently.
  dirs = {(w, o): values['studies'][o][w]['directory']
          for w in values['workloads'] for o in values['optimizers']}
  assert values['score'] == pytest.approx(_independent_profile(dirs), rel=1e-12)
