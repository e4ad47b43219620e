"""Claims on run dirs (train/common/claims.py): races, dead, stopped and released holders.

Holders that die or stop are real child processes (`python -c`, never a fork of
the test process, which may have started JAX); the rules that need another
host or Slurm read records written here and a patched `liveness.slurm_job`.
Times are tiny (heartbeats of 0.05 to 0.1 s, stale after 1 s) and every wait
polls with a deadline, so a busy machine slows the tests but does not fail them.
"""

import builtins
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from typing import Callable

import pytest

from train.bench import claim_scale
from train.common import claim_queue
from train.common import claims
from train.common import files
from train.common import liveness

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RACERS = 8
# A process that claims argv[1] when the file argv[2] appears, prints the
# generation it won (or 'none'), and holds it until the file argv[3] appears.
RACER = """
import os, sys, time
from train.common import claims
from train.common import files
run_dir, go, done = sys.argv[1:4]
print('ready', flush=True)
while not os.path.exists(go):
  time.sleep(0.001)
claim = claims.try_acquire(run_dir)
print('none' if claim is None else claim.holder.generation, flush=True)
while not os.path.exists(done):
  time.sleep(0.01)
"""
# A process that claims argv[1] (heartbeat argv[2] s, stale after argv[3] s),
# prints its generation and sleeps.
HOLDER = """
import sys, time
from train.common import claims
from train.common import files
claim = claims.acquire(sys.argv[1], what='test', heartbeat_seconds=float(sys.argv[2]),
                       stale_after_seconds=float(sys.argv[3]))
print(claim.holder.generation, flush=True)
time.sleep(60)
"""
# What a patched liveness.slurm_job says of a job running in its first run.
_RUNNING = liveness.SlurmJob(frozenset({'RUNNING'}), 0)


@pytest.fixture(autouse=True)
def no_slurm(monkeypatch):
  """Records without a Slurm job (for this process and its children), whatever runs the tests."""
  for name in ('SLURM_JOB_ID', 'SLURM_ARRAY_JOB_ID', 'SLURM_ARRAY_TASK_ID',
               'SLURM_RESTART_COUNT'):
    monkeypatch.delenv(name, raising=False)


@pytest.fixture
def keep() -> Callable[[claims.Claim | None], claims.Claim]:
  """Registers a claim of this process, asserting it is one, to be released after the test."""
  made = []

  def register(claim: claims.Claim | None) -> claims.Claim:
    assert claim is not None
    made.append(claim)
    return claim

  yield register
  for claim in made:
    claim.release()


def _child(script: str, *args: str) -> subprocess.Popen:
  return subprocess.Popen([sys.executable, '-c', script, *args], cwd=REPO, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(predicate: Callable[[], object], seconds: float = 300.0) -> None:
  """Polls `predicate` until it is true; fails after `seconds`, a hang guard."""
  deadline = time.monotonic() + seconds
  while not predicate():
    assert time.monotonic() < deadline, f'still not true after {seconds} s'
    time.sleep(0.02)


def _write_record(run_dir: str, generation: int, **fields) -> None:
  """Writes claim/<generation>.json as another worker would have."""
  record = dict(host='another-host', pid=4242, slurm_job_id=None, since=time.time(),
                token='0' * 32, start_time=None, pid_namespace=None, took_over=None)
  record.update(fields)
  os.makedirs(os.path.join(run_dir, 'claim'), exist_ok=True)
  with open(os.path.join(run_dir, 'claim', f'{generation}.json'), 'x') as f:
    json.dump(record, f)


def _record(run_dir: str, generation: int) -> dict:
  with open(os.path.join(run_dir, 'claim', f'{generation}.json')) as f:
    return json.load(f)


def test_a_fresh_dir_is_claimed_as_generation_0_once(tmp_path, keep):
  run_dir = str(tmp_path / 'run')
  assert claims.status(run_dir).state == claims.FREE
  claim = keep(claims.try_acquire(run_dir))
  record = _record(run_dir, 0)
  assert record == dict(host=socket.gethostname(), pid=os.getpid(), slurm_job_id=None,
                        since=claim.holder.since, token=claim.holder.token,
                        start_time=liveness.process_start_time(os.getpid()),
                        pid_namespace=liveness.pid_namespace(), took_over=None,
                        slurm_restart_count=None)
  assert isinstance(record['start_time'], int) and len(record['token']) == 32
  assert abs(record['since'] - time.time()) < 60
  assert claim.holder.generation == 0 and claim.held()
  now = claims.status(run_dir)
  assert (now.state, now.holder) == (claims.HELD, claim.holder)
  assert claims.try_acquire(run_dir) is None
  with pytest.raises(claims.ClaimHeld) as held:
    claims.acquire(run_dir, what='--workdir=/x')
  message = str(held.value)
  assert '\n' not in message and message.startswith('--workdir=/x is held by ')
  assert f'host {socket.gethostname()}, pid {os.getpid()}' in message
  assert held.value.status.holder == claim.holder
  assert sorted(os.listdir(os.path.join(run_dir, 'claim'))) == ['0.json']  # No temporaries.


@pytest.mark.parametrize('env, expected', [
    ({'SLURM_ARRAY_JOB_ID': '45', 'SLURM_ARRAY_TASK_ID': '1', 'SLURM_JOB_ID': '46'}, '45_1'),
    ({'SLURM_ARRAY_JOB_ID': '45', 'SLURM_JOB_ID': '46'}, '46'),
    ({}, None),
])
def test_the_record_names_the_slurm_job(tmp_path, monkeypatch, keep, env, expected):
  for name, value in env.items():
    monkeypatch.setenv(name, value)
  monkeypatch.setattr(liveness, 'slurm_job', lambda job_id: _RUNNING)
  claim = keep(claims.try_acquire(str(tmp_path)))
  assert claim.holder.slurm_job_id == expected == _record(str(tmp_path), 0)['slurm_job_id']


def _race(run_dir: str, signals: str) -> list[str]:
  """What RACERS processes, let go at once, print when they claim `run_dir`."""
  go, done = os.path.join(signals, 'go'), os.path.join(signals, 'done')
  racers = [_child(RACER, run_dir, go, done) for _ in range(RACERS)]
  try:
    assert [p.stdout.readline() for p in racers] == ['ready\n'] * RACERS
    open(go, 'x').close()
    won = [p.stdout.readline().strip() for p in racers]
    open(done, 'x').close()
    assert [p.wait(timeout=300) for p in racers] == [0] * RACERS  # A hang guard.
    return won
  finally:
    for p in racers:
      p.kill()
      p.communicate()


def test_of_racers_for_a_free_dir_exactly_one_wins(tmp_path):
  run_dir = str(tmp_path / 'run')
  won = _race(run_dir, str(tmp_path))
  assert sorted(won) == ['0'] + ['none'] * (RACERS - 1)
  assert sorted(os.listdir(os.path.join(run_dir, 'claim'))) == ['0.json']


def test_of_racers_for_a_gone_holder_exactly_one_takes_over(tmp_path):
  run_dir = str(tmp_path / 'run')
  _write_record(run_dir, 0, since=time.time() - 1000)
  assert claims.status(run_dir).state == claims.GONE
  won = _race(run_dir, str(tmp_path))
  assert sorted(won) == ['1'] + ['none'] * (RACERS - 1)
  assert sorted(os.listdir(os.path.join(run_dir, 'claim'))) == ['0.json', '1.json']
  # 1000 s and however long the racers took to start on a busy machine.
  assert re.match(r'heartbeat 1\d\d\d s old', _record(run_dir, 1)['took_over'])


def test_a_killed_holder_is_gone_at_once(tmp_path, keep):
  run_dir = str(tmp_path)
  holder = _child(HOLDER, run_dir, '30', '600')
  try:
    assert holder.stdout.readline() == '0\n'
    assert claims.status(run_dir).state == claims.HELD
    holder.kill()
    # Not yet reaped: a zombie, which counts as gone too.
    _wait_for(lambda: claims.status(run_dir).state == claims.GONE)  # Not 600 s later.
  finally:
    holder.kill()
    holder.communicate()
  gone = claims.status(run_dir)
  assert gone.reason == f'holder pid {holder.pid} on host {socket.gethostname()} is gone'
  claim = keep(claims.try_acquire(run_dir))
  assert claim.holder.generation == 1
  assert re.fullmatch(re.escape(gone.reason) + r'; taken over \d+\.\d s after its last sign '
                      'of life', claim.holder.took_over)


def test_a_stopped_holder_is_taken_over_and_exits_75_when_it_wakes(tmp_path, keep):
  run_dir = str(tmp_path)
  holder = _child(HOLDER, run_dir, '0.1', '1')
  try:
    assert holder.stdout.readline() == '0\n'
    os.kill(holder.pid, signal.SIGSTOP)
    # Alive but silent: taken over once its heartbeat is a second old.
    _wait_for(lambda: claims.status(run_dir, stale_after_seconds=1).state == claims.GONE)
    claim = keep(claims.try_acquire(run_dir, stale_after_seconds=1, heartbeat_seconds=0.1))
    assert claim.holder.generation == 1
    assert claim.holder.took_over.startswith('heartbeat ')
    os.kill(holder.pid, signal.SIGCONT)
    _, stderr = holder.communicate(timeout=300)  # A hang guard.
    assert holder.returncode == claims.LOST_EXIT_STATUS == 75
    assert stderr.count('\n') == 1 and stderr.startswith('error: lost the claim on ')
    assert f'pid {os.getpid()}' in stderr and claim.held()
  finally:
    holder.kill()
    holder.communicate()


def test_a_released_claim_of_a_run_that_is_over_is_not_taken(tmp_path):
  claims.try_acquire(str(tmp_path)).release()
  asked = []
  assert claims.try_acquire(str(tmp_path), over=lambda: asked.append(1) or True) is None
  assert asked == [1] and sorted(os.listdir(tmp_path / 'claim')) == ['0.json', '0.released']


def test_a_released_claim_is_taken_as_the_next_generation(tmp_path, keep):
  run_dir = str(tmp_path)
  with claims.acquire(run_dir, what='test', heartbeat_seconds=0.05) as claim:
    _wait_for(lambda: os.path.exists(os.path.join(run_dir, 'claim', '0.heartbeat')))
  assert not claim.held()
  claim.release()  # Harmless.
  released = claims.status(run_dir)
  assert (released.state, released.holder, released.reason) == (
      claims.RELEASED, claim.holder, 'released')
  # The heartbeat has stopped: its file no longer changes.
  with open(os.path.join(run_dir, 'claim', '0.heartbeat')) as f:
    beat = f.read()
  time.sleep(0.2)
  with open(os.path.join(run_dir, 'claim', '0.heartbeat')) as f:
    assert f.read() == beat
  again = keep(claims.try_acquire(run_dir))
  assert (again.holder.generation, again.holder.took_over) == (1, 'released')
  assert claims.status(run_dir).state == claims.HELD


@pytest.mark.parametrize('job, state, reason', [
    (_RUNNING, claims.HELD, None),
    (liveness.SlurmJob(frozenset({'PENDING'}), 1), claims.GONE,
     'slurm job 45_1 is no longer running'),
    (liveness.SlurmJob(frozenset(), None), claims.GONE, 'slurm job 45_1 is no longer running'),
    # Requeued after its node was lost, and running again: the holder's run is gone.
    (liveness.SlurmJob(frozenset({'RUNNING'}), 1), claims.GONE,
     'slurm job 45_1 was requeued since (run 1 of it now, run 0 held the claim)'),
    (None, claims.HELD, None)])
def test_a_holder_in_slurm_is_gone_when_squeue_says_its_job_is_not_running(
    tmp_path, monkeypatch, job, state, reason):
  asked = []
  monkeypatch.setattr(liveness, 'slurm_job', lambda job_id: asked.append(job_id) or job)
  # Another host: no pid rule.
  _write_record(str(tmp_path), 0, slurm_job_id='45_1', slurm_restart_count=0)
  now = claims.status(str(tmp_path))
  assert (now.state, asked) == (state, ['45_1'])
  if state == claims.GONE:
    assert now.reason == reason


def test_a_record_without_a_restart_count_is_judged_by_the_job_state_alone(
    tmp_path, monkeypatch):
  monkeypatch.setattr(liveness, 'slurm_job',
                      lambda job_id: liveness.SlurmJob(frozenset({'RUNNING'}), 3))
  _write_record(str(tmp_path), 0, slurm_job_id='45_1')  # Written before restarts were.
  now = claims.status(str(tmp_path))
  assert (now.state, now.holder.slurm_restart_count) == (claims.HELD, None)


def test_a_stale_heartbeat_outweighs_a_running_slurm_job(tmp_path, monkeypatch):
  monkeypatch.setattr(liveness, 'slurm_job', lambda job: _RUNNING)
  _write_record(str(tmp_path), 0, slurm_job_id='45_1', since=time.time() - 700)
  assert claims.status(str(tmp_path)).state == claims.GONE


@pytest.mark.parametrize('printed, status, stderr, expected', [
    ('RUNNING|0|', 0, '', liveness.SlurmJob(frozenset({'RUNNING'}), 0)),
    ('COMPLETING|2|', 0, '', liveness.SlurmJob(frozenset({'COMPLETING'}), 2)),
    ('PENDING|1|', 0, '', liveness.SlurmJob(frozenset({'PENDING'}), 1)),
    ('', 0, '', liveness.SlurmJob(frozenset(), None)),
    # A job that ended longer ago than MinJobAge: squeue no longer knows it.
    ('', 1, 'slurm_load_jobs error: Invalid job id specified',
     liveness.SlurmJob(frozenset(), None)),
    ('', 1, 'slurm_load_jobs error: Unable to contact slurm controller', None)])
def test_slurm_job_reads_squeue(tmp_path, monkeypatch, printed, status, stderr, expected):
  squeue = tmp_path / 'squeue'
  squeue.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\n'
                    f'[ -n "{printed}" ] && echo "{printed}"\necho "{stderr}" >&2\n'
                    f'exit {status}\n')
  squeue.chmod(squeue.stat().st_mode | stat.S_IXUSR)
  monkeypatch.setenv('PATH', str(tmp_path))
  job = liveness.slurm_job('45_1')
  assert job == expected
  assert job is None or job.running == (printed.split('|')[0] in ('RUNNING', 'COMPLETING'))
  assert (tmp_path / 'args').read_text() == '-h -j 45_1 -O State:|,RestartCnt:|\n'


def test_without_squeue_slurm_decides_nothing(tmp_path, monkeypatch):
  monkeypatch.setenv('PATH', str(tmp_path))
  assert liveness.slurm_job('45_1') is None


@pytest.mark.parametrize('env, expected', [
    ({'SLURM_JOB_ID': '46'}, 0), ({'SLURM_JOB_ID': '46', 'SLURM_RESTART_COUNT': '2'}, 2),
    ({'SLURM_RESTART_COUNT': '2'}, None)])
def test_the_record_names_the_run_of_a_requeued_job(tmp_path, monkeypatch, keep, env,
                                                    expected):
  for name, value in env.items():
    monkeypatch.setenv(name, value)
  monkeypatch.setattr(liveness, 'slurm_job', lambda job_id: _RUNNING)
  claim = keep(claims.try_acquire(str(tmp_path)))
  assert claim.holder.slurm_restart_count == expected
  assert _record(str(tmp_path), 0)['slurm_restart_count'] == expected


@pytest.mark.parametrize('offset, state', [(0, claims.HELD), (1, claims.GONE), (None, claims.HELD)])
def test_a_reused_pid_is_told_by_its_start_time(tmp_path, offset, state):
  pid = os.getppid()  # Alive, and not this process.
  started = liveness.process_start_time(pid)
  assert isinstance(started, int)
  _write_record(str(tmp_path), 0, host=socket.gethostname(), pid=pid,
                pid_namespace=liveness.pid_namespace(),
                start_time=None if offset is None else started + offset)
  now = claims.status(str(tmp_path))
  assert now.state == state
  if state == claims.GONE:
    assert now.reason == (f'holder pid {pid} on host {socket.gethostname()} is gone '
                          '(the pid now belongs to another process)')


@pytest.mark.parametrize('namespace, state', [('ours', claims.GONE),
                                              ('pid:[1]', claims.HELD)])
def test_a_dead_pid_counts_only_in_this_pid_namespace(tmp_path, namespace, state):
  dead = subprocess.Popen([sys.executable, '-c', ''])
  dead.wait()
  _write_record(str(tmp_path), 0, host=socket.gethostname(), pid=dead.pid,
                pid_namespace=liveness.pid_namespace() if namespace == 'ours' else namespace)
  assert claims.status(str(tmp_path)).state == state


@pytest.mark.parametrize('heartbeat, stale', [(0, 600), (-1, 600), (201, 600)])
def test_a_heartbeat_too_slow_for_the_stale_limit_is_refused(tmp_path, heartbeat, stale):
  with pytest.raises(ValueError, match='at most a third of stale_after_seconds=600'):
    claims.try_acquire(str(tmp_path), heartbeat_seconds=heartbeat, stale_after_seconds=stale)
  assert not os.path.exists(tmp_path / 'claim')


@pytest.mark.parametrize('text', ['{"host": "h", "pid":', '[]', '{"host": "h"}'])
def test_a_damaged_record_is_held_until_stale_by_its_mtime(tmp_path, keep, text):
  run_dir = str(tmp_path)
  path = tmp_path / 'claim' / '0.json'
  path.parent.mkdir()
  path.write_text(text)
  now = claims.status(run_dir)
  assert (now.state, now.holder, now.reason) == (
      claims.HELD, None, 'record claim/0.json cannot be read')
  with pytest.raises(claims.ClaimHeld) as held:
    claims.acquire(run_dir, what='run')
  assert str(held.value).startswith('run is held by an unknown process (record claim/0.json')
  assert '\n' not in str(held.value)
  os.utime(path, (time.time() - 700, time.time() - 700))
  assert claims.status(run_dir).state == claims.GONE
  claim = keep(claims.try_acquire(run_dir))
  assert claim.holder.generation == 1
  assert claim.holder.took_over.startswith('record claim/0.json cannot be read and is 7')


# 2100-01-01: a record or heartbeat dated far in the future (damage, or a clock far off).
_YEAR_2100 = 4102444800.0


def test_a_damaged_record_dated_in_the_future_is_gone_not_held_for_ever(tmp_path, keep):
  # Its mtime is its only sign of life: one past stale_after_seconds ahead of
  # now is as untrustworthy as one past it behind (the docstring's rule).
  run_dir = str(tmp_path)
  path = tmp_path / 'claim' / '0.json'
  path.parent.mkdir()
  path.write_text('garbage')
  os.utime(path, (_YEAR_2100, _YEAR_2100))
  now = claims.status(run_dir)
  assert now.state == claims.GONE
  assert 'cannot be read and is dated' in now.reason and 'in the future' in now.reason
  claim = keep(claims.try_acquire(run_dir))
  assert claim.holder.generation == 1
  # A little ahead (clocks that differ by less than the limit) still holds.
  other = tmp_path / 'other'
  (other / 'claim').mkdir(parents=True)
  (other / 'claim' / '0.json').write_text('garbage')
  os.utime(other / 'claim' / '0.json', (time.time() + 60, time.time() + 60))
  assert claims.status(str(other)).state == claims.HELD


# Seconds ahead of now (not absolute times: xdist's workers must collect the same ids).
@pytest.mark.parametrize('ahead', [_YEAR_2100 - time.time(), 3600.0], ids=['year_2100', 'hour'])
def test_a_readable_record_dated_in_the_future_is_gone(tmp_path, keep, ahead):
  _write_record(str(tmp_path), 0, since=time.time() + ahead)
  now = claims.status(str(tmp_path))
  assert now.state == claims.GONE and 'in the future' in now.reason, now
  assert keep(claims.try_acquire(str(tmp_path))).holder.generation == 1


def test_a_heartbeat_dated_in_the_future_is_stale(tmp_path):
  _write_record(str(tmp_path), 0)
  with open(tmp_path / 'claim' / '0.heartbeat', 'w') as f:
    json.dump({'time': _YEAR_2100, 'count': 1}, f)
  assert claims.status(str(tmp_path)).state == claims.GONE


@pytest.mark.parametrize('fields', [{'pid': 2**70}, {'pid': True}, {'since': 1e300},
                                    {'since': 2**70}])
def test_a_record_with_an_impossible_pid_or_date_counts_as_damaged(tmp_path, fields):
  # 2**70 made os.kill raise OverflowError; 1e300 made time.gmtime raise.
  _write_record(str(tmp_path), 0, host=socket.gethostname(),
                pid_namespace=liveness.pid_namespace(), **fields)
  now = claims.status(str(tmp_path))
  assert (now.state, now.holder, now.reason) == (
      claims.HELD, None, 'record claim/0.json cannot be read')


def test_a_holder_that_finds_itself_taken_over_calls_on_lost_once(tmp_path, keep):
  lost = []
  claim = keep(claims.try_acquire(str(tmp_path), heartbeat_seconds=0.05, on_lost=lost.append))
  _write_record(str(tmp_path), 1, took_over='heartbeat 700 s old')
  assert not claim.held()
  _wait_for(lambda: lost)
  time.sleep(0.2)
  assert len(lost) == 1
  assert 'generation 1 was taken by host another-host, pid 4242' in lost[0]
  assert lost[0].endswith('(heartbeat 700 s old); stopping work there')


def _count_calls(monkeypatch, module, name: str) -> list:
  """Patches module.name (a builtin, for `open`) to record each call's first
  argument, then call through."""
  real, calls = getattr(module, name, None) or getattr(builtins, name), []

  def counted(*args, **kwargs):
    calls.append(args[0])
    return real(*args, **kwargs)

  monkeypatch.setattr(module, name, counted, raising=False)
  return calls


def test_a_fence_reads_one_record_and_stats_one_name_then_ends_a_lost_holder(
    tmp_path, monkeypatch, keep):
  lost = []
  claim = keep(claims.try_acquire(str(tmp_path), on_lost=lost.append))
  opened = _count_calls(monkeypatch, claims, 'open')
  statted = _count_calls(monkeypatch, os, 'stat')
  claim.fence()  # Held: returns.
  claim_dir = os.path.join(str(tmp_path), 'claim')
  # What a fence costs: one small file read, one name looked up.
  assert opened == [os.path.join(claim_dir, '0.json')]
  assert statted == [os.path.join(claim_dir, '1.json')]
  _write_record(str(tmp_path), 1, took_over='heartbeat 700 s old')
  with pytest.raises(claims.ClaimLost) as taken:
    claim.fence()
  assert 'generation 1 was taken by host another-host, pid 4242' in str(taken.value)
  assert lost == [str(taken.value)]
  with pytest.raises(claims.ClaimLost):
    claim.fence()
  assert len(lost) == 1  # on_lost once, however many writes find out.


def test_a_fence_for_log_lines_rereads_only_after_its_interval_or_a_stop(
    tmp_path, monkeypatch, keep):
  now = [1000.0]
  monkeypatch.setattr(claims, '_clock', lambda: now[0])
  lost = []
  claim = keep(claims.try_acquire(str(tmp_path), on_lost=lost.append))
  claim.fence()
  _write_record(str(tmp_path), 1)
  now[0] += 0.5
  claim.fence(recheck_after=1.0)  # Read half a second ago: not again.
  assert not lost
  now[0] += 600.0  # The process was stopped for ten minutes: it reads them before writing.
  with pytest.raises(claims.ClaimLost):
    claim.fence(recheck_after=1.0)
  assert len(lost) == 1


def test_a_released_claim_fences_every_write(tmp_path):
  claim = claims.try_acquire(str(tmp_path))
  claim.release()
  with pytest.raises(claims.ClaimLost, match='was released'):
    claim.fence(recheck_after=1.0)


def test_a_holder_whose_claim_dir_was_removed_has_lost_it(tmp_path, keep):
  claim = keep(claims.try_acquire(str(tmp_path), on_lost=lambda message: None))
  for name in os.listdir(tmp_path / 'claim'):
    os.remove(tmp_path / 'claim' / name)
  assert not claim.held()
  # Another worker now claims generation 0 afresh; the first still sees its loss.
  other = keep(claims.try_acquire(str(tmp_path), on_lost=lambda message: None))
  assert other.holder.generation == 0 and other.held() and not claim.held()


def test_the_heartbeat_survives_a_failed_write(tmp_path, monkeypatch, keep, caplog):
  write = claims._write_heartbeat
  calls = []

  def fail_once(*args) -> None:
    calls.append(args)
    if len(calls) == 1:
      raise OSError(28, 'No space left on device')
    write(*args)

  monkeypatch.setattr(claims, '_write_heartbeat', fail_once)
  keep(claims.try_acquire(str(tmp_path), heartbeat_seconds=0.05))
  beat_file = tmp_path / 'claim' / '0.heartbeat'
  _wait_for(beat_file.exists)
  beat = json.loads(beat_file.read_text())
  assert beat['count'] >= 2 and abs(beat['time'] - time.time()) < 60
  assert any('heartbeat' in r.getMessage() and isinstance(r.exc_info[1], OSError)
             for r in caplog.records)


def test_describe_names_host_pid_job_and_time():
  holder = claims.Holder(host='h', pid=123, slurm_job_id='45_1', since=1796185800.0,
                         token='t', start_time=None, pid_namespace=None, took_over=None,
                         generation=0)
  assert holder.describe() == 'host h, pid 123 (slurm job 45_1), since 2026-12-02 04:30:00 UTC'
  assert holder.describe(now=1796185800.0 + 300).endswith('UTC (5m00s ago)')


def _sshfs_stat(real_stat: Callable[..., os.stat_result]) -> Callable[..., os.stat_result]:
  """os.stat as sshfs answers it: a link count of 1 for every file."""
  def stat_with_one_link(path, *args, **kwargs) -> os.stat_result:
    found = real_stat(path, *args, **kwargs)
    return os.stat_result((found.st_mode, found.st_ino, found.st_dev, 1, *found[4:10]))
  return stat_with_one_link


def _link_that_fails(error: OSError, lands: bool) -> Callable[[str, str], None]:
  """os.link that reports `error`, after making the link if `lands` (a lost reply)."""
  real_link = os.link

  def link(source: str, target: str) -> None:
    if lands:
      real_link(source, target)
    raise error
  return link


@pytest.mark.parametrize('error', [OSError(5, 'Input/output error'),
                                   FileExistsError(17, 'File exists')])
def test_a_link_whose_reply_was_lost_is_told_by_its_token_not_its_link_count(
    tmp_path, monkeypatch, error):
  """The link landed but its reply was lost: an error, or EEXIST from a retried
  request that met the first one's link. The file at the name holds this
  writer's token, whatever link count the filesystem reports (sshfs: 1)."""
  monkeypatch.setattr(os, 'stat', _sshfs_stat(os.stat))
  monkeypatch.setattr(os, 'link', _link_that_fails(error, lands=True))
  path = str(tmp_path / '0.json')
  assert files.create_exclusive(path, '{"token": "abc123"}\n', 'abc123') is True
  assert open(path).read() == '{"token": "abc123"}\n'
  assert os.listdir(tmp_path) == ['0.json']  # The unique name is gone.


def test_a_link_that_failed_is_an_error_if_nothing_is_there_else_a_lost_race(tmp_path,
                                                                             monkeypatch):
  path = str(tmp_path / '0.json')
  monkeypatch.setattr(os, 'link', _link_that_fails(OSError(5, 'Input/output error'),
                                                   lands=False))
  with pytest.raises(OSError, match='Input/output error'):
    files.create_exclusive(path, '{"token": "abc123"}\n', 'abc123')
  open(path, 'x').write('{"token": "another"}\n')  # Another writer's, made first.
  # What sshfs reports for a link onto a name another client has just made.
  monkeypatch.setattr(os, 'link', _link_that_fails(PermissionError(1, 'Operation not permitted'),
                                                   lands=False))
  assert files.create_exclusive(path, '{"token": "abc123"}\n', 'abc123') is False
  monkeypatch.undo()
  assert files.create_exclusive(path, '{"token": "abc123"}\n', 'abc123') is False
  assert open(path).read() == '{"token": "another"}\n'
  assert os.listdir(tmp_path) == ['0.json']


def test_heartbeats_have_one_size_and_an_unreadable_one_counts_by_its_mtime(tmp_path, keep):
  """sshfs caches a file's size: a reader elsewhere would cut a longer heartbeat short."""
  claim_dir = str(tmp_path / 'claim')
  os.makedirs(claim_dir)
  for count in (1, 10**15):
    claims._write_heartbeat(os.path.join(claim_dir, '0.heartbeat'), count, 'tok')
    assert os.path.getsize(os.path.join(claim_dir, '0.heartbeat')) == claims.HEARTBEAT_BYTES
  # Cut short (a reader's stale size), the heartbeat of a holder claimed long ago
  # is still a sign of life by its mtime, not as old as the claim.
  _write_record(str(tmp_path), 0, since=time.time() - 1000)
  with open(os.path.join(claim_dir, '0.heartbeat'), 'w') as f:
    f.write('{"time": 1796185800.1, "cou')
  now = claims.status(str(tmp_path))
  assert (now.state, now.heartbeat_age < 60) == (claims.HELD, True)


# --- many runs: the queue a worker claims from, and the simulation of its scale ---


def _finished_runs(directory: str, count: int, finished: int) -> list:
  """`count` runs laid out as a study's, the first `finished` with a result."""
  runs = claim_scale.simulated_runs(directory, count)
  for run in runs[:finished]:
    os.makedirs(run.run_dir)
    files.write_json(run.result_path, {})
  return runs


def test_a_queue_looks_at_each_finished_run_once(tmp_path, monkeypatch, keep):
  runs = _finished_runs(str(tmp_path), 50, 30)
  shown = []
  queue = claim_queue.ClaimQueue(runs, on_finished=shown.append)
  statted = _count_calls(monkeypatch, os, 'stat')
  run, claim = queue.claim_next()
  keep(claim)
  assert run.seed == 30 and shown == runs[:30] and queue.finished == 30
  results_looked_at = [p for p in statted if p.endswith('result.json')]
  assert len(results_looked_at) == 31 + 1  # Each run once; the claimed one again after.
  statted.clear()
  run, claim = queue.claim_next()
  keep(claim)
  # The second claim looks at the run held (30) and the one it takes (31) only.
  assert run.seed == 31 and sorted({p for p in statted if p.endswith('result.json')}) == [
      runs[30].result_path, runs[31].result_path]
  assert len(shown) == 30


def test_a_queue_skips_failed_and_held_runs_and_ends_when_none_is_free(tmp_path, keep):
  runs = _finished_runs(str(tmp_path), 3, 0)
  os.makedirs(runs[0].run_dir)
  files.write_json(runs[0].failure_path, {'error': 'x'})
  keep(claims.try_acquire(runs[1].claim_dir))
  run, claim = claim_queue.ClaimQueue(runs).claim_next()
  keep(claim)
  assert run.seed == 2
  assert claim_queue.ClaimQueue(runs).claim_next() is None


def test_a_simulated_study_of_100_runs_and_4_workers_takes_each_run_once(tmp_path):
  out = str(tmp_path / 'figures.json')
  assert claim_scale.main([f'--dir={tmp_path}', '--runs=100', '--workers=4',
                           f'--json_out={out}']) == 0
  with open(out) as f:
    [figures] = json.load(f)
  assert figures['runs'] == 100 and figures['hosts'] == [socket.gethostname()]
  assert figures['claims_per_second'] > 0 and figures['operations_per_claim_mean'] > 0
  trainers = {}
  for run in claim_scale.simulated_runs(str(tmp_path / 'runs_100'), 100):
    with open(run.result_path) as f:
      trainers[run.seed] = json.load(f)['pid']
    # Generation 0 trained it; a later one only took a released claim and let it go.
    for generation, record in enumerate(_records(run.claim_dir)):
      assert generation == 0 or record['took_over'] == 'released', run.seed
  assert len(trainers) == 100 and len(set(trainers.values())) <= 4


def _records(run_dir: str) -> list[dict]:
  names = sorted((n for n in os.listdir(os.path.join(run_dir, 'claim')) if n.endswith('.json')),
                 key=lambda n: int(n.split('.')[0]))
  return [_record(run_dir, int(n.split('.')[0])) for n in names]
