"""What the tests of study workers share: tiny runs that last long enough to be
interrupted, main.py as a real process, and readers of a study's files."""

import glob
import json
import math
import os
import subprocess
import sys

from train.common import claims

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Tiny runs long enough to be killed in the middle: 48 steps of ResNet-10 width 4
# on 512 images, a checkpoint every 4 steps, 2 evals.
TINY = {
    'dataset': 'embedded_shapes/tiny',
    'model.width': 4,
    'global_batch_size': 64,
    'eval_batch_size': 100,
    'num_train_steps': 48,
    'eval_every_steps': 24,
    'log_every_steps': 4,
    'checkpoint.every_steps': 4,
    'lr.warmup_steps': 2.0,
    'target_accuracy': 0.15,
    'stop_at_target': False,
}
# Tiny runs that end quickly: 8 steps of ResNet-10 width 4 on 512 training
# images, 2 evals (tests/test_study.py and tests/test_console.py).
QUICK_TINY = {
    'dataset': 'embedded_shapes/tiny',
    'model.width': 4,
    'global_batch_size': 64,
    'eval_batch_size': 100,
    'num_train_steps': 8,
    'eval_every_steps': 4,
    'log_every_steps': 4,
    'lr.warmup_steps': 2.0,
    'target_accuracy': 0.15,
    'stop_at_target': False,
}
COMPARE = '--compare=configs/embedded_lars.py,configs/embedded_nesterov.py'
# The tiny study that tests/test_workers.py runs inline and again through local
# workers: embedded_lars.py over 2 seeds.
LOCAL_STUDY = ('--config=configs/embedded_lars.py', '--num_seeds=2')
# Hang guards: they end a stuck test; how long the runs take decides nothing.
HANG_GUARD_SECONDS = 1200
# What a run computes, as opposed to how long it took.
_COMPUTED = ('final_eval_accuracy', 'final_train_accuracy', 'steps_completed',
             'reached_target', 'steps_to_target', 'epochs_to_target', 'status')


def flags(data_dir: str, **overrides) -> list[str]:
  """TINY (with `overrides`, dotted keys spelled with '__') as --config flags.

  No --compilation_cache_dir: the commands, their workers and Slurm's jobs (which
  get this environment) share the test run's cache ($JAX_COMPILATION_CACHE_DIR,
  tests/conftest.py), so each tiny program compiles once per test run.
  """
  values = {**TINY, 'data_dir': data_dir,
            **{k.replace('__', '.'): v for k, v in overrides.items()}}
  return [f'--config.{k}={v}' for k, v in values.items()]


def local_study_args(data_dir: str, workdir: str) -> list[str]:
  """main.py's arguments for LOCAL_STUDY (TINY runs) in `workdir`."""
  return [*LOCAL_STUDY, *flags(data_dir), f'--workdir={workdir}']


def main(args: list[str], log_path: str, env: dict[str, str] | None = None
         ) -> subprocess.Popen:
  """main.py with `args`, its output to `log_path` (never an unread pipe)."""
  with open(log_path, 'ab') as log:
    return subprocess.Popen([sys.executable, os.path.join(REPO, 'main.py'), *args],
                            cwd=REPO, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, env=env)


def wait(process: subprocess.Popen, log_path: str) -> str:
  """Waits for `process` to end (under the hang guard); returns its output."""
  try:
    process.wait(timeout=HANG_GUARD_SECONDS)
  except subprocess.TimeoutExpired:
    process.kill()
    raise
  with open(log_path) as f:
    return f.read()


def results(workdir: str) -> dict[str, dict]:
  """result.json of every run under `workdir`, by its path there ('config/seed_s')."""
  found = {}
  for path in glob.glob(os.path.join(workdir, '**', 'seed_*', 'result.json'),
                        recursive=True):
    with open(path) as f:
      found[os.path.relpath(os.path.dirname(path), workdir)] = json.load(f)
  return found


def median_steps_to_target(folder: str) -> float:
  """The median steps to target of the seed_* runs in `folder`, by hand from their
  result.json files alone (the tests' independent check of the harness's own):
  a run that missed is infinitely slow; no runs at all (or no folder) is a miss."""
  steps = []
  for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
    if name.startswith('seed_'):
      with open(os.path.join(folder, name, 'result.json')) as f:
        result = json.load(f)
      steps.append(result['steps_to_target'] if result['reached_target'] else math.inf)
  if not steps:
    return math.inf
  steps.sort()
  low, high = steps[(len(steps) - 1) // 2], steps[len(steps) // 2]
  return low if low == high else (low + high) / 2


def computed(result: dict) -> dict:
  """What a result says about the training, without its timings."""
  evals = [{k: v for k, v in e.items() if 'second' not in k} for e in result['evals']]
  return {**{k: result.get(k) for k in _COMPUTED}, 'evals': evals}


def claim_dir(run_dir: str) -> str:
  """Where workers claim the run in `run_dir` (train/experiments/plan.py)."""
  parent, leaf = os.path.split(run_dir)
  return os.path.join(parent, 'claims', leaf)


def claim_records(run_claims: str) -> list[dict]:
  """Every generation's holder record of a run's claim, oldest first."""
  records = []
  for path in sorted(glob.glob(os.path.join(run_claims, claims.CLAIM_DIR, '*.json')),
                     key=lambda p: int(os.path.basename(p).split('.')[0])):
    with open(path) as f:
      records.append(json.load(f))
  return records


def accuracy_statistics(pairwise: list[dict]) -> list[dict]:
  """comparison.json's pairwise statistics without those of seconds."""
  return [{k: v for k, v in pair.items() if 'second' not in k} for pair in pairwise]
