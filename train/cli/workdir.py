"""Where a command writes: the workdir, checked before anything heavy starts."""

import datetime
import json
import os
import shutil
from typing import Sequence

from train.common import config_dicts
from train.common import errors
from train.common import files


def default_workdir(name: str) -> str:
  """A new folder under runs/ named after the job and the time."""
  stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
  return os.path.join(files.REPO_ROOT, 'runs', f'{name}-{stamp}')


def check_location(workdir: str) -> None:
  """Refuses a workdir that is a file, or that cannot be created or written to."""
  nearest = workdir  # The workdir, or the folder it would be created in.
  while not os.path.exists(nearest):
    nearest = os.path.dirname(nearest)
  where = (f'--workdir={workdir}' if nearest == workdir
           else f'--workdir={workdir} cannot be created: {nearest}')
  if not os.path.isdir(nearest):
    errors.fail(f'{where} is a file; give a directory')
  if not os.access(nearest, os.W_OK | os.X_OK):
    errors.fail(f'{where} is not writable; choose a --workdir you can write to')


def check_single_run(workdir: str, config_json: str) -> None:
  """Refuses a workdir that holds a finished run or another config's run."""
  if os.path.exists(os.path.join(workdir, 'result.json')):
    errors.fail(f'--workdir={workdir} already holds a finished run (result.json); '
                'choose a new --workdir')
  existing = os.path.join(workdir, 'config.json')
  if not os.path.exists(existing):
    return
  try:
    with open(existing) as f:
      there = json.load(f)
  except (OSError, ValueError) as e:
    errors.fail(f'--workdir={workdir} holds a config.json that cannot be read '
                f'({type(e).__name__}); choose a new --workdir')
  if not isinstance(there, dict):  # Read as a config below, key by key.
    errors.fail(f'--workdir={workdir} holds a config.json that is a JSON '
                f'{type(there).__name__}, not a config; choose a new --workdir')
  here = json.loads(config_json)
  if there != here:
    errors.fail(f'--workdir={workdir} holds a run of another config ({existing}): '
                f'{config_dicts.differences(there, here)}; choose a new --workdir')


def remove_if_left_empty(workdir: str, existed: bool, own: Sequence[str]) -> None:
  """Takes back a workdir this command created when a failure left nothing in it
  but the command's own entries (`own`: its log file, its claim folder)."""
  if existed or not os.path.isdir(workdir) or set(os.listdir(workdir)) - set(own):
    return
  for name in os.listdir(workdir):
    path = os.path.join(workdir, name)
    if os.path.isdir(path):
      shutil.rmtree(path)
    else:
      os.remove(path)
  os.rmdir(workdir)
