"""One-line errors: what the user sees when input is bad."""

import sys
from typing import NoReturn

class BadInput(Exception):
  """Input the user can act on, found once a job runs (a config, a dataset, a
  checkpoint, a study directory, a full or read-only disk): the command ends
  with its message in one line and USAGE_ERROR (train/cli/exits.py). Its
  message says what to do."""


# The exit status of a usage error (bad flags, a bad config, a bad workdir), as
# absl and argparse use it.
USAGE_ERROR = 2


def one_line(text: object) -> str:
  """`text` (an exception or any value) as one line: whitespace runs become a space."""
  return ' '.join(str(text).split())


def fail(message: str) -> NoReturn:
  """Prints 'error: MESSAGE' as one line on stderr and exits with USAGE_ERROR."""
  print(f'error: {one_line(message)}', file=sys.stderr)
  sys.exit(USAGE_ERROR)
