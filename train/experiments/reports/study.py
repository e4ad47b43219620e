"""The report of one study: a config over many seeds (the paper's 50-seed protocol).

report.md holds the configuration, the results with their intervals, the time to
target as survival data, the time taken, the study as an MLPerf submission, the
plots and a row per seed; final_accuracy.png, eval_curves.png, time_to_target.png
and learning_rate.png lie next to it.
"""

import os
from collections.abc import Sequence

from train.common import files
from train.experiments.reports import markdown
from train.experiments.reports import plots
from train.experiments.reports import sections


def results_tables(summary: dict) -> str:
  """The counts and the medians with their intervals (a staged search's
  confirmation shows them too)."""
  target = summary.get('target_accuracy')
  counts = markdown.markdown_table(['Result', 'Value'], [
      [f'Runs that reached the target ({markdown.percent(target)})', markdown.reached(summary)],
      ['Fraction that reached it, 95% interval (exact binomial)', _hit_rate(summary)],
      ['Diverged runs (NaN or infinite loss)', str(summary.get('num_diverged', 0))],
      ['Resumed runs (their times include the interruptions)',
       str(summary.get('num_resumed', 0))],
      ["MLPerf score (olympic mean of the first 5 runs' seconds to target)",
       markdown.seconds(summary.get('mlperf_score_seconds'))],
  ])
  rows = [
      ['Final eval accuracy', markdown.percent(summary['median_final_accuracy']),
       markdown.percent_range(summary['final_accuracy_quartiles']),
       markdown.percent_range(summary['final_accuracy_ci95'])],
      ['Final train accuracy', markdown.percent(summary['median_final_train_accuracy']),
       markdown.percent_range(summary['final_train_accuracy_quartiles']),
       markdown.percent_range(summary['final_train_accuracy_ci95'])],
      ['Steps to target', markdown.number(summary['median_steps_to_target']),
       markdown.number_range(summary['steps_to_target_quartiles']),
       markdown.number_range(summary['steps_to_target_ci95'])],
      ['Seconds to target', markdown.seconds(summary['median_seconds_to_target']),
       markdown.number_range(summary['seconds_to_target_quartiles'], ' s'),
       markdown.number_range(summary['seconds_to_target_ci95'], ' s')],
      ['Epochs to target', markdown.number(summary['median_epochs_to_target']),
       markdown.number_range(summary['epochs_to_target_quartiles']),
       markdown.number_range(summary['epochs_to_target_ci95'])],
  ]
  medians = markdown.markdown_table(
      ['Metric', 'Median', 'Quartiles (Q1 – Q3)', '95% CI of the median'], rows)
  note = ('A run that never reached the target counts as infinitely slow, and a run without '
          f'an accuracy as the least accurate; {markdown.MISSING} marks a statistic that is then '
          'infinite (e.g. a median to target when fewer than half the runs reached it) and '
          f'{markdown.INFINITE} the open end of a range. '
          'The interval is a percentile bootstrap of the median (10,000 resamples).')
  return f'{counts}\n\n{medians}\n\n{note}'


def _hit_rate(summary: dict) -> str:
  if not summary['num_runs']:
    return markdown.MISSING
  low, high = summary.get('reached_target_ci95', (None, None))
  rate = summary['num_reached_target'] / summary['num_runs']
  return f'{100 * rate:.0f}% ({100 * low:.0f}% – {100 * high:.0f}%)'


def _fraction_band(pair: Sequence[float | None]) -> str:
  low, high = pair
  if not (markdown.finite(low) and markdown.finite(high)):
    return markdown.MISSING
  return f'{100 * low:.0f}% – {100 * high:.0f}%'


def _time_to_target_section(summary: dict) -> str:
  """The Kaplan-Meier table of the time to target and its median, with what they mean."""
  ttt = summary['time_to_target']
  if ttt['median_steps'] is not None:
    epochs = ttt['median_epochs']
    median = (f"{markdown.number(ttt['median_steps'])} steps"
              + (f' ({epochs:.2f} epochs)' if markdown.finite(epochs) else ''))
  else:
    median = f"none ({ttt['median_reason']})"
  epochs = ttt['epochs'] or [None] * len(ttt['steps'])
  rows = [[markdown.number(step), markdown.number(None if epoch is None else round(epoch, 2)),
           str(at_risk), str(reached), str(censored), f'{100 * fraction:.0f}%',
           _fraction_band(band)]
          for step, epoch, at_risk, reached, censored, fraction, band in zip(
              ttt['steps'], epochs, ttt['num_at_risk'], ttt['num_reached'],
              ttt['num_censored'], ttt['fraction_reached'], ttt['fraction_reached_ci95'])]
  table = markdown.markdown_table(['Step', 'Epoch', 'At risk', 'Reached the target here',
                                  'Censored here', 'Fraction reached by this step',
                                  '95% band'], rows)
  return '\n\n'.join([
      f'Median time to target, Kaplan-Meier: **{median}**.',
      table,
      'Time to target as survival data: a run that missed the target is censored at its '
      'last eval (a diverged run at the end of its budget, since it can no longer reach '
      'it): it counts as "not reached by then", not as infinitely slow. The fraction is '
      "the Kaplan-Meier estimate (`scipy.stats.ecdf`) with a pointwise log-log band "
      f'({markdown.MISSING} where the band is undefined, e.g. once every run still at risk has '
      'reached the target). The "median steps to target" of the results table keeps the '
      "paper's and MLPerf's convention (a missed run is infinitely slow); when every "
      'missed run trained to the end of the budget, the two medians differ only in that '
      'this one is always an eval step.',
  ])


def _status(run: dict) -> str:
  """The run's status, marked when the run was resumed from a checkpoint."""
  status = str(run.get('status'))
  if run.get('resumed'):
    lost = run.get('seconds_lost_to_interruptions')
    status += f" (resumed {run.get('num_resumes')}x, {markdown.seconds(lost)} lost)"
  return status


def _per_seed_table(runs: Sequence[dict]) -> str:
  rows = [[str(run.get('seed')), markdown.percent(run.get('final_eval_accuracy')),
           'yes' if run.get('reached_target') else 'no',
           markdown.number(run.get('steps_to_target'), markdown.NOT_REACHED),
           markdown.seconds(run.get('seconds_to_target'), markdown.NOT_REACHED),
           _status(run)] for run in runs]
  return markdown.markdown_table(['Seed', 'Final eval accuracy', 'Reached target',
                                  'Steps to target', 'Seconds to target', 'Status'], rows)


def _mlperf_section(mlperf: dict, summary: dict) -> str:
  """The study as an MLPerf submission: score, RCP verdict, and how to check it."""
  rcp = mlperf['rcp']
  if rcp['rcp_mean_epochs'] is None:
    reference = 'no reference convergence point applies'
  else:
    reference = (f"reference mean {rcp['rcp_mean_epochs']:.2f} epochs, at least "
                 f"{rcp['min_epochs']:.2f} to pass")
  mean = 'none' if rcp['mean_epochs'] is None else f"{rcp['mean_epochs']:.2f}"
  folder = mlperf['results_folder']
  return '\n'.join([
      f"Division: {mlperf['division']}, ruleset {mlperf['ruleset']}; the first "
      f"{mlperf['num_scored_runs']} runs make the score (the olympic mean of their times "
      f"to target): "
      f"{markdown.seconds(summary['mlperf_score_seconds'], 'none (too few reached it)')}.",
      '',
      f"RCP check at batch {rcp['batch_size']}: {'passes' if rcp['passed'] else 'fails'} "
      f"({rcp['source']}; olympic mean epochs to target {mean}; {reference}).",
      '',
      f'The results folder `{folder}` holds their logs in the layout of an MLPerf '
      'submission; check it, from this directory, with:',
      '',
      '```',
      f'python -m mlperf_logging.package_checker {folder} training {mlperf["ruleset"]}',
      f'python -m mlperf_logging.result_summarizer {folder} training {mlperf["ruleset"]}',
      f'python -m mlperf_logging.rcp_checker {folder}/results/*/resnet '
      f'--rcp_usage training --rcp_version {mlperf["ruleset"]}',
      '```',
  ])


def write_study_report(out_dir: str, name: str, summary: dict, runs: list[dict],
                       learning_rate: tuple[list[int], list[float]] | None,
                       wall_seconds: float, config_summary: dict[str, object],
                       mlperf: dict | None = None,
                       unfinished: Sequence[dict] | None = None) -> str:
  """Writes `out_dir/report.md` and its plots for one study.

  Args:
    out_dir: directory of the report (created if missing).
    name: the study's name, e.g. the config's.
    summary: `statistics.summarize(runs)`.
    runs: the runs' result.json dicts, one per seed.
    learning_rate: (steps, learning rates) of the schedule, or None to leave the
      plot out.
    wall_seconds: wall time of the whole study.
    config_summary: the settings to show, e.g. optimizer, batch size, steps.
    mlperf: study.json's 'mlperf' entry (train/mlperf/results.write_submission),
      or None to leave the MLPerf section out.
    unfinished: study.json's 'unfinished' (planned runs without a result), listed
      in a section of their own.

  Returns:
    The path of report.md; final_accuracy.png, eval_curves.png,
    time_to_target.png and (with a schedule) learning_rate.png lie next to it.
  """
  os.makedirs(out_dir, exist_ok=True)
  target = summary.get('target_accuracy')
  plots.final_accuracy(os.path.join(out_dir, 'final_accuracy.png'), name, runs, target)
  plots.eval_curves(os.path.join(out_dir, 'eval_curves.png'), name, runs, target)
  plots.time_to_target(os.path.join(out_dir, 'time_to_target.png'),
                       f'{name}: fraction of runs that reached the target',
                       [(name, summary['time_to_target'])])
  images = ['![Final eval accuracy of each seed, box plot](final_accuracy.png)',
            '![Eval accuracy against training step, one line per seed](eval_curves.png)']
  if learning_rate is not None:
    plots.learning_rate(os.path.join(out_dir, 'learning_rate.png'), name, *learning_rate)
    images.append('![Learning-rate schedule](learning_rate.png)')
  config_table = markdown.markdown_table(
      ['Setting', 'Value'],
      [[key, markdown.config_value(value)] for key, value in config_summary.items()])
  text = '\n\n'.join([
      f'# Study: {name}',
      f"{summary['num_runs']} runs of one configuration, one seed each; target eval accuracy "
      f'{markdown.percent(target)}.',
      *sections.unfinished_section(unfinished),
      '## Configuration', config_table,
      '## Results', results_tables(summary),
      '## Time to target', _time_to_target_section(summary),
      '![Fraction of runs that reached the target against step, Kaplan-Meier, with its '
      '95% band](time_to_target.png)',
      '## Time', sections.time_table(wall_seconds, runs),
      *([] if mlperf is None else ['## MLPerf', _mlperf_section(mlperf, summary)]),
      '## Plots', *images,
      '## Per seed', _per_seed_table(runs),
  ])
  return files.write_text(os.path.join(out_dir, 'report.md'), text)


