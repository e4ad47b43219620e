"""Statistics of a study (many seeded runs of one configuration) and of comparisons.

The paper (Nado et al., "A Large Batch Optimizer Reality Check") reports medians
over 50 seeds; MLPerf scores a submission by an olympic mean of 5 runs. Times and
steps to the target are "lower is better" quantities in which a run that never
reached the target counts as infinitely slow: the median of 5 runs is finite as
long as 3 of them reached the target. Accuracies are "higher is better": a run
without a value (e.g. one that diverged before it was evaluated) counts as the
worst, minus infinity.

Time to target is also treated as survival data (`time_to_target`): a run that
has not reached the target is censored, and the Kaplan-Meier estimate gives the
fraction of runs that reached it by each step. Whether two configs differ is
decided in train/experiments/significance.py, from these statistics.

Every statistic that would be infinite or undefined is returned as None (with a
reason where a reader needs one), so that a summary is plain JSON (no inf, no
NaN). numpy and scipy only: the study runner and the report writer import this
without JAX or TensorFlow.
"""

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats

# MLPerf Training (rules: "Benchmark Results") needs 5 runs for ResNet-50 and
# drops at most one of them: `max_dropped_scores = 1` in the summarizer.
MLPERF_RESNET_RUNS = 5
_MLPERF_MAX_DROPPED_SCORES = 1

# Confidence of every interval (and, in significance.py, the level of every test).
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 9999
# The Kaplan-Meier estimate is a product of floats: 1 - 0.5 may come out a hair
# below one half.
_HALF = 0.5 - 1e-9

# summary name -> result.json key, and whether a missing value is the worst
# possible "slowest" (+inf, times) or "least accurate" (-inf, accuracies).
_METRICS: dict[str, tuple[str, float]] = {
    'final_accuracy': ('final_eval_accuracy', -math.inf),
    'steps_to_target': ('steps_to_target', math.inf),
    'seconds_to_target': ('seconds_to_target', math.inf),
    'epochs_to_target': ('epochs_to_target', math.inf),
    'final_train_accuracy': ('final_train_accuracy', -math.inf),
}

Value = float | int | None


def _as_array(values: Sequence[Value], missing: float = math.inf) -> np.ndarray:
  """Float array with None and NaN replaced by `missing`."""
  out = np.array([missing if v is None else float(v) for v in values], dtype=float)
  out[np.isnan(out)] = missing
  return out


def _finite_or_none(value: float) -> float | None:
  return float(value) if math.isfinite(value) else None


def _sorted_median(sorted_values: np.ndarray) -> np.ndarray:
  """Median along the last axis of sorted values; inf + inf stays inf (no NaN)."""
  n = sorted_values.shape[-1]
  low = sorted_values[..., (n - 1) // 2]
  high = sorted_values[..., n // 2]
  # When both middle values are the same infinity, (a + b) / 2 is that infinity.
  return np.where(low == high, low, (low + high) / 2)


def _quantile(sorted_values: np.ndarray, q: float) -> float | None:
  """numpy's default ('linear') quantile of sorted values; None if it uses an inf.

  A value "is used" when it has a non-zero weight in the interpolation, so the
  quantile that lands exactly on a finite value is that value even when its
  neighbour is infinite (where numpy would return NaN from 0 * inf).
  """
  n = len(sorted_values)
  if n == 0:
    return None
  position = (n - 1) * q
  lo = int(math.floor(position))
  hi = min(lo + 1, n - 1)
  frac = position - lo
  if frac == 0.0:
    return _finite_or_none(sorted_values[lo])
  a, b = sorted_values[lo], sorted_values[hi]
  if not (math.isfinite(a) and math.isfinite(b)):
    return None
  return float(a + (b - a) * frac)


def median_or_none(values: Sequence[Value], missing: float = math.inf) -> float | None:
  """Median of all values, where None (or inf) means "never reached the target".

  Args:
    values: one value per run; None and NaN count as `missing`, and inf
      is itself infinite.
    missing: what a missing value stands for: +inf for times and steps (a run
      that never reached the target is infinitely slow), -inf for accuracies.

  Returns:
    The median over all n values (the mean of the two middle ones for even n),
    or None when it is infinite (e.g. fewer than half the runs reached the
    target) or there are no values.
  """
  if len(values) == 0:
    return None
  return _finite_or_none(float(_sorted_median(np.sort(_as_array(values, missing)))))


def quartiles(values: Sequence[Value],
              missing: float = math.inf) -> tuple[float | None, float | None]:
  """First and third quartiles by numpy's default linear interpolation.

  Args:
    values: one value per run; None and NaN count as `missing`.
    missing: +inf or -inf, as for `median_or_none`.

  Returns:
    (q1, q3), each None when its interpolation involves an infinite value.
  """
  sorted_values = np.sort(_as_array(values, missing))
  return _quantile(sorted_values, 0.25), _quantile(sorted_values, 0.75)


def bootstrap_median_ci(values: Sequence[Value], confidence: float = 0.95,
                        num_resamples: int = 10_000, seed: int = 0,
                        missing: float = math.inf) -> tuple[float | None, float | None]:
  """Percentile bootstrap confidence interval of the median.

  All resamples are drawn at once as one (num_resamples, n) index array, so the
  interval depends only on `values` and `seed`.

  Args:
    values: one value per run; None and NaN count as `missing`.
    confidence: coverage of the two-sided interval, e.g. 0.95.
    num_resamples: number of bootstrap resamples.
    seed: seed of the resampling generator.
    missing: +inf or -inf, as for `median_or_none`.

  Returns:
    (low, high), the (1 - confidence) / 2 and (1 + confidence) / 2 quantiles of
    the resampled medians; a bound that is infinite is None.
  """
  data = _as_array(values, missing)
  if len(data) == 0:
    return None, None
  indices = np.random.default_rng(seed).integers(0, len(data), size=(num_resamples, len(data)))
  medians = np.sort(_sorted_median(np.sort(data[indices], axis=1)))
  alpha = 1.0 - confidence
  return _quantile(medians, alpha / 2), _quantile(medians, 1 - alpha / 2)


def olympic_mean(seconds: Sequence[Value], num_runs: int = MLPERF_RESNET_RUNS) -> float | None:
  """MLPerf's time-to-train score of a set of runs, as the MLPerf summarizer has it.

  Reproduces `_compute_strong_score_standalone` and `_compute_olympic_average`
  in mlperf_logging/result_summarizer/result_summarizer.py (mlperf-logging
  4.1.68), with `max_dropped_scores = 1` (every benchmark but unet3d):

  * a run that did not converge is counted in `dropped_scores` and left out of
    `scores` (there: its log fails the compliance check);
  * if `dropped_scores > max_dropped_scores` there is no score (None);
  * otherwise the converged scores are sorted and
    `scores[max_dropped_scores : len(scores) - (max_dropped_scores - dropped_scores)]`
    are averaged. With 5 converged runs that drops the fastest and the slowest
    and averages the middle 3; with 4 converged and 1 failed it drops only the
    fastest, the failed run standing for the dropped slowest, and averages the
    3 slowest converged runs.

  A submission needs `get_result_file_counts('training')['resnet'] == 5` result
  files (benchmark_meta.py, enforced by the package checker; the compute_score
  tool skips olympic scoring with fewer), so fewer than `num_runs` runs give None.

  Args:
    seconds: time to target of each run, in run order; None or inf for a run
      that did not reach the target. Only the first `num_runs` are used.
    num_runs: runs per score, 5 for ResNet-50.

  Returns:
    The score in the unit of `seconds`, or None when there is none.
  """
  if len(seconds) < num_runs:
    return None
  times = _as_array(seconds[:num_runs], math.inf)
  scores = sorted(float(t) for t in times if math.isfinite(t))
  dropped_scores = num_runs - len(scores)
  if dropped_scores > _MLPERF_MAX_DROPPED_SCORES:
    return None
  countable = scores[_MLPERF_MAX_DROPPED_SCORES:
                     len(scores) - (_MLPERF_MAX_DROPPED_SCORES - dropped_scores)]
  if not countable:
    return None
  return sum(countable) / len(countable)


def finite(value: Value) -> bool:
  return value is not None and math.isfinite(value)


def hit_rate_ci(num_reached: int, num_runs: int,
                confidence: float = CONFIDENCE) -> list[float | None]:
  """Clopper-Pearson ("exact") interval of the fraction of runs that reach the target.

  Exact rather than Wilson: its coverage is at least `confidence` whatever the
  true rate, where Wilson's can fall below it at a few seeds.

  Returns:
    [low, high] from `scipy.stats.binomtest(...).proportion_ci`; [None, None]
    without runs.
  """
  if num_runs == 0:
    return [None, None]
  ci = stats.binomtest(num_reached, num_runs).proportion_ci(confidence, method='exact')
  return [float(ci.low), float(ci.high)]


def steps_per_epoch(runs: Sequence[dict]) -> float | None:
  """Steps per epoch of a study's runs, read from an eval's step and epoch."""
  for run in runs:
    for record in run.get('evals') or []:
      if record.get('step') and record.get('epoch'):
        return record['step'] / record['epoch']
  return None


def survival_observation(run: dict) -> tuple[float, bool]:
  """(step, reached): one run's time to target as right-censored survival data.

  A run that reached the target is an event at the step of its first eval at
  the target. A run that did not is censored: it had not reached the target by
  that step, and nothing is known after it. For a run that trained to the end
  that step is its last eval. A diverged run can never reach the target, so it
  is censored at the end of its budget (`num_train_steps`) like a run that
  trained to the end and missed; censoring it where it stopped would count it
  as a run that might still have made it. A run with neither evals nor a budget
  is censored at step 0 (it then tells the estimate nothing).
  """
  if run.get('reached_target') and finite(run.get('steps_to_target')):
    return float(run['steps_to_target']), True
  evals = run.get('evals') or []
  last_eval = float(evals[-1]['step']) if evals else 0.0
  if run.get('status') == 'diverged' or run.get('diverged'):
    return float(run.get('num_train_steps') or last_eval), False
  return last_eval, False


def censored_data(observations: Sequence[tuple[float, bool]],
                   scale: float = 1.0) -> stats.CensoredData:
  times = np.array([t for t, _ in observations], dtype=float) / scale
  reached = np.array([r for _, r in observations], dtype=bool)
  return stats.CensoredData(uncensored=times[reached], right=times[~reached])


def none_if_nan(value: float) -> float | None:
  return float(value) if math.isfinite(value) else None


def time_to_target(runs: Sequence[dict], confidence: float = CONFIDENCE) -> dict:
  """The Kaplan-Meier estimate of the fraction of runs that reached the target by each step.

  Each run is an event or a censored observation (`survival_observation`); the
  estimate and its pointwise band (log-log, which stays inside [0, 1]) are
  `scipy.stats.ecdf` of the `CensoredData`. Unlike `median_steps_to_target`,
  which counts a run that missed as infinitely slow (MLPerf's and the paper's
  convention), a censored run here says only that the target was not reached by
  the step where it was censored. When every unreached run trained to the end
  the two medians agree, except that this one is always an eval step (no
  average of the two middle runs).

  Returns:
    A plain-JSON dict: 'steps' (each step at which a run reached the target or
    was censored), 'epochs' (the same in epochs, None without evals to convert
    with), 'num_at_risk', 'num_reached', 'num_censored' (per step),
    'fraction_reached' and 'fraction_reached_ci95' ([low, high] per step, None
    where the band is undefined, e.g. once every run at risk has reached the
    target), 'median_steps' and 'median_epochs' (the first step at which the
    estimate reaches one half; None, with 'median_reason', when it never does),
    'num_runs' and 'num_events'.
  """
  observations = [survival_observation(run) for run in runs]
  result: dict = {
      'num_runs': len(runs), 'num_events': sum(r for _, r in observations),
      'steps': [], 'epochs': [], 'num_at_risk': [], 'num_reached': [], 'num_censored': [],
      'fraction_reached': [], 'fraction_reached_ci95': [],
      'median_steps': None, 'median_epochs': None, 'median_reason': None,
  }
  if not observations:
    result['median_reason'] = 'no runs'
    return result
  cdf = stats.ecdf(censored_data(observations)).cdf
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # "undefined at some observations": None below.
    band = cdf.confidence_interval(confidence, method='log-log')
  times = np.array([t for t, _ in observations])
  reached = np.array([r for _, r in observations])
  steps = [float(t) for t in cdf.quantiles]
  per_epoch = steps_per_epoch(runs)
  result.update(
      steps=steps,
      epochs=None if per_epoch is None else [t / per_epoch for t in steps],
      num_at_risk=[int(np.sum(times >= t)) for t in steps],
      num_reached=[int(np.sum((times == t) & reached)) for t in steps],
      num_censored=[int(np.sum((times == t) & ~reached)) for t in steps],
      fraction_reached=[float(p) for p in cdf.probabilities],
      fraction_reached_ci95=[[none_if_nan(low), none_if_nan(high)] for low, high in
                             zip(band.low.probabilities, band.high.probabilities)])
  half = np.flatnonzero(cdf.probabilities >= _HALF)
  if len(half):
    result['median_steps'] = steps[half[0]]
    result['median_epochs'] = None if per_epoch is None else steps[half[0]] / per_epoch
  else:
    result['median_reason'] = (f'the estimate stays below one half (at most '
                               f'{float(cdf.probabilities.max()):.2f})')
  return result


def _metric_statistics(name: str, values: Sequence[Value], missing: float) -> dict:
  """The median, quartiles and 95% bootstrap interval of one metric."""
  return {
      f'median_{name}': median_or_none(values, missing),
      f'{name}_quartiles': list(quartiles(values, missing)),
      f'{name}_ci95': list(bootstrap_median_ci(values, 0.95, missing=missing)),
  }


def _target_accuracy(runs: Sequence[dict]) -> float | None:
  targets = {run['target_accuracy'] for run in runs}
  if len(targets) > 1:
    raise ValueError(f'Runs of one study have different target accuracies: {sorted(targets)}')
  return float(targets.pop()) if targets else None


def summarize(runs: Sequence[dict]) -> dict:
  """The study statistics of a list of result.json dicts.

  Args:
    runs: result.json dicts of one configuration, in run order (the first
      `MLPERF_RESNET_RUNS` of them make the MLPerf score).

  Returns:
    A JSON-serialisable dict (None for anything infinite or undefined) with
    'num_runs', 'num_reached_target', 'reached_target_ci95' (`hit_rate_ci`),
    'num_diverged', 'num_resumed', 'target_accuracy', 'mlperf_score_seconds',
    'time_to_target' (the Kaplan-Meier estimate, `time_to_target`) and, for each of final_accuracy, steps_to_target,
    seconds_to_target, epochs_to_target and final_train_accuracy:
    'median_<name>', '<name>_quartiles' ([q1, q3]) and '<name>_ci95' ([low, high]).

  Raises:
    ValueError: when the runs disagree on the target accuracy.
  """
  summary = {
      'num_runs': len(runs),
      'num_reached_target': sum(bool(run['reached_target']) for run in runs),
      'num_diverged': sum(run['status'] == 'diverged' for run in runs),
      'num_resumed': sum(bool(run.get('resumed')) for run in runs),
      'target_accuracy': _target_accuracy(runs),
  }
  summary['reached_target_ci95'] = hit_rate_ci(summary['num_reached_target'], len(runs))
  for name, (key, missing) in _METRICS.items():
    summary.update(_metric_statistics(name, [run.get(key) for run in runs], missing))
  summary['mlperf_score_seconds'] = olympic_mean(
      [run.get('seconds_to_target') for run in runs[:MLPERF_RESNET_RUNS]])
  summary['time_to_target'] = time_to_target(runs)
  return summary
