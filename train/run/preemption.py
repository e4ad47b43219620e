"""Stopping a run early: the stop signals, the step every process agrees to stop at,
and `Preempted`, which says the run saved that step and stopped.

A scheduler that wants its machine back sends SIGTERM (Slurm first sends
SIGUSR2 as a warning), and a user presses Ctrl-C (SIGINT). Each ends the run
with a checkpoint of the step it was on, so the same command resumes it. The
signals are recorded from main.py's first line on (train/common/stops.py); one
that came before the loop started, and that a library swallowed, still stops
the run at its first step.
"""

import signal
import threading

import jax
import numpy as np
from absl import logging

from train.common import stops

# SIGTERM: what schedulers send before they kill; SIGINT: Ctrl-C; SIGUSR2: Slurm's
# warning before a time limit or a preemption, as submitit asks for it.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)


class Preempted(stops.SavedAndStopped):
  """A stop signal (STOP_SIGNALS) arrived: the run saved a checkpoint and stopped;
  the same command resumes it. `signal_number` says which."""

  def __init__(self, message: str, signal_number: int = signal.SIGTERM):
    super().__init__(message)
    self.signal_number = signal_number


class StopSignals:
  """Turns the STOP_SIGNALS (SIGTERM, SIGINT, Slurm's SIGUSR2) into a flag the loop
  polls, so that each ends the run with a checkpoint.

  A second SIGINT, for a user who will not wait for the save, stops at once
  (KeyboardInterrupt). Installed only in the main thread, where Python delivers
  signals; the previous handlers come back on exit.
  """

  def __init__(self):
    self.raised = False
    self.signal_number = signal.SIGTERM
    self._previous = {}

  @property
  def name(self) -> str:
    return signal.Signals(self.signal_number).name

  def __enter__(self) -> 'StopSignals':
    if threading.current_thread() is threading.main_thread():
      for signum in STOP_SIGNALS:
        self._previous[signum] = signal.signal(signum, self._handle)
    # One that came before (while compiling; a library may have swallowed the
    # exception it raised) stops the run at its first step.
    if stops.received() is not None:
      self.raised, self.signal_number = True, stops.received()
    return self

  def _handle(self, signum, frame) -> None:
    del frame
    if self.raised and signum == signal.SIGINT:
      raise stops.Stopped(signum)
    stops.record(signum)
    self.raised, self.signal_number = True, signum
    logging.warning('%s: saving a checkpoint at the end of this step, then stopping%s',
                    self.name, ' (Ctrl-C again stops without saving)'
                    if signum == signal.SIGINT else '')

  def __exit__(self, *exc) -> None:
    for signum, previous in self._previous.items():
      signal.signal(signum, previous)

  def agreed(self, at_sync_point: bool) -> bool:
    """Whether to stop now. Alone, at the signal; with several processes, which
    must all save at the same step, at the next sync point (a log step or an
    eval) where any of them has had it."""
    if jax.process_count() == 1:
      return self.raised
    if not at_sync_point:
      return False
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    with jax.transfer_guard('allow'):
      return bool(np.any(multihost_utils.process_allgather(np.asarray(self.raised))))

  def preempted(self, where: str, checkpoint_directory: str) -> Preempted:
    """The exception that ends the run once its checkpoint `where` is whole."""
    return Preempted(f'stopped by {self.name} {where}; its checkpoint is in '
                     f'{checkpoint_directory}', self.signal_number)
