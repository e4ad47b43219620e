"""Checkpoints of a run, with Orbax: saved asynchronously, restored with fallback.

A checkpoint holds everything a run needs to go on as if it had never stopped:
  state     the TrainState: parameters, BN statistics, optimizer state, step.
  progress  JSON: the evals so far, the timing so far, where the MLPerf log
            stood, and the loop's position among the evals.
The rest is a function of the config and the step: the data order and every
augmentation come from `config.seed` and the example's position in the stream
(input_pipeline/pipeline.py), so a resumed run skips the batches already
trained on; there is no other random state (the steps draw no random numbers).

Every process takes part in saving and restoring: Orbax writes each array's
shards from the process that holds them and synchronises the processes, so a
save called by process 0 alone would hang (flax issue 3364).
"""

import os
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp
from absl import logging

from train.common import errors
from train.run import steps

DIRECTORY = 'checkpoints'


class CheckpointError(RuntimeError):
  """A checkpoint cannot be written or none can be read; the message says what to do."""


def directory(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), DIRECTORY)


def has_checkpoints(workdir: str) -> bool:
  """Whether a run left a finished checkpoint, without opening a manager (which
  would create the directory). Orbax names a finished one by its step alone; a
  save cut short keeps its temporary name."""
  path = directory(workdir)
  return os.path.isdir(path) and any(name.isdigit() for name in os.listdir(path))


class Cadence:
  """When to save: every `every_steps` steps and/or every `every_seconds` seconds.

  The seconds are checked only where the loop already waits for the device (log
  steps), and in a run of several processes process 0's clock decides for all,
  since every process must call save at the same step.
  """

  def __init__(self, config: ml_collections.ConfigDict, now: float):
    self.every_steps = config.checkpoint.every_steps
    self.every_seconds = config.checkpoint.every_seconds
    self._last = now

  @property
  def enabled(self) -> bool:
    return bool(self.every_steps or self.every_seconds)

  def due(self, step: int, now: float, at_log_step: bool) -> bool:
    if self.every_steps and step % self.every_steps == 0:
      return True
    if not (self.every_seconds and at_log_step):
      return False
    due = now - self._last >= self.every_seconds
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      with jax.transfer_guard('allow'):
        due = bool(multihost_utils.broadcast_one_to_all(due))
    return due

  def saved(self, now: float) -> None:
    self._last = now


def _unreadable(error: BaseException) -> str:
  """Why a checkpoint cannot be read, in words: Orbax and TensorStore put whole
  specs and paths (over a thousand characters) into their messages."""
  if isinstance(error, FileNotFoundError):
    return 'files are missing'
  if isinstance(error, ValueError) and 'the directory name says' in str(error):
    return str(error)
  if isinstance(error, (ValueError, KeyError)) and 'json' in str(error).lower():
    return f'its progress file is damaged ({type(error).__name__})'
  return f'its files are damaged or belong to another config ({type(error).__name__})'


class RunCheckpointer:
  """Saves and restores one run's checkpoints in WORKDIR/checkpoints/<step>/."""

  def __init__(self, workdir: str, max_to_keep: int):
    self.directory = directory(workdir)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=True, enable_async_checkpointing=True,
        cleanup_tmp_directories=True)
    try:
      self._manager = ocp.CheckpointManager(
          self.directory, options=options, item_names=('state', 'progress'))
    except OSError as e:
      raise CheckpointError(
          f'cannot create the checkpoint directory {self.directory} ({errors.one_line(e)}); '
          'give a writable --workdir') from None

  def has_checkpoints(self) -> bool:
    return bool(self._manager.all_steps())

  def save(self, step: int, state: steps.TrainState, progress: dict[str, Any]) -> None:
    """Starts an asynchronous save; the training goes on while it is written.

    Raises:
      CheckpointError: when this or the previous save failed (a full disk, say).
    """
    if step == self._manager.latest_step():
      return  # Saved at this step already (a SIGTERM right after the eval of a save).
    try:
      with jax.transfer_guard('allow'):
        self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), progress=ocp.args.JsonSave(progress)))
    except Exception as e:  # pylint: disable=broad-except
      raise self._write_error(step, e) from None

  def wait(self) -> None:
    """Blocks until the last save is on disk; raises CheckpointError if it failed."""
    try:
      self._manager.wait_until_finished()
      self._manager.check_for_errors()
    except Exception as e:  # pylint: disable=broad-except
      raise self._write_error(self._manager.latest_step(), e) from None

  def _write_error(self, step: int | None, error: BaseException) -> CheckpointError:
    return CheckpointError(
        f'cannot write the checkpoint of step {step} to {self.directory} '
        f'({errors.one_line(error)}); free disk space or set checkpoint.every_steps=0 and '
        'checkpoint.every_seconds=0, then re-run the same command to resume')

  def restore_latest(self, abstract_state: steps.TrainState
                     ) -> tuple[steps.TrainState, dict[str, Any]] | None:
    """The newest readable checkpoint, or None when there is none.

    A checkpoint that cannot be read (corrupt, truncated, or from another
    config) is reported and skipped for the one before it. Orbax finalises a
    checkpoint by renaming its temporary directory, so one that a kill left
    half-written is never listed.

    Raises:
      CheckpointError: when checkpoints exist and none can be read.
    """
    saved = sorted(self._manager.all_steps(), reverse=True)
    failures = []
    for step in saved:
      try:
        restored = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), progress=ocp.args.JsonRestore()))
        state, progress = restored.state, restored.progress
        _check_restored(step, state, progress)
      except Exception as e:  # pylint: disable=broad-except
        failures.append(f'step {step}: {_unreadable(e)}')
        logging.warning('checkpoint of step %d in %s cannot be read (%s); trying the one '
                        'before it', step, self.directory, _unreadable(e))
        logging.debug('the error reading step %d: %s', step, errors.one_line(f'{type(e).__name__}: {e}'))
        continue
      if failures:
        logging.warning('resuming from the checkpoint of step %d: the newer ones could '
                        'not be read', step)
      return state, progress
    if failures:
      raise CheckpointError(
          f'no checkpoint in {self.directory} can be read ({failures[0]}); move that '
          'directory aside to start the run afresh')
    return None

  def close(self) -> None:
    self._manager.close()


def _check_restored(step: int, state: steps.TrainState, progress: dict[str, Any]) -> None:
  """Catches a checkpoint that reads without error yet is not the one named."""
  state_step = int(jax.device_get(state.step))
  if state_step != step or progress.get('step') != step:
    raise ValueError(f'the state is at step {state_step} and the progress at '
                     f'{progress.get("step")}, the directory name says {step}')
