"""The report of a robustness comparison: a config tuned on its base workload, run
unchanged on workload variants.

report.md holds each workload's target beside the base's (the runs' own, MLPerf's
and AlgoPerf's published ImageNet targets), the drop from the base to each
variant (the median final accuracy, the median steps and seconds to target),
whether each drop is real, in the words and the table of a comparison
(`comparison.pairwise_section`), the comparison's table of every workload, and its
plots: comparison.png (a box per workload), comparison_curves.png and
time_to_target.png. `drop_table` is the drop table as fixed-width text, for
the console.
"""

import os
from collections.abc import Sequence
from typing import Any

from train.common import files
from train.experiments import verdicts
from train.experiments.reports import comparison
from train.experiments.reports import markdown
from train.experiments.reports import plots
from train.experiments.reports import sections

Study = sections.Study


def _points(value: float | None) -> str:
  return markdown.MISSING if value is None else verdicts.points(value)


def _interval(pair: Sequence[float | None]) -> str:
  low, high = pair
  return markdown.MISSING if low is None else f'{verdicts.points(low)} to {verdicts.points(high)}'


def _rise(change: dict, unit: str = '') -> str:
  """'+50 (×1.17)' of a time's median, or why there is none."""
  if change['increase'] is None:
    return markdown.MISSING
  sign = '+' if change['increase'] >= 0 else '−'
  return f"{sign}{markdown.number(abs(change['increase']))}{unit} (×{change['ratio']:.2f})"


def _drop_rows(studies: Sequence[Study],
               drops: Sequence[dict]) -> tuple[list[str], list[list[str]]]:
  header = ['Workload', 'Reached target / runs', 'Median final accuracy',
            'Drop in the median (points)', '95% CI of the drop', 'Median steps to target',
            'Rise in steps', 'Median seconds to target', 'Rise in seconds']
  by_name = {drop['variant']: drop for drop in drops}
  rows = []
  for name, summary, _ in studies:
    drop = by_name.get(name)
    steps, seconds = (drop or {}).get('median_steps_to_target'), (drop or {}).get(
        'median_seconds_to_target')
    rows.append([
        name, markdown.reached(summary), markdown.percent(summary['median_final_accuracy']),
        _points(drop['median_final_accuracy']['drop']) if drop else markdown.MISSING,
        _interval(drop['median_final_accuracy']['drop_ci95']) if drop else markdown.MISSING,
        markdown.number(summary['median_steps_to_target']),
        _rise(steps) if drop else markdown.MISSING,
        markdown.seconds(summary['median_seconds_to_target']),
        _rise(seconds, ' s') if drop else markdown.MISSING])
  return header, rows


def drop_table(studies: Sequence[Study], drops: Sequence[dict]) -> str:
  """Each workload's medians and each variant's drop from the base, as fixed-width text.

  Args:
    studies: (name, summary, runs) of each workload, the base first.
    drops: `drops.variant_drops` of the variants.
  """
  return markdown.text_table(*_drop_rows(studies, drops))


def _target_cell(target: float | None, digits: int) -> str:
  return markdown.MISSING if target is None else f'{100 * target:.{digits}f}%'


def _targets_table(workloads: Sequence[dict]) -> str:
  """A row per workload: its change, the target its runs were judged by, MLPerf's
  and AlgoPerf's published targets."""
  rows = []
  for w in workloads:
    algoperf = w.get('algoperf')
    change = ', '.join(f'`{k} = {markdown.config_value(v)}`' for k, v in w['change'].items())
    rows.append([w['name'], change or '(the config as tuned)',
                 markdown.percent(w['target_accuracy']),
                 _target_cell(w.get('mlperf_target'), 1),
                 (f"{_target_cell(algoperf['validation_target'], 3)} / "
                  f"{_target_cell(algoperf['test_target'], 2)} ({algoperf['workload']})")
                 if algoperf else markdown.MISSING])
  return markdown.markdown_table(
      ['Workload', 'Change from the base', 'Target of these runs', "MLPerf's ImageNet target",
       "AlgoPerf's ImageNet target, validation / test (its workload)"], rows)


def _headline(drop: dict) -> str:
  """One variant's drop in a sentence."""
  accuracy, steps = drop['median_final_accuracy'], drop['median_steps_to_target']
  words = f"**{drop['variant']}**: "
  if accuracy['drop'] is None:
    words += 'no final accuracy to compare'
  else:
    direction = 'below' if accuracy['drop'] >= 0 else 'above'
    words += (f"the median final accuracy is {abs(100 * accuracy['drop']):.1f} points "
              f"{direction} the base's")
    if accuracy['drop_ci95'][0] is not None:
      words += f" (95% interval of the drop {_interval(accuracy['drop_ci95'])} points)"
  if steps['increase'] is not None:
    words += (f"; the median steps to target go from {markdown.number(steps['base'])} to "
              f"{markdown.number(steps['variant'])} (×{steps['ratio']:.2f})")
  else:
    words += f"; the medians of the steps to target cannot be compared ({steps['reason']})"
  return words + '.'


def _overrides_line(overrides: dict[str, Any]) -> str:
  if not overrides:
    return 'No `--config.KEY=VALUE` overrides: the base is the config file\'s.'
  flags = markdown.override_flags(overrides)
  return f'Applied to the base, and so to every variant, from the command line: {flags}.'


def write_robustness_report(out_dir: str, name: str, studies: list[Study],
                            drops: list[dict], workloads: list[dict], wall_seconds: float,
                            overrides: dict[str, Any] | None = None,
                            unfinished: Sequence[dict] | None = None) -> str:
  """Writes `out_dir/report.md` and its plots; returns the path of report.md.

  Args:
    out_dir: the robustness study's directory.
    name: the base config's name.
    studies: (name, summary, runs) of each workload, the base first.
    drops: `drops.variant_drops` of the variants, in the order of `studies[1:]`.
    workloads: each workload's 'name', 'change' (config key -> value),
      'target_accuracy', 'mlperf_target' and 'algoperf' (None, or its
      'workload', 'validation_target' and 'test_target').
    wall_seconds: wall time of the whole comparison.
    overrides: the command line's --config.KEY=VALUE settings.
    unfinished: planned runs without a result.
  """
  os.makedirs(out_dir, exist_ok=True)
  plots.time_to_target(os.path.join(out_dir, 'time_to_target.png'),
                       'Fraction of runs that reached the target',
                       [(n, s['time_to_target']) for n, s, _ in studies])
  plots.comparison(os.path.join(out_dir, 'comparison.png'), studies)
  plots.comparison_curves(os.path.join(out_dir, 'comparison_curves.png'), studies)
  pairs = [drop['comparison'] for drop in drops]
  all_runs = [run for _, _, runs in studies for run in runs]
  text = '\n\n'.join([
      f'# Robustness of {name} to {len(drops)} workload '
      f'variant{"s" if len(drops) != 1 else ""}',
      f'The config {name}, as tuned on its base workload, run unchanged on each variant: '
      'one workload key changed, the optimizer, its hyperparameters and the target kept, '
      'over the same seeds (so that each variant pairs with the base seed by seed). The '
      "drop is the base's median minus the variant's: a positive drop in accuracy, or a "
      'rise in the time to target, means the variant does worse. A run without a final '
      'accuracy (diverged) counts as 0% in the drop, as in a comparison.',
      '## Targets', _targets_table(workloads),
      'The runs are judged by their config\'s `target_accuracy`, the same on every '
      "variant, as AlgoPerf's variants are judged against the base's tuning. MLPerf has "
      "no variants. AlgoPerf's targets are its own ImageNet workloads' "
      '(configs/algoperf_variants.py), set by its target-setting runs; they apply to '
      'ImageNet only, and show how far AlgoPerf lets each variant fall below the base.',
      '## The drop from the base', markdown.markdown_table(*_drop_rows(studies, drops)),
      *[_headline(drop) for drop in drops],
      *sections.unfinished_section(unfinished),
      *(['## Is each drop real?', comparison.pairwise_section(pairs, verdicts.EACH_VARIANT)]
        if pairs else []),
      '## Every workload', markdown.markdown_table(*comparison.comparison_rows(studies, out_dir)),
      '## Command-line overrides', _overrides_line(overrides or {}),
      '## Time', sections.time_table(wall_seconds, all_runs, 'Robustness comparison'),
      '## Plots',
      '![Final eval accuracy of each workload, box plots](comparison.png)',
      '![Eval accuracy against training step, one colour per workload](comparison_curves.png)',
      '![Fraction of runs that reached the target against step, Kaplan-Meier, one curve '
      'and 95% band per workload](time_to_target.png)',
  ])
  return files.write_text(os.path.join(out_dir, 'report.md'), text)
