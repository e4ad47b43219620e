"""The report of a comparison: several configs side by side, each a study.

report.md holds the table of the paper's Table 2 columns, whether each pair of
configs differs (`verdicts.pairwise_verdict`, from `significance.compare_studies`),
the config keys on which they differ, the command line's overrides, the time, and
the plots: comparison.png (a box plot of each config's final accuracy over its
seeds, with the target as a line: the Reality Check's Figure 4 when the configs
are its ablations, `--compare=configs/nesterov_a.py:*`), comparison_curves.png
(eval curves) and time_to_target.png (every config's Kaplan-Meier curve).
`comparison_table` is the same table as fixed-width text, for the console.
"""

import os
from collections.abc import Sequence
from typing import Any

from train.common import files
from train.experiments import significance
from train.experiments import verdicts
from train.experiments.reports import markdown
from train.experiments.reports import plots
from train.experiments.reports import sections

Study = sections.Study


def _config_cell(out_dir: str | None, name: str) -> str:
  """The config's name, linked to its study's report.md once the study wrote one."""
  if out_dir and os.path.isfile(os.path.join(out_dir, name, 'report.md')):
    return markdown.link(name, f'{name}/report.md')
  return name


def comparison_rows(studies: Sequence[Study],
                     out_dir: str | None = None) -> tuple[list[str], list[list[str]]]:
  """Header and rows of the comparison table; names linked to studies in `out_dir`."""
  header = ['Config', 'Reached target / runs', 'Median final test accuracy',
            'Median train accuracy', 'Median steps to target', 'Median seconds to target',
            'MLPerf score (s)', 'Kaplan-Meier median steps to target']
  rows = [[_config_cell(out_dir, name),
           markdown.reached(s), markdown.percent(s['median_final_accuracy']),
           markdown.percent(s['median_final_train_accuracy']),
           markdown.number(s['median_steps_to_target']),
           markdown.number(s['median_seconds_to_target']),
           markdown.number(s['mlperf_score_seconds']),
           markdown.number((s.get('time_to_target') or {}).get('median_steps'))]
          for name, s, _ in studies]
  return header, rows


def comparison_table(studies: Sequence[Study]) -> str:
  """The comparison table (the paper's Table 2 columns) as fixed-width text.

  Args:
    studies: (name, summary, runs) of each configuration.

  Returns:
    The table, one line per configuration under a header, for the console.
  """
  return markdown.text_table(*comparison_rows(studies))


def _differences_table(differences: dict[str, dict[str, Any]]) -> str:
  """Rows: the config keys whose values differ; columns: the configurations."""
  names = list(differences)
  keys = sorted({key for values in differences.values() for key in values})
  rows = [[f'`{key}`'] + [str(differences[name].get(key, markdown.MISSING)) for name in names]
          for key in keys]
  return markdown.markdown_table(['Key'] + names, rows)


def _overrides_section(overrides: dict[str, Any]) -> str:
  """The command line's --config.KEY=VALUE settings, applied to every config."""
  if not overrides:
    return 'No `--config.KEY=VALUE` overrides: each configuration is its file\'s.'
  flags = markdown.override_flags(overrides)
  return f'Applied to every configuration from the command line: {flags}.'


def _p(value: float | None) -> str:
  return markdown.MISSING if value is None else verdicts.p_value(value)


def _seeds_needed(pair: dict) -> str:
  needed = pair['seeds_per_config_for_80_percent_power']
  if needed is not None:
    return str(needed)
  return pair['reasons'].get('seeds_per_config_for_80_percent_power', markdown.MISSING)


def _pairwise_table(pairs: Sequence[dict], adjusted: bool) -> str:
  def p(pair: dict, key: str) -> str:
    return f'{_p(pair[key])} ({_p(pair[key + "_holm"])})' if adjusted else _p(pair[key])

  def interval(pair: dict) -> str:
    low, high = pair['difference_in_median_final_accuracy_ci95']
    return markdown.MISSING if low is None else f'{verdicts.points(low)} to {verdicts.points(high)}'

  rows = [[f"{pair['a']} − {pair['b']}",
           verdicts.points(pair['difference_in_median_final_accuracy'])
           if pair['difference_in_median_final_accuracy'] is not None else markdown.MISSING,
           interval(pair), p(pair, 'mann_whitney_p'), p(pair, 'wilcoxon_p'),
           ' vs '.join(f'{r} / {n}' for r, n in pair['reached_target']),
           p(pair, 'fisher_exact_p'), p(pair, 'logrank_p'), _seeds_needed(pair)]
          for pair in pairs]
  note = ' (Holm-adjusted)' if adjusted else ''
  return markdown.markdown_table(
      ['Pair (a − b)', 'Difference in median final accuracy (points)', '95% CI (bootstrap)',
       f'Mann-Whitney p{note}', f'Wilcoxon p, paired by seed{note}', 'Reached target',
       f'Fisher exact p{note}', f'Log-rank p{note}', 'Seeds per config for 80% power'],
      rows)


def pairwise_section(pairs: Sequence[dict], adjusted_over: str = verdicts.EVERY_PAIR) -> str:
  """The verdict on each pair, the table of their numbers and how they were computed;
  `adjusted_over`: the comparisons the Holm adjustment spans, in words."""
  adjusted = verdicts.is_adjusted(pairs)
  paragraphs = [verdicts.pairwise_verdict(pair, adjusted, adjusted_over) for pair in pairs]
  how = ('Final accuracies: the difference of the medians with a two-sample percentile '
         'bootstrap interval (9,999 resamples), the Mann-Whitney U test and, when both '
         'configs ran the same seeds, the Wilcoxon signed-rank test on the per-seed '
         'differences; a run without a final accuracy (diverged) counts as 0%. Reaching the '
         "target: Fisher's exact test on reached / missed. Time to target: the log-rank "
         'test, a missed run censored as in the studies. Seeds per config for 80% power: '
         "the smallest number of seeds on the grid "
         f"{', '.join(str(n) for n in significance.POWER_GRID)} at which Mann-Whitney at the "
         "5% level rejects in 80% of 1,000 resamples drawn from each config's observed "
         'final accuracies; it is only as good as those runs are representative. All from '
         '`scipy.stats`.')
  if adjusted:
    how += (' With more than two configs, each p-value is also given adjusted for the '
            f'comparisons of {adjusted_over} (Holm), in parentheses; the verdicts use the '
            'adjusted ones.')
  return '\n\n'.join([*paragraphs, _pairwise_table(pairs, adjusted), how])


def write_comparison_report(out_dir: str, studies: list[Study], wall_seconds: float,
                            differences: dict[str, dict[str, Any]] | None = None,
                            overrides: dict[str, Any] | None = None,
                            pairwise: list[dict] | None = None,
                            unfinished: Sequence[dict] | None = None) -> str:
  """Writes `out_dir/report.md` with comparison.png and comparison_curves.png.

  Args:
    out_dir: directory of the report (created if missing).
    studies: (name, summary, runs) of each configuration.
    wall_seconds: wall time of all the studies together.
    differences: for each configuration, the config keys on which the
      configurations differ and its values (seeds excluded); shown as a table.
    overrides: the command line's --config.KEY=VALUE settings, applied to
      every configuration.
    pairwise: `significance.compare_studies` of the studies, or None to compute it.
    unfinished: planned runs without a result (study.json's 'unfinished' of
      every configuration), listed in a section of their own.

  Returns:
    The path of report.md; comparison.png, comparison_curves.png and
    time_to_target.png (every config's Kaplan-Meier curve) lie next to it.
  """
  os.makedirs(out_dir, exist_ok=True)
  if pairwise is None:
    pairwise = significance.compare_studies([(name, runs) for name, _, runs in studies])
  plots.time_to_target(os.path.join(out_dir, 'time_to_target.png'),
                       'Fraction of runs that reached the target',
                       [(name, s['time_to_target']) for name, s, _ in studies])
  plots.comparison(os.path.join(out_dir, 'comparison.png'), studies)
  plots.comparison_curves(os.path.join(out_dir, 'comparison_curves.png'), studies)
  targets = (', '.join(markdown.percent(t) for t in plots.distinct_targets(studies))
             or markdown.MISSING)
  all_runs = [run for _, _, runs in studies for run in runs]
  text = '\n\n'.join([
      f'# Comparison of {len(studies)} configurations',
      f'Target eval accuracy {targets}. "Test" accuracy is the accuracy on the validation '
      'split, as the paper calls it; train accuracy is on the last logged training batch. '
      'Medians count a run that never reached the target as infinitely slow (the paper\'s and '
      "MLPerf's convention); the Kaplan-Meier median censors it at its last eval instead. The "
      "MLPerf score is the olympic mean of the first 5 runs' seconds to target.",
      markdown.markdown_table(*comparison_rows(studies, out_dir)),
      *sections.unfinished_section(unfinished),
      *(['## Do they differ?', pairwise_section(pairwise)] if pairwise else []),
      *(['## What differs', _differences_table(differences)] if differences else []),
      '## Command-line overrides', _overrides_section(overrides or {}),
      '## Time', sections.time_table(wall_seconds, all_runs, 'Comparison'),
      '## Plots',
      '![Final eval accuracy of each configuration, box plots](comparison.png)',
      '![Eval accuracy against training step, one colour per configuration]'
      '(comparison_curves.png)',
      '![Fraction of runs that reached the target against step, Kaplan-Meier, one curve '
      'and 95% band per configuration](time_to_target.png)',
  ])
  return files.write_text(os.path.join(out_dir, 'report.md'), text)


