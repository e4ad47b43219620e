"""Files a reader may open at any time: written atomically, never half there."""

import contextlib
import errno
import json
import os
import uuid
from typing import Any, Iterator

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


class FileWriteError(RuntimeError):
  """A result file cannot be written (a full disk); the message says what to do."""


def write_text(path: str, text: str) -> str:
  """Writes `text` (ending in one newline) atomically; returns `path`.

  Raises:
    FileWriteError: the file cannot be written; nothing of it is left behind.
  """
  try:
    with atomic_path(path) as tmp, open(tmp, 'w') as f:
      f.write(text.rstrip('\n') + '\n')
  except OSError as e:
    remedy = ('free disk space there' if e.errno in (errno.ENOSPC, errno.EDQUOT)
              else f'check that {os.path.dirname(path)} exists and is writable')
    raise FileWriteError(f'cannot write {path} ({type(e).__name__}: {e.strerror or e}); '
                         f'{remedy}, then re-run the same command') from None
  return path


def write_json(path: str, value: Any) -> str:
  """Writes `value` as indented JSON atomically; returns `path` (see `write_text`)."""
  return write_text(path, json.dumps(value, indent=2))
