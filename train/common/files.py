"""Files a reader may open at any time: written atomically, never half there."""

import contextlib
import json
import os
from typing import Any, Iterator

# The repository's root: configs/, runs/ and the MLPerf package data hang off it.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = '.tmp') -> Iterator[str]:
  """Yields a temporary path to write; on success it replaces `path` in one step.

  A kill or an error while writing leaves `path` as it was and no temporary file.
  `suffix` ends the temporary name (a plot needs '.tmp.png' for its format).
  """
  tmp = path + suffix
  try:
    yield tmp
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_text(path: str, text: str) -> str:
  """Writes `text` (ending in one newline) atomically; returns `path`."""
  with atomic_path(path) as tmp, open(tmp, 'w') as f:
    f.write(text.rstrip('\n') + '\n')
  return path


def write_json(path: str, value: Any) -> str:
  """Writes `value` as indented JSON atomically; returns `path`."""
  return write_text(path, json.dumps(value, indent=2))
