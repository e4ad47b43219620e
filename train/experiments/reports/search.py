"""The report of a hyperparameter search: its trials, each a study, ranked.

report.md ranks the trials by median final accuracy, names the best, and links
each trial's own report; search_axes.png plots the median final accuracy of every
trial against each searched axis.
"""

import os
from collections.abc import Sequence

from train.common import files
from train.experiments.reports import markdown
from train.experiments.reports import plots
from train.experiments.reports import sections


def _rank(trials: Sequence[dict]) -> list[dict]:
  """Best median final accuracy first; trials without one last, by trial number."""
  def key(trial: dict) -> tuple[bool, float, int]:
    median = trial['summary'].get('median_final_accuracy')
    known = markdown.finite(median)
    return (not known, -median if known else 0.0, trial['trial'])
  return sorted(trials, key=key)


def _trial_cell(out_dir: str, trial: int) -> str:
  """The trial's number, linked to its study's report.md once the study wrote one."""
  if os.path.isfile(os.path.join(out_dir, f'trial_{trial}', 'report.md')):
    return markdown.link(str(trial), f'trial_{trial}/report.md')
  return str(trial)


def _search_table(out_dir: str, axes: Sequence[str], ranked: Sequence[dict]) -> str:
  """The ranked trials with their params; trials linked to trial_<k>/report.md."""
  rows = [[str(rank), _trial_cell(out_dir, t['trial']),
           *[markdown.config_value(t['params'].get(a)) for a in axes],
           markdown.percent(t['summary'].get('median_final_accuracy')),
           markdown.percent_range(t['summary'].get('final_accuracy_quartiles', (None, None))),
           markdown.reached(t['summary']),
           markdown.number(t['summary'].get('median_steps_to_target'))]
          for rank, t in enumerate(ranked, start=1)]
  return markdown.markdown_table(['Rank', 'Trial', *axes, 'Median final accuracy',
                                  'Quartiles', 'Reached target / runs',
                                  'Median steps to target'], rows)


def write_search_report(out_dir: str, search_space_axes: list[str], trials: list[dict],
                        wall_seconds: float, unfinished: Sequence[dict] | None = None) -> str:
  """Writes `out_dir/report.md` with search_axes.png for a hyperparameter search.

  Args:
    out_dir: directory of the report (created if missing).
    search_space_axes: the searched parameters, keys of each trial's 'params'.
    trials: {'trial': int, 'params': {axis: value}, 'summary': summary dict}.
    wall_seconds: wall time of the whole search.
    unfinished: planned runs without a result, listed in a section of their own.

  Returns:
    The path of report.md, which ranks the trials by median final accuracy.
  """
  os.makedirs(out_dir, exist_ok=True)
  ranked = _rank(trials)
  plots.search_axes(os.path.join(out_dir, 'search_axes.png'), search_space_axes, ranked)
  table = _search_table(out_dir, search_space_axes, ranked)
  best = ''
  if ranked and markdown.finite(ranked[0]['summary'].get('median_final_accuracy')):
    top = ranked[0]
    params = ', '.join(f'{a} = {markdown.config_value(top["params"].get(a))}'
                       for a in search_space_axes)
    best = (f"Best: trial {top['trial']}, median final accuracy "
            f"{markdown.percent(top['summary']['median_final_accuracy'])} ({params}).")
  text = '\n\n'.join(filter(None, [
      f'# Search over {len(search_space_axes)} axes, {len(trials)} trials',
      f'Wall time {markdown.seconds(wall_seconds)}. {best}',
      *sections.unfinished_section(unfinished),
      '## Trials, best first', table,
      '## Plots',
      '![Median final accuracy against each search axis](search_axes.png)',
  ]))
  return files.write_text(os.path.join(out_dir, 'report.md'), text)
