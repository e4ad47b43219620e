"""Finished studies and comparisons written without training, for the tests of
`main.py profile` (tests/test_profiles.py, tests/test_bad_input.py).

A study's folder holds what the harness writes for it and a profile reads:
seed_<s>/result.json for each run and study.json (train/experiments/study.py's
`_finish_study`: the name, the seeds, `statistics.summarize` of the runs, the
runs and the unfinished ones). A comparison's folder holds comparison.json
(its config names) and a study folder per config.
"""

import json
import os
from collections.abc import Sequence

from train.experiments import statistics

TARGET = 0.7
STEPS_PER_EPOCH = 50.0
SECONDS_PER_STEP = 0.25
NUM_TRAIN_STEPS = 1000


def run_result(seed: int, steps_to_target: int | None, target: float = TARGET) -> dict:
  """A result.json dict of a run that reached `target` at that step (None: never,
  trained to the end of its budget), evaluated every 100 steps."""
  reached = steps_to_target is not None
  evals = [{'step': step, 'epoch': step / STEPS_PER_EPOCH,
            'accuracy': target if reached and step >= steps_to_target else target - 0.1,
            'loss': 1.0, 'seconds': step * SECONDS_PER_STEP}
           for step in range(100, NUM_TRAIN_STEPS + 1, 100)]
  return {
      'status': 'success' if reached else 'aborted', 'seed': seed, 'target_accuracy': target,
      'reached_target': reached, 'steps_to_target': steps_to_target,
      'seconds_to_target': reached and steps_to_target * SECONDS_PER_STEP or None,
      'epochs_to_target': reached and steps_to_target / STEPS_PER_EPOCH or None,
      'final_eval_accuracy': target if reached else target - 0.1,
      'final_train_accuracy': target, 'steps_completed': NUM_TRAIN_STEPS,
      'num_train_steps': NUM_TRAIN_STEPS, 'global_batch_size': 128,
      'run_seconds': NUM_TRAIN_STEPS * SECONDS_PER_STEP, 'init_seconds': 1.0,
      'evals': evals,
  }


def _write(path: str, value: object) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    json.dump(value, f, indent=2)


def write_study(directory: str, name: str, steps: Sequence[int | None],
                target: float = TARGET, unfinished: Sequence[dict] = ()) -> str:
  """A finished study of len(steps) seeds, seed s reaching the target at steps[s]
  (None: never); `unfinished` lists planned runs without a result. Returns the folder."""
  runs = [run_result(seed, s, target) for seed, s in enumerate(steps)]
  for run in runs:
    _write(os.path.join(directory, f'seed_{run["seed"]}', 'result.json'), run)
  _write(os.path.join(directory, 'study.json'), {
      'name': name, 'seeds': list(range(len(steps))), **statistics.summarize(runs),
      'wall_seconds': 1.0, 'num_runs_this_invocation': None,
      'sum_run_seconds': sum(r['run_seconds'] for r in runs),
      'sum_init_seconds': float(len(runs)), 'runs': runs, 'unfinished': list(unfinished)})
  return directory


def write_comparison(directory: str, steps: dict[str, Sequence[int | None]],
                     target: float = TARGET) -> str:
  """A finished comparison: a study of each config of `steps` in DIR/<config>."""
  for name, of_seeds in steps.items():
    write_study(os.path.join(directory, name), name, of_seeds, target)
  _write(os.path.join(directory, 'comparison.json'),
         {'names': list(steps), 'num_seeds': len(next(iter(steps.values())))})
  return directory
