"""SIGINT (Ctrl-C) and SIGTERM (`kill`, a scheduler) from a command's first line on.

Python's own SIGINT handling raises KeyboardInterrupt wherever the main thread
is. While the harness imports its libraries and compiles, that is often inside
an extension module's initialisation (which turns it into an ImportError),
inside a library's `except:` or inside a callback whose exceptions are only
printed (JAX's gc callback: "Exception ignored in: _xla_gc_callback"); the
signal was then lost, and the run trained to its end. SIGTERM's default ends the
process without a word.

`install()`, main.py's first act, records each such signal here, where nothing
can swallow it, and then:

- outside `deferred()` (the command has written nothing yet: imports, flags,
  checks), ends the process at once with one line and status 128 + the signal;
- inside it (a job that may have a step to save or files to clean up), raises
  `Stopped`, a KeyboardInterrupt, for the job's handlers. Should a library
  swallow it, the record stands: the training loop stops at its next step and
  saves it (train/run/preemption.py), and train/cli/exits.py reports the stop rather
  than whatever error followed it.
"""

import contextlib
import os
import signal
import sys
import threading
from typing import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
  """A stop signal arrived while a job ran; `signal_number` says which."""

  def __init__(self, signal_number: int, note: str = ''):
    super().__init__(signal.Signals(signal_number).name)
    self.signal_number = signal_number
    self.note = note  # What became of the command's work, for its one line.


class SavedAndStopped(Exception):
  """A stop signal ended a run once it had saved its step (train/run/loop.py's
  Preempted); the same command resumes it. `signal_number` says which signal.
  Defined here so that the command line names it without importing the run."""
  signal_number: int


_received: int | None = None  # The first stop signal this process had.
_at_once = True  # Outside deferred(): nothing to save or clean up yet.


def install() -> None:
  """Takes SIGINT and SIGTERM over from Python's defaults (main thread only)."""
  global _received, _at_once, _previous_unraisablehook
  _received, _at_once = None, True
  if threading.current_thread() is threading.main_thread():
    for signum in SIGNALS:
      signal.signal(signum, _handle)
  if sys.unraisablehook is not _unraisable:
    _previous_unraisablehook = sys.unraisablehook
    sys.unraisablehook = _unraisable


_previous_unraisablehook = sys.unraisablehook


def _unraisable(unraisable) -> None:
  """Python prints an exception it cannot raise (one from a gc callback, such as
  JAX's) as 'Exception ignored in ...' with a traceback. A Stopped among them is
  not ignored here: it is recorded, and acted on at the next safe point."""
  if isinstance(unraisable.exc_value, Stopped):
    return
  _previous_unraisablehook(unraisable)


def record(signum: int) -> None:
  """Notes a stop signal (the first one counts) for received()."""
  global _received
  if _received is None:
    _received = signum


def received() -> int | None:
  """The stop signal this process had, or None."""
  return _received


def name(signum: int) -> str:
  return signal.Signals(signum).name


def how(signum: int) -> str:
  """How the one line starts: Ctrl-C interrupts, anything else preempts."""
  return 'interrupted' if signum == signal.SIGINT else 'preempted'


def status(signum: int) -> int:
  """The exit status shells and schedulers expect after a signal."""
  return 128 + signum


@contextlib.contextmanager
def deferred() -> Iterator[None]:
  """While inside, a stop signal raises Stopped instead of ending the process."""
  global _at_once
  previous, _at_once = _at_once, False
  try:
    yield
  finally:
    _at_once = previous


def _handle(signum: int, frame) -> None:
  del frame
  record(signum)
  if _at_once:
    _end_now(signum)
  raise Stopped(signum)


def _end_now(signum: int) -> None:
  """One line and the signal's status, without unwinding: nothing is written yet,
  and an exception raised here could be swallowed by the import it interrupts."""
  line = (f'{how(signum)}: stopped by {name(signum)} while starting, before anything '
          'was written; run the same command again to start it\n')
  with contextlib.suppress(Exception):  # A write it interrupted may be half done.
    sys.stdout.flush()
    sys.stderr.flush()
  os.write(2, line.encode())
  os._exit(status(signum))  # pylint: disable=protected-access


@contextlib.contextmanager
def reported() -> Iterator[None]:
  """Ends a Stopped (or KeyboardInterrupt) that reached the top in one line."""
  try:
    yield
  except KeyboardInterrupt as e:
    signum = getattr(e, 'signal_number', None) or received() or signal.SIGINT
    print(f'{how(signum)}: stopped by {name(signum)} without saving; run the same '
          'command again to resume', file=sys.stderr)
    sys.exit(status(signum))
