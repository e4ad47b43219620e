"""Staged searches (configs/search_space.Search, `main.py --search`): the grid and
the staged plan, feasible counting, resume and the report.

The plan logic runs without training: `_FakeWork` writes each run's config.json
and a result.json whose accuracy is a function of the learning rate, diverged
above a threshold, as the workers would. One slow test trains for real
(`test_staged_search_killed_in_each_stage_resumes`): a space that diverges on
purpose, a kill in each stage, and the last stage through a local worker.
"""

import json
import math
import os
import subprocess
import sys

import pytest

from configs import embedded_nesterov
from configs import embedded_nesterov_search
from configs import search_space as ss
from tests import study_runs
from train.common import files
from train.experiments import plan as plan_lib
from train.experiments import search
from train.experiments import staged
from train.experiments import stages

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEST_LR = 0.3  # Where the fake accuracy peaks.


class _FakeWork:
  """A `staged.Work` that 'trains' each run at once: accuracy peaks at BEST_LR
  (log scale), the loss diverges above `diverge_above`. `stop_in`: raise, as a
  killed command would stop, before the second run it would train in the plan
  of that directory name (a stage half done)."""

  def __init__(self, diverge_above: float = 10.0, stop_in: str | None = None):
    self.diverge_above = diverge_above
    self.stop_in = stop_in
    self.ran: list[str] = []

  def __call__(self, plan: plan_lib.Plan) -> bool:
    ran_here = 0
    for run in plan.runs:
      if os.path.exists(run.result_path):
        continue
      if os.path.basename(plan.directory) == self.stop_in and ran_here:
        raise KeyboardInterrupt('killed')
      os.makedirs(run.run_dir, exist_ok=True)
      files.write_json(os.path.join(run.run_dir, 'config.json'), run.config)
      files.write_json(run.result_path, self.result(run.config))
      self.ran.append(run.run_dir)
      ran_here += 1
    return True

  def diverges(self, config: dict) -> bool:
    return config['lr']['peak'] > self.diverge_above

  def result(self, config: dict) -> dict:
    diverged = self.diverges(config)
    accuracy = None if diverged else (
        0.9 - 0.05 * math.log10(config['lr']['peak'] / BEST_LR) ** 2 + 1e-3 * config['seed'])
    evals = [] if diverged else [{'step': 8, 'epoch': 1.0, 'accuracy': accuracy, 'loss': 1.0,
                                  'seconds': 1.0}]
    return {'status': 'diverged' if diverged else 'aborted', 'seed': config['seed'],
            'diverged': diverged, 'reached_target': False, 'steps_to_target': None,
            'seconds_to_target': None, 'epochs_to_target': None,
            'final_eval_accuracy': accuracy, 'final_train_accuracy': accuracy,
            'resumed': False, 'target_accuracy': 0.95, 'num_train_steps': 8,
            'run_seconds': 1.0, 'init_seconds': 0.0, 'evals': evals}


def _first_prefix_with(trials: list[dict], feasible: int, is_feasible) -> int:
  """The length of the shortest prefix of `trials` with `feasible` feasible ones."""
  count = 0
  for n, trial in enumerate(trials, start=1):
    count += is_feasible(trial)
    if count == feasible:
      return n
  return len(trials)


LR_RANGE = ss.Range('lr.peak', 1e-2, 1e3)  # Above 10 the fake runs diverge.


def _two_stage_search(initial_trials: int = 4, initial_draws: int = 10) -> ss.Search:
  return ss.Search(stages=(
      ss.Stage('initial', (LR_RANGE, ss.Choice('label_smoothing', (0.0, 0.1))),
               num_trials=initial_trials, max_draws=initial_draws),
      ss.Stage('final', (ss.Range('lr.peak', 1e-3, 1e4),), num_trials=3, narrow_to_best=2,
               seeds_per_trial=2),
  ), confirm_seeds=3)


# --- the plan, without training ------------------------------------------------------


def test_grid_stage_runs_every_point_of_the_product():
  space = (ss.Choice('lr.peak', (0.1, 1.0, 10.0)), ss.Choice('label_smoothing', (0.0, 0.1)))
  stage = ss.Stage('sweep', space, mode='grid', seeds_per_trial=3)
  points = stages.grid_points(space)
  assert len(points) == stages.grid_size(space) == 6 == stages.max_draws(stage)
  assert points[:2] == [{'lr.peak': 0.1, 'label_smoothing': 0.0},
                        {'lr.peak': 0.1, 'label_smoothing': 0.1}]  # The first axis slowest.
  assert {(p['lr.peak'], p['label_smoothing']) for p in points} == {
      (lr, ls) for lr in (0.1, 1.0, 10.0) for ls in (0.0, 0.1)}
  assert stages.draw(stage, space, 1, seed=0) == points  # A grid draws all of it.
  assert stages.next_draws(stage, 6, 0) is None  # Never more, even with none feasible.


def test_grid_plan_holds_each_point_for_its_seeds(tmp_path):
  config = embedded_nesterov.get_config()
  search_ = ss.Search(stages=(ss.Stage('sweep', (ss.Choice('lr.peak', (0.1, 100.0)),),
                                       mode='grid', seeds_per_trial=3),), confirm_seeds=0)
  work = _FakeWork()
  summary = staged.run_staged(config, 'grid', search_, str(tmp_path), work, num_devices=1)
  plan = plan_lib.read_plan(str(tmp_path / 'stage_1_sweep'))
  assert [p['lr.peak'] for p in plan.search['params']] == [0.1, 100.0]
  assert sorted((run.entry, run.seed) for run in plan.runs) == [
      (f'trial_{k}', s) for k in (0, 1) for s in (0, 1, 2)]
  [stage] = summary['stages']
  # The diverged point counts as drawn, not as feasible; a grid draws no more.
  assert (stage['drawn'], stage['feasible'], stage['over']) == (2, 1, True)
  assert summary['complete'] and summary['chosen']['params'] == {'lr.peak': 0.1}
  assert len(work.ran) == 6


@pytest.mark.parametrize('stage,problem', [
    (ss.Stage('sweep', (LR_RANGE,), mode='grid'), 'a grid runs Choice axes only'),
    (ss.Stage('sweep', (ss.Choice('lr.peak', (1.0, 2.0)),), mode='grid', num_trials=5),
     'the grid has 2 points'),
    (ss.Stage('first', (LR_RANGE,), num_trials=0), 'needs the number of feasible trials'),
    (ss.Stage('first', (LR_RANGE,), num_trials=5, max_draws=3), 'below num_trials=5'),
    (ss.Stage('first', (LR_RANGE,), num_trials=2, narrow_to_best=2), 'on a later stage'),
    (ss.Stage('no/slash', (LR_RANGE,), num_trials=2), 'letters, digits'),
    (ss.Stage('first', (ss.Range('lr.peek', 1.0, 2.0),), num_trials=2), "'lr.peek'"),
    (ss.Stage('first', (LR_RANGE,), num_trials=2, mode='random'), "mode 'random'"),
])
def test_check_search_names_the_stage_and_the_problem(stage, problem):
  with pytest.raises(stages.SearchError, match='stage 1') as raised:
    stages.check_search(ss.Search(stages=(stage,)), embedded_nesterov.get_config())
  assert problem in str(raised.value)


def test_check_search_refuses_an_unknown_metric():
  stage = ss.Stage('first', (LR_RANGE,), num_trials=2)
  with pytest.raises(stages.SearchError, match="metric 'accuracy' is not one of"):
    stages.check_search(ss.Search(stages=(stage,), metric='accuracy'),
                        embedded_nesterov.get_config())


def test_embedded_rehearsal_search_is_valid_and_as_documented():
  config = embedded_nesterov_search.get_config()
  search_ = embedded_nesterov_search.get_search()
  stages.check_search(search_, config)
  initial, final = search_.stages
  assert list(initial.space[0].values) == pytest.approx(
      [10 ** (k / 2) for k in range(-2, 3)])  # np.logspace(-1, 1, 5)
  assert list(initial.space[1].values) == pytest.approx([1e-5, 1e-4, 1e-3, 1e-2])
  assert (initial.num_trials, initial.max_draws, final.num_trials, final.narrow_to_best,
          search_.confirm_seeds) == (4, 8, 3, 2, 5)
  assert config.num_train_steps == 400 and config.optimizer.momentum == 0.9
  assert stages.first_confirm_seed(search_, config.seed) == 1


def test_feasible_counting_draws_until_enough_trials_do_not_diverge(tmp_path):
  config = embedded_nesterov.get_config()
  search_ = _two_stage_search()
  work = _FakeWork()
  summary = staged.run_staged(config, 'tiny', search_, str(tmp_path), work, num_devices=1)
  initial = summary['stages'][0]
  # The Halton prefix: the trials drawn are the first points of one sequence,
  # and the stage stops at the shortest prefix holding 4 feasible trials.
  sequence = search.draw_trials(search_.stages[0].space, 10, seed=config.seed)
  expected = _first_prefix_with(sequence, 4, lambda p: p['lr.peak'] <= work.diverge_above)
  assert expected > 4, 'the space must diverge within its first draws for this test'
  assert (initial['drawn'], initial['feasible'], initial['exhausted']) == (expected, 4, False)
  plan = plan_lib.read_plan(str(tmp_path / 'stage_1_initial'))
  assert plan.search['params'] == sequence[:expected]
  diverged = [t for t in initial['trials'] if t['num_diverged']]
  assert len(diverged) == expected - 4 and not any(t['feasible'] for t in diverged)
  assert initial['trials'][-len(diverged):] == diverged  # Ranked last.
  with open(tmp_path / 'stage_1_initial' / 'stage.json') as f:
    on_disk = json.load(f)
  assert (on_disk['drawn'], on_disk['feasible']) == (expected, 4)
  with open(tmp_path / 'staged_search.json') as f:
    assert json.load(f)['stages'][0]['drawn'] == expected


def test_a_stage_out_of_draws_goes_on_with_what_is_feasible(tmp_path):
  config = embedded_nesterov.get_config()
  search_ = _two_stage_search(initial_trials=4, initial_draws=5)
  work = _FakeWork(diverge_above=0.1)  # Most of [0.01, 1000] diverges.
  summary = staged.run_staged(config, 'tiny', search_, str(tmp_path), work, num_devices=1)
  initial = summary['stages'][0]
  sequence = search.draw_trials(search_.stages[0].space, 5, seed=config.seed)
  feasible = sum(p['lr.peak'] <= 0.1 for p in sequence)
  assert 0 < feasible < 4
  assert (initial['drawn'], initial['feasible'], initial['exhausted']) == (5, feasible, True)
  report = (tmp_path / 'report.md').read_text()
  assert f'max_draws reached with {feasible} of 4 wanted trials feasible' in report


def test_narrowed_space_runs_between_the_neighbours_of_the_best_trials():
  def trial(k, lr, momentum, metric, feasible=True):
    return {'trial': k, 'params': {'lr.peak': lr, 'optimizer.momentum': momentum},
            'feasible': feasible, 'metric': metric, 'num_finished': 1}
  previous = [trial(0, 0.3, 0.9, 0.8), trial(1, 1.0, 0.97, 0.7), trial(2, 3.0, 0.99, 0.6),
              trial(3, 0.1, 0.7, 0.5), trial(4, 10.0, 0.9, None, feasible=False)]
  stage = ss.Stage('final', (ss.Range('lr.peak', 0.2, 100.0),
                             ss.Range('optimizer.momentum', 1e-3, 1.0, one_minus=True),
                             ss.Range('optimizer.l2', 1e-5, 1e-2),
                             ss.Choice('label_smoothing', (0.0, 0.1))),
                   num_trials=2, narrow_to_best=2)
  lr, momentum, l2, smoothing = stages.narrowed_space(stage, previous)
  # The best two have 0.3 and 1.0; tried below: 0.1 (clipped to the outer 0.2), above 3.0.
  assert (lr.low, lr.high) == (0.2, 3.0)
  # On 1 - mu: the best have 0.1 and 0.03; tried next to them: 0.3 and 0.01.
  assert (momentum.low, momentum.high) == pytest.approx((0.01, 0.3))
  assert momentum.one_minus and momentum.scale == 'log'
  assert l2 == stage.space[2] and smoothing == stage.space[3]  # Not searched before.
  with pytest.raises(stages.SearchError, match='no feasible trial'):
    stages.narrowed_space(stage, [trial(0, 0.3, 0.9, None, feasible=False)])


def test_rank_puts_feasible_trials_first_by_the_metric():
  def trial(k, steps, accuracy, feasible=True):
    summary = {'median_final_accuracy': accuracy, 'median_steps_to_target': steps}
    return stages.trial_record(k, {}, 1, [], [], 'median_steps_to_target') | {
        'feasible': feasible, 'summary': summary, 'metric': steps}
  trials = [trial(0, 300, 0.7), trial(1, None, 0.9), trial(2, 200, 0.6),
            trial(3, 100, 0.8, feasible=False), trial(4, 200, 0.65)]
  ranked = stages.rank(trials, 'median_steps_to_target')  # Fewer steps are better.
  assert [t['trial'] for t in ranked] == [4, 2, 0, 1, 3]  # A tie goes to the accuracy.
  assert stages.best(ranked)['trial'] == 4
  assert stages.best([trials[1], trials[3]]) is None


def test_best_accuracy_metric_is_the_median_of_each_run_best_eval():
  runs = [{'evals': [{'accuracy': a} for a in accuracies], 'status': 'aborted'}
          for accuracies in ([0.2, 0.6, 0.5], [0.1, 0.3], [0.4, 0.9, 0.8])]
  assert stages.metric_value('median_best_accuracy', {}, runs) == 0.6


def test_confirmation_runs_the_chosen_point_on_seeds_no_trial_ran(tmp_path):
  config = embedded_nesterov.get_config()
  search_ = _two_stage_search()
  summary = staged.run_staged(config, 'tiny', search_, str(tmp_path), _FakeWork(),
                              num_devices=1)
  final = summary['stages'][1]
  ranked_accuracies = [t['metric'] for t in final['trials']]
  assert ranked_accuracies == sorted(ranked_accuracies, reverse=True)
  chosen = summary['chosen']
  assert chosen['stage'] == 'final' and chosen['trial'] == final['trials'][0]['trial']
  plan = plan_lib.read_plan(str(tmp_path / 'confirm'))
  assert [run.seed for run in plan.runs] == [2, 3, 4]  # Past the final stage's seeds 0, 1.
  assert {run.config['lr']['peak'] for run in plan.runs} == {chosen['params']['lr.peak']}
  confirmation = summary['confirmation']
  assert confirmation['seeds'] == [2, 3, 4] and confirmation['summary']['num_runs'] == 3
  # The final stage's range: between the runs tried next to the 2 best initial ones.
  initial_values = sorted(t['params']['lr.peak'] for t in summary['stages'][0]['trials'])
  best = [t['params']['lr.peak'] for t in summary['stages'][0]['trials'][:2]]
  [lr] = final['space']
  assert lr['low'] == max(v for v in initial_values if v < min(best))
  assert lr['high'] == min(v for v in initial_values if v > max(best))
  report = (tmp_path / 'report.md').read_text()
  for text in ('Complete.', '`median_final_accuracy`, larger is better',
               '## The chosen point over 3 seeds', 'Seeds 2 to 4',
               '| 1. initial | quasi_random | 1 | 4 |', 'best 2 of the stage before'):
    assert text in report, text
  for key in ('lr.peak', 'label_smoothing'):
    assert (tmp_path / f'axis_{key}.png').stat().st_size > 0


def test_interrupted_in_each_stage_the_search_resumes_without_redoing_runs(tmp_path):
  config = embedded_nesterov.get_config()
  search_ = _two_stage_search()
  reference = tmp_path / 'reference'
  whole = _FakeWork()
  staged.run_staged(config, 'tiny', search_, str(reference), whole, num_devices=1)
  total = len(whole.ran)
  workdir = tmp_path / 'interrupted'
  ran: list[str] = []
  for stage_dir in ('stage_1_initial', 'stage_2_final', 'confirm'):
    work = _FakeWork(stop_in=stage_dir)
    with pytest.raises(KeyboardInterrupt):
      staged.run_staged(config, 'tiny', search_, str(workdir), work, num_devices=1)
    ran += work.ran
    # What `main.py report` writes meanwhile: where the search stands.
    halfway = staged.write_report(str(workdir))
    assert not halfway['complete']
    if stage_dir != 'confirm':
      [stopped] = [s for s in halfway['stages'] if s['directory'] == stage_dir]
      assert stopped['started'] and not stopped['over']
    else:
      assert len(halfway['confirmation']['runs']) == 1
  last = _FakeWork()
  summary = staged.run_staged(config, 'tiny', search_, str(workdir), last, num_devices=1)
  ran += last.ran
  assert summary['complete']
  assert len(ran) == len(set(ran)) == total  # Every run once, none redone.
  assert ({os.path.relpath(r, workdir) for r in ran}
          == {os.path.relpath(r, reference) for r in whole.ran})
  expected = json.loads((reference / 'staged_search.json').read_text())
  got = json.loads((workdir / 'staged_search.json').read_text())
  for key in ('chosen', 'confirmation'):
    assert got[key] == expected[key], key
  assert ([(s['drawn'], s['feasible']) for s in got['stages']]
          == [(s['drawn'], s['feasible']) for s in expected['stages']])


def test_a_search_whose_trials_all_diverge_says_so_and_reports_them(tmp_path):
  config = embedded_nesterov.get_config()
  search_ = _two_stage_search(initial_trials=2, initial_draws=3)
  with pytest.raises(stages.SearchError, match="stage 'final' narrows its ranges"):
    staged.run_staged(config, 'tiny', search_, str(tmp_path), _FakeWork(diverge_above=0.0),
                      num_devices=1)
  summary = json.loads((tmp_path / 'staged_search.json').read_text())
  assert [(s['drawn'], s['feasible'], s['exhausted']) for s in summary['stages']] == [
      (3, 0, True), (0, 0, False)]
  assert summary['chosen'] is None and not summary['complete']
  assert 'no: diverged' in (tmp_path / 'report.md').read_text()


def test_a_directory_of_another_search_is_refused(tmp_path):
  config = embedded_nesterov.get_config()
  staged.run_staged(config, 'tiny', _two_stage_search(), str(tmp_path), _FakeWork(),
                    num_devices=1)
  with pytest.raises(plan_lib.StudyDirError, match='holds another study'):
    staged.run_staged(config, 'tiny', _two_stage_search(initial_trials=5), str(tmp_path),
                      _FakeWork(), num_devices=1)


# --- trained for real: a space that diverges, a kill in each stage, a local worker -----

# A staged search of tiny runs: 'initial' draws from two learning rates, one of
# which diverges at its first logged step; 'final' is the grid of the same two,
# so its runs repeat the initial ones and must match them bit for bit.
_TINY_SEARCH = '''"""A tiny staged search for tests/test_staged_search.py."""
from configs import embedded_nesterov
from configs import search_space as ss

LEARNING_RATES = (0.1, 1e30)


def get_config():
  return embedded_nesterov.get_config()


def get_search():
  lr = ss.Choice('lr.peak', LEARNING_RATES)
  return ss.Search(stages=(ss.Stage('initial', (lr,), num_trials=2, max_draws=3),
                           ss.Stage('final', (lr,), mode='grid')), confirm_seeds=2)
'''


def _tiny_flags(data_dir: str) -> list[str]:
  return [f'--config.{k}={v}' for k, v in {**study_runs.QUICK_TINY, 'data_dir': data_dir}.items()]


@pytest.mark.slow  # Trains 7 tiny runs in 4 attempts, the last through a local worker.
def test_staged_search_killed_in_each_stage_resumes(tiny_data_dir, tmp_path):
  config_file = tmp_path / 'tiny_staged.py'
  config_file.write_text(_TINY_SEARCH)
  workdir = tmp_path / 'search'
  spec = {'argv': [f'--config={config_file}', '--search', f'--workdir={workdir}',
                   *_tiny_flags(tiny_data_dir)],
          'out_dir': str(tmp_path),
          'attempts': [{'kill_in': 'stage_1_initial'}, {'kill_in': 'stage_2_final'},
                       {'kill_in': 'confirm'},
                       {'args': ['--launcher=local', '--num_workers=1']},
                       {'argv': ['report', f'--workdir={workdir}']}]}
  (tmp_path / 'spec.json').write_text(json.dumps(spec))
  driver = subprocess.run([sys.executable, os.path.join(REPO, 'tests', 'staged_driver.py'),
                           str(tmp_path / 'spec.json')], cwd=REPO, capture_output=True,
                          text=True, timeout=study_runs.HANG_GUARD_SECONDS, check=False)
  assert driver.returncode == 0, driver.stderr[-3000:]
  attempts = json.loads(driver.stdout.strip().splitlines()[-1])
  print('seconds per attempt:', [round(a['seconds'], 1) for a in attempts])

  def err(k: int) -> str:
    return (tmp_path / f'attempt_{k}.err').read_text()[-3000:]
  assert [a['status'] for a in attempts] == [-9, -9, -9, 0, 0], [err(k) for k in range(5)]
  # Each attempt trained something, and nothing finished before it was redone.
  for before, after in zip(attempts, attempts[1:4]):
    assert set(before['results']) < set(after['results'])
    assert {p: after['results'][p] for p in before['results']} == before['results']
  # Killed in the middle of each stage: the stage had begun and was not over.
  for attempt, directory in zip(attempts[:3], ('stage_1_initial', 'stage_2_final', 'confirm')):
    assert any(p.startswith(directory + os.sep) for p in attempt['results']), directory
  assert not any(p.startswith('stage_2') for p in attempts[0]['results'])
  assert not any(p.startswith('confirm') for p in attempts[1]['results'])

  summary = json.loads((workdir / 'staged_search.json').read_text())
  assert summary['complete']
  initial, final = summary['stages']
  # Feasible counting: the draws are the Halton prefix; a trial at 1e30 diverged.
  space = (ss.Choice('lr.peak', (0.1, 1e30)),)
  draws = [p['lr.peak'] for p in search.draw_trials(space, 3, seed=0)]
  assert set(draws[:2]) == {0.1, 1e30}, 'the first two draws must hold both rates'
  # One of the first two diverged, so a third was drawn: max_draws, feasible or not.
  assert (initial['drawn'], initial['feasible']) == (3, draws.count(0.1))
  assert initial['exhausted'] == (draws.count(0.1) < 2)
  for trial in initial['trials'] + final['trials']:
    diverges = trial['params']['lr.peak'] == 1e30
    assert (trial['num_diverged'], trial['feasible']) == (int(diverges), not diverges)
  assert (final['drawn'], final['feasible']) == (2, 1)
  # The grid's runs repeat the initial stage's at the same rate, killed or not.
  runs = study_runs.results(str(workdir))
  by_rate = {}
  for path, result in runs.items():
    if path.startswith('stage_'):
      rate = json.loads((workdir / path / 'config.json').read_text())['lr']['peak']
      by_rate.setdefault(rate, []).append(study_runs.computed(result))
  assert all(r == results[0] for results in by_rate.values() for r in results)
  assert by_rate[1e30][0]['status'] == 'diverged'
  # The confirmation: the feasible rate on seeds 1 and 2, the last through a worker.
  assert summary['chosen']['params'] == {'lr.peak': 0.1}
  assert summary['confirmation']['seeds'] == [1, 2]
  assert summary['confirmation']['summary']['num_runs'] == 2
  assert (workdir / 'confirm' / 'workers' / 'local_0.log').exists()
  assert 'started 1 local workers' in err(3)
  assert 'chosen: stage final trial_0' in (tmp_path / 'attempt_3.out').read_text()
  # `main.py report` on the search's directory says what the search's command said.
  assert attempts[4]['results'] == attempts[3]['results']

  def outcome(k: int) -> list[str]:
    return [line for line in (tmp_path / f'attempt_{k}.out').read_text().splitlines()
            if line.startswith(('chosen:', 'confirmed over 2 seeds'))]
  assert len(outcome(4)) == 2 and outcome(4) == outcome(3)
  report = (workdir / 'report.md').read_text()
  assert 'Complete.' in report and '| 2. final | grid | 1 | all | 2 | 1 |' in report
  assert (workdir / 'axis_lr.peak.png').stat().st_size > 0
