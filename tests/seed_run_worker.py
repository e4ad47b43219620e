"""One training run of a config (train/run/loop.py, the real input pipeline) in a
process layout chosen on the command line; tests/test_seed_order.py runs it.

  python tests/seed_run_worker.py CONFIG.json WORKDIR --cpu_devices=2
  python tests/seed_run_worker.py CONFIG.json WORKDIR --cpu_devices=1 \\
      --coordinator_address=localhost:1234 --num_processes=2 --process_id=0 --stop_at=4

A device count and a process group can only be chosen before JAX starts, so
each layout needs a process of its own. `--stop_at=STEP` sends the process
SIGTERM after that train step: the run saves a checkpoint and stops (exit 3),
and the same command, in any layout, resumes it. A run that ends writes
WORKDIR/state.npz (process 0; others state.process_<i>.npz): its final
parameters and BN statistics, flattened by path.
"""

import argparse
import json
import os
import signal
import sys
import traceback

import jax

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# pylint: disable=g-import-not-at-top,wrong-import-position
import ml_collections
import numpy as np

from tests import sharding_worker
from train.run import distributed
from train.run import loop

# pylint: enable=g-import-not-at-top,wrong-import-position

PREEMPTED_EXIT = 3


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument('config')
  parser.add_argument('workdir')
  parser.add_argument('--cpu_devices', type=int, required=True)
  parser.add_argument('--stop_at', type=int)
  parser.add_argument('--coordinator_address')
  parser.add_argument('--num_processes', type=int)
  parser.add_argument('--process_id', type=int)
  args = parser.parse_args()
  jax.config.update('jax_num_cpu_devices', args.cpu_devices)
  distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)
  with open(args.config) as f:
    config = ml_collections.ConfigDict(json.load(f))
  final = {}

  def hook(event: str, step: int, state) -> None:
    if event == 'train_step' and step == args.stop_at:
      os.kill(os.getpid(), signal.SIGTERM)
    if event == 'end':
      final['state'] = state

  try:
    loop.train_and_evaluate(config, args.workdir, hook=hook)
  except loop.Preempted:
    sys.stdout.flush()
    os._exit(PREEMPTED_EXIT)  # pylint: disable=protected-access
  except Exception:  # pylint: disable=broad-except
    # As main.py does (jobs.leaving_the_group_on_failure): JAX's exit handler
    # would wait for the other processes, which wait for this one.
    traceback.print_exc()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)  # pylint: disable=protected-access
  state = final['state']
  flat = {f'params{k}': v for k, v in sharding_worker.host_copy(state.params).items()}
  flat.update({f'batch_stats{k}': v
               for k, v in sharding_worker.host_copy(state.batch_stats).items()})
  suffix = '' if jax.process_index() == 0 else f'.process_{jax.process_index()}'
  np.savez(os.path.join(args.workdir, f'state{suffix}.npz'), **flat)


if __name__ == '__main__':
  main()
