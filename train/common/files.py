"""Files a reader may open at any time: written atomically, never half there."""

import contextlib
import errno
import json
import os
import re
import socket
import uuid
from typing import Any, Iterator

from train.common import errors

# The repository's root: configs/, runs/ and the MLPerf package data hang off it.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = '.tmp') -> Iterator[str]:
  """Yields a temporary path to write; on success it replaces `path` in one step.

  A kill or an error while writing leaves `path` as it was and no temporary file.
  `suffix` ends the temporary name (a plot needs '.tmp.png' for its format). The
  name is this writer's own, so that processes writing the same file at once
  (two workers finishing a study's report) never share a temporary file.
  """
  tmp = f'{path}.{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}'
  try:
    yield tmp
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


# The temporary names of `atomic_path`: '<name>.<pid>-<8 hex digits><suffix>'.
_ATOMIC_TEMPORARY = re.compile(r'^(?P<name>.+)\.\d+-[0-9a-f]{8}\.tmp(\.\w+)?$')


def written_name(name: str) -> str:
  """The file that `name` becomes when it is a temporary of `atomic_path` (another
  process is writing it right now); else `name` itself."""
  found = _ATOMIC_TEMPORARY.match(name)
  return found.group('name') if found else name


class FileWriteError(errors.BadInput, RuntimeError):
  """A result file cannot be written (a full disk); the message says what to do."""


# What to do about a write that the filesystem refused, by errno: the user's
# move, not the harness's (a full disk needs space, a read-only one another place).
_REMEDIES = (
    ((errno.ENOSPC, errno.EDQUOT), 'free disk space there'),
    ((errno.EROFS, errno.EACCES, errno.EPERM), 'make {dir} writable or choose a writable directory'),
    ((errno.ENAMETOOLONG,), 'choose a shorter path'),
    ((errno.EMFILE, errno.ENFILE), 'raise the limit on open files (ulimit -n)'),
    ((errno.EIO,), 'check the disk or the network filesystem'),
)
# The errnos above: a refusal of the filesystem's, never a bug of the harness's.
FILESYSTEM_ERRNOS = frozenset(n for numbers, _ in _REMEDIES for n in numbers)


def remedy(number: int | None, directory: str) -> str:
  """What to do about a write refused with errno `number` in `directory`, in words."""
  for numbers, text in _REMEDIES:
    if number in numbers:
      return text.format(dir=directory)
  return f'check that {directory} exists and is writable'


def os_error_cause(error: BaseException) -> OSError | None:
  """The OSError that `error` is or was raised from (Orbax wraps them), if any."""
  seen = set()
  while error is not None and id(error) not in seen:
    if isinstance(error, OSError):
      return error
    seen.add(id(error))
    error = error.__cause__ or error.__context__
  return None


def write_error(path: str, error: OSError, *, directory: bool = False) -> FileWriteError:
  """The one-line error for `error`, raised writing the file `path` (or in the
  directory `path`, when the error does not name its file)."""
  where = f'in {path}' if directory else path
  return FileWriteError(f'cannot write {where} ({type(error).__name__}: '
                        f'{error.strerror or error}); '
                        f'{remedy(error.errno, path if directory else os.path.dirname(path) or ".")}'
                        ', then re-run the same command')


def write_text(path: str, text: str) -> str:
  """Writes `text` (ending in one newline) atomically; returns `path`.

  Raises:
    FileWriteError: the file cannot be written; nothing of it is left behind.
  """
  try:
    with atomic_path(path) as tmp, open(tmp, 'w') as f:
      f.write(text.rstrip('\n') + '\n')
  except OSError as e:
    raise write_error(path, e) from None
  return path


def write_json(path: str, value: Any) -> str:
  """Writes `value` as indented JSON atomically; returns `path` (see `write_text`)."""
  return write_text(path, json.dumps(value, indent=2))


def create_exclusive(path: str, text: str, token: str) -> bool:
  """Creates `path` holding `text`, all at once, unless it exists; whether it did.

  Safe on network filesystems: write a uniquely named file, hard-link it to
  `path` (`link` fails if the name exists, on NFS and sshfs alike), then remove
  the unique name. `token` (random) makes the name unique among this host's
  and pid's writers, and must appear in `text`. When `link` reports an error,
  the file at `path` decides, not the error: our token means the link landed
  (a retried NFS request whose first reply was lost fails with EEXIST on our
  own link), another's means another writer won (sshfs reports a link onto a
  name another client just made as EPERM, not EEXIST), no file means the link
  failed. open(2)'s manual suggests the unique file's link count instead;
  sshfs mostly reports 1 and an inode of its own for each name, so that check
  cannot be trusted there, and the token works everywhere.

  Raises:
    OSError: `link` failed and no file is at `path`, or `path` cannot be read
      to tell whether the link landed (the filesystem went away). The link may
      then have landed after all: `path` then holds a record of this process
      that it does not know it made.
  """
  tmp = os.path.join(os.path.dirname(path),
                     f'.{os.path.basename(path)}.{socket.gethostname()}.{os.getpid()}.{token}')
  try:
    try:
      with open(tmp, 'x') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    except OSError as e:
      if e.filename is not None:
        raise
      # A failed write(2) names no file (a full disk): the one-line error names this one.
      raise OSError(e.errno, e.strerror, path) from None
    try:
      os.link(tmp, path)
    except OSError:
      held = _holds_token(path, token)
      if held is None:
        raise  # Nothing there: the link failed.
      return held  # Ours: only the reply was lost. Another's: a lost race.
    return True
  finally:
    with contextlib.suppress(FileNotFoundError):
      os.remove(tmp)


def _holds_token(path: str, token: str) -> bool | None:
  """Whether the file `path` holds `token`; None if there is no such file.

  Raises:
    OSError: `path` exists (or may) but cannot be read.
  """
  try:
    with open(path) as f:
      return token in f.read()
  except FileNotFoundError:
    return None
