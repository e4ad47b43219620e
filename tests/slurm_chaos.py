"""A chaos loop for a study whose workers run on the nodes of a Slurm cluster
(tests/test_slurm_nodes.py), and what shows afterwards that nothing was lost.

`Chaos` kills, at random times drawn from a seeded random.Random, either a
worker process (the holder pid of a claim record, SIGKILLed from the host: the
nodes share its pid namespace) or a whole node (`slurm_cluster.sh kill-node`, a
power loss), and revives each node once Slurm marks it down. Every kill records
the claims it ended: (run, generation) pairs, each of which must later be taken
over.

`check_one_writer` reads each run's claim generations and the workers' logs
(DIR/workers/<host>.<pid>.log) and checks that no two holders ever trained the
run at once. `chaos_record` gives the figures that docs/cluster.md tabulates.
"""

import dataclasses
import datetime
import glob
import json
import os
import random
import re
import signal
import time

from tests import slurm_support
from tests.study_runs import claim_dir, claim_records
from train.common import claims
from train.common import liveness

WORKER, NODE = 'worker', 'node'
# A node is revived once Slurm marks it down (29-30 s after the kill), or after
# this long if Slurm has not by then.
REVIVE_AFTER_SECONDS = 60.0
# An absl log line: level, month, day, hours, minutes, seconds, microseconds.
_LOG_TIME = re.compile(r'^[IWEF](\d\d)(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6}) ')
_TRAINING_IN = re.compile(r': training in (\S+)$')


@dataclasses.dataclass
class Kill:
  """One kill the chaos loop made."""
  kind: str  # WORKER or NODE.
  target: str  # 'pid 123 on node2' or 'node2'.
  at: float  # time.time() just before the kill.
  hit: list[tuple[str, int]]  # The (run dir, claim generation) pairs it ended.


@dataclasses.dataclass
class Chaos:
  """Kills workers and nodes of the study in `workdir` at random times."""
  rng: random.Random
  nodes: list[str]
  workdir: str
  run_dirs: list[str]
  kills: list[Kill] = dataclasses.field(default_factory=list)
  down: dict[str, float] = dataclasses.field(default_factory=dict)  # Node: killed at.
  # Each revived node and the seconds from its kill until it was back (idle in sinfo).
  revived: list[tuple[str, float]] = dataclasses.field(default_factory=list)

  def done(self) -> bool:
    return all(os.path.exists(os.path.join(d, 'result.json')) for d in self.run_dirs)

  def _live_holders(self) -> list[tuple[str, claims.Holder]]:
    """The runs held now by a live worker process (the record's pid, started
    when the record says), not yet finished, and each one's holder."""
    found = []
    for run_dir in self.run_dirs:
      status = claims.status(claim_dir(run_dir), ask_slurm=False)
      holder = status.holder
      if (status.state == claims.HELD and holder is not None
          and not os.path.exists(os.path.join(run_dir, 'result.json'))
          and liveness.pid_alive(holder.pid)
          and liveness.process_start_time(holder.pid) == holder.start_time):
        found.append((run_dir, holder))
    return found

  def _still_holds(self, run_dir: str, holder: claims.Holder) -> bool:
    now = claims.status(claim_dir(run_dir), ask_slurm=False).holder
    return (now is not None and now.generation == holder.generation
            and not os.path.exists(os.path.join(claim_dir(run_dir), claims.CLAIM_DIR,
                                                f'{holder.generation}.released'))
            and not os.path.exists(os.path.join(run_dir, 'result.json')))

  def kill_a_worker(self) -> Kill | None:
    """SIGKILLs the worker process of a random held run; None if none is held.
    The worker is stopped first, so that it cannot finish the run between the
    look and the kill."""
    held = self._live_holders()
    if not held:
      return None
    run_dir, holder = self.rng.choice(held)
    at = time.time()
    os.kill(holder.pid, signal.SIGSTOP)
    if not self._still_holds(run_dir, holder):
      os.kill(holder.pid, signal.SIGCONT)
      return None
    os.kill(holder.pid, signal.SIGKILL)
    kill = Kill(WORKER, f'pid {holder.pid} on {holder.host}', at,
                [(run_dir, holder.generation)])
    self.kills.append(kill)
    return kill

  def kill_a_node(self) -> Kill | None:
    """Kills a random node, unless that would leave none up; records the claims
    it ended: those its workers held when it died (looked up after the kill:
    `kill-node` can take seconds on a loaded machine, and a worker can claim a
    run meanwhile), less those an earlier kill had ended already."""
    up = [n for n in self.nodes if n not in self.down]
    if len(up) < 2:
      return None
    node = self.rng.choice(up)
    at = time.time()
    slurm_support.kill_node(node)
    self.down[node] = at
    ended = {hit for kill in self.kills for hit in kill.hit}
    hit = []
    for run_dir in self.run_dirs:
      status = claims.status(claim_dir(run_dir), ask_slurm=False)
      if (status.state == claims.HELD and status.holder is not None
          and status.holder.host == node
          and (run_dir, status.holder.generation) not in ended
          and not os.path.exists(os.path.join(run_dir, 'result.json'))):
        hit.append((run_dir, status.holder.generation))
    kill = Kill(NODE, node, at, hit)
    self.kills.append(kill)
    return kill

  def revive_the_noticed(self, wait: bool = False) -> None:
    """Revives each killed node that Slurm marks down (or that was killed
    REVIVE_AFTER_SECONDS ago); with `wait`, until none is left down."""
    while self.down:
      for node, at in list(self.down.items()):
        if (slurm_support.node_state(node).startswith('down')
            or time.time() - at > REVIVE_AFTER_SECONDS):
          slurm_support.revive_node(node)
          del self.down[node]
          self.revived.append((node, time.time() - at))
      if not wait:
        return
      time.sleep(0.5)

  def run(self, seconds: float, kills: int) -> None:
    """`kills` kills at random times within the first `seconds`: a worker's in
    the first quarter, a node's within the quarter after it (both early, so
    that a study that goes fast on a quiet machine still meets both kinds), the
    others of either kind at times drawn uniformly from the rest. A kill that
    finds no target (no run held by a live worker, fewer than 2 nodes up) tries
    again until it finds one or the study is done."""
    first = self.rng.uniform(2.0, seconds / 4)
    second = first + self.rng.uniform(0.0, seconds / 4)
    later = sorted(self.rng.uniform(second, seconds) for _ in range(kills - 2))
    kinds = [self.rng.choice([WORKER, WORKER, NODE]) for _ in range(kills - 2)]
    schedule = [(first, WORKER), (second, NODE), *zip(later, kinds)]
    start = time.monotonic()
    for when, kind in schedule:
      while time.monotonic() - start < when:
        self.revive_the_noticed()
        time.sleep(0.2)
      while not self.done():
        made = self.kill_a_node() if kind == NODE else self.kill_a_worker()
        if made is not None:
          print(f'chaos: at {time.monotonic() - start:5.1f} s killed {made.kind} '
                f'{made.target}, ending the claims {made.hit}')
          break
        self.revive_the_noticed()
        time.sleep(0.2)


def _log_time(line: str, year: int) -> float | None:
  """time.time() of an absl log line; None for other lines (native libraries')."""
  m = _LOG_TIME.match(line)
  if m is None or m.group(1) == '00':
    return None
  month, day, hour, minute, second, micro = map(int, m.groups())
  return datetime.datetime(year, month, day, hour, minute, second, micro).timestamp()


def training_spans(log_path: str, year: int) -> dict[str, tuple[float, float]]:
  """For each run dir a worker's log trains in: the times of the first and the
  last log line from its 'training in' line to the next run's (or the log's end)."""
  spans: dict[str, tuple[float, float]] = {}
  current = None
  with open(log_path, errors='replace') as f:
    for line in f:
      started = _TRAINING_IN.search(line.rstrip('\n'))
      if started:
        current = os.path.normpath(started.group(1))
        assert current not in spans, f'{log_path} trains in {current} twice'
      when = _log_time(line, year)
      if current is not None and when is not None:
        first, _ = spans.get(current, (when, when))
        spans[current] = (first, when)
  return spans


def _heartbeat_time(run_claims: str, generation: int) -> float | None:
  path = os.path.join(run_claims, claims.CLAIM_DIR, f'{generation}.heartbeat')
  try:
    with open(path) as f:
      return float(json.load(f)['time'])
  except (OSError, ValueError, KeyError, TypeError):
    return None


def check_one_writer(workdir: str, run_dirs: list[str]) -> int:
  """Asserts that no run was trained by two holders at once; returns how many
  hand-overs (one generation to the next) it checked.

  For each run, generation g's holder (host, pid) has its log,
  workers/<host>.<pid>.log; the lines it wrote while training the run must lie
  after its claim and before generation g+1's claim, and so must its last
  heartbeat. Some holder must have logged training the run.
  """
  year = time.localtime().tm_year
  spans = {}
  for path in glob.glob(os.path.join(workdir, 'workers', '*.log')):
    host, pid = os.path.basename(path)[:-len('.log')].rsplit('.', 1)
    spans[(host, int(pid))] = training_spans(path, year)
  handovers = 0
  for run_dir in run_dirs:
    records = claim_records(claim_dir(run_dir))
    held = [spans.get((r['host'], r['pid']), {}).get(os.path.normpath(run_dir))
            for r in records]
    assert any(held), f'no holder of {run_dir} logged training it'
    for g, (record, span) in enumerate(zip(records, held)):
      if span is not None:
        assert record['since'] <= span[0], (run_dir, g, record, span)
      if g + 1 == len(records):
        continue
      taken = records[g + 1]['since']
      beat = _heartbeat_time(claim_dir(run_dir), g)
      assert span is None or span[1] < taken, (
          f'{run_dir}: generation {g} ({record["host"]} pid {record["pid"]}) logged until '
          f'{span[1]:.3f}, after generation {g + 1} claimed it at {taken:.3f}')
      assert beat is None or beat < taken, (run_dir, g, beat, taken)
      handovers += 1
  return handovers


def _seconds_to_result(run_dir: str) -> float:
  """From a run's first claim to its result.json, on the wall clock."""
  first = claim_records(claim_dir(run_dir))[0]['since']
  return os.path.getmtime(os.path.join(run_dir, 'result.json')) - first


def chaos_record(chaos: Chaos, results: dict[str, dict], wall_seconds: float,
                 resubmitted: int) -> dict:
  """What the chaos run did and cost: kills, takeovers, resumes, the study's wall
  time (`wall_seconds`, the report's) against the sum of its runs', and the
  seconds lost per kill: how much later than the median run untouched by a kill
  (from its first claim to its result) each run that a kill hit ended, summed
  and divided by the kills made. Also the runs' own account,
  seconds_lost_to_interruptions (from each checkpoint a run resumed from to the
  end of its restore; a run restarted from step 0 counts nothing there)."""
  takeovers, rules = 0, {}
  for run_dir in chaos.run_dirs:
    for record in claim_records(claim_dir(run_dir))[1:]:
      if record['took_over'] not in (None, 'released'):
        takeovers += 1
        rule = re.sub(r'\d+(_\d+)?', 'N', record['took_over'].split(';')[0])
        rules[rule] = rules.get(rule, 0) + 1
  delays = {WORKER: [], NODE: []}
  for kill in chaos.kills:
    for run_dir, generation in kill.hit:
      taken = claim_records(claim_dir(run_dir))[generation + 1]['since']
      delays[kill.kind].append(round(taken - kill.at, 1))
  hit = {run_dir for kill in chaos.kills for run_dir, _ in kill.hit}
  untouched = sorted(_seconds_to_result(d) for d in chaos.run_dirs if d not in hit)
  usual = untouched[len(untouched) // 2] if untouched else 0.0
  late = sum(max(0.0, _seconds_to_result(d) - usual) for d in hit)
  restarts = len(glob.glob(os.path.join(chaos.workdir, '*', 'seed_*.interrupted.*')))
  return {
      'worker_kills': sum(k.kind == WORKER for k in chaos.kills),
      'node_kills': sum(k.kind == NODE for k in chaos.kills),
      'claims_ended': sum(len(k.hit) for k in chaos.kills),
      'takeovers': takeovers,
      'takeover_rules': rules,
      'takeover_seconds_after_worker_kill': sorted(delays[WORKER]),
      'takeover_seconds_after_node_kill': sorted(delays[NODE]),
      'resumes': sum(r['num_resumes'] for r in results.values()),
      'restarts_from_step_0': restarts,
      'resubmissions': resubmitted,
      'study_wall_seconds': round(wall_seconds, 1),
      'sum_of_run_seconds': round(sum(r['run_seconds'] for r in results.values()), 1),
      'median_run_seconds_to_result': round(usual, 1),
      'seconds_lost_per_kill': round(late / max(1, len(chaos.kills)), 1),
      'seconds_lost_to_interruptions': round(
          sum(r['seconds_lost_to_interruptions'] for r in results.values()), 1),
      'nodes_back_after_seconds': [(n, round(s, 1)) for n, s in chaos.revived],
  }
