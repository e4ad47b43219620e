"""The drop from a base workload to each of its variants: a robustness comparison's numbers.

A config tuned on the base workload runs unchanged on each variant
(train/experiments/robustness.py). For each variant this gives:

- the drop in the median final accuracy, base minus variant (a positive drop:
  the variant does worse), with the comparison's bootstrap interval;
- the rise in the median steps and seconds to target, variant minus base, and
  their ratio, where both medians are defined (a median is undefined when
  fewer than half the runs reached the target);
- the test of the difference exactly as a comparison tests a pair
  (`significance.compare_pair`: Mann-Whitney, Wilcoxon paired by seed, Fisher's
  exact test of the hits, the log-rank test of the times, the seeds for 80%
  power), its p-values Holm-adjusted over the variants
  (`significance.compare_with_base`), and the verdict in words (`verdicts`).

Finished results only (study.json dicts): numpy and scipy through the modules
it calls, no JAX, no plan.
"""

from collections.abc import Sequence

from train.experiments import significance
from train.experiments import verdicts

# The times to target whose medians are compared (study.json's median_<unit>_to_target).
TIME_UNITS = ('steps', 'seconds')


def _time_change(base: dict, variant: dict, unit: str) -> dict:
  """The medians of one time to target, the variant's rise over the base's and
  its ratio to it; 'reason' says why they are null."""
  key = f'median_{unit}_to_target'
  before, after = base.get(key), variant.get(key)
  missed = [name for name, median in ((base['name'], before), (variant['name'], after))
            if median is None]
  if missed:
    return {'base': before, 'variant': after, 'increase': None, 'ratio': None,
            'reason': f'fewer than half the runs of {" and ".join(missed)} reached the target'}
  return {'base': before, 'variant': after, 'increase': after - before,
          'ratio': after / before if before else None, 'reason': None}


def _drop(base: dict, variant: dict, pair: dict) -> dict:
  """One variant's entry of robustness.json's 'drops'."""
  return {
      'variant': variant['name'],
      'median_final_accuracy': {
          'base': base.get('median_final_accuracy'),
          'variant': variant.get('median_final_accuracy'),
          'drop': pair['difference_in_median_final_accuracy'],
          'drop_ci95': pair['difference_in_median_final_accuracy_ci95'],
      },
      **{f'median_{unit}_to_target': _time_change(base, variant, unit) for unit in TIME_UNITS},
      'reached_target': pair['reached_target'],
      'comparison': pair,
  }


def variant_drops(base: dict, variants: Sequence[dict], seed: int = 0) -> list[dict]:
  """Each variant's drop from the base, tested as a comparison's pair is.

  Args:
    base: the base workload's study.json content (its 'name', its 'runs' and
      the medians of `statistics.summarize`).
    variants: each variant's, in order.
    seed: seed of the bootstrap and the power resampling.

  Returns:
    Plain-JSON dicts, one per variant: 'median_final_accuracy' (base, variant,
    drop = base - variant, drop_ci95), 'median_steps_to_target' and
    'median_seconds_to_target' (base, variant, increase = variant - base,
    ratio, reason), 'reached_target' and 'comparison': the pair (a = base,
    b = variant) as comparison.json's 'pairwise' holds it, Holm-adjusted over
    the variants, with its 'verdict'. The drop is the comparison's difference
    of the medians, in which a diverged run counts as 0.
  """
  pairs = significance.compare_with_base((base['name'], base['runs']),
                                         [(v['name'], v['runs']) for v in variants], seed=seed)
  adjusted = verdicts.is_adjusted(pairs)
  for pair in pairs:
    pair['verdict'] = verdicts.pairwise_verdict(pair, adjusted, verdicts.EACH_VARIANT)
  return [_drop(base, variant, pair) for variant, pair in zip(variants, pairs)]
