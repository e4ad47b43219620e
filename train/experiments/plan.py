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
study is refused, never overwritten. A rerun with fewer seeds (or a search
with fewer trials) keeps the seeds and trials planned before: the plan grows,
never shrinks, so no finished run drops out of the report or the MLPerf
results folder.

The study directory is shared, so its files are input that anyone with write
access may have changed. Every path the plan names is checked before anything
acts on it (`check_paths`): an entry's directory is DIR itself (a study) or
DIR/<entry name>, a run's is <entry dir>/seed_<seed>, each a real directory or
absent, never a symbolic link or a file; so no plan can lead a worker or a
report outside DIR, onto another run's folder or onto the harness's own files.
Each config must have exactly the keys of configs/default.py.
"""

import dataclasses
import enum
import functools
import json
import os
import stat
import time
from typing import Any, Sequence

import ml_collections
from absl import logging

from train.common import claims
from train.common import config_dicts
from train.common import console
from train.common import errors
from train.common import files
from train.experiments import workloads
from train.mlperf import results as mlperf_results

PLAN_FILE = 'plan.json'
SPEC_FILE = 'study_spec.json'
WORKERS_DIR = 'workers'  # Where each worker logs (train/cli/jobs.start).
# What the harness itself keeps in a study directory: no entry may be named so.
RESERVED_NAMES = frozenset({
    PLAN_FILE, SPEC_FILE, 'claims', 'workers', 'mlperf', 'config.json', 'log.txt',
    'report.md', 'study.json', 'comparison.json', 'search.json', 'result.json',
    'robustness.json'})
_DAMAGED_PLAN_REMEDY = ('plan.json was changed or damaged: restore it, or start the study '
                        'afresh in a new --workdir')
# A run's files that say it is over: its result, or the error that ended it.
RESULT_FILE = 'result.json'
FAILURE_FILE = 'failure.json'
# What DIR/study_spec.json says of a directory that holds several plans, each in
# a folder of its own: a batch-size scaling study (train/experiments/scaling.py).
SCALING_KIND = 'scaling'


class PlanKind(enum.StrEnum):
  """What a study directory holds (plan.json's 'kind'): one config over seeds,
  several configs side by side, a search's trials, or a config on its base
  workload and on workload variants (a robustness comparison: train/experiments/
  robustness.py)."""
  STUDY = 'study'
  COMPARISON = 'comparison'
  SEARCH = 'search'
  ROBUSTNESS = 'robustness'


class StudyDirError(errors.BadInput, ValueError):
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
  kind: PlanKind
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


def read_json(path: str, remedy: str) -> dict[str, Any]:
  """The JSON object at `path`; StudyDirError, with `remedy`, when it cannot be
  read or holds something else (every file of a study holds one object)."""
  try:
    with open(path) as f:
      values = json.load(f)
  except (OSError, ValueError) as e:
    raise StudyDirError(f'{path} cannot be read ({type(e).__name__}: '
                        f'{" ".join(str(e).split())}); {remedy}') from None
  if not isinstance(values, dict):
    raise StudyDirError(f'{path} holds a JSON {type(values).__name__}, not an object; '
                        f'{remedy}')
  return values


def spec_kind(directory: str) -> str | None:
  """The 'kind' DIR/study_spec.json records, or None where it cannot be read."""
  try:
    with open(os.path.join(directory, SPEC_FILE)) as f:
      values = json.load(f)
  except (OSError, ValueError):
    return None
  return values.get('kind') if isinstance(values, dict) else None


def check_study_dir(directory: str, spec: dict) -> None:
  """Refuses a directory that holds a single run or a study of something else.

  `spec` says what the study is: its kind and each config (the seed counts and
  trial counts may grow between invocations, so they are not part of it).
  """
  if os.path.exists(os.path.join(directory, RESULT_FILE)):
    raise StudyDirError(f'--workdir={directory} holds a single run (result.json), '
                        'not a study; choose a new --workdir')
  # Listed before the spec is looked for: a command planning the same study at
  # this moment adds its spec, plan and config.json in that order, so if the
  # spec is still absent below, the listing holds nothing of theirs but what
  # `_planning_leaves` allows.
  names = os.listdir(directory) if os.path.isdir(directory) else []
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
  elif [name for name in names if not _planning_leaves(name)]:
    raise StudyDirError(f'--workdir={directory} is not empty and holds no study; '
                        'choose a new --workdir')


def _planning_leaves(name: str) -> bool:
  """Whether `name`, in a directory without a spec, is what a command planning a
  study there leaves before its spec is whole: the log, or the spec or plan
  that it is writing right now (under atomic_path's temporary name). Two
  commands may start the same study at once; the second must not take the
  first's half-written spec for a stranger's file."""
  if name == console.LOG_FILE:
    return True
  return name != files.written_name(name) and files.written_name(name) in (SPEC_FILE,
                                                                            PLAN_FILE)


def write_spec(directory: str, spec: dict) -> None:
  """DIR/study_spec.json: what the directory holds (see `check_study_dir`)."""
  os.makedirs(directory, exist_ok=True)
  files.write_json(os.path.join(directory, SPEC_FILE), spec)


def make_plan(kind: PlanKind, name: str, directory: str, entries: Sequence[Entry],
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
  plan as written (an earlier plan's creation time is kept, and so are its seeds
  and trials)."""
  check_study_dir(plan.directory, spec)
  path = os.path.join(plan.directory, PLAN_FILE)
  if os.path.exists(path):
    plan = _keep_earlier_runs(read_plan(plan.directory), plan)
  check_paths(plan)
  write_spec(plan.directory, spec)
  files.write_json(path, _to_json(plan))
  for entry in plan.entries:
    os.makedirs(entry.directory, exist_ok=True)
    files.write_json(os.path.join(entry.directory, 'config.json'),
                     config_values(entry.config))
  return plan


def _keep_earlier_runs(earlier: Plan, plan: Plan) -> Plan:
  """`plan` with `earlier`'s creation time, at least its seeds and, for a search,
  at least its trials: a rerun with a smaller --num_seeds or --num_trials must
  not drop finished runs from the report (it says so). A search's trials are the
  first points of one sequence, so the earlier trials extend the new ones."""
  entries, search, num_seeds = plan.entries, plan.search, plan.num_seeds
  if earlier.num_seeds > plan.num_seeds:
    logging.warning('%s already plans %d seeds; --num_seeds=%d keeps them all (a study '
                    'grows, never shrinks: give a new --workdir for fewer seeds)',
                    plan.directory, earlier.num_seeds, plan.num_seeds)
    num_seeds = earlier.num_seeds
  if plan.kind == PlanKind.SEARCH and len(earlier.entries) > len(plan.entries):
    logging.warning('%s already plans %d trials; --num_trials=%d keeps them all (a search '
                    'grows, never shrinks: give a new --workdir for fewer trials)',
                    plan.directory, len(earlier.entries), len(plan.entries))
    entries, search = earlier.entries, earlier.search
  if (entries, num_seeds) != (plan.entries, plan.num_seeds):
    plan = make_plan(plan.kind, plan.name, plan.directory, entries, num_seeds,
                     plan.overrides, search)
  return dataclasses.replace(plan, created=earlier.created)


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
  """DIR/plan.json, checked (`check_paths`, the configs' keys); StudyDirError
  naming the fix when it is missing, damaged or names a path it must not."""
  path = os.path.join(directory, PLAN_FILE)
  if not os.path.exists(path):
    raise StudyDirError(f'--workdir={directory} holds no study plan ({PLAN_FILE}); give '
                        'the directory of a study, comparison or search that was started '
                        'with python main.py')
  # Not "re-run the command": it reads the earlier plan too, and would refuse again.
  values = read_json(path, 'it is written when a study starts: restore it, or start the '
                     'study afresh in a new --workdir')
  try:
    plan = _from_json(directory, values)
  except _PlanFieldError as e:
    raise StudyDirError(f'{path}: {e}; {_DAMAGED_PLAN_REMEDY}') from None
  except (KeyError, TypeError, ValueError, AttributeError) as e:
    raise StudyDirError(f'{path} is not a study plan ({type(e).__name__}: {e}); '
                        f'{_DAMAGED_PLAN_REMEDY}') from None
  check_paths(plan)
  return plan


class _PlanFieldError(ValueError):
  """A field of plan.json holds what it must not; the message names the field."""


def _field(values: dict[str, Any], key: str, kind: type | tuple[type, ...],
           where: str) -> Any:
  """values[key], which must be of `kind` (a bool is no int here)."""
  value = values[key]
  if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
    raise _PlanFieldError(f'{where}{key}={value!r} is not a {_type_name(kind)}')
  return value


def _type_name(kind: type | tuple[type, ...]) -> str:
  kinds = kind if isinstance(kind, tuple) else (kind,)
  return ' or '.join({dict: 'JSON object', list: 'list', str: 'string', int: 'integer',
                      float: 'number'}.get(k, k.__name__) for k in kinds)


def _config(values: Any, where: str) -> ml_collections.ConfigDict:
  """A plan's config, which must have exactly the keys of configs/default.py: a
  key it lost would end the run deep inside, one it no longer has would be
  dropped without a word."""
  if not isinstance(values, dict):
    raise _PlanFieldError(f'{where}={values!r} is not a config (a JSON object)')
  config = config_dicts.from_values(values)
  known = _default_keys()
  given = config_dicts.flatten(config)
  unknown = [k for k in given if k not in known]
  if unknown:
    raise _PlanFieldError(f'{where} sets config key {unknown[0]!r}, which '
                          'configs/default.py no longer defines (the study was planned '
                          'by another version of the harness: finish it with that version)')
  missing = [k for k in known if k not in given]
  if missing:
    raise _PlanFieldError(f'{where} lacks config key {missing[0]!r} of configs/default.py '
                          '(the study was planned by another version of the harness: '
                          'finish it with that version)')
  return config


@functools.cache
def _default_keys() -> tuple[str, ...]:
  """The dotted keys of configs/default.py (a plan holds a config per run)."""
  from configs import default  # pylint: disable=g-import-not-at-top
  return tuple(config_dicts.flatten(default.get_config()))


def _from_json(directory: str, values: dict[str, Any]) -> Plan:
  def path(relative: str) -> str:
    return os.path.normpath(os.path.join(directory, relative))

  kind = _plan_kind(_field(values, 'kind', str, ''))
  entries = []
  for i, e in enumerate(_field(values, 'entries', list, '')):
    where = f'entries[{i}].'
    if not isinstance(e, dict):
      raise _PlanFieldError(f'entries[{i}]={e!r} is not a JSON object')
    entries.append(Entry(_field(e, 'name', str, where),
                         _config(e['config'], f'{where}config'),
                         path(_field(e, 'directory', str, where))))
  runs = []
  for i, r in enumerate(_field(values, 'runs', list, '')):
    where = f'runs[{i}].'
    if not isinstance(r, dict):
      raise _PlanFieldError(f'runs[{i}]={r!r} is not a JSON object')
    _config(r['config'], f'{where}config')
    runs.append(PlannedRun(_field(r, 'entry', str, where), _field(r, 'seed', int, where),
                           path(_field(r, 'run_dir', str, where)), r['config']))
  search = values.get('search')
  if not isinstance(values.get('overrides') or {}, dict):
    raise _PlanFieldError(f'overrides={values["overrides"]!r} is not a JSON object')
  plan = Plan(kind, _field(values, 'name', str, ''), directory, tuple(entries), tuple(runs),
              _field(values, 'num_seeds', int, ''),
              float(_field(values, 'created', (int, float), '')),
              values.get('overrides') or {}, search)
  _check_kind(plan)
  return plan


def _plan_kind(value: str) -> PlanKind:
  try:
    return PlanKind(value)
  except ValueError:
    raise _PlanFieldError(f'kind={value!r} is none of {", ".join(PlanKind)}') from None


def _check_kind(plan: Plan) -> None:
  """A study has one entry; a search names each trial's params; a robustness
  comparison's first entry is its base workload."""
  if plan.kind == PlanKind.STUDY and len(plan.entries) != 1:
    raise _PlanFieldError(f'kind=study with {len(plan.entries)} entries (a study has one)')
  if plan.kind == PlanKind.ROBUSTNESS and (len(plan.entries) < 2
                                           or plan.entries[0].name != workloads.BASE):
    raise _PlanFieldError(f'kind=robustness needs the entry {workloads.BASE!r} first and a '
                          f'variant after it, not {[e.name for e in plan.entries]}')
  if plan.kind == PlanKind.SEARCH:
    search = plan.search
    if (not isinstance(search, dict) or not isinstance(search.get('axes'), list)
        or not isinstance(search.get('params'), list)
        or len(search['params']) != len(plan.entries)):
      raise _PlanFieldError(f'kind=search needs search={{"axes": [...], "params": [one '
                            f'per entry]}}, not {search!r}')


def check_paths(plan: Plan) -> None:
  """Raises StudyDirError unless every path `plan` names stays inside its directory.

  The rule is strict so that it is simple: an entry's directory is the study
  directory itself (a study's one entry) or <DIR>/<entry name>; a run's is
  <entry dir>/seed_<seed>; names are unique; and each of these, and the claims
  folders next to the runs, is a real directory or absent, never a symbolic
  link or a file. The paths are read only, never resolved through a link.
  """
  base = os.path.normpath(plan.directory)
  where = os.path.join(base, PLAN_FILE)
  directories = {}
  for i, entry in enumerate(plan.entries):
    expected = base if plan.kind == PlanKind.STUDY else os.path.join(base, entry.name)
    if (plan.kind != PlanKind.STUDY
        and (entry.name in RESERVED_NAMES or entry.name in ('', '.', '..')
             or os.sep in entry.name or entry.name.startswith('seed_'))):
      raise StudyDirError(f'{where}: entries[{i}].name={entry.name!r} cannot name a folder of '
                          f'the study; {_DAMAGED_PLAN_REMEDY}')
    if os.path.normpath(entry.directory) != expected or entry.name in directories:
      raise StudyDirError(
          f'{where}: entries[{i}].directory leads to {os.path.normpath(entry.directory)}; '
          f'an entry\'s directory must be {expected}, and no other entry\'s; '
          f'{_DAMAGED_PLAN_REMEDY}')
    directories[entry.name] = expected
    # The report replaces the entry's MLPerf results folder (rmtree, then rename).
    for path in (expected, os.path.join(expected, mlperf_results.RESULTS_FOLDER)):
      _check_real_dir(path, base)
  # Workers log into these; a link would carry their lines elsewhere.
  _check_real_dir(os.path.join(base, WORKERS_DIR), base)
  if os.path.islink(os.path.join(base, console.LOG_FILE)):
    raise StudyDirError(f'{os.path.join(base, console.LOG_FILE)} is a symbolic link, where '
                        'the study keeps its log; move it aside, then run the command again')
  seen = set()
  for i, run in enumerate(plan.runs):
    if run.entry not in directories:
      raise StudyDirError(f'{where}: runs[{i}].entry={run.entry!r} names no entry; '
                          f'{_DAMAGED_PLAN_REMEDY}')
    expected = os.path.join(directories[run.entry], f'seed_{run.seed}')
    if os.path.normpath(run.run_dir) != expected or expected in seen:
      raise StudyDirError(
          f'{where}: runs[{i}].run_dir leads to {os.path.normpath(run.run_dir)}; a run\'s '
          f'directory must be {expected} (seed_<seed> in its entry\'s directory), and no '
          f'other run\'s; {_DAMAGED_PLAN_REMEDY}')
    seen.add(expected)
    check_run_paths(run, base)


def check_run_paths(run: PlannedRun, directory: str) -> None:
  """Raises StudyDirError unless the run's folder and its claim's are real
  directories or absent: a link there would lead a worker out of the study.
  Workers check again just before they claim and prepare a run."""
  for path in (os.path.dirname(run.claim_dir), run.claim_dir,
               os.path.join(run.claim_dir, claims.CLAIM_DIR), run.run_dir):
    _check_real_dir(os.path.normpath(path), os.path.normpath(directory))


def _check_real_dir(path: str, directory: str) -> None:
  if path == directory:
    return
  try:  # One lstat: workers make this check for every run they try to claim.
    mode = os.lstat(path).st_mode
  except OSError:  # Absent (or unreachable, as os.path.lexists judged it).
    return
  if stat.S_ISLNK(mode):
    what = f'a symbolic link (to {os.readlink(path)})'
  elif not stat.S_ISDIR(mode):
    what = 'a file'
  else:
    return
  raise StudyDirError(f'{path} is {what}, where the study keeps a folder of its own; move '
                      'it aside, then run the command again')


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
