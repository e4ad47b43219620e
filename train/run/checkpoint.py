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

A run that holds a claim on its directory (train/common/claims.py) gives a
`fence`, called before a save starts, then in Orbax's thread before the save's
temporary directory is made and again before it is renamed into place: a
holder that lost its claim while the save was under way (stopped, say, and
taken over) never makes that checkpoint visible to the worker that now trains
in the run.
"""

import contextlib
import errno
import os
import re
import shutil
from typing import Any, Callable

import jax
import ml_collections
import orbax.checkpoint as ocp
from absl import logging

from train.common import errors
from train.common import files
from train.run import steps

DIRECTORY = 'checkpoints'
# How Orbax names a save being written: '<step>.orbax-checkpoint-tmp...'.
TMP_INFIX = '.orbax-checkpoint-tmp'


class CheckpointError(errors.BadInput, RuntimeError):
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
  if isinstance(error, _OtherModel):
    return f'it belongs to another model or optimizer: {error}'
  if isinstance(error, (ValueError, KeyError)) and 'json' in str(error).lower():
    return f'its progress file is damaged ({type(error).__name__})'
  return f'its files are damaged or belong to another config ({type(error).__name__})'


def _handlers() -> ocp.handlers.DefaultCheckpointHandlerRegistry:
  """How each item is written and read; registered up front so that a step's
  metadata can be read before the step is restored."""
  registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
  for item, handler, save, restore in (
      ('state', ocp.StandardCheckpointHandler, ocp.args.StandardSave, ocp.args.StandardRestore),
      ('progress', ocp.JsonCheckpointHandler, ocp.args.JsonSave, ocp.args.JsonRestore)):
    registry.add(item, save, handler)
    registry.add(item, restore, handler)
  return registry


Fence = Callable[[], None]


def _no_fence() -> None:
  pass


def _fenced_rename(fence: Fence, checkpoints: str
                   ) -> type[ocp.path.atomicity.AtomicRenameTemporaryPath]:
  """Orbax's atomic rename (the default on a POSIX filesystem), with `fence`
  called in Orbax's thread just before it creates a save's temporary directory
  in `checkpoints` and just before that directory becomes '<step>'. (Orbax
  makes the directories of the save's items inside it the same way; those are
  not fenced again.)"""

  class FencedRename(ocp.path.atomicity.AtomicRenameTemporaryPath):

    def _fence_a_step(self) -> None:
      if os.path.dirname(os.fspath(self.get_final())) == checkpoints:
        fence()

    async def create(self, *args, **kwargs):
      self._fence_a_step()
      return await super().create(*args, **kwargs)

    async def finalize(self, *args, **kwargs):
      self._fence_a_step()
      await super().finalize(*args, **kwargs)

  return FencedRename


class RunCheckpointer:
  """Saves and restores one run's checkpoints in WORKDIR/checkpoints/<step>/.

  `fence` is called before each save starts and before it is renamed into
  place (module docstring); by default nothing is checked.
  """

  def __init__(self, workdir: str, max_to_keep: int, fence: Fence | None = None):
    self.directory = directory(workdir)
    self._fence = fence or _no_fence
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=True, enable_async_checkpointing=True,
        cleanup_tmp_directories=True,
        temporary_path_class=None if fence is None else _fenced_rename(fence, self.directory))
    self._pending: int | None = None  # The step of a save still being written.
    self._failed = False  # A save failed: closing must not raise its error again.
    try:
      self._manager = ocp.CheckpointManager(
          self.directory, options=options, handler_registry=_handlers())
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
    # Orbax waits for the previous save here anyway; waiting first names the
    # step whose background write failed, not the step that found out.
    self._finish_pending()
    self._fence()
    try:
      with jax.transfer_guard('allow'):
        self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), progress=ocp.args.JsonSave(progress)))
    except Exception as e:  # pylint: disable=broad-except
      raise self._failure(step, e) from None
    self._pending = step

  def wait(self) -> None:
    """Blocks until the last save is on disk; raises CheckpointError if it failed."""
    self._finish_pending()

  def _finish_pending(self) -> None:
    """Waits for the save in the background, if any; raises CheckpointError if
    it failed (Orbax's threads write the files after `save` has returned)."""
    try:
      self._manager.wait_until_finished()
      self._manager.check_for_errors()
    except Exception as e:  # pylint: disable=broad-except
      step = self._pending if self._pending is not None else self._manager.latest_step()
      raise self._failure(step, e) from None
    self._pending = None

  def _failure(self, step: int | None, error: BaseException) -> CheckpointError:
    """The one-line error for the save of `step`, once its temporary directory
    is gone: a failed save must leave nothing half-written behind."""
    self._failed, self._pending = True, None
    if step is not None and jax.process_index() == 0:
      self._remove_unfinished(step)
    return self._write_error(step, error)

  def _remove_unfinished(self, step: int) -> None:
    # Orbax writes a save into '<step>.orbax-checkpoint-tmp...' and renames it when done.
    prefix = f'{step}{TMP_INFIX}'
    with contextlib.suppress(OSError):
      for name in os.listdir(self.directory):
        if name.startswith(prefix):
          shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)

  def _write_error(self, step: int | None, error: BaseException) -> CheckpointError:
    number = _errno(error)
    if number in (errno.ENOSPC, errno.EDQUOT):
      remedy = 'free disk space'
    elif number in files.FILESYSTEM_ERRNOS:
      remedy = files.remedy(number, self.directory)
    else:
      remedy = f'check that {self.directory} can be written'
    # TensorStore's messages hold every path of the save: the errno says enough.
    why = (f'{os.strerror(number)} [errno {number}]' if number is not None
           else _shortened(errors.one_line(f'{type(error).__name__}: {error}')))
    return CheckpointError(
        f'cannot write the checkpoint of step {step} to {self.directory} ({why}); '
        f'{remedy} or set checkpoint.every_steps=0 and checkpoint.every_seconds=0, then '
        're-run the same command to resume')

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
        # Orbax reads a mismatched array in asyncio tasks that fail one by one and
        # log a traceback each when collected; the shapes are checked first.
        _check_shapes(self._manager.item_metadata(step)['state'], abstract_state)
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
    """Waits for the last save and lets Orbax's threads go; raises CheckpointError
    if that save failed. After a failure it only lets go, and says nothing more:
    Orbax raises the failed save's error again when it is closed."""
    if self._failed:
      try:
        self._manager.close()
      except Exception as e:  # pylint: disable=broad-except
        logging.info('closing the checkpoint manager after a failed save: %s',
                     errors.one_line(e))
      return
    try:
      self._finish_pending()
    finally:
      if self._failed:
        self.close()
      else:
        self._manager.close()


# How TensorStore (Orbax's array writer, in its background threads) names the
# errno of a failed write in its message.
_TENSORSTORE_ERRNO = re.compile(r"os_error_code='(\d+)'")
_LONGEST_REASON = 300


def _errno(error: BaseException) -> int | None:
  """The errno of a failed save: an OSError's (Orbax's own writes), or the one
  TensorStore's error names (its array writes)."""
  cause = files.os_error_cause(error)
  if cause is not None and cause.errno is not None:
    return cause.errno
  found = _TENSORSTORE_ERRNO.search(str(error))
  return int(found.group(1)) if found else None


def _shortened(text: str) -> str:
  return text if len(text) <= _LONGEST_REASON else text[:_LONGEST_REASON] + '...'


class _OtherModel(ValueError):
  """A checkpoint's arrays are not this config's: other names or shapes."""


def _check_shapes(saved: Any, abstract_state: steps.TrainState) -> None:
  """Raises _OtherModel, naming the first array that differs, when the saved
  state's tree or shapes are not those of `abstract_state`."""
  if saved is None or getattr(saved, 'tree', None) is None:
    raise FileNotFoundError('the state has no metadata')
  stored = ocp.tree.to_flat_dict(saved.tree, sep='/')
  wanted = ocp.tree.to_flat_dict(ocp.tree.serialize_tree(abstract_state, keep_empty_nodes=True),
                                 sep='/')
  for name in sorted(set(stored) ^ set(wanted)):
    where = 'the checkpoint' if name in stored else 'this config'
    raise _OtherModel(f'{name} is only in {where}')
  for name in sorted(wanted):
    stored_shape = tuple(getattr(stored[name], 'shape', ()) or ())
    wanted_shape = tuple(getattr(wanted[name], 'shape', ()) or ())
    if stored_shape != wanted_shape:
      raise _OtherModel(f'{name} has shape {stored_shape} there, {wanted_shape} here')


def _check_restored(step: int, state: steps.TrainState, progress: dict[str, Any]) -> None:
  """Catches a checkpoint that reads without error yet is not the one named."""
  state_step = int(jax.device_get(state.step))
  if state_step != step or progress.get('step') != step:
    raise ValueError(f'the state is at step {state_step} and the progress at '
                     f'{progress.get("step")}, the directory name says {step}')
