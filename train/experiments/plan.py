"""A study directory's plan: every run it needs, written down before any starts.

A study, a comparison and a search first write DIR/plan.json: their kind and
name, each config (an entry), and every run (entry, seed) with its directory
and its resolved config, in the order workers take them. Workers
(train/experiments/worker.py) read the plan and the runs' own files, nothing
else, so a worker on another host of a cluster needs only the shared
directory; the report (train/experiments/study.py) reads the same.

The order interleaves the entries (seed s of every config before seed s+1), so
a study stopped halfway stays balanced. Paths in the plan are relative to its
directory: hosts that mount the shared filesystem elsewhere read the same plan.
Configs are stored as JSON; `config_dicts.from_values` rebuilds them (JSON
arrays come back as tuples, the only sequences the configs hold).

`DIR/study_spec.json` records what the directory holds, without the seed count
(which may grow between invocations), so that a directory holding another
study is refused, never overwritten.
"""

import dataclasses
import json
import os
import time
from typing import Any, Sequence

import ml_collections

from train.common import config_dicts
from train.common import console
from train.common import files

PLAN_FILE = 'plan.json'
SPEC_FILE = 'study_spec.json'
STUDY, COMPARISON, SEARCH = 'study', 'comparison', 'search'
# A run's files that say it is over: its result, or the error that ended it.
RESULT_FILE = 'result.json'
FAILURE_FILE = 'failure.json'


class StudyDirError(ValueError):
  """The study directory holds something else; the message says what."""


@dataclasses.dataclass(frozen=True)
class Entry:
  """One config of a study and the directory its seeds go to."""
  name: str
  config: ml_collections.ConfigDict
  directory: str


@dataclasses.dataclass(frozen=True)
class PlannedRun:
  """One seed of one entry: where it runs and with which config."""
  entry: str
  seed: int
  run_dir: str
  config: dict[str, Any]  # The resolved config's values, as config.json holds them.

  @property
  def label(self) -> str:
    return f'{self.entry} seed {self.seed}'

  @property
  def claim_dir(self) -> str:
    """Where workers claim the run: next to the run's directory, never in it, so
    that an interrupted run's files can be moved aside under the claim."""
    parent, leaf = os.path.split(self.run_dir)
    return os.path.join(parent, 'claims', leaf)

  @property
  def result_path(self) -> str:
    return os.path.join(self.run_dir, RESULT_FILE)

  @property
  def failure_path(self) -> str:
    return os.path.join(self.run_dir, FAILURE_FILE)

  def config_dict(self) -> ml_collections.ConfigDict:
    return config_dicts.from_values(self.config)


@dataclasses.dataclass(frozen=True)
class Plan:
  """What a study directory holds to do (DIR/plan.json)."""
  kind: str
  name: str
  directory: str
  entries: tuple[Entry, ...]
  runs: tuple[PlannedRun, ...]
  num_seeds: int
  created: float  # When the directory's first plan was written (time.time()).
  overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
  search: dict[str, Any] | None = None  # A search's axes and each trial's params.

  def runs_of(self, entry: str) -> list[PlannedRun]:
    return [run for run in self.runs if run.entry == entry]


def config_values(config: ml_collections.ConfigDict) -> dict[str, Any]:
  return json.loads(config.to_json())


def read_json(path: str, remedy: str) -> Any:
  """The JSON file at `path`; StudyDirError, with `remedy`, when it cannot be read."""
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise StudyDirError(f'{path} cannot be read ({type(e).__name__}: '
                        f'{" ".join(str(e).split())}); {remedy}') from None


def check_study_dir(directory: str, spec: dict) -> None:
  """Refuses a directory that holds a single run or a study of something else.

  `spec` says what the study is: its kind and each config (the seed counts and
  trial counts may grow between invocations, so they are not part of it).
  """
  if os.path.exists(os.path.join(directory, RESULT_FILE)):
    raise StudyDirError(f'--workdir={directory} holds a single run (result.json), '
                        'not a study; choose a new --workdir')
  path = os.path.join(directory, SPEC_FILE)
  if os.path.exists(path):
    existing = read_json(path, 'it records what the study holds: restore it, or '
                         'choose a new --workdir')
    if existing != spec:
      # The spec is {'kind': ..., 'configs': {name: config}}: name what differs.
      raise StudyDirError(
          f'--workdir={directory} holds another study ({path}): '
          f'{config_dicts.differences(existing, spec)}; choose a new --workdir or re-run '
          'its own command')
  elif os.path.isdir(directory) and set(os.listdir(directory)) - {console.LOG_FILE}:
    raise StudyDirError(f'--workdir={directory} is not empty and holds no study; '
                        'choose a new --workdir')


def write_spec(directory: str, spec: dict) -> None:
  """DIR/study_spec.json: what the directory holds (see `check_study_dir`)."""
  os.makedirs(directory, exist_ok=True)
  files.write_json(os.path.join(directory, SPEC_FILE), spec)


def make_plan(kind: str, name: str, directory: str, entries: Sequence[Entry],
              num_seeds: int, overrides: dict[str, Any] | None = None,
              search: dict[str, Any] | None = None) -> Plan:
  """Seeds config.seed .. config.seed + num_seeds - 1 of every entry, interleaved."""
  runs = []
  for offset in range(num_seeds):
    for entry in entries:
      config = entry.config.copy_and_resolve_references()
      config.seed = entry.config.seed + offset
      runs.append(PlannedRun(entry.name, config.seed,
                             os.path.join(entry.directory, f'seed_{config.seed}'),
                             config_values(config)))
  return Plan(kind, name, directory, tuple(entries), tuple(runs), num_seeds, time.time(),
              dict(overrides or {}), search)


def write_plan(plan: Plan, spec: dict) -> Plan:
  """Checks the directory, then writes study_spec.json and plan.json; returns the
  plan as written (an earlier plan's creation time is kept)."""
  check_study_dir(plan.directory, spec)
  path = os.path.join(plan.directory, PLAN_FILE)
  if os.path.exists(path):
    plan = dataclasses.replace(plan, created=read_plan(plan.directory).created)
  write_spec(plan.directory, spec)
  files.write_json(path, _to_json(plan))
  for entry in plan.entries:
    os.makedirs(entry.directory, exist_ok=True)
    files.write_json(os.path.join(entry.directory, 'config.json'),
                     config_values(entry.config))
  return plan


def _relative(plan: Plan, path: str) -> str:
  return os.path.relpath(path, plan.directory)


def _to_json(plan: Plan) -> dict[str, Any]:
  return {
      'kind': plan.kind,
      'name': plan.name,
      'num_seeds': plan.num_seeds,
      'created': plan.created,
      'overrides': plan.overrides,
      'search': plan.search,
      'entries': [{'name': e.name, 'directory': _relative(plan, e.directory),
                   'config': config_values(e.config)} for e in plan.entries],
      'runs': [{'entry': r.entry, 'seed': r.seed, 'run_dir': _relative(plan, r.run_dir),
                'config': r.config} for r in plan.runs],
  }


def read_plan(directory: str) -> Plan:
  """DIR/plan.json; StudyDirError naming the fix when it is missing or damaged."""
  path = os.path.join(directory, PLAN_FILE)
  if not os.path.exists(path):
    raise StudyDirError(f'--workdir={directory} holds no study plan ({PLAN_FILE}); give '
                        'the directory of a study, comparison or search that was started '
                        'with python main.py')
  values = read_json(path, 'it is written when a study starts: re-run the command that '
                     'started the study')
  try:
    return _from_json(directory, values)
  except (KeyError, TypeError, ValueError) as e:
    raise StudyDirError(f'{path} is not a study plan ({type(e).__name__}: {e}); re-run '
                        'the command that started the study') from None


def _from_json(directory: str, values: dict[str, Any]) -> Plan:
  def path(relative: str) -> str:
    return os.path.normpath(os.path.join(directory, relative))

  entries = tuple(Entry(e['name'], config_dicts.from_values(e['config']), path(e['directory']))
                  for e in values['entries'])
  runs = tuple(PlannedRun(r['entry'], int(r['seed']), path(r['run_dir']), r['config'])
               for r in values['runs'])
  return Plan(values['kind'], values['name'], directory, entries, runs,
              int(values['num_seeds']), float(values['created']),
              values.get('overrides') or {}, values.get('search'))


def clear_failures(plan: Plan) -> list[str]:
  """Moves each failed run's failure.json aside (failure.json.<n>), so that
  workers try the run again; returns the runs' labels."""
  cleared = []
  for run in plan.runs:
    if os.path.exists(run.failure_path):
      n = 1
      while os.path.exists(f'{run.failure_path}.{n}'):
        n += 1
      os.replace(run.failure_path, f'{run.failure_path}.{n}')
      cleared.append(run.label)
  return cleared
