"""Study statistics: medians with unreached targets, quartiles, bootstrap, MLPerf score."""

import itertools
import json
import math

import numpy as np
import pytest

from train.experiments import significance
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


# ---------------------------------------------------------------------------
# Hit rate and time to target as survival data.


def test_hit_rate_interval_is_clopper_pearson():
  # 0 of n and n of n have closed forms: 1 - (alpha / 2) ** (1 / n) and its mirror.
  assert statistics.hit_rate_ci(0, 5) == pytest.approx([0.0, 1 - 0.025 ** (1 / 5)])
  assert statistics.hit_rate_ci(5, 5) == pytest.approx([0.025 ** (1 / 5), 1.0])
  # Otherwise, quantiles of beta distributions.
  beta = pytest.importorskip('scipy.stats').beta
  assert statistics.hit_rate_ci(4, 5) == pytest.approx(
      [beta.ppf(0.025, 4, 2), beta.ppf(0.975, 5, 1)])
  assert statistics.hit_rate_ci(4, 5) == pytest.approx([0.2836, 0.9949], abs=1e-4)
  assert statistics.hit_rate_ci(0, 0) == [None, None]


def _survival_run(seed: int, reached_at: int | None, last_eval: int, status: str = 'success',
                  final: float | None = 0.75, budget: int = 500) -> dict:
  """A run with evals every 100 steps (50 steps per epoch) up to `last_eval`."""
  evals = [{'step': s, 'epoch': s / 50, 'accuracy': 0.5} for s in range(100, last_eval + 1, 100)]
  return {
      'seed': seed, 'status': status, 'diverged': status == 'diverged',
      'target_accuracy': 0.7, 'reached_target': reached_at is not None,
      'steps_to_target': reached_at, 'epochs_to_target': reached_at and reached_at / 50,
      'final_eval_accuracy': final, 'num_train_steps': budget, 'evals': evals,
  }


def _log_log_band(survival: float, greenwood_sum: float) -> tuple[float, float]:
  """The 95% band of the fraction reached, 1 - S, from the log-log band of S."""
  se = math.sqrt(greenwood_sum) / abs(math.log(survival))
  z = 1.959963984540054
  low_s = survival ** math.exp(z * se)
  high_s = survival ** math.exp(-z * se)
  return 1 - high_s, 1 - low_s


def test_kaplan_meier_table_by_hand():
  # 6 runs: reached at 100, 200, 200 and 400; one censored at 300 (its last eval),
  # one at 500.
  runs = [_survival_run(0, 100, 500), _survival_run(1, 200, 500), _survival_run(2, 200, 500),
          _survival_run(3, None, 300), _survival_run(4, 400, 500), _survival_run(5, None, 500)]
  ttt = statistics.time_to_target(runs)
  json.dumps(ttt, allow_nan=False)
  # step | at risk | reached | censored | S = P(not reached by step)     | fraction reached
  #  100 |    6    |    1    |    0     | 5/6                            | 1/6
  #  200 |    5    |    2    |    0     | 5/6 * 3/5 = 1/2                | 1/2
  #  300 |    3    |    0    |    1     | 1/2                            | 1/2
  #  400 |    2    |    1    |    0     | 1/2 * 1/2 = 1/4                | 3/4
  #  500 |    1    |    0    |    1     | 1/4                            | 3/4
  assert ttt['steps'] == [100, 200, 300, 400, 500]
  assert ttt['epochs'] == pytest.approx([2, 4, 6, 8, 10])
  assert ttt['num_at_risk'] == [6, 5, 3, 2, 1]
  assert ttt['num_reached'] == [1, 2, 0, 1, 0]
  assert ttt['num_censored'] == [0, 0, 1, 0, 1]
  assert ttt['fraction_reached'] == pytest.approx([1 / 6, 1 / 2, 1 / 2, 3 / 4, 3 / 4])
  assert (ttt['num_runs'], ttt['num_events']) == (6, 4)
  # Greenwood: sum of d / (n (n - d)) over the event steps so far.
  greenwood = [1 / 30, 1 / 30 + 2 / 15, 1 / 30 + 2 / 15, 1 / 30 + 2 / 15 + 1 / 2]
  survival = [5 / 6, 1 / 2, 1 / 2, 1 / 4]
  for i, (s, g) in enumerate(zip(survival, greenwood)):
    assert ttt['fraction_reached_ci95'][i] == pytest.approx(_log_log_band(s, g), abs=1e-9)
  # The estimate reaches one half at step 200 (the "infinitely slow" median of
  # the same runs is also 200: sorted 100 200 200 400 inf inf).
  assert ttt['median_steps'] == 200 and ttt['median_epochs'] == pytest.approx(4)
  assert ttt['median_reason'] is None


def test_time_to_target_when_all_or_none_reach_it():
  everyone = statistics.time_to_target([_survival_run(s, 200, 500) for s in range(3)])
  assert everyone['fraction_reached'] == [1.0] and everyone['median_steps'] == 200
  # Once every run at risk has reached the target, the band is undefined: None.
  assert everyone['fraction_reached_ci95'] == [[None, None]]
  nobody = statistics.time_to_target([_survival_run(s, None, 500) for s in range(3)])
  assert nobody['fraction_reached'] == [0.0] and nobody['median_steps'] is None
  assert 'below one half' in nobody['median_reason']
  one = statistics.time_to_target([_survival_run(0, 300, 500)])
  assert one['median_steps'] == 300 and one['fraction_reached_ci95'] == [[None, None]]
  empty = statistics.time_to_target([])
  assert empty['steps'] == [] and empty['median_reason'] == 'no runs'
  for ttt in (everyone, nobody, one, empty):
    json.dumps(ttt, allow_nan=False)


def test_a_diverged_run_is_censored_at_the_end_of_its_budget():
  diverged = _survival_run(0, None, 100, status='diverged', final=None, budget=500)
  assert statistics.survival_observation(diverged) == (500.0, False)
  # Censored where it stopped (step 100), it would leave the risk set early and
  # the estimate would climb to 1; at the end of the budget it stays a miss.
  ttt = statistics.time_to_target([diverged, _survival_run(1, 200, 500)])
  assert ttt['fraction_reached'] == pytest.approx([0.5, 0.5])
  no_evals = dict(diverged, evals=[], num_train_steps=None)
  assert statistics.survival_observation(no_evals) == (0.0, False)
  assert statistics.survival_observation(_survival_run(0, None, 300)) == (300.0, False)


def test_summarize_has_the_hit_rate_interval_and_the_survival_curve():
  runs = [_survival_run(0, 100, 500), _survival_run(1, None, 500),
          _survival_run(2, 300, 500, final=0.8), _survival_run(3, 400, 500, final=None,
                                                              status='diverged')]
  summary = statistics.summarize(runs)
  json.dumps(summary, allow_nan=False)
  assert summary['reached_target_ci95'] == pytest.approx(statistics.hit_rate_ci(3, 4))
  assert summary['time_to_target']['median_steps'] == 300
  # Table 2 (right) of the paper: the train and test accuracy medians stay.
  assert 'median_final_accuracy' in summary and 'median_final_train_accuracy' in summary


# ---------------------------------------------------------------------------
# Comparisons.


def _accuracy_runs(accuracies, seeds=None, reached=None) -> list[dict]:
  seeds = range(len(accuracies)) if seeds is None else seeds
  reached = [a is not None and a >= 0.7 for a in accuracies] if reached is None else reached
  return [_survival_run(s, 300 if r else None, 500, final=a,
                        status='success' if a is not None else 'diverged')
          for s, a, r in zip(seeds, accuracies, reached)]


def test_fisher_exact_on_the_lady_tasting_tea():
  # Fisher's tea-tasting table, 3 of 4 against 1 of 4: two-sided p = 34 / 70.
  pair = significance.compare_pair(
      'a', _accuracy_runs([0.8] * 4, reached=[True, True, True, False]),
      'b', _accuracy_runs([0.8] * 4, reached=[True, False, False, False]))
  assert pair['reached_target'] == [[3, 4], [1, 4]]
  assert pair['fisher_exact_p'] == pytest.approx(34 / 70)
  # 3 of 5 against 5 of 5: P(3) + P(5) = (10 + 10) / 45 of the hypergeometric.
  pair = significance.compare_pair(
      'a', _accuracy_runs([0.8] * 5, reached=[True] * 3 + [False] * 2),
      'b', _accuracy_runs([0.8] * 5, reached=[True] * 5))
  assert pair['fisher_exact_p'] == pytest.approx(20 / 45)


def _logrank_by_hand(a: list[tuple[int, bool]], b: list[tuple[int, bool]]) -> float:
  """Chi-square of observed minus expected events of `a`, over the event steps."""
  observed_minus_expected = variance = 0.0
  for t in sorted({t for t, event in a + b if event}):
    n_a = sum(s >= t for s, _ in a)
    n = n_a + sum(s >= t for s, _ in b)
    d = sum(s == t and e for s, e in a + b)
    observed_minus_expected += sum(s == t and e for s, e in a) - d * n_a / n
    if n > 1:
      variance += d * (n_a / n) * (1 - n_a / n) * (n - d) / (n - 1)
  return observed_minus_expected ** 2 / variance


def _runs_from_times(times: list[tuple[int, bool]]) -> list[dict]:
  return [_survival_run(i, t if event else None, t if not event else 500)
          for i, (t, event) in enumerate(times)]


def test_logrank_against_a_hand_computation():
  chi2 = pytest.importorskip('scipy.stats').chi2
  # a: reached at 100 and 300, censored at 400; b: reached at 200, 200 and 500.
  a = [(100, True), (300, True), (400, False)]
  b = [(200, True), (200, True), (500, True)]
  # step 100: 3 + 3 at risk, 1 event of a: E = 1/2, V = 1/4
  # step 200: 2 + 3 at risk, 2 events of b: E = 4/5, V = 2 (2/5)(3/5)(3/4) = 9/25
  # step 300: 2 + 1 at risk, 1 event of a: E = 2/3, V = (2/3)(1/3) = 2/9
  # step 500: 0 + 1 at risk: E = V = 0
  # O - E = 2 - 59/30 = 1/30; V = 749/900; chi-square = (1/900) / (749/900) = 1/749.
  assert _logrank_by_hand(a, b) == pytest.approx(1 / 749)
  pair = significance.compare_pair('a', _runs_from_times(a), 'b', _runs_from_times(b))
  assert pair['logrank_p'] == pytest.approx(chi2.sf(1 / 749, 1))
  assert pair['logrank_time_unit'] == 'epochs'

  # A less balanced example with ties of events and censoring at the same step.
  a = [(100, True), (100, True), (200, True), (300, False), (300, True), (500, False)]
  b = [(300, True), (400, True), (400, False), (500, False), (500, False)]
  pair = significance.compare_pair('a', _runs_from_times(a), 'b', _runs_from_times(b))
  assert pair['logrank_p'] == pytest.approx(chi2.sf(_logrank_by_hand(a, b), 1))


def _exact_mann_whitney_p(a: list[float], b: list[float]) -> float:
  """Two-sided exact p-value by enumerating every split of the pooled values."""
  pooled = sorted(a + b)
  rank = {v: i + 1 for i, v in enumerate(pooled)}  # No ties.
  def u(group):
    return sum(rank[v] for v in group) - len(group) * (len(group) + 1) / 2
  observed = u(a)
  splits = [u([pooled[i] for i in c]) for c in itertools.combinations(range(len(pooled)), len(a))]
  low = sum(s <= observed for s in splits) / len(splits)
  high = sum(s >= observed for s in splits) / len(splits)
  return min(1.0, 2 * min(low, high))


def _exact_wilcoxon_p(differences: list[float]) -> float:
  """Two-sided exact p-value by enumerating the signs of the ranked differences."""
  ranks = np.argsort(np.argsort(np.abs(differences))) + 1  # No ties, no zeros.
  observed = sum(r for r, d in zip(ranks, differences) if d > 0)
  sums = [sum(r for r, s in zip(ranks, signs) if s)
          for signs in itertools.product([False, True], repeat=len(differences))]
  low = sum(s <= observed for s in sums) / len(sums)
  high = sum(s >= observed for s in sums) / len(sums)
  return min(1.0, 2 * min(low, high))


def test_rank_tests_against_enumeration():
  a = [0.712, 0.748, 0.751, 0.760, 0.771, 0.779]
  b = [0.705, 0.709, 0.723, 0.731, 0.744, 0.758]
  pair = significance.compare_pair('a', _accuracy_runs(a), 'b', _accuracy_runs(b))
  assert pair['mann_whitney_p'] == pytest.approx(_exact_mann_whitney_p(a, b))
  assert pair['paired_seeds'] == list(range(6))
  assert pair['wilcoxon_p'] == pytest.approx(
      _exact_wilcoxon_p([x - y for x, y in zip(a, b)]))
  assert pair['difference_in_median_final_accuracy'] == pytest.approx(
      np.median(a) - np.median(b))
  # Runs pair by seed, not by position in the list.
  shuffled = _accuracy_runs(b)[::-1]
  assert significance.compare_pair('a', _accuracy_runs(a), 'b', shuffled)['wilcoxon_p'] == (
      pytest.approx(pair['wilcoxon_p']))
  other_seeds = significance.compare_pair('a', _accuracy_runs(a), 'b',
                                        _accuracy_runs(b, seeds=range(10, 16)))
  assert other_seeds['wilcoxon_p'] is None and other_seeds['paired_seeds'] is None
  assert 'same seeds' in other_seeds['reasons']['wilcoxon_p']


def test_bootstrap_interval_of_the_difference_covers_the_true_difference():
  """About 95% of intervals over simulated studies hold the true difference."""
  rng = np.random.default_rng(7)
  num_studies, true_difference = 300, 0.01
  covered = 0
  for i in range(num_studies):
    a, b = rng.normal(0.75, 0.01, 15), rng.normal(0.74, 0.01, 15)
    low, high = significance.median_difference_ci(a, b, seed=i, num_resamples=2000)
    covered += low <= true_difference <= high
  # Three binomial standard errors either side of 0.95.
  tolerance = 3 * math.sqrt(0.95 * 0.05 / num_studies)
  assert abs(covered / num_studies - 0.95) <= tolerance


def _true_seeds_for_power(difference: float, sd: float, seed: int = 11) -> int | None:
  """The grid's smallest n at which Mann-Whitney on the true normals has power 0.8."""
  rng = np.random.default_rng(seed)
  stats = pytest.importorskip('scipy.stats')
  for n in significance.POWER_GRID:
    x = rng.normal(difference, sd, (2000, n))
    y = rng.normal(0.0, sd, (2000, n))
    if np.mean(stats.mannwhitneyu(x, y, axis=1).pvalue < 0.05) >= 0.8:
      return n
  return None


def test_seeds_for_power_on_simulated_runs_with_a_known_difference():
  grid = list(significance.POWER_GRID)
  rng = np.random.default_rng(5)
  # A difference of one standard deviation: about 17 seeds per config by the
  # asymptotic formula (z_0.975 + z_0.8)^2 (2 / (3 / pi)) = 16.4; 20 on the grid.
  assert _true_seeds_for_power(0.01, 0.01) == 20
  a, b = rng.normal(0.76, 0.01, 200), rng.normal(0.75, 0.01, 200)
  needed, power = significance.seeds_for_power(a, b)
  assert abs(grid.index(needed) - grid.index(20)) <= 1
  assert power[str(needed)] >= 0.8 and list(power)[-1] == str(needed)
  # Half a standard deviation: 4 times as many, about 66; 75 on the grid.
  a, b = rng.normal(0.755, 0.01, 200), rng.normal(0.75, 0.01, 200)
  needed, _ = significance.seeds_for_power(a, b)
  assert abs(grid.index(needed) - grid.index(_true_seeds_for_power(0.005, 0.01))) <= 1
  # No difference: the test rejects 5% of the time at any n.
  same = rng.normal(0.75, 0.01, 200)
  needed, power = significance.seeds_for_power(same, same)
  assert needed is None and power['200'] < 0.15
  # Separated configs of 5 seeds: 3 seeds can never give p < 0.05 (at best 0.1), 5 can.
  needed, power = significance.seeds_for_power(np.array([0.80, 0.81, 0.82, 0.83, 0.84]),
                                             np.array([0.70, 0.71, 0.72, 0.73, 0.74]))
  assert needed == 5 and power['3'] == 0.0


def test_holm_step_down():
  # Sorted 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1, raised to 0.06).
  assert significance.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
  assert significance.holm([None, 0.02, 0.5]) == [None, pytest.approx(0.04), 0.5]
  assert significance.holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # Capped at 1.
  assert significance.holm([]) == []


def test_compare_studies_adjusts_every_p_value_over_the_pairs():
  studies = [('a', _accuracy_runs([0.70, 0.71, 0.72, 0.73])),
             ('b', _accuracy_runs([0.74, 0.75, 0.76, 0.77])),
             ('c', _accuracy_runs([0.71, 0.72, 0.73, 0.74]))]
  pairs = significance.compare_studies(studies)
  assert [(p['a'], p['b']) for p in pairs] == [('a', 'b'), ('a', 'c'), ('b', 'c')]
  for key in significance.P_VALUE_KEYS:
    raw = [p[key] for p in pairs]
    assert [p[f'{key}_holm'] for p in pairs] == significance.holm(raw)
  assert all(p['mann_whitney_p_holm'] >= p['mann_whitney_p'] for p in pairs)
  one_pair = significance.compare_studies(studies[:2])
  assert one_pair[0]['mann_whitney_p_holm'] == one_pair[0]['mann_whitney_p']
  json.dumps(pairs, allow_nan=False)


@pytest.mark.parametrize('a, b', [
    ([0.8, 0.8, 0.8], [0.8, 0.8, 0.8]),                   # All equal: every run reached.
    ([0.6, 0.6], [0.6, 0.65]),                            # 2 seeds, none reached.
    ([0.75], [0.72]),                                     # One seed each.
    ([None, 0.75, 0.78], [0.74, None, 0.76]),             # Diverged runs.
    ([None, None], [None, None]),                         # Everything diverged.
    ([], [0.7]),                                          # A config without runs.
])
def test_comparisons_of_degenerate_studies_are_plain_json(a, b):
  pair = significance.compare_studies([('a', _accuracy_runs(a)), ('b', _accuracy_runs(b))])[0]
  json.dumps(pair, allow_nan=False)
  for key in ('difference_in_median_final_accuracy', *significance.P_VALUE_KEYS,
              'seeds_per_config_for_80_percent_power'):
    assert pair[key] is not None or key in pair['reasons'], key
  for p in significance.P_VALUE_KEYS:
    assert pair[p] is None or 0.0 <= pair[p] <= 1.0
