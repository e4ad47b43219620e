"""Driver of the kill-and-resume test: runs of one config, some killed at a chosen point.

  python tests/resume_driver.py SPEC.json

SPEC holds {"config": <config JSON>, "scenarios": [...]}; each scenario is
{"workdir": DIR, "attempts": [{"kill": [EVENT, STEP] or null, "signal": "SIGKILL"
or "SIGTERM", "delay": seconds, "corrupt_newest_before": bool}, ...]}. Every attempt is a forked
child of this process, so the modules are imported once while each attempt
still starts JAX afresh, as a re-launched job would. EVENT is a hook event of
train/run/loop.py ('train_step', 'eval_batch', 'checkpoint'); at the first call with
that event and step the child sends itself the signal. A child that finishes
writes WORKDIR/params.npz (the final parameters and BN statistics). Prints one
JSON line: per scenario, per attempt, how the child ended.
"""

import functools
import json
import os
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ml_collections  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from tests import forked  # pylint: disable=g-import-not-at-top,wrong-import-position
from train.run import loop  # pylint: disable=g-import-not-at-top,wrong-import-position
from train.run import preemption  # pylint: disable=g-import-not-at-top,wrong-import-position

PREEMPTED_EXIT = 3
# Hang guard, not a time limit: an attempt still running after this long is
# killed, and its outcome is -9.
HANG_GUARD_SECONDS = 600


def _flat(tree, prefix: str = '') -> dict[str, np.ndarray]:
  out = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      out.update(_flat(value, f'{prefix}{key}/'))
    else:
      out[f'{prefix}{key}'] = np.asarray(value)
  return out


def _attempt(config: ml_collections.ConfigDict, workdir: str, attempt: dict) -> int:
  """The child: one launch of the run; returns its exit status."""
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, 'stderr.txt'), 'a') as log:
    os.dup2(log.fileno(), 2)
  kill = attempt.get('kill')
  signum = getattr(signal, attempt.get('signal', 'SIGKILL'))
  # A kill some time after the step: the run's asynchronous saves get to finish.
  delay = attempt.get('delay', 0.0)
  fired = []
  final = {}

  def hook(event: str, step: int, state) -> None:
    if kill and not fired and [event, step] == kill:
      fired.append(True)
      time.sleep(delay)
      os.kill(os.getpid(), signum)
    if event == 'end':
      final['state'] = state

  try:
    loop.train_and_evaluate(config, workdir, hook=hook)
  except preemption.Preempted:
    return PREEMPTED_EXIT
  import jax  # pylint: disable=g-import-not-at-top
  state = final['state']
  np.savez(os.path.join(workdir, 'params.npz'),
           **_flat(jax.device_get({'params': state.params,
                                   'batch_stats': state.batch_stats})))
  return 0


def _corrupt_newest(workdir: str) -> str:
  """Truncates the biggest file of the newest checkpoint; returns its path."""
  root = os.path.join(workdir, 'checkpoints')
  newest = max((d for d in os.listdir(root) if d.isdigit()), key=int)
  files = []
  for dirpath, _, names in os.walk(os.path.join(root, newest)):
    files += [os.path.join(dirpath, n) for n in names]
  biggest = max(files, key=os.path.getsize)
  with open(biggest, 'r+b') as f:
    f.truncate(os.path.getsize(biggest) // 2)
  return os.path.relpath(biggest, workdir)


def main(spec_path: str) -> None:
  with open(spec_path) as f:
    spec = json.load(f)
  config = ml_collections.ConfigDict(spec['config'])
  # The children compile the same programs: the first one's land in a cache, the
  # test run's (conftest.py) where there is one.
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update('jax_compilation_cache_dir', os.environ.get('JAX_COMPILATION_CACHE_DIR')
                    or tempfile.mkdtemp(prefix='resume_cache'))
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  report = []
  for scenario in spec['scenarios']:
    outcomes = []
    for attempt in scenario['attempts']:
      if attempt.get('corrupt_newest_before'):
        outcomes.append({'corrupted': _corrupt_newest(scenario['workdir'])})
      pid = forked.fork(functools.partial(_attempt, config, scenario['workdir'], attempt))
      (ended,) = forked.wait([pid], HANG_GUARD_SECONDS)
      outcomes.append({'exit': ended.status})
    report.append(outcomes)
  print(json.dumps(report))


if __name__ == '__main__':
  main(sys.argv[1])
