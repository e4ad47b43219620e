"""The verdict on a pair of configs in plain words, from the numbers that decide it.

`significance.compare_studies` decides (its p-values at `significance.SIGNIFICANCE_LEVEL`,
its bootstrap interval, its power grid); this module says it: the paragraph that
comparison.json stores as each pair's 'verdict' and the comparison report shows.
Text only, from `statistics` alone.
"""

from collections.abc import Sequence

from train.experiments import significance

# The comparisons a comparison's p-values are adjusted over, in words; a
# robustness comparison adjusts over each variant's with the base.
EVERY_PAIR = 'every pair'
EACH_VARIANT = 'each variant with the base'


def p_value(value: float) -> str:
  """A p-value as a reader wants it: two significant digits, small ones bounded."""
  if value < 0.001:
    return '< 0.001'
  return f'{value:.2g}' if value < 0.1 else f'{value:.2f}'


def points(value: float) -> str:
  """A difference of accuracies (fractions) in percentage points, signed."""
  return f'{100 * value:+.1f}'


def _p_text(value: float) -> str:
  formatted = p_value(value)
  return f'p {formatted}' if formatted.startswith('<') else f'p = {formatted}'


def _accuracy_verdict(pair: dict, p_key: str) -> str:
  a, b, p = pair['a'], pair['b'], pair[p_key]
  if p is None:
    return f"The final accuracies cannot be compared ({pair['reasons'].get('mann_whitney_p')})."
  difference = pair['difference_in_median_final_accuracy']
  if p >= significance.SIGNIFICANCE_LEVEL:
    words = (f'**No evidence that the final accuracies of {a} and {b} differ** '
             f'(Mann-Whitney {_p_text(p)})')
  else:
    higher, lower = (a, b) if difference >= 0 else (b, a)
    words = (f'**The final accuracies of {a} and {b} differ** (Mann-Whitney {_p_text(p)}): '
             f"{higher}'s median is {abs(100 * difference):.1f} points above {lower}'s")
  low, high = pair['difference_in_median_final_accuracy_ci95']
  if low is not None:
    words += (f'; the 95% interval of the difference in median final accuracy ({a} − {b}) '
              f'is {points(low)} to {points(high)} points')
  needed = pair['seeds_per_config_for_80_percent_power']
  if needed is not None:
    words += (f'; about {needed} seeds per config would detect a difference of this size '
              f'({points(difference)} points) 80% of the time at the 5% level')
  elif 'more than' in pair['reasons'].get('seeds_per_config_for_80_percent_power', ''):
    words += (f'; more than {significance.POWER_GRID[-1]} seeds per config would be needed to '
              f'detect a difference of this size ({points(difference)} points) 80% of the time')
  return words + '.'


def _paired_verdict(pair: dict, p_key: str) -> str:
  if pair[p_key] is None:
    reason = pair['reasons'].get('wilcoxon_p')
    return f'No paired test ({reason}).' if reason else ''
  seeds = pair['paired_seeds']
  return (f'Paired by seed (seeds {seeds[0]}–{seeds[-1]}, same initialisation and data '
          f'order on both sides): Wilcoxon signed-rank {_p_text(pair[p_key])}.')


def _target_verdict(pair: dict, fisher_key: str, logrank_key: str) -> str:
  (reached_a, runs_a), (reached_b, runs_b) = pair['reached_target']
  hits = f"{pair['a']} reached the target in {reached_a} of {runs_a} runs, {pair['b']} in " \
         f'{reached_b} of {runs_b}'
  fisher = pair[fisher_key]
  if fisher is None:
    return f'{hits}.'
  differ = ('the hit rates differ' if fisher < significance.SIGNIFICANCE_LEVEL
            else 'no evidence that the hit rates differ')
  words = f'{hits}: {differ} (Fisher exact {_p_text(fisher)})'
  logrank = pair[logrank_key]
  if logrank is None:
    words += f"; the times to target cannot be compared ({pair['reasons'].get('logrank_p')})"
  else:
    differ = ('the times to target differ' if logrank < significance.SIGNIFICANCE_LEVEL
              else 'no evidence that the times to target differ')
    words += (f'; {differ}, counting a run that missed as censored (log-rank '
              f'{_p_text(logrank)})')
  return words + '.'


def pairwise_verdict(pair: dict, adjusted: bool = False,
                     adjusted_over: str = EVERY_PAIR) -> str:
  """The verdict on one pair of configs in plain words, with the numbers behind it.

  Args:
    pair: an entry of `significance.compare_studies` (or `compare_with_base`).
    adjusted: use the Holm-adjusted p-values (with more than two configs).
    adjusted_over: the comparisons the p-values were adjusted over, in words.

  Returns:
    A paragraph: do the final accuracies differ, how large is the difference,
    how many seeds would settle it; do the hit rates and times to target differ.
  """
  suffix = '_holm' if adjusted else ''
  parts = [_accuracy_verdict(pair, f'mann_whitney_p{suffix}'),
           _paired_verdict(pair, f'wilcoxon_p{suffix}'),
           _target_verdict(pair, f'fisher_exact_p{suffix}', f'logrank_p{suffix}')]
  if adjusted:
    parts.append(f'(p-values adjusted for the comparisons of {adjusted_over}, Holm.)')
  return ' '.join(part for part in parts if part)


def is_adjusted(pairs: Sequence[dict]) -> bool:
  """Whether the verdicts use Holm-adjusted p-values: with more than two configs."""
  return len({name for pair in pairs for name in (pair['a'], pair['b'])}) > 2


def comparison_statistics(studies: Sequence[dict]) -> list[dict]:
  """comparison.json's 'pairwise': every pair of configs compared, with its verdict.

  Each entry is `significance.compare_pair`'s, with Holm-adjusted p-values, plus
  'verdict', the report's paragraph in plain words (on the adjusted p-values
  when there are more than two configs).

  Args:
    studies: study.json's content of each config (its 'name' and 'runs').
  """
  pairwise = significance.compare_studies([(s['name'], s['runs']) for s in studies])
  for pair in pairwise:
    pair['verdict'] = pairwise_verdict(pair, adjusted=len(studies) > 2)
  return pairwise
