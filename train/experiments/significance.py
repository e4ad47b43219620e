"""Whether configs differ: the tests and intervals of a comparison of two or more
configs, each a study of seeded runs (train/experiments/statistics.py).

For each pair (`compare_pair`, `compare_studies`): rank tests of the final
accuracies (Mann-Whitney, and Wilcoxon's signed-rank test when the seeds pair
up), Fisher's exact test of the runs that reached the target, a log-rank test
of the times to it, a bootstrap interval of the difference of the medians, and
the seeds per config at which such a difference would be found with 80%
power. The p-values of several pairs are Holm-adjusted. scipy.stats for every
test; numpy and scipy only, as in statistics.py.
"""

import itertools
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats

from train.experiments import statistics

# The level of every test.
SIGNIFICANCE_LEVEL = 0.05
# Seeds per config at which the power of a comparison is estimated, and the
# power it should reach; more seeds than the last is reported as "more than".
POWER_GRID = (3, 5, 10, 15, 20, 30, 50, 75, 100, 150, 200)
TARGET_POWER = 0.8
# Resamples of the power estimate: its standard error at a power of 0.8 is
# sqrt(0.8 * 0.2 / 1000) = 0.013, and a comparison of two configs takes ~0.2 s.
_POWER_RESAMPLES = 1000


# The p-values of a comparison that are adjusted for multiple comparisons.
P_VALUE_KEYS = ('mann_whitney_p', 'wilcoxon_p', 'fisher_exact_p', 'logrank_p')


def final_accuracies(runs: Sequence[dict]) -> np.ndarray:
  """Final eval accuracies; a run without one (it diverged) counts as 0, the worst.

  Comparisons need finite values (a bootstrap median of -inf and -inf is NaN);
  a rank test gives the same p-value for 0 as for -inf.
  """
  return np.array([float(v) if statistics.finite(v) else 0.0
                   for v in (run.get('final_eval_accuracy') for run in runs)])


def _median_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
  return np.median(x, axis=axis) - np.median(y, axis=axis)


def median_difference_ci(a: np.ndarray, b: np.ndarray, confidence: float = statistics.CONFIDENCE,
                         seed: int = 0,
                         num_resamples: int = statistics.BOOTSTRAP_RESAMPLES) -> list[float | None]:
  """Two-sample percentile bootstrap interval of median(a) - median(b).

  Each resample draws len(a) runs from `a` and len(b) from `b`
  (`scipy.stats.bootstrap`). Percentile rather than BCa: BCa is undefined
  when the resampled medians barely vary (2 seeds, ties, equal accuracies),
  which is common at the seed counts of a study. [None, None] with fewer than
  2 runs on a side.
  """
  if min(len(a), len(b)) < 2:
    return [None, None]
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # "degenerate": a zero-width interval is right.
    ci = stats.bootstrap((a, b), _median_difference, vectorized=True,
                         n_resamples=num_resamples, method='percentile',
                         confidence_level=confidence, rng=seed).confidence_interval
  return [statistics.none_if_nan(ci.low), statistics.none_if_nan(ci.high)]


def paired_seeds(runs_a: Sequence[dict], runs_b: Sequence[dict]) -> list[int] | None:
  """The seeds of both sides, sorted, when they are the same set (else None).

  In this harness a seed fixes the initialisation and the order of the data,
  so runs with the same seed differ only by the configs' settings.
  """
  seeds_a = [run.get('seed') for run in runs_a]
  seeds_b = [run.get('seed') for run in runs_b]
  if (not seeds_a or None in seeds_a or len(set(seeds_a)) != len(seeds_a)
      or sorted(seeds_a) != sorted(seeds_b)):
    return None
  return sorted(seeds_a)


def seeds_for_power(a: np.ndarray, b: np.ndarray, seed: int = 0,
                    grid: Sequence[int] = POWER_GRID,
                    num_resamples: int = _POWER_RESAMPLES) -> tuple[int | None, dict[str, float]]:
  """Seeds per config at which Mann-Whitney detects the difference 80% of the time.

  The observed runs stand for each config's distribution of final accuracies:
  for each n in `grid`, `num_resamples` pairs of samples of n runs are drawn
  with replacement from `a` and from `b`, and the rate at which the two-sided
  Mann-Whitney test (the verdict's test) rejects at the 5% level is the power
  at n. The estimate is as good as the observed runs are representative: with
  5 seeds a side it says "tens" or "hundreds", not 37.

  Returns:
    (the smallest n whose power is at least TARGET_POWER, or None when no n of
    the grid reaches it; the power at each n tried, keyed by str(n)). The grid
    stops at the first n that reaches the target power.
  """
  rng = np.random.default_rng(seed)
  power: dict[str, float] = {}
  for n in grid:
    x = rng.choice(a, size=(num_resamples, n))
    y = rng.choice(b, size=(num_resamples, n))
    with warnings.catch_warnings(), np.errstate(all='ignore'):
      warnings.simplefilter('ignore')
      p = stats.mannwhitneyu(x, y, axis=1, alternative='two-sided').pvalue
    power[str(n)] = float(np.mean(p < SIGNIFICANCE_LEVEL))  # NaN never rejects.
    if power[str(n)] >= TARGET_POWER:
      return n, power
  return None, power


def _p_value(value: float) -> float | None:
  return statistics.none_if_nan(float(value))


def _logrank(runs_a: Sequence[dict], runs_b: Sequence[dict]) -> tuple[float | None, str]:
  """Log-rank p-value of the times to target, and the unit of time it used.

  In epochs when both sides have them, so that configs at different batch
  sizes compare at equal amounts of data; at equal batch sizes epochs and
  steps give the same p-value.
  """
  per_epoch_a, per_epoch_b = statistics.steps_per_epoch(runs_a), statistics.steps_per_epoch(runs_b)
  if per_epoch_a and per_epoch_b:
    scales, unit = (per_epoch_a, per_epoch_b), 'epochs'
  else:
    scales, unit = (1.0, 1.0), 'steps'
  x, y = (statistics.censored_data([statistics.survival_observation(run) for run in runs], scale)
          for runs, scale in zip((runs_a, runs_b), scales))
  with warnings.catch_warnings(), np.errstate(all='ignore'):
    warnings.simplefilter('ignore')
    return _p_value(stats.logrank(x, y).pvalue), unit


def _no_runs_entry(entry: dict, num_a: int, num_b: int) -> dict:
  """The comparison of a pair in which a config has no runs: every statistic None."""
  keys = ('difference_in_median_final_accuracy', 'mann_whitney_p', 'fisher_exact_p',
          'logrank_p', 'seeds_per_config_for_80_percent_power', 'wilcoxon_p')
  entry.update({key: None for key in keys})
  entry.update(difference_in_median_final_accuracy_ci95=[None, None], paired_seeds=None,
               reached_target=[[0, num_a], [0, num_b]], logrank_time_unit=None,
               power_by_seeds_per_config={},
               reasons={key: 'a config has no runs' for key in keys})
  return entry


def _paired_test(runs_a: Sequence[dict], a: np.ndarray, runs_b: Sequence[dict],
                 b: np.ndarray, reasons: dict[str, str]) -> dict:
  """`paired_seeds` and the Wilcoxon signed-rank p on the per-seed differences."""
  seeds = paired_seeds(runs_a, runs_b)
  if seeds is None:
    reasons['wilcoxon_p'] = 'the configs were not run with the same seeds'
    return {'paired_seeds': None, 'wilcoxon_p': None}
  by_seed_a = dict(zip((run['seed'] for run in runs_a), a))
  by_seed_b = dict(zip((run['seed'] for run in runs_b), b))
  x = np.array([by_seed_a[s] for s in seeds])
  y = np.array([by_seed_b[s] for s in seeds])
  if np.all(x == y):
    reasons['wilcoxon_p'] = 'every paired difference is zero'
    return {'paired_seeds': seeds, 'wilcoxon_p': None}
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # Ties and zeros: the normal approximation.
    return {'paired_seeds': seeds, 'wilcoxon_p': _p_value(stats.wilcoxon(x, y).pvalue)}


def _target_tests(runs_a: Sequence[dict], runs_b: Sequence[dict],
                  reasons: dict[str, str]) -> dict:
  """Reached / missed (Fisher's exact test) and the times to target (log-rank)."""
  reached = [sum(bool(run.get('reached_target')) for run in runs) for runs in (runs_a, runs_b)]
  sizes = [len(runs_a), len(runs_b)]
  entry = {'reached_target': [[reached[0], sizes[0]], [reached[1], sizes[1]]],
           'fisher_exact_p': _p_value(stats.fisher_exact(
               [[reached[0], sizes[0] - reached[0]],
                [reached[1], sizes[1] - reached[1]]]).pvalue)}
  entry['logrank_p'], entry['logrank_time_unit'] = _logrank(runs_a, runs_b)
  if entry['logrank_p'] is None:
    reasons['logrank_p'] = 'no run of either config reached the target'
  return entry


def _power(a: np.ndarray, b: np.ndarray, seed: int, reasons: dict[str, str]) -> dict:
  """Seeds per config for 80% power, and the power at each size of the grid."""
  if min(len(a), len(b)) < 2:
    reasons['seeds_per_config_for_80_percent_power'] = 'needs 2 or more runs per config'
    return {'seeds_per_config_for_80_percent_power': None, 'power_by_seeds_per_config': {}}
  needed, power = seeds_for_power(a, b, seed=seed)
  if needed is None:
    reasons['seeds_per_config_for_80_percent_power'] = (
        f'more than {POWER_GRID[-1]} (power {power[str(POWER_GRID[-1])]:.2f} at '
        f'{POWER_GRID[-1]} seeds per config)')
  return {'seeds_per_config_for_80_percent_power': needed, 'power_by_seeds_per_config': power}


def compare_pair(name_a: str, runs_a: Sequence[dict], name_b: str, runs_b: Sequence[dict],
                 seed: int = 0) -> dict:
  """Whether config a differs from config b: effect sizes, intervals, tests, power.

  Args:
    name_a, runs_a: one config's name and result.json dicts.
    name_b, runs_b: the other's.
    seed: seed of the bootstrap and the power resampling.

  Returns:
    A plain-JSON dict; differences are a minus b, in accuracy units (0.01 is
    one point). Any statistic that is undefined is None and 'reasons' says why.
  """
  a, b = final_accuracies(runs_a), final_accuracies(runs_b)
  entry: dict = {'a': name_a, 'b': name_b, 'num_runs': [len(a), len(b)]}
  if min(len(a), len(b)) == 0:
    return _no_runs_entry(entry, len(a), len(b))
  reasons: dict[str, str] = {}
  entry['difference_in_median_final_accuracy'] = float(np.median(a) - np.median(b))
  entry['difference_in_median_final_accuracy_ci95'] = median_difference_ci(a, b, seed=seed)
  if entry['difference_in_median_final_accuracy_ci95'][0] is None:
    reasons['difference_in_median_final_accuracy_ci95'] = 'needs 2 or more runs per config'
  entry['mann_whitney_p'] = _p_value(stats.mannwhitneyu(a, b, alternative='two-sided').pvalue)
  entry.update(_paired_test(runs_a, a, runs_b, b, reasons))
  entry.update(_target_tests(runs_a, runs_b, reasons))
  entry.update(_power(a, b, seed, reasons))
  entry['reasons'] = reasons
  return entry


def holm(p_values: Sequence[float | None]) -> list[float | None]:
  """Holm's step-down adjustment; None stays None and is not counted.

  The i-th smallest of m p-values becomes max over j <= i of min(1, (m - j + 1) p_(j)),
  which keeps the chance of any false rejection at most the level.
  """
  defined = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
  adjusted: list[float | None] = [None] * len(p_values)
  running = 0.0
  for rank, (p, i) in enumerate(defined):
    running = max(running, min(1.0, (len(defined) - rank) * p))
    adjusted[i] = running
  return adjusted


def compare_studies(studies: Sequence[tuple[str, Sequence[dict]]], seed: int = 0) -> list[dict]:
  """`compare_pair` for every pair of configs, in order, with Holm-adjusted p-values.

  Each p-value in P_VALUE_KEYS gets a '<key>_holm' next to it, adjusted over
  all pairs (with one pair it is the p-value itself).
  """
  return _holm_adjusted([compare_pair(name_a, runs_a, name_b, runs_b, seed=seed)
                         for (name_a, runs_a), (name_b, runs_b)
                         in itertools.combinations(studies, 2)])


def compare_with_base(base: tuple[str, Sequence[dict]],
                      others: Sequence[tuple[str, Sequence[dict]]], seed: int = 0) -> list[dict]:
  """`compare_pair` of the base (a) with each other study (b), in order, with
  Holm-adjusted p-values over these pairs only: a robustness comparison asks
  how each variant differs from the base, not how the variants differ."""
  name, runs = base
  return _holm_adjusted([compare_pair(name, runs, other_name, other_runs, seed=seed)
                         for other_name, other_runs in others])


def _holm_adjusted(pairs: list[dict]) -> list[dict]:
  """Each p-value in P_VALUE_KEYS of each pair gets '<key>_holm', adjusted over `pairs`."""
  for key in P_VALUE_KEYS:
    for pair, adjusted in zip(pairs, holm([pair[key] for pair in pairs])):
      pair[f'{key}_holm'] = adjusted
  return pairs
