"""The finished studies a performance profile reads: `main.py profile --studies=...`.

Each entry of --studies names where one workload's times come from:

  WORKLOAD:OPTIMIZER=DIR   DIR is one finished study: a study's directory
                           (`main.py --num_seeds=N`), a config's folder in a
                           comparison (DIR/<config>), or a search's trial
                           (DIR/trial_<k>);
  WORKLOAD=DIR             DIR is a finished comparison: each of its configs is
                           an optimizer, named as the comparison names it.

A workload is whatever the researcher compares the optimizers across: a
workload variant, a batch size, a data set. Every optimizer needs a study on
every workload, and a workload's studies must share one target accuracy. The
time of each (workload, optimizer) is its study.json's median time to target
(`median_steps_to_target`, `median_epochs_to_target` or
`median_seconds_to_target`: train/experiments/statistics.py), None (a miss)
when fewer than half its runs reached the target.

Only finished studies count: a study.json that still lists runs without a
result (`unfinished`) is refused, as is anything that is not a study. Every
problem is a `ProfileInputError`, one line that names it and what to do.
"""

import dataclasses
import json
import os
from collections.abc import Sequence
from typing import Any

from train.common import errors

TIME_UNITS = ('steps', 'epochs', 'seconds')
STUDY_FILE = 'study.json'
COMPARISON_FILE = 'comparison.json'
_SEARCH_FILE = 'search.json'
_PLAN_FILE = 'plan.json'
_FORMS = ('WORKLOAD:OPTIMIZER=DIR (one finished study) or WORKLOAD=DIR (a finished '
          'comparison, each of its configs an optimizer)')


class ProfileInputError(errors.BadInput, ValueError):
  """--studies names something a profile cannot use; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Entry:
  """One entry of --studies: a study (optimizer given) or a comparison (None)."""
  workload: str
  optimizer: str | None
  directory: str


@dataclasses.dataclass(frozen=True)
class Cell:
  """One optimizer's finished study on one workload."""
  workload: str
  optimizer: str
  directory: str
  median_time: float | None  # None: fewer than half the runs reached the target.
  time_quartiles: tuple[float | None, float | None]
  target_accuracy: float | None
  num_runs: int
  num_reached: int


@dataclasses.dataclass(frozen=True)
class ProfileStudies:
  """Every optimizer's study on every workload, checked; `unit` says which time."""
  unit: str
  workloads: tuple[str, ...]
  optimizers: tuple[str, ...]
  cells: dict[tuple[str, str], Cell]  # (workload, optimizer) -> its study.

  def cell(self, workload: str, optimizer: str) -> Cell:
    return self.cells[(workload, optimizer)]

  def times(self) -> list[list[float | None]]:
    """[optimizer][workload] median times to target, None for a miss."""
    return [[self.cell(w, s).median_time for w in self.workloads] for s in self.optimizers]

  def target(self, workload: str) -> float | None:
    return self.cell(workload, self.optimizers[0]).target_accuracy


def parse_entry(text: str) -> Entry:
  """WORKLOAD:OPTIMIZER=DIR or WORKLOAD=DIR, as given (DIR made absolute)."""
  names, equals, directory = text.partition('=')
  workload, colon, optimizer = names.partition(':')
  if not equals:
    raise ProfileInputError(f'--studies entry {text!r} is not {_FORMS}')
  if not workload.strip() or not directory.strip() or (colon and not optimizer.strip()):
    raise ProfileInputError(f'--studies entry {text!r} has an empty workload, optimizer or '
                            f'directory; give {_FORMS}')
  return Entry(workload.strip(), optimizer.strip() if colon else None,
               os.path.abspath(directory.strip()))


def _label(entry: Entry) -> str:
  return entry.workload if entry.optimizer is None else f'{entry.workload}:{entry.optimizer}'


def _read_object(path: str, remedy: str) -> dict[str, Any]:
  try:
    with open(path) as f:
      values = json.load(f)
  except (OSError, ValueError) as e:
    raise ProfileInputError(f'{path} cannot be read ({type(e).__name__}: '
                            f'{errors.one_line(e)}); {remedy}') from None
  if not isinstance(values, dict):
    raise ProfileInputError(f'{path} holds a JSON {type(values).__name__}, not an object; '
                            f'{remedy}')
  return values


def _study_root(directory: str) -> str:
  """The directory `main.py report` takes: the study's, or its comparison's or search's."""
  parent = os.path.dirname(directory)
  if (not os.path.isfile(os.path.join(directory, _PLAN_FILE))
      and os.path.isfile(os.path.join(parent, _PLAN_FILE))):
    return parent
  return directory


def _check_directory(entry: Entry) -> None:
  """DIR exists, is a directory, and holds what its form of entry needs."""
  label, directory = _label(entry), entry.directory
  if not os.path.exists(directory):
    raise ProfileInputError(f'--studies {label}: {directory} does not exist; give the '
                            'directory of a finished study or comparison')
  if not os.path.isdir(directory):
    raise ProfileInputError(f'--studies {label}: {directory} is a file, not a directory; '
                            'give the directory of a finished study or comparison')
  def has(name: str) -> bool:
    return os.path.isfile(os.path.join(directory, name))
  if entry.optimizer is None:
    if has(COMPARISON_FILE):
      return
    if has(STUDY_FILE):
      raise ProfileInputError(f'--studies {label}={directory}: {directory} is one study, '
                              f'not a comparison; give it as {entry.workload}:OPTIMIZER='
                              f'{directory}')
  elif has(STUDY_FILE):
    return
  elif has(COMPARISON_FILE):
    raise ProfileInputError(f'--studies {label}={directory}: {directory} is a comparison, '
                            f'not one study; give it as {entry.workload}={directory} (each '
                            f'of its configs an optimizer), or give one config\'s folder, '
                            f'{directory}/<config>')
  if has(_SEARCH_FILE):
    raise ProfileInputError(f'--studies {label}: {directory} is a search; give one of its '
                            f'trials as {entry.workload}:OPTIMIZER={directory}/trial_<k>')
  if has(_PLAN_FILE) or os.path.isfile(os.path.join(os.path.dirname(directory), _PLAN_FILE)):
    root = _study_root(directory)
    raise ProfileInputError(f'--studies {label}: {directory} holds no {STUDY_FILE} yet; once '
                            f'its runs finish, python main.py report --workdir={root} writes it')
  raise ProfileInputError(f'--studies {label}: {directory} holds no {STUDY_FILE} or '
                          f'{COMPARISON_FILE}; give {_FORMS}')


def _unfinished_counts(unfinished: Sequence[dict]) -> str:
  states = [str(u.get('state')) if isinstance(u, dict) else '?' for u in unfinished]
  return ', '.join(f'{states.count(s)} {s}' for s in dict.fromkeys(states))


def _positive(values: dict, key: str, where: str, remedy: str) -> float | None:
  """values[key]: a number > 0, or None (null in the file)."""
  value = values.get(key)
  if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                            or not value > 0):
    raise ProfileInputError(f'{where}: {key}={value!r} is not a number > 0; {remedy}')
  return value


def read_cell(workload: str, optimizer: str, directory: str, unit: str) -> Cell:
  """One finished study's time to target, from DIR/study.json."""
  path = os.path.join(directory, STUDY_FILE)
  root = _study_root(directory)
  remedy = f'write it again with python main.py report --workdir={root}'
  study = _read_object(path, remedy)
  unfinished = study.get('unfinished') or []
  label = f'{workload}:{optimizer}'
  if unfinished:
    raise ProfileInputError(
        f'--studies {label}: {directory} is not a finished study: {len(unfinished)} of its '
        f'planned runs {"has" if len(unfinished) == 1 else "have"} no result '
        f'({_unfinished_counts(unfinished)}); let them finish '
        f'(python main.py worker --workdir={root}), then python main.py report '
        f'--workdir={root}')
  num_runs = study.get('num_runs')
  if not isinstance(num_runs, int) or num_runs < 1:
    raise ProfileInputError(f'--studies {label}: {path} counts no finished run (num_runs='
                            f'{num_runs!r}); {remedy} once a run has finished')
  key = f'median_{unit}_to_target'
  if key not in study:
    raise ProfileInputError(f'{path} has no {key}; {remedy}')
  quartiles = study.get(f'{unit}_to_target_quartiles')
  if not (isinstance(quartiles, list) and len(quartiles) == 2):
    quartiles = [None, None]
  return Cell(workload, optimizer, directory, _positive(study, key, path, remedy),
              (quartiles[0], quartiles[1]), _positive(study, 'target_accuracy', path, remedy),
              num_runs, int(study.get('num_reached_target') or 0))


def _comparison_names(entry: Entry) -> list[str]:
  """The config names of a comparison, each a folder of its own in it."""
  path = os.path.join(entry.directory, COMPARISON_FILE)
  remedy = f'write it again with python main.py report --workdir={entry.directory}'
  names = _read_object(path, remedy).get('names')
  if not isinstance(names, list) or not all(
      isinstance(n, str) and n and n not in ('.', '..') and os.sep not in n for n in names):
    raise ProfileInputError(f'{path}: names={names!r} is not a list of config folder names; '
                            f'{remedy}')
  for name in names:
    if not os.path.isdir(os.path.join(entry.directory, name)):
      raise ProfileInputError(f'--studies {entry.workload}={entry.directory}: the comparison '
                              f'has no folder {name}; {remedy}')
  return names


def _cells_of(entry: Entry, unit: str) -> list[Cell]:
  _check_directory(entry)
  if entry.optimizer is not None:
    return [read_cell(entry.workload, entry.optimizer, entry.directory, unit)]
  return [read_cell(entry.workload, name, os.path.join(entry.directory, name), unit)
          for name in _comparison_names(entry)]


def _check_duplicates(cells: Sequence[Cell]) -> None:
  by_name: dict[tuple[str, str], Cell] = {}
  by_dir: dict[str, Cell] = {}
  for cell in cells:
    name = (cell.workload, cell.optimizer)
    if name in by_name:
      raise ProfileInputError(
          f'--studies gives {cell.workload}:{cell.optimizer} twice ({by_name[name].directory} '
          f'and {cell.directory}); give each optimizer once on each workload')
    real = os.path.realpath(cell.directory)
    if real in by_dir:
      first = by_dir[real]
      raise ProfileInputError(
          f'--studies gives {cell.directory} twice (as {first.workload}:{first.optimizer} and '
          f'{cell.workload}:{cell.optimizer}); each study is one optimizer on one workload')
    by_name[name], by_dir[real] = cell, cell


def _check_complete(workloads: Sequence[str], optimizers: Sequence[str],
                    cells: dict[tuple[str, str], Cell]) -> None:
  """At least 2 of each, every optimizer on every workload, one target per workload."""
  if len(workloads) < 2:
    raise ProfileInputError(
        f'--studies names {len(workloads)} workload ({", ".join(workloads)}); a performance '
        'profile needs at least 2 workloads (variants, batch sizes or data sets)')
  if len(optimizers) < 2:
    raise ProfileInputError(
        f'--studies names {len(optimizers)} optimizer ({", ".join(optimizers)}); a '
        'performance profile needs at least 2 optimizers (configs)')
  for optimizer in optimizers:
    for workload in workloads:
      if (workload, optimizer) not in cells:
        raise ProfileInputError(
            f'optimizer {optimizer} has no study on workload {workload}; give '
            f'{workload}:{optimizer}=DIR, or leave {optimizer} out of every workload')
  for workload in workloads:
    targets = {s: cells[(workload, s)].target_accuracy for s in optimizers}
    if len(set(targets.values())) > 1:
      listed = ', '.join(f'{s} {_percent(t)}' for s, t in targets.items())
      raise ProfileInputError(
          f'workload {workload}: its studies have different target accuracies ({listed}); '
          'times to target compare only at one target')


def _percent(value: float | None) -> str:
  return 'none' if value is None else f'{100 * value:.2f}%'


def read_studies(entries: Sequence[str], unit: str = 'steps') -> ProfileStudies:
  """Every --studies entry read and checked; workloads and optimizers in the
  order they are first named.

  Raises:
    ProfileInputError: for anything a profile cannot use (see the module's docstring).
  """
  if unit not in TIME_UNITS:
    raise ProfileInputError(f'the time to target is in one of {", ".join(TIME_UNITS)}, '
                            f'not {unit!r}')
  if not entries:
    raise ProfileInputError(f'--studies names no study; give {_FORMS}, separated by commas')
  cells = [cell for text in entries for cell in _cells_of(parse_entry(text), unit)]
  _check_duplicates(cells)
  workloads = tuple(dict.fromkeys(c.workload for c in cells))
  optimizers = tuple(dict.fromkeys(c.optimizer for c in cells))
  by_name = {(c.workload, c.optimizer): c for c in cells}
  _check_complete(workloads, optimizers, by_name)
  return ProfileStudies(unit, workloads, optimizers, by_name)
