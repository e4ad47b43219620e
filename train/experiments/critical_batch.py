"""Perfect scaling and the critical batch size of a steps-to-target curve.

Shallue et al. (2019, "Measuring the Effects of Data Parallelism on Neural
Network Training") measure the steps needed to reach a target at each batch
size, each tuned on its own, and find three regimes: perfect scaling (doubling
the batch halves the steps), diminishing returns, and a regime where a larger
batch no longer saves steps. This module states where the first one ends.

Given batch sizes B_1 < ... < B_n and the median steps to target S_i at each (a
median over seeds in which a run that missed the target counts as infinitely
slow, so S_i is infinite when half the seeds or more missed):

* perfect scaling from the smallest batch: P_i = S_1 * B_1 / B_i;
* the ratio r_i = S_i / P_i = (S_i * B_i) / (S_1 * B_1): how many times the
  examples the smallest batch needed B_i needs (1 on the line, infinite for a
  miss);
* the critical batch size is B_j for the largest j such that r_i <= k for every
  i <= j, with k = CRITICAL_FACTOR = 2: the last batch size, going up from the
  smallest, before the first one that needs more than twice the smallest
  batch's examples (or misses). McCandlish et al. (2018) put their critical
  batch size at the same doubling of the examples needed.

When every batch size stays within k, the curve never left perfect scaling
within the list and the critical batch size is at least the largest one
(`lower_bound`). When the smallest batch missed there is no line to compare
with and no critical batch size. A batch size not measured yet (None) ends the
curve there: the rule reads the measured prefix.

Pure Python: the report, the runner and the tests share it.
"""

import dataclasses
import math
from collections.abc import Sequence

CRITICAL_FACTOR = 2.0

Steps = float | int | None


@dataclasses.dataclass(frozen=True)
class CriticalBatch:
  """The rule's outcome over a curve's measured prefix.

  Attributes:
    batch_size: the critical batch size, or None (the smallest batch missed, or
      nothing is measured).
    lower_bound: every measured batch size kept within the factor, so the
      critical batch size is at least `batch_size`.
    perfect_steps: P_i for each batch size (None without a finite S_1).
    ratios: r_i for each measured batch size (inf for a miss; None where
      unmeasured or without a finite S_1).
    first_beyond: the first batch size past the factor (or None).
    reason: the outcome in words, for the report.
  """
  batch_size: int | None
  lower_bound: bool
  perfect_steps: tuple[float | None, ...]
  ratios: tuple[float | None, ...]
  first_beyond: int | None
  reason: str


def _as_steps(value: Steps) -> float | None:
  """None (not measured) stays None; NaN counts as a miss (inf)."""
  if value is None:
    return None
  value = float(value)
  return math.inf if math.isnan(value) else value


def _check(batch_sizes: Sequence[int], steps: Sequence[Steps]) -> None:
  if len(batch_sizes) != len(steps):
    raise ValueError(f'{len(batch_sizes)} batch sizes but {len(steps)} step counts')
  if any(b <= 0 for b in batch_sizes) or list(batch_sizes) != sorted(set(batch_sizes)):
    raise ValueError(f'batch sizes {list(batch_sizes)} must be positive and increasing')
  bad = [s for s in steps if s is not None and float(s) <= 0]
  if bad:
    raise ValueError(f'a median step count must be > 0 (or inf for a miss), not {bad[0]}')


def critical_batch_size(batch_sizes: Sequence[int], median_steps: Sequence[Steps],
                        factor: float = CRITICAL_FACTOR) -> CriticalBatch:
  """The critical batch size of the curve (see the module's docstring).

  Args:
    batch_sizes: increasing.
    median_steps: the median steps to target at each; inf for a miss, None for
      a batch size not measured yet.
    factor: k, how many times the perfect-scaling steps a batch size may take.
  """
  _check(batch_sizes, median_steps)
  if not factor >= 1:
    raise ValueError(f'the factor k must be at least 1 (the smallest batch is on the line), '
                     f'not {factor}')
  steps = [_as_steps(s) for s in median_steps]
  none = (None,) * len(steps)
  if not steps or steps[0] is None:
    return CriticalBatch(None, False, none, none, None, 'no batch size is measured yet')
  first = steps[0]
  if not math.isfinite(first):
    return CriticalBatch(None, False, none, none, None,
                         f'the smallest batch size ({batch_sizes[0]}) missed the target: '
                         'there is no perfect-scaling line to compare with')
  examples = first * batch_sizes[0]
  perfect = tuple(examples / b for b in batch_sizes)
  ratios = tuple(None if s is None else s * b / examples for s, b in zip(steps, batch_sizes))
  measured = [i for i, r in enumerate(ratios) if r is not None]
  prefix = measured[:next((k for k, i in enumerate(measured) if i != k), len(measured))]
  beyond = next((i for i in prefix if ratios[i] > factor), None)
  if beyond is None:
    last = prefix[-1]
    unmeasured = len(prefix) < len(batch_sizes)
    return CriticalBatch(batch_sizes[last], True, perfect, ratios, None,
                         f'every batch size up to {batch_sizes[last]} takes at most {factor:g} '
                         f'times the steps of perfect scaling from batch {batch_sizes[0]}'
                         + (' (the larger ones are not measured yet)' if unmeasured else ''))
  how = ('missed the target' if math.isinf(ratios[beyond])
         else f'takes {ratios[beyond]:.2f} times the steps of perfect scaling from batch '
              f'{batch_sizes[0]}, more than {factor:g}')
  return CriticalBatch(batch_sizes[beyond - 1], False, perfect, ratios, batch_sizes[beyond],
                       f'batch size {batch_sizes[beyond]} {how}')
