"""Where each run of a study's plan stands: one typed state, decided in one place.

A run is done once its result.json exists, failed once its failure.json does
(the error that ended it; workers skip it until the study's command is run
again), running while a live worker holds its claim, and pending otherwise:
never started, or interrupted (its worker is gone, and the next worker to claim
it resumes it from its checkpoint). Workers, the report and the commands that
wait for workers all ask `status_of`, so they never disagree about a run.

The states' values are the words of the outputs: study.json's 'unfinished'
entries say 'running', 'pending' or 'failed', and the console's counts
(train/cli/launchers.describe_counts) say 'done' as well.
"""

import dataclasses
import enum
import os

from train.common import claims
from train.experiments import plan as plan_lib


class RunState(enum.StrEnum):
  """Where a planned run stands (a str: its value is the word the outputs use)."""
  DONE = 'done'
  RUNNING = 'running'
  PENDING = 'pending'
  FAILED = 'failed'


@dataclasses.dataclass(frozen=True)
class RunStatus:
  """A run's state, and its claim as read when the state was decided (None for
  a done or failed run, whose claim is not read)."""
  state: RunState
  claim: claims.Status | None = None

  @property
  def interrupted(self) -> bool:
    """Pending, but started: the worker that held it is gone."""
    return self.claim is not None and self.claim.state == claims.GONE


def status_of(run: plan_lib.PlannedRun, *, ask_slurm: bool) -> RunStatus:
  """Where `run` stands, from its result.json, its failure.json and its claim.

  `ask_slurm`: whether a holder's Slurm job is asked after (claims.status):
  the report asks; looks repeated every few seconds over every run do not.
  """
  if os.path.exists(run.result_path):
    return RunStatus(RunState.DONE)
  if os.path.exists(run.failure_path):
    return RunStatus(RunState.FAILED)
  claim = claims.status(run.claim_dir, ask_slurm=ask_slurm)
  held = claim.state == claims.HELD  # By someone unknown when its record is damaged.
  return RunStatus(RunState.RUNNING if held else RunState.PENDING, claim)


def count_states(plan: plan_lib.Plan) -> dict[RunState, int]:
  """How many of the plan's runs are in each state (every state, zero or more)."""
  counts = dict.fromkeys(RunState, 0)
  for run in plan.runs:
    counts[status_of(run, ask_slurm=False).state] += 1
  return counts
