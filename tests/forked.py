"""Forked children of the test drivers, and the wait for them under a hang guard.

tests/test_bad_input.py, tests/seed_run_worker.py and tests/resume_driver.py
import their modules once (TensorFlow alone takes seconds) and run each case,
process or attempt in a child forked from that one, which starts JAX afresh as
a launched process would. A child never returns into the driver's loop: it
leaves through os._exit, without the parent's exit handlers, once its output is
flushed. A child that hangs is killed, so that a driver always ends.
"""

import dataclasses
import os
import signal
import sys
import time
import traceback
from typing import Callable, NoReturn


@dataclasses.dataclass(frozen=True)
class Ended:
  """How a child ended: its exit status (-SIGKILL if killed), and whether it hung."""
  status: int
  hung: bool = False


def fork(child: Callable[[], int]) -> int:
  """Forks a process that runs `child` and exits with the status it returns;
  returns the child's pid. Both streams are flushed first, so that nothing
  buffered here is written twice."""
  sys.stdout.flush()
  sys.stderr.flush()
  pid = os.fork()
  if pid == 0:
    _run_and_exit(child)
  return pid


def _run_and_exit(child: Callable[[], int]) -> NoReturn:
  """Runs `child` and exits with its status; with 1 and the traceback on stderr
  if it raises anything at all (a SystemExit included: the child says its
  status by returning it)."""
  status = 1
  try:
    status = child()
  except BaseException:  # pylint: disable=broad-except
    traceback.print_exc()
  finally:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # pylint: disable=protected-access


def wait(pids: list[int], hang_guard: float) -> list[Ended]:
  """How each child ended, in the order of `pids`; one still running after
  `hang_guard` seconds (a hang guard, not a time limit) is killed."""
  deadline = time.monotonic() + hang_guard
  ended: dict[int, Ended] = {}
  while len(ended) < len(pids):
    for pid in pids:
      if pid not in ended:
        ended.update(_poll(pid, time.monotonic() > deadline))
    time.sleep(0.01)
  return [ended[pid] for pid in pids]


def _poll(pid: int, overdue: bool) -> dict[int, Ended]:
  """{pid: how it ended} if child `pid` has ended, or was `overdue` and is now
  killed; {} while it runs."""
  done, status = os.waitpid(pid, os.WNOHANG)
  if done:
    return {pid: Ended(os.waitstatus_to_exitcode(status))}
  if not overdue:
    return {}
  os.kill(pid, signal.SIGKILL)
  os.waitpid(pid, 0)
  return {pid: Ended(-signal.SIGKILL, hung=True)}
