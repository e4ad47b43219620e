"""The report of a performance profile: several optimizers across several workloads.

`write_profile_report` writes, into its directory, profile.json (every time,
ratio, rho on AlgoPerf's grid of tau and both scores), performance_profile.png
(each optimizer's rho(tau) from 1 to 4) and report.md: the scores, ranked, the
time to target of each optimizer on each workload with its ratio to the
fastest, and the studies they come from. The definitions are in
train/experiments/profiles.py; docs/outputs.md ("Performance profiles") says
the same for a reader.
"""

import os
from typing import Any

import numpy as np

from train.common import files
from train.experiments import profile_studies
from train.experiments import profiles
from train.experiments.reports import markdown
from train.experiments.reports import optimizer_plots

PROFILE_JSON = 'profile.json'
PROFILE_PNG = 'performance_profile.png'
REPORT = 'report.md'
# What profile.json says a cell counted as.
FASTEST, WITHIN, OVER_CUTOFF, MISSED = 'fastest', 'within', 'over_cutoff', 'missed'


def _finite_or_none(value: float) -> float | None:
  return float(value) if np.isfinite(value) else None


def counted_as(profile: profiles.Profile, s: int, w: int) -> str:
  """How optimizer s's time on workload w enters the profile."""
  if not np.isfinite(profile.times[s, w]):
    return MISSED
  if not np.isfinite(profile.ratios[s, w]):
    return OVER_CUTOFF
  return FASTEST if profile.ratios[s, w] == 1.0 else WITHIN


def profile_json(studies: profile_studies.ProfileStudies,
                 profile: profiles.Profile) -> dict[str, Any]:
  """profile.json's content: plain JSON, null for anything infinite."""
  cells = {}
  for s, optimizer in enumerate(profile.optimizers):
    cells[optimizer] = {}
    for w, workload in enumerate(profile.workloads):
      cell = studies.cell(workload, optimizer)
      cells[optimizer][workload] = {
          'directory': cell.directory, 'median_time_to_target': cell.median_time,
          'num_runs': cell.num_runs, 'num_reached_target': cell.num_reached,
          'ratio': _finite_or_none(profile.ratios[s, w]),
          'counted_as': counted_as(profile, s, w)}
  return {
      'time_unit': studies.unit, 'r_max': profiles.R_MAX,
      'workloads': list(profile.workloads), 'optimizers': list(profile.optimizers),
      'target_accuracy': {w: studies.target(w) for w in profile.workloads},
      'score': dict(zip(profile.optimizers, profile.scores.tolist())),
      'exact_score': dict(zip(profile.optimizers, profile.exact_scores.tolist())),
      'everyone_missed': profile.everyone_missed(),
      'studies': cells,
      'tau': profile.taus.tolist(),
      'rho': {o: row.tolist() for o, row in zip(profile.optimizers, profile.rho)},
  }


def ranked(profile: profiles.Profile) -> list[int]:
  """Optimizer indices, best AlgoPerf score first (ties in the order given)."""
  return sorted(range(len(profile.optimizers)), key=lambda s: -profile.scores[s])


def _score_rows(profile: profiles.Profile) -> list[list[str]]:
  rows = []
  for rank, s in enumerate(ranked(profile), start=1):
    counted = [counted_as(profile, s, w) for w in range(len(profile.workloads))]
    rows.append([str(rank), profile.optimizers[s], f'{profile.scores[s]:.4f}',
                 f'{profile.exact_scores[s]:.4f}', str(counted.count(FASTEST)),
                 str(counted.count(FASTEST) + counted.count(WITHIN)),
                 str(counted.count(OVER_CUTOFF)), str(counted.count(MISSED))])
  return rows


SCORE_HEADER = ['Rank', 'Optimizer', 'AlgoPerf score', 'Exact integral', 'Fastest on',
                'Within 4× on', 'Over 4× on', 'Missed on']


def score_table(profile: profiles.Profile) -> str:
  """The ranked scores as fixed-width text, for the console."""
  return markdown.text_table(SCORE_HEADER, _score_rows(profile))


def _time_cell(profile: profiles.Profile, s: int, w: int, unit: str) -> str:
  how = counted_as(profile, s, w)
  if how == MISSED:
    return markdown.NOT_REACHED
  time = f'{markdown.number(profile.times[s, w])} {unit}'
  if how == OVER_CUTOFF:
    ratio = profile.times[s, w] / profile.times[:, w].min()
    return f'{time} (×{ratio:.2f}: over 4×, counted as missed)'
  return f'**{time}** (×1)' if how == FASTEST else f'{time} (×{profile.ratios[s, w]:.2f})'


def _times_table(studies: profile_studies.ProfileStudies, profile: profiles.Profile) -> str:
  rows = [[workload, markdown.percent(studies.target(workload)),
           *[_time_cell(profile, s, w, studies.unit) for s in range(len(profile.optimizers))]]
          for w, workload in enumerate(profile.workloads)]
  return markdown.markdown_table(['Workload', 'Target', *profile.optimizers], rows)


def _study_link(out_dir: str, directory: str) -> str:
  report = os.path.join(directory, REPORT)
  shown = os.path.relpath(directory, out_dir)
  return markdown.link(shown, os.path.relpath(report, out_dir)) if os.path.isfile(report) \
      else shown


def _studies_table(out_dir: str, studies: profile_studies.ProfileStudies) -> str:
  rows = [[w, s, markdown.reached({'num_reached_target': c.num_reached,
                                   'num_runs': c.num_runs}),
           markdown.number(c.median_time, markdown.NOT_REACHED),
           markdown.number_range(c.time_quartiles), _study_link(out_dir, c.directory)]
          for (w, s), c in studies.cells.items()]
  return markdown.markdown_table(
      ['Workload', 'Optimizer', 'Reached target / runs', f'Median {studies.unit} to target',
       'Quartiles', 'Study'], rows)


def _definitions(unit: str) -> str:
  return (
      f"Each optimizer's time on a workload is its study's median {unit} to target over "
      'its seeds; fewer than half the runs reaching the target makes it a miss. The ratio '
      'is that time over the fastest optimizer\'s on the workload (1 for the fastest, and '
      'for any tied with it). A miss, or a time more than 4 times the fastest (AlgoPerf\'s '
      'cut-off; exactly 4 is kept), counts as infinite. rho(tau) is the fraction of all '
      'workloads on which the ratio is at most tau; a workload no optimizer reached '
      'counts for every optimizer as a miss. **AlgoPerf score**: rho integrated from 1 to '
      '4 and divided by 3, as AlgoPerf\'s scoring code computes it, by the trapezoidal '
      'rule on 100 evenly spaced values of tau; 1 is the fastest on every workload. '
      '**Exact integral**: the same integral of the step function rho, as AlgoPerf\'s '
      'documentation writes it; the two scores differ by at most 1/198.')


def _missed_note(profile: profiles.Profile) -> list[str]:
  missed = profile.everyone_missed()
  if not missed:
    return []
  return [f'No optimizer reached the target on {", ".join(missed)}: each such workload '
          f'lowers every profile alike, by 1/{len(profile.workloads)}.']


def curves(profile: profiles.Profile) -> list[tuple[str, np.ndarray, np.ndarray]]:
  """(legend label, tau, rho) of each optimizer's step profile, for the plot."""
  return [(f'{name}: {score:.3f}', *profiles.step_profile(row))
          for name, score, row in zip(profile.optimizers, profile.scores, profile.ratios)]


def write_profile_report(out_dir: str, studies: profile_studies.ProfileStudies,
                         profile: profiles.Profile) -> str:
  """Writes profile.json, performance_profile.png and report.md into `out_dir`.

  Args:
    out_dir: the directory (created if missing).
    studies: the studies read for the profile, one per optimizer and workload.
    profile: `profiles.performance_profile` of their times.

  Returns:
    The path of report.md.
  """
  os.makedirs(out_dir, exist_ok=True)
  files.write_json(os.path.join(out_dir, PROFILE_JSON), profile_json(studies, profile))
  title = (f'Performance profiles: {len(profile.optimizers)} optimizers, '
           f'{len(profile.workloads)} workloads ({studies.unit} to target)')
  optimizer_plots.performance_profile(os.path.join(out_dir, PROFILE_PNG), curves(profile),
                            profiles.R_MAX, title)
  best = ranked(profile)[0]
  text = '\n\n'.join([
      f'# Performance profile of {len(profile.optimizers)} optimizers on '
      f'{len(profile.workloads)} workloads',
      f'Best AlgoPerf score: **{profile.optimizers[best]}, {profile.scores[best]:.4f}** '
      f'(time to target in {studies.unit}).',
      _definitions(studies.unit),
      '## Scores',
      markdown.markdown_table(SCORE_HEADER, _score_rows(profile)),
      *_missed_note(profile),
      '## Times to target',
      f'Median {studies.unit} to target of each optimizer on each workload, with its '
      'ratio to the fastest there (in bold).',
      _times_table(studies, profile),
      '## Plot',
      f'![rho(tau) of each optimizer against tau from 1 to 4]({PROFILE_PNG})',
      '## Studies',
      _studies_table(out_dir, studies),
  ])
  return files.write_text(os.path.join(out_dir, REPORT), text)


def profile_of(studies: profile_studies.ProfileStudies) -> profiles.Profile:
  """The profile of the studies' median times to target."""
  return profiles.performance_profile(studies.optimizers, studies.workloads, studies.times())

