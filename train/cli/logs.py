"""Where a command's log records go: all of them to a file, warnings to the console.

Every record at INFO and above (the harness's own, Orbax's, tfds', absl's,
JAX's) is appended to WORKDIR/log.txt (a study's, comparison's or search's
directory; `main.py bench` has none). The console shows WARNING and above, the
progress line (train/common/console.py) and the command's result. absl's
`--verbosity` flag, when given, sets the console's level instead:
`--verbosity=0` shows the INFO records there too, `--verbosity=1` DEBUG (which
then also reaches the file).

Native libraries (TensorFlow's C++ start-up lines) write to the process's
stderr, not through Python's logging: `native_stderr_to_log` sends them to the
log file while the modules that load them are imported.
"""

import contextlib
import logging
import os
import sys
from typing import Iterator

from absl import flags
from absl import logging as absl_logging

from train.common import console
from train.common import files

FLAGS = flags.FLAGS
LOG_FILE = console.LOG_FILE


_APPEND_NO_LINK = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW


class _LogFile(logging.FileHandler):
  """The log file; a disk that fills up, or a directory that cannot be written,
  loses log records, never the run: the harness's own writes report those in one
  line, and a log record that raised instead would be a traceback from whatever
  library logged it, or a second error over that line when the file is closed.
  """

  def _open(self):
    # Never through a symbolic link: a study directory is shared, and a link put
    # in place of log.txt would carry the log (appended to) anywhere.
    fd = os.open(self.baseFilename, _APPEND_NO_LINK, 0o644)
    return open(fd, self.mode, encoding=self.encoding, errors=self.errors)

  def emit(self, record: logging.LogRecord) -> None:
    try:
      super().emit(record)
    except OSError:  # Opening the file (delay=True) happens here, outside handleError.
      pass

  def handleError(self, record: logging.LogRecord) -> None:
    del record  # See the class's docstring.

  def flush(self) -> None:
    try:
      super().flush()
    except OSError:
      pass

  def close(self) -> None:
    try:
      super().close()
    except OSError:  # Flushing what the full disk did not take; the stream is closed.
      pass


class _ClearProgressLine(logging.Filter):
  """Takes a terminal's progress line away before a record is printed there."""

  def filter(self, record: logging.LogRecord) -> bool:
    console.clear_line()
    return True


class _OrbaxFailuresToFile(logging.Filter):
  """Keeps Orbax's records of a failed save (a traceback from each of its
  threads) off the console: train/run/checkpoint.py reports that save in one
  line. The log file still gets them."""

  def filter(self, record: logging.LogRecord) -> bool:
    return not (record.levelno >= logging.ERROR
                and f'{os.sep}orbax{os.sep}' in record.pathname)


_file_handler: _LogFile | None = None


def _unraisable_to_log(unraisable) -> None:
  """sys.unraisablehook: an error that Python could not raise goes to the log
  file, not the console. It ends nothing, and it comes in bursts: TensorStore
  calls back into the event loop of an Orbax save or restore that failed and
  closed that loop, each callback printing 'Event loop is closed', dozens of
  them, during the run and after its one line that says what went wrong."""
  where = f' in {unraisable.object!r}' if unraisable.object is not None else ''
  logging.getLogger(__name__).info(
      '%s%s', unraisable.err_msg or 'Exception ignored', where,
      exc_info=(unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback))


def console_level() -> int:
  """WARNING, unless --verbosity was given: then its level (0 INFO, 1 DEBUG, ...)."""
  if not FLAGS['verbosity'].present:
    return logging.WARNING
  # absl has already set the root logger to the level of --verbosity.
  return logging.getLogger().getEffectiveLevel()


def set_up(workdir: str | None, file_name: str = LOG_FILE) -> None:
  """Sends the log records to WORKDIR/log.txt (or WORKDIR/`file_name`; when
  there is a workdir) and warnings (or --verbosity's level) to the console."""
  global _file_handler
  on_console = console_level()
  root = logging.getLogger()
  root.setLevel(min(on_console, logging.INFO))
  handler = absl_logging.get_absl_handler()
  handler.setLevel(on_console)
  sys.unraisablehook = _unraisable_to_log
  handler.addFilter(_OrbaxFailuresToFile())
  handler.addFilter(_ClearProgressLine())
  if workdir is None:
    return
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, file_name)
  if os.path.islink(path):  # Refused here, with a word; _LogFile never follows one.
    raise files.FileWriteError(f'{path} is a symbolic link (to {os.readlink(path)}), where '
                               'the log is written as a file of its own; move the link '
                               'aside, then re-run the same command')
  # Opened at the first record, appended to: a resumed study continues its log.
  _file_handler = _LogFile(path, delay=True)
  _file_handler.setFormatter(absl_logging.PythonFormatter())
  _file_handler.setLevel(root.level)
  root.addHandler(_file_handler)


def close() -> None:
  """Flushes and closes the log file (a command that fails may then remove it)."""
  global _file_handler
  if _file_handler is not None:
    logging.getLogger().removeHandler(_file_handler)
    _file_handler.close()
    _file_handler = None


@contextlib.contextmanager
def native_stderr_to_log() -> Iterator[None]:
  """Sends what native code writes to stderr (file descriptor 2) to the log file
  for the duration, unless the console shows INFO records anyway."""
  if _file_handler is None or console_level() <= logging.INFO:
    yield
    return
  try:
    log = os.open(_file_handler.baseFilename, _APPEND_NO_LINK, 0o644)
  except OSError:  # The console, then.
    yield
    return
  sys.stderr.flush()
  saved = os.dup(2)
  os.dup2(log, 2)
  os.close(log)
  try:
    yield
  finally:
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)
