"""Training runs of a config (train/run/loop.py, the real input pipeline), each in
a process layout of its own; tests/test_seed_order.py runs them.

  python tests/seed_run_worker.py SPEC.json

SPEC holds {"config": <config JSON>, "runs": [{"workdir": DIR, "processes": P,
"devices": D, "stop_at": STEP or null}, ...]}. The runs go one after the other;
each is P processes of D virtual CPU devices, joined through JAX's distributed
runtime on a loopback port when P > 1. A device count and a process group can
only be chosen before JAX starts, so each process of each run is a child of its
own, forked from this one: the modules (TensorFlow among them, several seconds
a process) are imported once, while each child starts JAX afresh, as a launched
process would. Nothing here starts a JAX backend before the forks.

`stop_at` sends each process SIGTERM after that train step: the run saves a
checkpoint and stops (exit 3), and a later run in the same WORKDIR, in any
layout, resumes it. A run that ends writes WORKDIR/state.npz (process 0; others
state.process_<i>.npz): its final parameters and BN statistics, flattened by
path. Each process's output goes to WORKDIR/process_<i>.<n>.log (n: the run's
index in SPEC). Prints one JSON line: per run, each process's exit status.
"""

import functools
import json
import os
import signal
import socket
import sys

import jax

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# pylint: disable=g-import-not-at-top,wrong-import-position
import ml_collections
import numpy as np

from tests import forked
from tests import sharding_worker
from train.run import distributed
from train.run import loop
from train.run import preemption

# pylint: enable=g-import-not-at-top,wrong-import-position

PREEMPTED_EXIT = 3
# Hang guard, not a time limit: a process still running after this long is
# killed and its run fails as hung.
HANG_GUARD_SECONDS = 600


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _train(config: ml_collections.ConfigDict, workdir: str, devices: int,
           stop_at: int | None, group: tuple[str, int, int] | None) -> int:
  """One process of a run; returns its exit status."""
  jax.config.update('jax_num_cpu_devices', devices)
  if group:
    distributed.initialize(*group)
  suffix = '' if jax.process_index() == 0 else f'.process_{jax.process_index()}'
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, f'layout{suffix}.json'), 'w') as f:
    json.dump({'process_count': jax.process_count(), 'device_count': jax.device_count(),
               'local_device_count': jax.local_device_count()}, f)
  final = {}

  def hook(event: str, step: int, state) -> None:
    if event == 'train_step' and step == stop_at:
      os.kill(os.getpid(), signal.SIGTERM)
    if event == 'end':
      final['state'] = state

  try:
    loop.train_and_evaluate(config, workdir, hook=hook)
  except preemption.Preempted:
    if group:
      # As main.py does: the processes stopped at the same agreed step and
      # leave together, or process 0 (the coordination service) would leave
      # while another still finishes, which then aborts.
      jax.distributed.shutdown()
    return PREEMPTED_EXIT
  state = final['state']
  flat = {f'params{k}': v for k, v in sharding_worker.host_copy(state.params).items()}
  flat.update({f'batch_stats{k}': v
               for k, v in sharding_worker.host_copy(state.batch_stats).items()})
  np.savez(os.path.join(workdir, f'state{suffix}.npz'), **flat)
  if group:
    # What JAX's exit handler does in a process that exits normally: the
    # processes leave the group together, none while another still needs it.
    jax.distributed.shutdown()
  return 0


def _child(config: ml_collections.ConfigDict, run: dict, index: int, process_id: int,
           address: str) -> int:
  """A forked process of a run: its output to its log, then its training.

  It leaves without the parent's exit handlers (tests/forked.py): a process of
  a group that ended (trained or preempted) has met the others at JAX's
  shutdown barrier in _train; one that failed does not wait for them.
  """
  os.makedirs(run['workdir'], exist_ok=True)
  log = os.path.join(run['workdir'], f'process_{process_id}.{index}.log')
  fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
  for stream in (1, 2):
    os.dup2(fd, stream)
  group = ((address, run['processes'], process_id) if run['processes'] > 1 else None)
  return _train(config, run['workdir'], run['devices'], run['stop_at'], group)


def main(spec_path: str) -> None:
  with open(spec_path) as f:
    spec = json.load(f)
  config = ml_collections.ConfigDict(spec['config'])
  report = []
  for index, run in enumerate(spec['runs']):
    address = f'localhost:{_free_port()}'
    pids = [forked.fork(functools.partial(_child, config, run, index, process_id, address))
            for process_id in range(run['processes'])]
    report.append([ended.status for ended in forked.wait(pids, HANG_GUARD_SECONDS)])
  print(json.dumps(report))


if __name__ == '__main__':
  main(sys.argv[1])
