"""Performance profiles: how several optimizers rank across several workloads.

Each optimizer (a config) has a time to target on each workload (a variant, a
batch size, a data set): the median over its seeds, as a study reports it, a
study in which fewer than half the runs reached the target counting as a miss
(`statistics.median_or_none`). The profile follows AlgoPerf (MLCommons
algorithmic-efficiency, scoring/performance_profile.py and
scoring/score_submissions.py), after Dolan and Moré:

* the ratio r[s, w] = t[s, w] / min over s' of t[s', w]: 1 for the fastest
  optimizer on w (and for each optimizer tied with it);
* a miss counts as infinite, and so does a time more than `R_MAX` = 4 times the
  fastest one. AlgoPerf sets a time to infinity where `time > 4 * best`, before
  dividing: a ratio of exactly 4 is kept;
* rho[s](tau) = (number of workloads w with r[s, w] <= tau) / n, n counting every
  workload, one on which every optimizer missed included (there AlgoPerf's
  ratio is inf / inf = NaN, never <= tau: such a workload lowers every
  profile alike);
* the score B[s] = integral of rho[s] over tau from 1 to R_MAX, divided by
  R_MAX - 1, so that it lies in [0, 1] and is 1 for an optimizer that is the
  fastest on every workload.

Where AlgoPerf's code and its documentation (DOCUMENTATION.md, "AlgoPerf
Benchmark Score via Integrated Performance Profiles", and the benchmark paper,
Dahl et al. 2023) differ, this module follows the code: the documentation
writes the integral of the step function rho exactly, while the code samples
rho on `NUM_TAU_POINTS` = 100 evenly spaced values of tau from 1 to 4
(`np.linspace(1.0, 4.0, 100)`, a spacing h = 3/99) and integrates them by the
trapezoidal rule (`np.trapz`, then `normalize=True` divides by 4 - 1). A
workload with ratio r in (tau[j-1], tau[j]] then adds (4 - tau[j] + h/2) / n
instead of (4 - r) / n: at most h/2 = 1/66 more or less per workload before
dividing by 3, and h/2 for a ratio of exactly 4, which the exact integral
credits with nothing. `exact_scores` gives the documentation's integral beside
it. AlgoPerf's ties of held-out variants to their base workloads (a base
workload counts as missed when its variant misses) have no counterpart here:
every workload counts on its own.

numpy only: no JAX, no files. train/experiments/profile_studies.py reads the
studies' times; train/experiments/reports/profile.py writes the report.
"""

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

# AlgoPerf's cut-off and the upper end of its integral: a time more than 4 times
# the fastest one earns nothing.
R_MAX = 4.0
# The grid of tau on which AlgoPerf samples each profile before it integrates
# (score_submissions.py: min_tau=1.0, max_tau=4.0, num_points=100, scale='linear').
NUM_TAU_POINTS = 100
MIN_TAU = 1.0

Time = float | int | None


@dataclasses.dataclass(frozen=True)
class Profile:
  """The performance profile of some optimizers on some workloads.

  Arrays are indexed [optimizer, workload] or [optimizer, tau], in the order of
  `optimizers` and `workloads`.
  """
  optimizers: tuple[str, ...]
  workloads: tuple[str, ...]
  times: np.ndarray  # Time to target; inf for a miss.
  ratios: np.ndarray  # Time over the workload's fastest; inf for a miss or over R_MAX.
  taus: np.ndarray  # AlgoPerf's grid: NUM_TAU_POINTS values from MIN_TAU to R_MAX.
  rho: np.ndarray  # rho[s](tau) on that grid.
  scores: np.ndarray  # AlgoPerf's integrated score (trapezoidal, on the grid).
  exact_scores: np.ndarray  # The documentation's exact integral of the step function.

  def over_cutoff(self) -> np.ndarray:
    """Where a finite time counts as infinite: more than R_MAX times the fastest."""
    return np.isfinite(self.times) & ~np.isfinite(self.ratios)

  def everyone_missed(self) -> list[str]:
    """The workloads on which no optimizer reached the target."""
    return [w for w, column in zip(self.workloads, self.times.T)
            if not np.isfinite(column).any()]


def as_times(rows: Sequence[Sequence[Time]]) -> np.ndarray:
  """A float array of times to target; None, NaN and inf are a miss (inf).

  Raises:
    ValueError: for a time that is zero or negative, or rows of unequal length.
  """
  if len({len(row) for row in rows}) > 1:
    raise ValueError('every optimizer needs a time on every workload')
  times = np.array([[math.inf if t is None else float(t) for t in row] for row in rows],
                   dtype=float).reshape(len(rows), -1)
  times[np.isnan(times)] = math.inf
  if (times <= 0).any():
    raise ValueError(f'a time to target must be > 0, not {float(times[times <= 0][0])}')
  return times


def performance_ratios(times: np.ndarray, r_max: float = R_MAX) -> np.ndarray:
  """r[s, w] = t[s, w] / min_s' t[s', w]; inf for a miss, for a time over
  `r_max` times the fastest (AlgoPerf: `time > r_max * best`, so a ratio of
  exactly r_max is kept), and on a workload every optimizer missed."""
  best = times.min(axis=0)
  with np.errstate(invalid='ignore'):  # inf / inf where everyone missed.
    ratios = times / best
  ratios[~np.isfinite(best) | (times > r_max * best) | ~np.isfinite(times)] = math.inf
  return ratios


def tau_grid(r_max: float = R_MAX, num_points: int = NUM_TAU_POINTS) -> np.ndarray:
  """AlgoPerf's values of tau: `np.linspace(1.0, r_max, num_points)`."""
  return np.linspace(MIN_TAU, r_max, num_points)


def rho(ratios: np.ndarray, taus: np.ndarray) -> np.ndarray:
  """rho[s](tau): the fraction of all workloads on which r[s, w] <= tau."""
  num_workloads = ratios.shape[1]
  return (ratios[:, :, None] <= taus[None, None, :]).sum(axis=1) / num_workloads


def integrated_scores(rho_on_grid: np.ndarray, taus: np.ndarray) -> np.ndarray:
  """AlgoPerf's score: the trapezoidal integral of rho over the grid, divided by
  its length (score_submissions.compute_leaderboard_score, normalize=True)."""
  return np.trapezoid(rho_on_grid, x=taus, axis=1) / (taus[-1] - taus[0])


def exact_scores(ratios: np.ndarray, r_max: float = R_MAX) -> np.ndarray:
  """The documentation's score: the exact integral from 1 to r_max of the step
  function rho, over r_max - 1. A workload with a finite ratio r adds
  (r_max - r) / n; one counted as infinite adds nothing."""
  credit = np.where(np.isfinite(ratios), r_max - np.minimum(ratios, r_max), 0.0)
  return credit.mean(axis=1) / (r_max - MIN_TAU)


def performance_profile(optimizers: Sequence[str], workloads: Sequence[str],
                        times: Sequence[Sequence[Time]]) -> Profile:
  """The profile of `optimizers` on `workloads`, AlgoPerf's score included.

  Args:
    optimizers: names, one per row of `times`.
    workloads: names, one per column of `times`.
    times: time to target of each optimizer (row) on each workload (column),
      in any one unit (steps, epochs, seconds); None, NaN or inf for a miss.

  Returns:
    The Profile, with the ratios, rho on AlgoPerf's grid and both scores.

  Raises:
    ValueError: for fewer than 2 optimizers or 2 workloads, repeated names,
      a shape that does not match the names, or a time that is not > 0.
  """
  for what, names in (('optimizers', optimizers), ('workloads', workloads)):
    if len(names) < 2:
      raise ValueError(f'a performance profile needs at least 2 {what}, not {len(names)}')
    if len(set(names)) != len(names):
      raise ValueError(f'{what} are named twice: {sorted(names)}')
  array = as_times(times)
  if array.shape != (len(optimizers), len(workloads)):
    raise ValueError(f'times has shape {array.shape}, not {len(optimizers)} optimizers by '
                     f'{len(workloads)} workloads')
  ratios = performance_ratios(array)
  taus = tau_grid()
  on_grid = rho(ratios, taus)
  return Profile(tuple(optimizers), tuple(workloads), array, ratios, taus, on_grid,
                 integrated_scores(on_grid, taus), exact_scores(ratios))


def step_profile(ratios_of_one: np.ndarray, r_max: float = R_MAX
                 ) -> tuple[np.ndarray, np.ndarray]:
  """One optimizer's rho as an exact step function on [1, r_max], for a plot:
  (tau, rho) at 1, at each finite ratio (sorted) and at r_max, rho holding from
  each tau to the next (`where='post'`)."""
  n = len(ratios_of_one)
  finite = np.sort(ratios_of_one[np.isfinite(ratios_of_one)])
  taus = np.concatenate([[MIN_TAU], finite, [r_max]])
  levels = np.array([(ratios_of_one <= t).sum() / n for t in taus])
  return taus, levels
