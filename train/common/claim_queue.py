"""The next run to claim among many, at a cost bounded by the runs not finished.

A study's worker claims, in the plan's order, the first run that is neither
finished (result.json), failed (failure.json) nor held by a live worker
(train/common/claims.py); `ClaimQueue` does that for it, and for the simulation
of large studies that trains nothing (train/bench/claim_scale.py).

Looking at every run again for each claim would cost one lookup per finished
run ahead of the first free one: a claim late in a study of 10,000 runs made
some 10,000 lookups, a study 50 million. A run's result.json, once written, is
never taken away, so a queue remembers the runs it found finished and never
looks at them again. A claim then looks at

- the runs that finished since this queue last looked, one stat each (each
  once in the queue's life: its first claim in a study half done looks at
  every finished run once);
- the runs held by other workers, or failed, ahead of the first free run in
  the plan's order (with W workers, at most W - 1 held ones): two stats each
  (result.json, failure.json) and, for a held one, the six operations that
  judge its holder (`claims.try_acquire`: the claim folder's listing, the next
  generation's name, the record, the heartbeat, whether it was released);
- the runs another worker claims an instant before it, about 7 each;
- the run it claims, about 8.

So its cost grows with the runs not finished (held, failed or pending), never
with those finished: with W workers and F failed runs, about 5 W + 2 F
filesystem operations on average (docs/cluster.md, "Claims at scale", has the
measurements). A run whose claim was let go after it finished is not claimed
again (`try_acquire`'s `over`).
"""

import functools
import os
from typing import Callable, Generic, Protocol, Sequence, TypeVar

from train.common import claims


class ClaimableRun(Protocol):
  """What a queue needs of a run: where it is claimed, and its two end files."""

  @property
  def claim_dir(self) -> str: ...

  @property
  def result_path(self) -> str: ...

  @property
  def failure_path(self) -> str: ...


Run = TypeVar('Run', bound=ClaimableRun)


def _nothing(run: object) -> None:
  del run


class ClaimQueue(Generic[Run]):
  """Claims the runs of `runs`, one at a time, first free first.

  `before_claim(run)` runs before a run is claimed (a worker checks the run's
  folders there); `on_finished(run)` once for each run this queue finds
  finished. The claims are made as `claims.try_acquire` makes them, with its
  limits.
  """

  def __init__(self, runs: Sequence[Run], *,
               before_claim: Callable[[Run], None] = _nothing,
               on_finished: Callable[[Run], None] = _nothing,
               stale_after_seconds: float = claims.STALE_AFTER_SECONDS,
               heartbeat_seconds: float = claims.HEARTBEAT_SECONDS):
    self._runs = runs
    self._before_claim = before_claim
    self._on_finished = on_finished
    self._stale_after_seconds = stale_after_seconds
    self._heartbeat_seconds = heartbeat_seconds
    self._finished = [False] * len(runs)
    self._first = 0  # Every run before this one is known finished.

  @property
  def finished(self) -> int:
    """How many runs this queue has found finished."""
    return sum(self._finished)

  def claim_next(self) -> tuple[Run, claims.Claim] | None:
    """The first run in order that is neither finished, failed nor held, claimed;
    None when no run is free now."""
    for index in range(self._first, len(self._runs)):
      if self._finished[index]:
        continue
      run = self._runs[index]
      if self._found_finished(index):
        continue
      if os.path.exists(run.failure_path):
        continue
      self._before_claim(run)
      claim = claims.try_acquire(run.claim_dir, stale_after_seconds=self._stale_after_seconds,
                                 heartbeat_seconds=self._heartbeat_seconds,
                                 over=functools.partial(self._found_finished, index))
      if claim is None:
        continue
      if self._found_finished(index):  # Finished between the look and the claim.
        claim.release()
        continue
      return run, claim
    return None

  def _found_finished(self, index: int) -> bool:
    """Whether run `index` has its result now; remembers it if so."""
    run = self._runs[index]
    if not os.path.exists(run.result_path):
      return False
    self._finished[index] = True
    while self._first < len(self._runs) and self._finished[self._first]:
      self._first += 1
    self._on_finished(run)
    return True
