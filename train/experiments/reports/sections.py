"""Sections that more than one kind of report shows: the runs not finished and
the time a study took."""

from collections.abc import Sequence

from train.experiments.reports import markdown

# A configuration's name, its `statistics.summarize` summary and its runs'
# result.json dicts: what a comparison report shows of each config.
Study = tuple[str, dict, list[dict]]


def _sum_run_seconds(runs: Sequence[dict]) -> float:
  return float(sum(run['run_seconds'] for run in runs
                   if markdown.finite(run.get('run_seconds'))))


def time_table(wall_seconds: float, runs: Sequence[dict], what: str = 'Study') -> str:
  """The wall time beside the sum of the runs' own times."""
  return markdown.markdown_table([f'{what} wall time', "Sum of the runs' run_seconds"],
                                 [[markdown.seconds(wall_seconds),
                                   markdown.seconds(_sum_run_seconds(runs))]])


def unfinished_section(unfinished: Sequence[dict] | None) -> list[str]:
  """'## Runs not finished': each run without a result, its state and why; nothing
  when every planned run has finished."""
  if not unfinished:
    return []
  counts = ', '.join(f'{sum(u["state"] == state for u in unfinished)} {state}'
                     for state in ('running', 'pending', 'failed')
                     if any(u['state'] == state for u in unfinished))
  rows = [[u['run'], u['state'], u.get('detail') or ''] for u in unfinished]
  return ['## Runs not finished',
          f'{len(unfinished)} planned runs have no result yet ({counts}); the figures '
          'above count the finished runs only. `python main.py report --workdir=DIR` '
          'writes this report again.',
          markdown.markdown_table(['Run', 'State', 'Holder, or last error'], rows)]
