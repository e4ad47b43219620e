"""Where a command writes: the workdir, checked before anything heavy starts."""

import datetime
import json
import os
import shutil
import socket
import time
import uuid
from typing import Sequence

from train.common import claims
from train.common import config_dicts
from train.common import errors
from train.common import files

# How far this host's clock may be from its filesystem's. Workers on several
# hosts judge each other's heartbeats by their clocks (a claim is taken over
# after claims.STALE_AFTER_SECONDS of silence), so the hosts must agree to well
# under that; each within this of the filesystem's clock is within twice it of
# each other.
MAX_CLOCK_OFFSET_SECONDS = 60.0


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


def clock_offset(directory: str) -> tuple[float, float] | None:
  """(This host's time minus the time the filesystem gives a file made in
  `directory` now, that file's time); None when no file can be made there.

  On a network filesystem the server dates a new file (NFS, sshfs), so this
  compares this host's clock with the server's. The file is removed at once.
  """
  probe = os.path.join(directory, f'.clock.{socket.gethostname()}.{os.getpid()}.'
                                  f'{uuid.uuid4().hex[:8]}')
  try:
    before = time.time()
    os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    try:
      dated = os.stat(probe).st_mtime
    finally:
      os.remove(probe)
    now = (before + time.time()) / 2
  except OSError:
    return None
  return now - dated, dated


def check_clock(workdir: str) -> None:
  """Refuses a host whose clock is more than MAX_CLOCK_OFFSET_SECONDS from the
  clock of the filesystem that holds `workdir` (or the folder it would be made in)."""
  nearest = workdir
  while not os.path.isdir(nearest):
    nearest = os.path.dirname(nearest)
  found = clock_offset(nearest)
  if found is None or abs(found[0]) <= MAX_CLOCK_OFFSET_SECONDS:
    return
  offset, dated = found
  said = time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(dated))
  errors.fail(
      f'the clock of this host ({socket.gethostname()}) is {abs(offset):.0f} s '
      f'{"ahead of" if offset > 0 else "behind"} the filesystem of --workdir={workdir}, which '
      f'dates a file made there now {said}: workers judge each other by the times of their '
      f'heartbeats (a claim is taken over after {claims.STALE_AFTER_SECONDS:.0f} s of '
      f'silence), so their hosts\' clocks must agree within '
      f'{MAX_CLOCK_OFFSET_SECONDS:.0f} s; set this host\'s clock (NTP), then run the same '
      'command again')


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
