"""Claims on run directories: one live worker trains in a run dir at a time.

A study's runs are trained by many worker processes, on several hosts, that
share nothing but a filesystem (a network one: NFS, or sshfs as the tests use).
Before a worker trains in a run dir it claims it; a single training run holds
its workdir the same way, so a second process started on it is refused with
one line naming the holder.

The files, all in RUN_DIR/claim/:

- `<g>.json`, for generations g = 0, 1, 2, ...: the record of generation g's
  holder (host, pid, Slurm job and how often it was requeued, since when, a
  random token, the process's start time and pid namespace, and why and how
  late generation g-1 was taken over). The holder of a run dir is the highest
  generation present. A worker claims a free run dir by creating
  generation 0; it takes over from a holder that is gone by creating generation
  g+1. Only one creator of a given generation can succeed, so of two workers
  racing for the same free or abandoned run dir exactly one wins, and nothing
  is ever deleted, renamed over or rewritten by another worker.
- `<g>.heartbeat`: {"time": ..., "count": ...}, rewritten (atomically) every
  `heartbeat_seconds` by a daemon thread of generation g's holder; always
  HEARTBEAT_BYTES long, since sshfs's cached size of a file would cut a longer
  one short for a reader on another host.
- `<g>.released`: created by the holder when it lets go (the run finished,
  failed, or was preempted after saving). A released run dir is free again.

Why a network filesystem cannot break it: every step that decides something
is one exclusive create. A record is written in full to a file whose name is
unique (host, pid, token) and then hard-linked to `<g>.json`
(train/common/files.py's `create_exclusive`): `link` fails if that name
exists, on NFS (where O_EXCL was long unreliable) and on sshfs, and it makes a
complete file appear at once, so nobody ever reads half a record. A lost reply
can make a `link` that succeeded report an error (on NFS, a retried request
then fails with EEXIST on its own first link), and sshfs reports some lost
races as EPERM: after any error the record at `<g>.json` says whether the link
landed, by holding this writer's token or another's (or the link failed: no
record).
(open(2)'s manual suggests the unique file's link count, 2 after a success;
sshfs mostly reports 1, and its own inode number for each name, so that
check would take a lost reply for a lost race.) When `<g>.json`
cannot even be read after such an error, the claim fails with the OSError,
and a record of this process that it does not know it holds may be left: it is
taken over as any holder's is, once this process is gone (rules 2 and 4
below) or silent (rule 3), so no run is trained twice and none is lost.
Directory listings and attributes may be cached for a while (sshfs: 20 s), so
a worker may act on an old view, but that is never unsafe: it then tries to
create a generation that already exists, fails, and counts as having lost the
race.

The holder of the top generation is GONE, and the run dir may be taken over,
when any of these holds:

1. it released the claim;
2. it ran on this host (the same host name and pid namespace) and its pid is
   no longer alive: no such process, a zombie, or (pid reuse) a process whose
   start time in /proc differs from the one recorded (train/common/liveness.py
   asks /proc);
3. its last heartbeat (or, before the first, its `since`) is older than
   `stale_after_seconds` (10 minutes). This compares one host's time.time()
   with another's, so it assumes the hosts' clocks agree to well under that,
   as NTP keeps them;
4. it ran in a Slurm job, `squeue` is installed and answers, and that job is no
   longer running (pending, requeued, finished or unknown to squeue), or runs
   again after a requeue (its restart count is higher than the record's: a job
   whose node was lost is requeued under the same id, and its new run must be
   able to take back the seed its old run held). A squeue that is missing,
   fails or times out decides nothing (liveness.py again). Rules 3 and 4 are
   the ones that judge a holder on another host, whose pids mean nothing here.

Otherwise it is HELD. A record that cannot be read (a damaged file: not JSON,
a field missing or of the wrong type, a pid outside 1 .. 2**31-1, a time that
is no date) counts as HELD by someone unknown until its last sign of life (its
heartbeat, else the file's modification time) is `stale_after_seconds` old;
then it is GONE. Records are never half-written (see above), so an unreadable
one is damage, not a claim in the making.

A sign of life dated in the future is judged by its distance from now, as one
in the past is: more than `stale_after_seconds` ahead (a damaged record, a
hand-set mtime, a clock far off NTP) breaks the assumption of rule 3, and the
holder is GONE. Without this, a record dated in the year 2100 would hold its
run dir, and a command waiting for it, for ever.

Rules 3 and 4 can judge a live holder gone (a process stopped for ten minutes,
a Slurm job briefly shown as requeued). Such a holder has LOST its claim, and
must write nothing more into a run dir that another worker now trains in. Two
checks see to it, each finding a higher generation (or its own record gone) and
then calling `on_lost`, which by default prints one line and exits the process
with status LOST_EXIT_STATUS:

- the heartbeat, every `heartbeat_seconds`;
- `Claim.fence()`, which the holder calls just before each write into the run
  dir (train/run/loop.py: every checkpoint, before it starts and again before
  it is renamed into place, result.json, config.json; its MLPerf log and metric
  writers at most every FENCE_RECHECK_SECONDS). A heartbeat alone left a holder
  that woke from a stop free to write for up to one heartbeat; the fence reads
  the claim files again first. It costs one open and read of this generation's
  record and one stat of the next generation's name.

What no check can close is the time between a fence and the write it guards
(a few Python statements): a process stopped exactly there, for longer than a
takeover takes, makes that one write when it wakes, then exits at its next
fence. A save that Orbax was writing in the background when the holder stopped
goes on into its temporary directory (`<step>.orbax-checkpoint-tmp-...`, which
no reader lists and the next manager removes) and stops at its rename.
"""

import contextlib
import dataclasses
import json
import logging
import math
import os
import re
import socket
import sys
import threading
import time
import uuid
from typing import Any, Callable

from train.common import console
from train.common import errors
from train.common import files
from train.common import liveness

STALE_AFTER_SECONDS = 600.0
HEARTBEAT_SECONDS = 30.0
# A fence before a write that commits nothing (a log line) reads the claim files
# at most this often; see Claim.fence.
FENCE_RECHECK_SECONDS = 1.0
# A heartbeat file's size, padded with spaces (see _write_heartbeat).
HEARTBEAT_BYTES = 80
# The exit status of a process that lost its claim (EX_TEMPFAIL: try again later).
LOST_EXIT_STATUS = 75
CLAIM_DIR = 'claim'
# pids are positive C ints; a larger one in a record is damage (os.kill would overflow).
MAX_PID = 2**31 - 1

FREE, HELD, GONE, RELEASED = 'FREE', 'HELD', 'GONE', 'RELEASED'
_RECORD = re.compile(r'^(\d+)\.json$')


@dataclasses.dataclass(frozen=True)
class Holder:
  """The record of one generation's holder (claim/<generation>.json)."""
  host: str
  pid: int
  slurm_job_id: str | None
  since: float  # time.time() when it claimed the run dir.
  token: str  # Random: tells this holder's record from any other.
  start_time: int | None  # Its process's start, in clock ticks after boot (/proc).
  # Its pid namespace ('pid:[4026531836]'): containers on one host may share the
  # host name but not the pids. None where /proc does not say.
  pid_namespace: str | None
  took_over: str | None  # Why generation - 1 was taken over; None for generation 0.
  generation: int
  # How often its Slurm job had been requeued when it claimed (SLURM_RESTART_COUNT);
  # None outside Slurm and in records written before it was recorded.
  slurm_restart_count: int | None = None

  def describe(self, now: float | None = None) -> str:
    """'host h, pid 123 (slurm job 45_1), since 2026-12-02 04:30:00 UTC', and
    '(5m00s ago)' after it when `now` is given."""
    since = time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(self.since))
    job = f' (slurm job {self.slurm_job_id})' if self.slurm_job_id else ''
    ago = '' if now is None else f' ({console.duration(now - self.since)} ago)'
    return f'host {self.host}, pid {self.pid}{job}, since {since}{ago}'


@dataclasses.dataclass(frozen=True)
class Status:
  """Who holds a run dir, as a worker about to claim it would judge."""
  state: str  # FREE (never claimed), HELD, GONE (may be taken over) or RELEASED.
  holder: Holder | None  # The top generation's; None when FREE or unreadable.
  heartbeat_age: float | None  # Seconds since its last heartbeat (or `since`).
  # Why GONE or RELEASED; for HELD, set only when the record cannot be read.
  reason: str | None


class ClaimLost(Exception):
  """This process no longer holds the claim it was about to write under; str()
  is one line. Raised by Claim.fence when `on_lost` returns."""


class ClaimHeld(Exception):
  """A run dir is held by a live holder; str() is one line naming it."""

  def __init__(self, message: str, status: Status):
    super().__init__(message)
    self.status = status


def _path(claim_dir: str, generation: int, kind: str) -> str:
  return os.path.join(claim_dir, f'{generation}.{kind}')


def _top_generation(claim_dir: str) -> int:
  """The highest generation present; -1 when none is (or no claim/ exists).

  A cached NFS listing may miss the newest records; a look-up of the next name
  is fresher, and generations are created one after another, so probe upwards.
  """
  try:
    names = os.listdir(claim_dir)
  except FileNotFoundError:
    return -1
  top = max((int(m.group(1)) for m in map(_RECORD.match, names) if m), default=-1)
  while os.path.exists(_path(claim_dir, top + 1, 'json')):
    top += 1
  return top


def _read_json(path: str) -> Any:
  """The JSON in `path`; None if it is missing, unreadable or not JSON."""
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


_FIELDS = {'host': str, 'pid': int, 'slurm_job_id': (str, type(None)),
           'since': (int, float), 'token': str, 'start_time': (int, type(None)),
           'pid_namespace': (str, type(None)), 'took_over': (str, type(None)),
           'slurm_restart_count': (int, type(None))}


def _read_holder(claim_dir: str, generation: int) -> Holder | None:
  """Generation `generation`'s record; None if it is missing or damaged."""
  record = _read_json(_path(claim_dir, generation, 'json'))
  if not isinstance(record, dict):
    return None
  if not all(isinstance(record.get(k), t) and not isinstance(record.get(k), bool)
             for k, t in _FIELDS.items()):
    return None
  # os.kill(0 or less) would address process groups, and a pid past a C int overflows.
  if not 0 < record['pid'] <= MAX_PID or _as_date(record['since']) is None:
    return None
  return Holder(**{k: record.get(k) for k in _FIELDS}, generation=generation)


def _as_date(seconds: float) -> float | None:
  """`seconds` (a time.time()) as a float, if it is a date time.gmtime can show."""
  try:
    time.gmtime(seconds)
  except (OverflowError, OSError, ValueError):
    return None
  return float(seconds) if math.isfinite(seconds) else None


def _last_sign_of_life(claim_dir: str, generation: int, holder: Holder | None) -> float:
  """The last heartbeat's time; else the latest of the heartbeat file's mtime and
  the holder's `since` (or, for a damaged record, the record's mtime).

  A heartbeat that cannot be read still has an mtime: on sshfs a reader whose
  cached size of the file is older than its content reads it cut short (heartbeats
  have a fixed size to prevent that, but a file of another version may not).
  """
  beat_path = _path(claim_dir, generation, 'heartbeat')
  beat = _read_json(beat_path)
  if isinstance(beat, dict) and isinstance(beat.get('time'), (int, float)):
    when = _as_date(beat['time'])
    if when is not None:
      return when
  signs = []
  for path in ([beat_path] if holder is not None else
               [beat_path, _path(claim_dir, generation, 'json')]):
    with contextlib.suppress(OSError):
      signs.append(os.stat(path).st_mtime)
  if holder is not None:
    signs.append(holder.since)
  return max(signs, default=0.0)  # Nothing there any more: as old as can be.


def _pid_gone(holder: Holder) -> str | None:
  """Rule 2: why a holder on this host is gone, or None if it is alive or elsewhere.

  "This host" means the same host name and pid namespace: the pids of another
  container on the same machine cannot be looked up from here.
  """
  if (holder.host, holder.pid_namespace) != (socket.gethostname(), liveness.pid_namespace()):
    return None
  where = f'holder pid {holder.pid} on host {holder.host}'
  if not liveness.pid_alive(holder.pid):
    return f'{where} is gone'
  started = liveness.process_start_time(holder.pid)
  if None not in (holder.start_time, started) and started != holder.start_time:
    return f'{where} is gone (the pid now belongs to another process)'
  return None


def _stale(age: float, what: str, stale_after_seconds: float) -> str | None:
  """Rule 3, with a sign of life in the future judged as one in the past."""
  if age > stale_after_seconds:
    return f'{what} {age:.0f} s old (stale after {stale_after_seconds:g} s)'
  if -age > stale_after_seconds:
    return (f'{what} dated {-age:.0f} s in the future (more than the '
            f'{stale_after_seconds:g} s that clocks may differ by)')
  return None


def _gone_reason(holder: Holder, age: float, stale_after_seconds: float,
                 ask_slurm: bool = True) -> str | None:
  """Why a readable holder is gone by rules 2 to 4 (rule 4 only if `ask_slurm`);
  None if it is alive."""
  reason = _pid_gone(holder)
  if reason is None:
    reason = _stale(age, 'heartbeat', stale_after_seconds)
  if reason is None and ask_slurm and holder.slurm_job_id is not None:
    reason = _slurm_job_gone(holder)
  return reason


def _slurm_job_gone(holder: Holder) -> str | None:
  """Rule 4: why the holder's Slurm job no longer runs the holder, or None."""
  job = liveness.slurm_job(holder.slurm_job_id)
  if job is None:
    return None  # squeue cannot say.
  if not job.running:
    return f'slurm job {holder.slurm_job_id} is no longer running'
  if None not in (job.restarts, holder.slurm_restart_count) and (
      job.restarts > holder.slurm_restart_count):
    # Slurm requeues a job only once its processes are gone (or their node is).
    return (f'slurm job {holder.slurm_job_id} was requeued since (run '
            f'{job.restarts} of it now, run {holder.slurm_restart_count} held the claim)')
  return None


def _judge(claim_dir: str, generation: int, stale_after_seconds: float,
           ask_slurm: bool = True) -> Status:
  """The Status of a run dir whose top generation is `generation` (-1: none)."""
  if generation < 0:
    return Status(FREE, None, None, None)
  holder = _read_holder(claim_dir, generation)
  age = time.time() - _last_sign_of_life(claim_dir, generation, holder)
  if os.path.exists(_path(claim_dir, generation, 'released')):
    return Status(RELEASED, holder, age, 'released')
  if holder is None:
    damaged = f'record {CLAIM_DIR}/{generation}.json cannot be read'
    stale = _stale(age, 'is', stale_after_seconds)
    if stale is not None:
      return Status(GONE, None, age, f'{damaged} and {stale}')
    return Status(HELD, None, age, damaged)
  reason = _gone_reason(holder, age, stale_after_seconds, ask_slurm)
  return Status(HELD if reason is None else GONE, holder, age, reason)


def status(run_dir: str, *, stale_after_seconds: float = STALE_AFTER_SECONDS,
           ask_slurm: bool = True) -> Status:
  """Who holds `run_dir`, by the rules of the module docstring. Writes nothing.

  `ask_slurm=False` leaves rule 4 out: for a look repeated every few seconds
  over many runs (a progress line), which must not send slurmctld a query per
  run each time; a holder whose job ended then counts as held until its
  heartbeat is stale, and whoever claims next asks Slurm.
  """
  claim_dir = os.path.join(run_dir, CLAIM_DIR)
  return _judge(claim_dir, _top_generation(claim_dir), stale_after_seconds, ask_slurm)


def _write_heartbeat(path: str, count: int, token: str) -> None:
  """Replaces the heartbeat file `path` at once (raises OSError if it cannot).

  Always HEARTBEAT_BYTES long: sshfs caches a file's size for some seconds,
  and a reader on another host whose cached size is smaller than a new
  heartbeat's would read it cut short.
  """
  text = json.dumps({'time': time.time(), 'count': count}).ljust(HEARTBEAT_BYTES - 1) + '\n'
  with files.atomic_path(path, suffix=f'.{token}.tmp') as tmp, open(tmp, 'w') as f:
    f.write(text)


# CLOCK_BOOTTIME goes on while the process is stopped and while the machine
# sleeps (CLOCK_MONOTONIC stops for the latter); it is Linux's.
_BOOTTIME = getattr(time, 'CLOCK_BOOTTIME', None)


def _clock() -> float:
  """Seconds on a clock that counts the time this process spent stopped or suspended."""
  return time.monotonic() if _BOOTTIME is None else time.clock_gettime(_BOOTTIME)


def _exit_lost(message: str) -> None:
  """The default `on_lost`: one line on stderr, then exit at once (no cleanup that
  could write into the run dir)."""
  print(f'error: {errors.one_line(message)}', file=sys.stderr, flush=True)
  os._exit(LOST_EXIT_STATUS)  # pylint: disable=protected-access


class Claim:
  """A run dir held by this process, its heartbeat beating in a daemon thread.

  Made by `try_acquire`, which has created its record; the heartbeat starts
  here. A context manager: leaving the `with` block releases the claim.
  """

  def __init__(self, run_dir: str, holder: Holder, *, heartbeat_seconds: float,
               on_lost: Callable[[str], None] | None = None):
    self.run_dir = run_dir
    self.holder = holder
    self._claim_dir = os.path.join(run_dir, CLAIM_DIR)
    self._heartbeat_seconds = heartbeat_seconds
    self._on_lost = on_lost or _exit_lost
    self._released = False
    self._lost = False  # on_lost was called (once, by the heartbeat or a fence).
    self._lost_lock = threading.Lock()
    # _clock() when the claim files last said this process holds the claim.
    self._checked_at = _clock()
    self._count = 0
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._beat_until_stopped, daemon=True,
                                    name=f'claim heartbeat {run_dir}')
    self._thread.start()

  def __enter__(self) -> 'Claim':
    return self

  def __exit__(self, *exc_info: object) -> None:
    self.release()

  def _taker(self) -> str | None:
    """Who took this claim over, as a phrase; None while this process holds it.

    Raises OSError when the files cannot be read (an NFS hiccup is no loss).
    """
    mine = _path(self._claim_dir, self.holder.generation, 'json')
    try:
      with open(mine) as f:
        ours = self.holder.token in f.read()
    except FileNotFoundError:
      ours = False
    if not ours:  # claim/ was emptied by hand, and maybe claimed afresh since.
      return f'its record {CLAIM_DIR}/{self.holder.generation}.json is gone or rewritten'
    if not os.path.exists(_path(self._claim_dir, self.holder.generation + 1, 'json')):
      return None
    taker = _read_holder(self._claim_dir, self.holder.generation + 1)
    who = 'someone (record unreadable)' if taker is None else taker.describe()
    why = '' if taker is None else f' ({taker.took_over})'
    return f'generation {self.holder.generation + 1} was taken by {who}{why}'

  def held(self) -> bool:
    """Whether this process still holds the claim (reads the claim files).

    Raises:
      OSError: the claim files cannot be read.
    """
    return not self._released and self._taker() is None

  def fence(self, recheck_after: float = 0.0) -> None:
    """Returns only while this process holds the claim: call it just before a
    write into the run dir, so that a holder whose claim was taken over while it
    was stopped or cut off writes nothing there.

    It reads the claim files (see `_taker`: one open of a small file, one stat),
    unless `recheck_after` is positive and they said this process holds the
    claim less than `recheck_after` seconds ago: for frequent writes that commit
    nothing, such as log lines. That age is measured on a clock that counts the
    time the process spent stopped or suspended, so a holder that wakes after a
    takeover, which needs minutes of silence (rule 3), reads them before its
    first write; a takeover by rule 4 is seen within `recheck_after` seconds.

    Raises:
      ClaimLost: the claim was taken over (after `on_lost`, which by default
        exits the process, returned) or released.
      OSError: the claim files cannot be read; the write must not be made either.
    """
    if self._released:
      raise ClaimLost(f'the claim on {self.run_dir} was released; nothing more may be '
                      'written there')
    if recheck_after > 0 and _clock() - self._checked_at < recheck_after:
      return
    checked = _clock()
    taker = self._taker()
    if taker is None:
      self._checked_at = checked
      return
    raise ClaimLost(self._lose(taker))

  def _lose(self, taker: str) -> str:
    """Stops the heartbeat and calls `on_lost`, once; returns the line."""
    message = (f'lost the claim on {self.run_dir} (generation {self.holder.generation}): '
               f'{taker}; stopping work there')
    self._stop.set()
    with self._lost_lock:
      first, self._lost = not self._lost, True
    if first:
      self._on_lost(message)
    return message

  def _beat(self) -> None:
    """One heartbeat: stop and call `on_lost` if the claim is lost, else write."""
    checked = _clock()
    taker = self._taker()
    if taker is not None:
      self._lose(taker)
      return
    self._checked_at = checked
    self._count += 1
    _write_heartbeat(_path(self._claim_dir, self.holder.generation, 'heartbeat'),
                     self._count, self.holder.token)

  def _beat_until_stopped(self) -> None:
    while not self._stop.wait(self._heartbeat_seconds):
      try:
        self._beat()
      except Exception:  # pylint: disable=broad-except
        # A full disk or an NFS hiccup must not end the heartbeat: try again next beat.
        logging.exception('claim heartbeat in %s failed; retrying in %g s',
                          self.run_dir, self._heartbeat_seconds)

  def stop_heartbeat(self) -> None:
    """Stops the heartbeat without releasing: the claim is later judged gone."""
    self._stop.set()
    if self._thread.is_alive() and self._thread is not threading.current_thread():
      self._thread.join()

  def release(self) -> None:
    """Lets go of the run dir (creates claim/<g>.released); a second call does nothing."""
    if self._released:
      return
    self._released = True
    self.stop_heartbeat()
    with contextlib.suppress(FileExistsError):
      with open(_path(self._claim_dir, self.holder.generation, 'released'), 'x') as f:
        json.dump({'time': time.time()}, f)


def _new_holder(generation: int, took_over: str | None) -> Holder:
  """This process's record for `generation`."""
  return Holder(host=socket.gethostname(), pid=os.getpid(),
                slurm_job_id=liveness.slurm_job_id(),
                slurm_restart_count=liveness.slurm_restart_count(),
                since=time.time(), token=uuid.uuid4().hex,
                start_time=liveness.process_start_time(os.getpid()),
                pid_namespace=liveness.pid_namespace(),
                took_over=took_over, generation=generation)


def _takeover_reason(now: Status) -> str | None:
  """A new record's `took_over`: why the last holder is gone and, when it did not
  let go, how long after its last sign of life it was taken over."""
  if now.state != GONE or now.heartbeat_age is None:
    return now.reason
  return f'{now.reason}; taken over {now.heartbeat_age:.1f} s after its last sign of life'


def try_acquire(run_dir: str, *, stale_after_seconds: float = STALE_AFTER_SECONDS,
                heartbeat_seconds: float = HEARTBEAT_SECONDS,
                on_lost: Callable[[str], None] | None = None,
                over: Callable[[], bool] | None = None) -> Claim | None:
  """Claims `run_dir` if it is free, released or its holder is gone.

  Args:
    run_dir: the run directory; its claim/ subdirectory is created if need be.
    stale_after_seconds: rule 3's limit on the age of the holder's heartbeat.
    heartbeat_seconds: how often the returned claim's heartbeat is written.
    on_lost: called with one line if the claim is found taken over at a
      heartbeat or a fence; by default the process prints it and exits with
      LOST_EXIT_STATUS.
    over: whether the run is over, asked when the last holder released its
      claim: a holder writes the run's result before it lets go, so a run that
      finished since the caller last looked is not claimed again.

  Returns:
    The claim, its heartbeat started; None if a live holder has it, another
    worker claimed it first, or it was released and `over()` says the run is over.

  Raises:
    ValueError: heartbeat_seconds is not positive and at most a third of
      stale_after_seconds.
  """
  if not 0 < heartbeat_seconds <= stale_after_seconds / 3:
    raise ValueError(f'heartbeat_seconds={heartbeat_seconds:g} must be positive and at most '
                     f'a third of stale_after_seconds={stale_after_seconds:g}, so that a '
                     'late heartbeat or two does not make a live holder look gone')
  claim_dir = os.path.join(run_dir, CLAIM_DIR)
  top = _top_generation(claim_dir)
  if top < 0:  # Made only when missing: a worker looks at many held runs per claim.
    os.makedirs(claim_dir, exist_ok=True)
  now = _judge(claim_dir, top, stale_after_seconds)
  if now.state == HELD or (now.state == RELEASED and over is not None and over()):
    return None
  holder = _new_holder(top + 1, took_over=_takeover_reason(now))
  record = {k: v for k, v in dataclasses.asdict(holder).items() if k != 'generation'}
  if not files.create_exclusive(_path(claim_dir, holder.generation, 'json'),
                         json.dumps(record, indent=2) + '\n', holder.token):
    return None
  return Claim(run_dir, holder, heartbeat_seconds=heartbeat_seconds, on_lost=on_lost)


def _held_message(what: str, held: Status, stale_after_seconds: float) -> str:
  """ClaimHeld's one line: who holds `what`, how fresh, and what to do."""
  now = time.time()
  who = (held.holder.describe(now) if held.holder else
         f'an unknown process ({held.reason})')
  beat = '' if held.heartbeat_age is None else (
      f', last heartbeat {console.duration(held.heartbeat_age)} ago')
  return (f'{what} is held by {who}{beat}; wait for it to end or stop it: a holder that '
          f'has exited, or sent no heartbeat for {console.duration(stale_after_seconds)}, '
          'is taken over by the next claim')


def acquire(run_dir: str, *, what: str, stale_after_seconds: float = STALE_AFTER_SECONDS,
            heartbeat_seconds: float = HEARTBEAT_SECONDS,
            on_lost: Callable[[str], None] | None = None) -> Claim:
  """Like `try_acquire`, but raises ClaimHeld when a live holder has `run_dir`.

  `what` names the run dir in the message, e.g. '--workdir=/x'. Losing a race
  to a worker that then died counts as nothing: it tries again (three times).

  Raises:
    ClaimHeld: str() is one line naming the holder and what to do.
  """
  for _ in range(3):
    claim = try_acquire(run_dir, stale_after_seconds=stale_after_seconds,
                        heartbeat_seconds=heartbeat_seconds, on_lost=on_lost)
    if claim is not None:
      return claim
    held = status(run_dir, stale_after_seconds=stale_after_seconds)
    if held.state == HELD:
      break
  raise ClaimHeld(_held_message(what, held, stale_after_seconds), held)
