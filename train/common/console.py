"""The console of a command: one progress line for its runs, one line per finished run.

The log records (absl's and Python's: the harness's INFO lines, Orbax, tfds)
go to a file (train/cli/logs.py); the console shows warnings, this progress and
the command's result. On a terminal the progress is a single line that rewrites
itself (a carriage return); anywhere else (a pipe, a file, a scheduler's log)
it is a plain line at the first logged step and then at most one every
`every_secs` (a minute), so that a log file stays readable.
"""

import sys
import time
from typing import Callable, TextIO

# The command's log file in its workdir (train/cli/logs.py): a study directory
# holding only this file holds no study yet.
LOG_FILE = 'log.txt'
# The progress being shown, if any: a log record on the console clears its line first.
_active: 'Progress | None' = None


def clear_line() -> None:
  """Takes the progress line off a terminal, so a log record starts a clean line."""
  if _active is not None:
    _active.clear()


def duration(seconds: float) -> str:
  """Seconds as the console shows them: 45s, 3m05s, 2h04m."""
  seconds = max(0, int(round(seconds)))
  if seconds < 60:
    return f'{seconds}s'
  minutes, seconds = divmod(seconds, 60)
  if minutes < 60:
    return f'{minutes}m{seconds:02d}s'
  hours, minutes = divmod(minutes, 60)
  return f'{hours}h{minutes:02d}m'


def run_line(label: str, result: dict, earlier: bool = False) -> str:
  """The line of a finished run: its final accuracy, the target, its seconds."""
  accuracy = result['final_eval_accuracy']
  target = result['target_accuracy']
  reached = (f'reached {target:.1%} at step {result["steps_to_target"]}'
             if result['reached_target'] else f'did not reach {target:.1%}')
  how = 'finished earlier' if earlier else f'{result["run_seconds"]:.1f}s'
  shown = 'none (diverged)' if accuracy is None else f'{accuracy:.4f}'
  return f'{label}: final accuracy {shown}, {reached} ({result["status"]}), {how}'


class Progress:
  """Runs done of the total, the current run, its step, images/s and time left.

  Use as a context manager: on exit (an error included) a terminal's progress
  line is cleared, so that whatever is printed next starts on its own line.
  """

  def __init__(self, total_runs: int, stream: TextIO | None = None, *,
               enabled: bool = True, every_secs: float = 60.0,
               clock: Callable[[], float] = time.monotonic):
    self._total = total_runs
    self._stream = stream or sys.stderr
    self._enabled = enabled
    self._tty = enabled and self._stream.isatty()
    self._every_secs = every_secs
    self._clock = clock
    self._done = 0
    self._run_seconds: list[float] = []  # Of the runs that ran in this process.
    self._label = ''
    self._run_start = clock()
    self._last_print: float | None = None
    self._shown = False
    self._last_note = ''

  def __enter__(self) -> 'Progress':
    global _active
    _active = self
    return self

  def __exit__(self, *exc) -> None:
    global _active
    self.clear()
    _active = None

  def clear(self) -> None:
    if self._tty and self._shown:
      self._stream.write('\r\033[K')
      self._stream.flush()
      self._shown = False

  def start_run(self, label: str) -> None:
    """The next run, `label` (a config and seed), begins: it includes its set-up."""
    self._label, self._run_start = label, self._clock()
    if self._tty:  # Its set-up and compilation can take a while: say what is going on.
      self._show(f'{self._prefix()}: setting up')

  def update(self, step: int, num_steps: int, images_per_second: float,
             run_left: float) -> None:
    """The current run is at `step` of `num_steps`, training at `images_per_second`,
    with `run_left` seconds of training to go."""
    if not self._enabled:
      return
    now = self._clock()
    text = (f'{self._prefix()}: step {step}/{num_steps}, {images_per_second:.0f} images/s'
            f' | time left {duration(run_left + self._later_runs_seconds(now, run_left))}')
    if self._tty:
      self._show(text)
    elif self._last_print is None or now - self._last_print >= self._every_secs:
      self._last_print = now
      self._stream.write(text + '\n')
      self._stream.flush()

  def _prefix(self) -> str:
    return f'runs {self._done}/{self._total} done | {self._label}'

  def _show(self, text: str) -> None:
    self._stream.write(f'\r{text}\033[K')
    self._stream.flush()
    self._shown = True

  def _later_runs_seconds(self, now: float, run_left: float) -> float:
    """The runs after the current one, each as long as the mean run so far."""
    later = self._total - self._done - 1
    if later <= 0:
      return 0.0
    if self._run_seconds:
      mean = sum(self._run_seconds) / len(self._run_seconds)
    else:  # The current run, set-up and compilation included, is all there is to go by.
      mean = now - self._run_start + run_left
    return later * mean

  def note(self, text: str) -> None:
    """A line about the runs as a whole (how many are done, running, pending; what
    this command waits for): rewritten in place on a terminal, elsewhere printed
    when it changes."""
    if not self._enabled:
      return
    if self._tty:
      self._show(text)
    elif text != self._last_note:
      self._stream.write(text + '\n')
      self._stream.flush()
    self._last_note = text

  def finish_run(self, line: str | None = None, ran: bool = True) -> None:
    """The current run ended (`ran`) or was found finished; `line` says how it went."""
    self._done += 1
    if ran:
      self._run_seconds.append(self._clock() - self._run_start)
    if self._enabled and line:
      self.clear()
      self._stream.write(line + '\n')
      self._stream.flush()
