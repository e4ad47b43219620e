"""How claims scale: a simulated study of many runs that train nothing.

  python -m train.bench.claim_scale --dir=/tmp/claims --runs=100,1000,10000 --workers=64
  # Workers spread over the test cluster's nodes (scripts/slurm_cluster.sh), on
  # its network filesystem (sshfs), which every node mounts at /srv/slurm-shared:
  python -m train.bench.claim_scale --dir=/srv/slurm-shared/claims --runs=100,1000 \\
      --workers=64 --nodes=node1,node2,node3

For each count of runs, a fresh directory laid out as a study's
(`DIR/runs_<n>/seed_<s>/`, claimed in `DIR/runs_<n>/claims/seed_<s>/`), and
`--workers` processes, spread in turn over `--nodes` (each started through
`--node_command`), or on this host without `--nodes`. Each worker takes runs
with the queue a study's worker uses (train/common/claim_queue.py), "trains"
one by writing its result.json under the claim's fence, releases the claim,
and takes the next, until none is left. The workers start together: each reads
'go' on its stdin once all have started.

Measured, per count of runs:
- claims per second: the runs over the wall time from 'go' to the last
  worker's report;
- each claim's seconds (`claim_next`: finding a free run and claiming it);
- filesystem operations per claim, and per run (claim, fence, result.json,
  release): calls that name a path in the study directory (stat, lstat, open,
  listdir, scandir, mkdir, link, rename, replace, unlink, remove, readlink),
  counted in each worker by wrapping those functions of `os` and the builtin
  `open`. A study's worker also checks a run's four folders (one lstat each)
  before it claims it; that is not simulated here.
Checked: every run was claimed and trained by exactly one worker, and no
claim was taken over from a holder that had not let go (see `claimed_once`).

`--forget` gives each claim a fresh queue, which knows no finished run: every
finished run is looked at again, as workers did before train/common/claim_queue.py.
"""

import argparse
import builtins
import dataclasses
import functools
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Sequence

from train.bench import arguments
from train.common import claim_queue
from train.common import claims
from train.common import files

# The functions of `os` (and the builtin open) whose calls are counted, each
# naming a path as its first argument.
COUNTED = ('stat', 'lstat', 'open', 'listdir', 'scandir', 'mkdir', 'link', 'rename',
           'replace', 'unlink', 'remove', 'readlink')
# What runs a command on a node of the test cluster (its namespaces and mounts).
CLUSTER_NODE_COMMAND = f'bash {os.path.join(files.REPO_ROOT, "scripts", "slurm_cluster.sh")} on-node'
# Hang guard for a worker: minutes of sshfs at 10,000 runs; not a time limit.
WORKER_HANG_GUARD_SECONDS = 3600


@dataclasses.dataclass(frozen=True)
class SimulatedRun:
  """Seed `seed` of a one-entry study in `directory`, as plan.PlannedRun lays it out."""
  directory: str
  seed: int

  @property
  def run_dir(self) -> str:
    return os.path.join(self.directory, f'seed_{self.seed}')

  @property
  def claim_dir(self) -> str:
    return os.path.join(self.directory, 'claims', f'seed_{self.seed}')

  @property
  def result_path(self) -> str:
    return os.path.join(self.run_dir, 'result.json')

  @property
  def failure_path(self) -> str:
    return os.path.join(self.run_dir, 'failure.json')


def simulated_runs(directory: str, count: int) -> list[SimulatedRun]:
  return [SimulatedRun(directory, seed) for seed in range(count)]


# --- a worker ---------------------------------------------------------------------


class OperationCounter:
  """Counts the calls of COUNTED that name a path under `directory`."""

  def __init__(self, directory: str):
    self.directory = os.path.abspath(directory)
    self.count = 0

  def install(self) -> None:
    for name in COUNTED:
      if name == 'open':
        builtins.open = self._counted(builtins.open)
      setattr(os, name, self._counted(getattr(os, name)))

  def _counted(self, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def counted(*args, **kwargs):
      if args and isinstance(args[0], str) and args[0].startswith(self.directory):
        self.count += 1
      return function(*args, **kwargs)
    return counted


def _take_runs(queue: claim_queue.ClaimQueue, counter: OperationCounter,
               forget: Callable[[], claim_queue.ClaimQueue] | None) -> dict[str, list]:
  """Claims, "trains" and releases runs until none is free; what each cost."""
  taken = {'seeds': [], 'claim_seconds': [], 'claim_operations': [], 'run_operations': []}
  while True:
    if forget is not None:
      queue = forget()
    start_count, start = counter.count, time.perf_counter()
    found = queue.claim_next()
    if found is None:
      return taken
    seconds, claim_count = time.perf_counter() - start, counter.count
    run, claim = found
    claim.fence()
    os.makedirs(run.run_dir, exist_ok=True)
    files.write_json(run.result_path, {'seed': run.seed, 'host': socket.gethostname(),
                                       'pid': os.getpid()})
    claim.release()
    taken['seeds'].append(run.seed)
    taken['claim_seconds'].append(seconds)
    taken['claim_operations'].append(claim_count - start_count)
    taken['run_operations'].append(counter.count - start_count)


def work(directory: str, count: int, forget: bool) -> dict[str, Any]:
  """One worker: waits for 'go' on stdin, takes runs, returns its report."""
  counter = OperationCounter(directory)
  counter.install()
  runs = simulated_runs(directory, count)
  print('ready', flush=True)
  if sys.stdin.readline().strip() != 'go':
    raise SystemExit('the coordinator went away before go')
  taken = _take_runs(claim_queue.ClaimQueue(runs), counter,
                     (lambda: claim_queue.ClaimQueue(runs)) if forget else None)
  return {'host': socket.gethostname(), 'pid': os.getpid(), **taken}


# --- the coordinator --------------------------------------------------------------


def _worker_command(directory: str, count: int, forget: bool, node: str | None,
                    node_command: str) -> list[str]:
  command = [sys.executable, '-m', 'train.bench.claim_scale', '--worker',
             f'--dir={directory}', f'--runs={count}', *(['--forget'] if forget else [])]
  return command if node is None else [*shlex.split(node_command), node, *command]


def _environment() -> dict[str, str]:
  """This environment without Slurm's variables: the simulated workers are no
  Slurm jobs, so their claims name none (squeue is never asked), and with the
  repository importable wherever the worker starts."""
  environ = {k: v for k, v in os.environ.items() if not k.startswith('SLURM_')}
  environ['PYTHONPATH'] = files.REPO_ROOT + (
      os.pathsep + environ['PYTHONPATH'] if environ.get('PYTHONPATH') else '')
  return environ


def _start_workers(directory: str, count: int, args: argparse.Namespace
                   ) -> list[subprocess.Popen]:
  nodes = args.nodes or [None]
  workers = []
  for k in range(args.workers):
    with open(os.path.join(os.path.dirname(directory), f'runs_{count}.worker_{k}.log'),
              'w') as log:
      workers.append(subprocess.Popen(
          _worker_command(directory, count, args.forget, nodes[k % len(nodes)],
                          args.node_command),
          cwd=files.REPO_ROOT, env=_environment(), stdin=subprocess.PIPE,
          stdout=subprocess.PIPE, stderr=log, text=True))
  return workers


def _run_workers(workers: Sequence[subprocess.Popen]) -> tuple[list[dict], float]:
  """Lets the ready workers go together; their reports, and the seconds from go
  to the last report."""
  for worker in workers:
    line = worker.stdout.readline()
    if line != 'ready\n':
      raise RuntimeError(f'worker pid {worker.pid} did not start (said {line!r}); '
                         'see its log next to the runs')
  start = time.perf_counter()
  for worker in workers:
    worker.stdin.write('go\n')
    worker.stdin.flush()
  reports = []
  for worker in workers:
    out, _ = worker.communicate(timeout=WORKER_HANG_GUARD_SECONDS)
    if worker.returncode != 0:
      raise RuntimeError(f'worker pid {worker.pid} failed (status {worker.returncode}); '
                         'see its log next to the runs')
    reports.append(json.loads(out))
  return reports, time.perf_counter() - start


def claimed_once(directory: str, count: int, reports: Sequence[dict]) -> tuple[str | None, int]:
  """(Why the runs were not each taken by exactly one worker, or None if they
  were; how many claims were made and let go unused).

  A claim let go unused is a worker's that found the run's result.json right
  after it claimed the run: it looked before the result was written, and
  claimed after the run's worker had released it. Such a claim (and only such
  a one) takes over a released claim; no run ever had two live holders.
  """
  seeds = sorted(seed for report in reports for seed in report['seeds'])
  if seeds != list(range(count)):
    twice = sorted({s for s in seeds if seeds.count(s) > 1})[:5]
    missing = sorted(set(range(count)) - set(seeds))[:5]
    return f'taken twice: {twice}; never taken: {missing}', 0
  unused = 0
  for run in simulated_runs(directory, count):
    claim_dir = os.path.join(run.claim_dir, claims.CLAIM_DIR)
    generations = sorted(int(n.split('.')[0]) for n in os.listdir(claim_dir)
                         if n.endswith('.json'))
    for generation in generations[1:]:
      with open(os.path.join(claim_dir, f'{generation}.json')) as f:
        took_over = json.load(f)['took_over']
      if took_over != 'released':
        return f'seed {run.seed}: generation {generation} took over ({took_over})', unused
    unused += len(generations) - 1
  return None, unused


def _percentile(values: Sequence[float], fraction: float) -> float:
  ordered = sorted(values)
  return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summarize(count: int, workers: int, reports: Sequence[dict], seconds: float) -> dict:
  """The figures of one simulation (see the module docstring)."""
  claim_seconds = [s for r in reports for s in r['claim_seconds']]
  claim_operations = [n for r in reports for n in r['claim_operations']]
  run_operations = [n for r in reports for n in r['run_operations']]
  return {
      'runs': count, 'workers': workers, 'hosts': sorted({r['host'] for r in reports}),
      'seconds': round(seconds, 2), 'claims_per_second': round(count / seconds, 1),
      'claim_ms_median': round(1e3 * statistics.median(claim_seconds), 2),
      'claim_ms_p99': round(1e3 * _percentile(claim_seconds, 0.99), 2),
      'operations_per_claim_mean': round(statistics.mean(claim_operations), 1),
      'operations_per_claim_max': max(claim_operations),
      'operations_per_run_mean': round(statistics.mean(run_operations), 1),
  }


def simulate(directory: str, count: int, args: argparse.Namespace) -> dict:
  """One simulation of `count` runs in DIR/runs_<count>; its figures."""
  runs_dir = os.path.join(os.path.abspath(directory), f'runs_{count}')
  if os.path.exists(runs_dir):
    raise SystemExit(f'error: {runs_dir} exists; give a new --dir')
  os.makedirs(runs_dir)
  workers = _start_workers(runs_dir, count, args)
  try:
    reports, seconds = _run_workers(workers)
  finally:
    for worker in workers:
      if worker.poll() is None:
        worker.kill()
        worker.wait()
  wrong, unused = claimed_once(runs_dir, count, reports)
  if wrong is not None:
    raise SystemExit(f'error: {count} runs: not each taken by one worker: {wrong}')
  return {**summarize(count, args.workers, reports, seconds), 'claims_let_go_unused': unused}


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--dir', required=True,
                      help='where the simulated studies go (a new runs_<n> per count)')
  parser.add_argument('--runs', type=arguments.positive_ints, default=[100, 1000, 10000],
                      help='counts of runs, comma-separated')
  parser.add_argument('--workers', type=int, default=64, help='worker processes')
  parser.add_argument('--nodes', type=lambda t: [n for n in t.split(',') if n],
                      default=[], help='nodes to spread the workers over (default: this host)')
  parser.add_argument('--node_command', default=CLUSTER_NODE_COMMAND,
                      help='what runs a command on a node, given the node and the command')
  parser.add_argument('--forget', action='store_true',
                      help='a fresh queue per claim: finished runs are looked at again')
  parser.add_argument('--json_out', default=None, help='also write the figures here')
  parser.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
  return parser


def main(argv: list[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  if args.worker:
    print(json.dumps(work(args.dir, args.runs[0], args.forget)), flush=True)
    return 0
  figures = []
  for count in args.runs:
    figures.append(simulate(args.dir, count, args))
    print(json.dumps(figures[-1]), flush=True)
  if args.json_out:
    files.write_json(args.json_out, figures)
  return 0


if __name__ == '__main__':
  sys.exit(main())
