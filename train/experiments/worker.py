"""A worker: claims the next run of a study's plan that nobody holds, runs it, and
goes on until none is left.

Any number of workers, on any hosts that share the study directory, can work on
one plan (train/experiments/plan.py). Before a worker touches a run's directory
it claims the run (train/common/claims.py: exclusive, NFS-safe, with a
heartbeat); a claim whose holder is provably gone (its process died, its
heartbeat stopped, its Slurm job ended) is taken over, and the run resumes
from its last checkpoint. So no run is trained by two workers at once and none
is lost while some worker still looks.

The claim fences every write into the run's directory (train/run/loop.py):
a worker that was stopped, or cut off, long enough for another to take its run
over exits (status 75) at its next write, and writes nothing more there. So
do the moves and files of the worker itself (`prepare_run_dir`, failure.json).

A run ends in its result.json, or in failure.json (the error's line) when it
raised; workers skip failed runs, and the command that started the study moves
those files aside when it is run again, so the runs are tried again. SIGTERM,
SIGINT and SIGUSR2 (Slurm's warning before a time limit or a preemption) make
the run save a checkpoint and the worker let go of its claim and stop.

In a multi-process worker (one run over several hosts' devices), process 0
chooses and claims; the others follow its choice (`distributed.share_from_main`).
A run that raises in any of its processes ends that worker, once the failing
process has written failure.json: the others may be waiting for it inside a
collective, so no process can go on to another run in step with them.
"""

import dataclasses
import os
import socket
import time
import traceback

from absl import logging

from train.common import claim_queue
from train.common import claims
from train.common import console
from train.common import errors
from train.common import files
from train.experiments import plan as plan_lib
from train.experiments import states
from train.run import distributed
from train.run import preemption
from train.run import programs

# How often a worker that waits for other workers' runs looks again.
POLL_SECONDS = 5.0
# What process 0 tells the others when there is nothing left to run.
_NOTHING = ''


@dataclasses.dataclass
class WorkDone:
  """What one worker did: the runs it trained and those that failed in it."""
  ran: list[str] = dataclasses.field(default_factory=list)
  failed: list[str] = dataclasses.field(default_factory=list)


def _seed_remedy(run_dir: str) -> str:
  return f'move {run_dir} aside (the seed then runs again) and re-run the same command'


def read_result(run: plan_lib.PlannedRun) -> dict:
  """A finished run's result.json, after checking that it ran the planned config."""
  config = plan_lib.read_json(os.path.join(run.run_dir, 'config.json'),
                              _seed_remedy(run.run_dir))
  if config != run.config:
    raise plan_lib.StudyDirError(f'{run.run_dir} holds a run of another config; '
                                 'choose a new --workdir')
  return plan_lib.read_json(run.result_path, _seed_remedy(run.run_dir))


def _set_aside(run_dir: str) -> str:
  n = 1
  while os.path.exists(f'{run_dir}.interrupted.{n}'):
    n += 1
  os.replace(run_dir, f'{run_dir}.interrupted.{n}')
  return f'{run_dir}.interrupted.{n}'


def prepare_run_dir(run: plan_lib.PlannedRun, claim: claims.Claim) -> None:
  """Under the run's claim: keeps an interrupted run that can resume from its
  checkpoint, and moves aside one that cannot (it then runs from the start)."""
  if not os.path.exists(run.run_dir):
    return
  claim.fence()
  try:  # An unreadable config.json of an unfinished seed: moved aside below.
    same_config = plan_lib.read_json(os.path.join(run.run_dir, 'config.json'), '') == run.config
  except plan_lib.StudyDirError:
    same_config = False
  from train.run import checkpoint  # pylint: disable=g-import-not-at-top
  if same_config and checkpoint.has_checkpoints(run.run_dir):
    logging.warning('%s was interrupted; it resumes from its checkpoint in %s',
                    run.label, run.run_dir)
  else:
    moved = _set_aside(run.run_dir)
    logging.warning('%s was interrupted before its first checkpoint; its files are kept '
                    'in %s and the seed runs again from the start', run.label, moved)


def _record_failure(run: plan_lib.PlannedRun, error: BaseException,
                    claim: claims.Claim | None) -> None:
  """Writes the run's failure.json, unless a process of the same run wrote it
  first: in a run of several processes the first error is the cause, and the
  others' (a collective whose peer went away) only follow from it. Process 0
  writes it only while it holds the run's claim (`claim`)."""
  logging.error('%s failed:\n%s', run.label, ''.join(traceback.format_exception(error)))
  if os.path.exists(run.failure_path):  # Workers never start a run that has one.
    return
  try:
    if claim is not None:
      claim.fence()
    os.makedirs(run.run_dir, exist_ok=True)
    files.write_json(run.failure_path, {
        'error': errors.one_line(f'{type(error).__name__}: {error}'),
        'host': socket.gethostname(), 'pid': os.getpid(),
        'process': distributed.process_label() or None, 'time': time.time()})
  except (files.FileWriteError, OSError) as e:
    logging.error('%s: %s', run.label, e)


class Worker:
  """Takes the runs of one plan, one after another, as long as any is free.

  `stop_on_failure`: a run's error ends the worker (the inline default, where
  the command's user sees the error) instead of being recorded and skipped.
  `wait_for_others`: once nothing is free, wait for the runs other workers hold
  (taking over any whose holder goes), so that the plan is whole at return.
  """

  def __init__(self, directory: str, progress: console.Progress | None = None, *,
               stop_on_failure: bool = False, wait_for_others: bool = False,
               step_cache: programs.StepCache | None = None):
    self.plan = plan_lib.read_plan(directory)
    self.progress = progress or console.Progress(len(self.plan.runs), enabled=False)
    self.stop_on_failure = stop_on_failure
    self.wait_for_others = wait_for_others
    self.step_cache = step_cache or programs.StepCache()
    self.done = WorkDone()
    self._shown: set[str] = set()
    self._queue = claim_queue.ClaimQueue(self.plan.runs, before_claim=self._check_run_paths,
                                         on_finished=self._show_finished)

  def _show_finished(self, run: plan_lib.PlannedRun) -> None:
    if run.label not in self._shown:
      self._shown.add(run.label)
      result = read_result(run)
      self.progress.finish_run(console.run_line(run.label, result, earlier=True), ran=False)

  def _check_run_paths(self, run: plan_lib.PlannedRun) -> None:
    # Checked again before each claim: the directory is shared, and a link put
    # there since the plan was read would lead this worker out of the study.
    plan_lib.check_run_paths(run, self.plan.directory)

  def _claim_next(self) -> tuple[plan_lib.PlannedRun, claims.Claim] | None:
    """The first run in the plan's order that is neither over nor held, claimed
    (train/common/claim_queue.py: finished runs are looked at once)."""
    return self._queue.claim_next()

  def held_elsewhere(self) -> list[plan_lib.PlannedRun]:
    """The runs, neither finished nor failed, that another worker holds now."""
    return [run for run in self.plan.runs
            if states.status_of(run, ask_slurm=False).state == states.RunState.RUNNING]

  def _next(self) -> tuple[plan_lib.PlannedRun, claims.Claim] | None:
    """Process 0's next run and claim, waiting for other workers if asked to."""
    while True:
      found = self._claim_next()
      if found is not None or not self.wait_for_others:
        return found
      held = self.held_elsewhere()
      if not held:
        return None
      self.progress.note(f'waiting for {len(held)} runs that other workers hold: '
                         f'{", ".join(run.label for run in held[:3])}'
                         f'{" ..." if len(held) > 3 else ""}')
      time.sleep(POLL_SECONDS)

  def run(self) -> WorkDone:
    """Works until no run is left to take; returns what this worker did."""
    while True:
      found = self._next() if distributed.is_main_process() else None
      index = self.plan.runs.index(found[0]) if found else None
      shared = distributed.share_from_main('next run', _NOTHING if index is None
                                           else str(index))
      if shared == _NOTHING:
        return self.done
      run = self.plan.runs[int(shared)]
      claim = found[1] if found else None
      self._run_one(run, claim)

  def _run_one(self, run: plan_lib.PlannedRun, claim: claims.Claim | None) -> None:
    self.progress.start_run(run.label)
    try:
      if claim is not None:  # Process 0 holds the claim and tidies the run's folder.
        prepare_run_dir(run, claim)
      distributed.wait_for_all_processes('run dir ready')
      logging.info('%s: training in %s', run.label, run.run_dir)
      # Imported here, not at the top: the loop imports TensorFlow and clu (4-5 s
      # of CPU), which the commands that only plan, submit, wait or report
      # through this module (study.py, staged.py) never need.
      from train.run import loop  # pylint: disable=g-import-not-at-top
      result = loop.train_and_evaluate(run.config_dict(), run.run_dir, self.step_cache,
                                       progress=self.progress, claim=claim)
    except (preemption.Preempted, claims.ClaimLost):
      # Preempted: the run saved its checkpoint, and any worker may resume it.
      # ClaimLost: another worker trains it now; this one must not even fail it.
      raise
    except Exception as e:  # pylint: disable=broad-except
      several = distributed.joined_group()
      if several or distributed.is_main_process():
        _record_failure(run, e, claim)
      if self.stop_on_failure or several:
        # The other processes may be inside a collective, waiting for this
        # one: they cannot go on to another run in step with it.
        raise
      self.done.failed.append(run.label)
      self.progress.finish_run(f'{run.label}: failed: {errors.one_line(e)}')
      return
    finally:  # Whatever ended the run, in this process it is over.
      _release(claim)
    self._shown.add(run.label)
    self.done.ran.append(run.label)
    self.progress.finish_run(console.run_line(run.label, result))


def _release(claim: claims.Claim | None) -> None:
  if claim is not None:
    claim.release()
