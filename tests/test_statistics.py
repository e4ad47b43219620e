"""Study statistics: medians with unreached targets, quartiles, bootstrap, MLPerf score."""

import json
import math

import numpy as np
import pytest

from train.experiments import statistics


def test_median_odd_and_even():
  assert statistics.median_or_none([3.0, 1.0, 2.0]) == 2.0
  assert statistics.median_or_none([4.0, 1.0, 3.0, 2.0]) == 2.5
  assert statistics.median_or_none([7]) == 7.0
  assert statistics.median_or_none([]) is None


def test_median_counts_unreached_runs_as_infinitely_slow():
  # 5 runs, 2 never reach the target: sorted 10, 20, 30, inf, inf -> 30.
  assert statistics.median_or_none([10.0, None, 30.0, math.inf, 20.0]) == 30.0
  # 5 runs, 3 never reach it: the middle one is infinite.
  assert statistics.median_or_none([10.0, None, None, 20.0, None]) is None
  # 4 runs, 2 never reach it: (20 + inf) / 2 is infinite.
  assert statistics.median_or_none([10.0, 20.0, None, None]) is None
  # 4 runs, 1 never reaches it: (20 + 30) / 2.
  assert statistics.median_or_none([10.0, 20.0, 30.0, None]) == 25.0
  assert statistics.median_or_none([None, None]) is None


def test_median_of_accuracies_counts_missing_as_worst():
  assert statistics.median_or_none([0.7, None, 0.8], missing=-math.inf) == 0.7
  assert statistics.median_or_none([0.7, float('nan'), 0.8], missing=-math.inf) == 0.7
  assert statistics.median_or_none([0.7, None, None], missing=-math.inf) is None


def test_quartiles_by_linear_interpolation():
  assert statistics.quartiles([5.0, 1.0, 3.0, 2.0, 4.0]) == (2.0, 4.0)
  # Positions 0.75 and 2.25 of 1, 2, 3, 4.
  assert statistics.quartiles([4.0, 3.0, 2.0, 1.0]) == pytest.approx((1.75, 3.25))
  values = [0.3, 0.9, 0.1, 0.5, 0.45, 0.8, 0.05]
  assert statistics.quartiles(values) == pytest.approx(tuple(np.percentile(values, [25, 75])))


def test_quartiles_with_unreached_runs():
  # Sorted 1, 2, 3, 4, inf: q3 sits exactly on 4 and does not use the inf.
  assert statistics.quartiles([1.0, 2.0, 3.0, 4.0, None]) == (2.0, 4.0)
  # Sorted 1, 2, 3, inf: q3 interpolates between 3 and inf.
  assert statistics.quartiles([1.0, 2.0, 3.0, None]) == (1.75, None)
  assert statistics.quartiles([None, None, None]) == (None, None)
  q1, q3 = statistics.quartiles([0.8, None, 0.7, 0.9], missing=-math.inf)
  assert q1 is None and q3 == pytest.approx(0.825)


def test_bootstrap_interval_is_deterministic():
  values = [0.751, 0.762, 0.758, 0.749, 0.760, 0.755, 0.757]
  first = statistics.bootstrap_median_ci(values, seed=3)
  assert first == statistics.bootstrap_median_ci(values, seed=3)
  assert first[0] <= statistics.median_or_none(values) <= first[1]
  assert min(values) <= first[0] and first[1] <= max(values)
  assert statistics.bootstrap_median_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)
  assert statistics.bootstrap_median_ci([]) == (None, None)


def test_bootstrap_interval_with_unreached_runs_has_no_upper_bound():
  # With 2 of 5 unreached, about a third of the resampled medians are infinite.
  low, high = statistics.bootstrap_median_ci([10.0, 20.0, 30.0, None, None])
  assert low is not None and high is None


def test_bootstrap_interval_covers_the_true_median():
  rng = np.random.default_rng(1234)
  true_median = 76.0
  samples = rng.normal(true_median, 0.2, size=(200, 25))
  covered = 0
  for i, sample in enumerate(samples):
    low, high = statistics.bootstrap_median_ci(list(sample), num_resamples=1000, seed=i)
    covered += low <= true_median <= high
  assert 0.88 <= covered / len(samples) <= 0.99


def test_olympic_mean_hand_computed():
  # All converged: drop 80 and 120, mean of 90, 100, 110.
  assert statistics.olympic_mean([100.0, 90.0, 110.0, 120.0, 80.0]) == 100.0
  # One failed: it is the dropped slowest; drop the fastest (80), mean of the rest.
  assert statistics.olympic_mean([100.0, None, 110.0, 120.0, 80.0]) == 110.0
  assert statistics.olympic_mean([100.0, math.inf, 110.0, 120.0, 80.0]) == 110.0
  # Two failed: no score.
  assert statistics.olympic_mean([100.0, None, 110.0, None, 80.0]) is None
  # Fewer than 5 runs: no score; more: only the first 5 count.
  assert statistics.olympic_mean([100.0, 90.0, 110.0, 120.0]) is None
  assert statistics.olympic_mean([100.0, 90.0, 110.0, 120.0, 80.0, 1e9, None]) == 100.0


@pytest.mark.parametrize('seconds', [
    [100.0, 90.0, 110.0, 120.0, 80.0],
    [100.0, None, 110.0, 120.0, 80.0],
    [300.5, 200.25, None, 250.0, 199.0],
    [100.0, None, 110.0, None, 80.0],
    [None, None, None, None, None],
])
def test_olympic_mean_matches_the_mlperf_summarizer(seconds, tmp_path, monkeypatch):
  """Runs the summarizer's own scoring on result files that stand for the runs."""
  summarizer = pytest.importorskip('mlperf_logging.result_summarizer.result_summarizer')

  class LogLine:

    def __init__(self, key: str, timestamp: float):
      self.key, self.timestamp = key, timestamp

  def read_result_file(result_file, usage, ruleset):
    del usage, ruleset
    text = open(result_file).read()
    if text == 'not converged':
      raise ValueError('Compliance check failed')  # What the real one raises.
    return [LogLine('run_start', 0.0), LogLine('run_stop', float(text) * 1000.0)]

  monkeypatch.setattr(summarizer, '_read_result_file', read_result_file)
  for i, value in enumerate(seconds):
    (tmp_path / f'result_{i}.txt').write_text(
        'not converged' if value is None else repr(value))
  score_minutes, _, _ = summarizer._compute_strong_score_standalone(
      'resnet', 'fake_system', False, str(tmp_path), 'training', '5.1.0')

  ours = statistics.olympic_mean(seconds)
  if score_minutes is None:
    assert ours is None
  else:
    assert ours == pytest.approx(score_minutes * 60.0)


def _run(seed: int, final: float | None, seconds: float | None, status: str = 'success',
         train: float | None = 0.8) -> dict:
  reached = seconds is not None
  return {
      'status': status, 'seed': seed, 'target_accuracy': 0.759,
      'reached_target': reached,
      'steps_to_target': int(seconds * 10) if reached else None,
      'seconds_to_target': seconds,
      'epochs_to_target': seconds / 10 if reached else None,
      'final_eval_accuracy': final, 'final_train_accuracy': train,
      'steps_completed': 2512, 'num_train_steps': 2512, 'global_batch_size': 32768,
      'images_per_second': 1e5, 'run_seconds': 900.0, 'evals': [],
  }


def test_summarize():
  runs = [
      _run(0, 0.761, 500.0, train=0.80),
      _run(1, 0.755, None, train=0.79),
      _run(2, 0.763, 400.0, train=0.82),
      _run(3, None, None, status='diverged', train=None),
      _run(4, 0.760, 600.0, train=0.81),
      _run(5, 0.770, 100.0, train=0.83),
  ]
  summary = statistics.summarize(runs)
  json.dumps(summary, allow_nan=False)  # Plain JSON: no inf, no NaN.

  assert summary['num_runs'] == 6
  assert summary['num_reached_target'] == 4
  assert summary['num_diverged'] == 1
  assert summary['target_accuracy'] == 0.759
  # Accuracies sorted: -inf, .755, .760, .761, .763, .770 -> (.760 + .761) / 2.
  assert summary['median_final_accuracy'] == pytest.approx(0.7605)
  # Positions 1.25 and 3.75: .755 + .25 * .005 and .761 + .75 * .002.
  assert summary['final_accuracy_quartiles'] == pytest.approx([0.75625, 0.7625])
  # A resample holds 3 or more of the 6 runs' diverged -inf with probability
  # P(Binomial(6, 1/6) >= 3) = 6.2% > 2.5%: the lower bound is infinite.
  low, high = summary['final_accuracy_ci95']
  assert low is None and 0.7605 <= high <= 0.770
  # Seconds sorted: 100, 400, 500, 600, inf, inf -> (500 + 600) / 2.
  assert summary['median_seconds_to_target'] == 550.0
  assert summary['median_steps_to_target'] == 5500.0
  assert summary['median_epochs_to_target'] == 55.0
  assert summary['seconds_to_target_quartiles'] == [pytest.approx(425.0), None]
  assert summary['seconds_to_target_ci95'][1] is None
  # Train accuracies sorted: -inf, .79, .80, .81, .82, .83.
  assert summary['median_final_train_accuracy'] == pytest.approx(0.805)
  # MLPerf: first 5 runs, 2 of them unreached -> no score.
  assert summary['mlperf_score_seconds'] is None
  assert set(summary) >= {f'{prefix}{name}{suffix}'
                          for name in ('final_accuracy', 'steps_to_target', 'seconds_to_target',
                                       'epochs_to_target', 'final_train_accuracy')
                          for prefix, suffix in (('median_', ''), ('', '_quartiles'),
                                                 ('', '_ci95'))}


def test_summarize_mlperf_score_uses_the_first_five_runs():
  runs = [_run(i, 0.76, s) for i, s in enumerate([100.0, None, 110.0, 120.0, 80.0, 1.0])]
  assert statistics.summarize(runs)['mlperf_score_seconds'] == 110.0


def test_summarize_no_runs_and_mixed_targets():
  summary = statistics.summarize([])
  assert summary['num_runs'] == 0 and summary['median_final_accuracy'] is None
  json.dumps(summary, allow_nan=False)
  other = dict(_run(1, 0.7, None), target_accuracy=0.5)
  with pytest.raises(ValueError, match='target'):
    statistics.summarize([_run(0, 0.7, None), other])
