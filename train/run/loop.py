"""One training run from a config to a result: the loop around the pure steps.

Read `train_and_evaluate` from the top: the run's files and logs are opened, the
untimed initialisation (train/run/initialization.py) builds or restores the
state, `_train` runs the timed loop of train steps and evals, and the run's
record (train/run/record.py) becomes result.json. Stop signals and preemption
live in train/run/preemption.py, checkpoints in train/run/checkpoint.py.

A run that holds a claim on its directory (a study's worker, or main.py's single
run; train/common/claims.py) checks it before it writes there: before config.json,
each checkpoint (as it starts and as it is renamed into place) and result.json,
and, at most every claims.FENCE_RECHECK_SECONDS, before the lines of its MLPerf
log, TensorBoard and trust_ratios.json. A process whose claim was taken over
(it was stopped for minutes, say) thus exits at its next write instead of
making it, and never writes into a run that another worker now trains.

Timing follows MLPerf: model creation, compilation, a warm-up step on zeros and
the input pipeline's set-up happen between `init_start` and `init_stop` and are
not timed; the clock starts at `run_start`, before the first training batch is
read, and every eval counts.
"""

import math
import os
import time
from typing import Any, Callable, Sequence

import jax
import ml_collections
from absl import logging
from clu import metric_writers
from clu import periodic_actions
from mlperf_logging.mllog import constants as mlc

from train.common import claims
from train.common import console
from train.common import errors
from train.run import budget
from train.run import checkpoint
from train.run import distributed
from train.run import evaluation
from train.run import initialization
from train.run import mllog
from train.run import preemption
from train.run import programs
from train.run import record
from train.run import steps

# Points of a run where a test may kill it or read its state: hook(event, step,
# state) is called after every train step ('train_step'), after every eval batch
# ('eval_batch'), right after a checkpoint save starts ('checkpoint') and once
# the run is over ('end').
Hook = Callable[[str, int, steps.TrainState], None]


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       step_cache: programs.StepCache | None = None,
                       hook: Hook | None = None,
                       progress: console.Progress | None = None,
                       claim: claims.Claim | None = None) -> dict[str, Any]:
  """Trains and evaluates as `config` says; writes the run's files; returns result.json.

  A run resumes from the newest readable checkpoint in WORKDIR/checkpoints and
  ends exactly where it would have ended without the interruption (the same
  parameters and evals). `step_cache` lets the runs of a study share compiled
  programs; a run that found its programs compiled reports `compile_seconds` 0.
  `progress`, if given, shows the run's step, images/s and time left on the console.
  `claim`, this process's claim on `workdir` (process 0's), fences its writes
  (module docstring).

  Raises:
    preemption.Preempted: a stop signal arrived; a checkpoint of the last step is on disk.
    checkpoint.CheckpointError: a checkpoint cannot be written, or none read.
    claims.ClaimLost: the claim was taken over, and its `on_lost` returned.
  """
  fence, log_fence = _fences(claim)
  os.makedirs(workdir, exist_ok=True)
  is_main = jax.process_index() == 0
  if is_main:  # Process 0 writes the run's files; the others only their checkpoint shards.
    fence()
    record.write_config(config, workdir)
  # Orbax's set-up below is the first collective between processes.
  distributed.wait_for_all_processes('run start')
  checkpointer = checkpoint.RunCheckpointer(workdir, config.checkpoint.max_to_keep,
                                            fence=None if claim is None else fence)
  log_path = os.path.join(workdir, 'mlperf.log') if is_main else os.devnull
  resuming = checkpointer.has_checkpoints()
  # A fresh run logs its initialisation; a resumed one appends to the log it
  # continues, once its checkpoint has said where that log stood.
  mllogger = None if resuming else mllog.MlperfLogger(log_path, before_write=log_fence)
  writer = None
  try:
    if mllogger is not None:
      mllogger.event(mlc.CACHE_CLEAR, True)
      mllogger.start(mlc.INIT_START)
    init_start = time.perf_counter()
    setup = initialization.set_up(config, step_cache or programs.StepCache(), checkpointer,
                                  mllogger, resuming)
    init_seconds = time.perf_counter() - init_start
    if setup.history is None:
      mllogger.end(mlc.INIT_STOP)
    else:
      mllogger = initialization.reopen_mlperf_log(log_path, setup.history, is_main,
                                                  before_write=log_fence)
    writer = _metric_writer(workdir, is_main, log_fence)
    if setup.history is None:
      record.write_hparams(config, writer)
    hook = hook or _no_hook
    trust_ratios = None  # Logged only when asked for: nothing is read otherwise.
    if config.trust_ratio_log_steps:
      trust_ratios = record.TrustRatioLog(
          config, workdir, writer, None if setup.history is None else setup.history.step,
          is_main, before_write=log_fence)
    with preemption.StopSignals() as stop_signals:
      saves = _Saves(checkpointer, checkpoint.Cadence(config, time.perf_counter()),
                     stop_signals, mllogger, hook)
      actions = _periodic_actions(config, workdir, setup.budget.num_train_steps, writer)
      history = _train(config, setup, mllogger, writer, saves, actions, hook, progress,
                       trust_ratios)
  except BaseException:
    _close_all((writer, mllogger, checkpointer), failing=True)
    raise
  _close_all((writer, mllogger, checkpointer), failing=False)
  result = record.result(config, history, setup.budget, init_seconds, setup.compile_seconds)
  if is_main:
    fence()
    record.write_result(result, workdir)
  return result


def _no_hook(event: str, step: int, state: steps.TrainState) -> None:
  del event, step, state


def _unfenced() -> None:
  pass


def _fences(claim: claims.Claim | None) -> tuple[Callable[[], None], Callable[[], None]]:
  """The checks before a write into the run dir: (before a file that commits
  something, such as a checkpoint or result.json, which always reads the claim
  files; before a log line, which reads them at most every
  FENCE_RECHECK_SECONDS). Without a claim, nothing is checked."""
  if claim is None:
    return _unfenced, _unfenced
  return claim.fence, lambda: claim.fence(recheck_after=claims.FENCE_RECHECK_SECONDS)


def _metric_writer(workdir: str, is_main: bool,
                   before_write: Callable[[], None]) -> metric_writers.MetricWriter:
  """CLU's default writer: every process logs the metrics (the log file), the
  main one writes TensorBoard's files too, each write of those after
  `before_write`. The console has its own line."""
  if not is_main:
    return metric_writers.create_default_writer(workdir, just_logging=True)
  return metric_writers.AsyncMultiWriter([
      metric_writers.LoggingWriter(),
      record.FencedWriter(metric_writers.SummaryWriter(workdir), before_write)])


def _periodic_actions(config: ml_collections.ConfigDict, workdir: str, num_steps: int,
                      writer: metric_writers.MetricWriter
                      ) -> list[periodic_actions.PeriodicAction]:
  """CLU's actions, called after every train step: steps/s and the time left at
  log steps (the log and TensorBoard), and the profiler trace that
  `config.profile` asks for, from process 0. Neither waits for the device."""
  actions: list[periodic_actions.PeriodicAction] = [periodic_actions.ReportProgress(
      num_train_steps=num_steps, writer=writer, every_steps=config.log_every_steps,
      every_secs=None)]
  if config.profile.num_steps and jax.process_index() == 0:
    actions.append(periodic_actions.Profile(
        logdir=workdir, num_profile_steps=config.profile.num_steps, profile_duration_ms=None,
        first_profile=config.profile.first_step, every_secs=None))
  return actions


def _train(config: ml_collections.ConfigDict, setup: initialization.Setup,
           mllogger: mllog.MlperfLogger, writer: metric_writers.MetricWriter,
           saves: '_Saves', actions: Sequence[periodic_actions.PeriodicAction], hook: Hook,
           progress: console.Progress | None,
           trust_ratios: record.TrustRatioLog | None) -> record.History:
  """The timed run: from run_start (or the checkpoint) to run_stop.

  Blocks of training end at the evals of `budget.eval_points`. The MLPerf log
  ends at run_stop: at the first eval that reaches the target (success) or at
  the end of the budget (aborted). With stop_at_target=False training goes on
  to the end of the budget for result.json and TensorBoard only, so the log
  holds the evals of an MLPerf run and no eval after its clock stopped.

  The loss is checked at log steps, where the metrics come to the host anyway:
  a NaN or infinite loss ends the run as diverged (run_stop aborted). With
  `trust_ratios`, the layers' trust ratios are read at its steps only.
  """
  history = setup.history
  if history is None:
    mllogger.start(mlc.RUN_START)
    history = record.History(run_start_wall=time.time())
  # Across interruptions the run's clock is the wall clock, which a resumed
  # process shares; here it is on this process's perf counter.
  run_start = time.perf_counter() - (time.time() - history.run_start_wall)
  num_steps = setup.budget.num_train_steps
  step_log = record.StepLog(num_steps, config.global_batch_size, writer, history.step,
                            progress)
  state = setup.state
  # Any implicit host-device transfer in the loop is a hidden sync: fail loudly.
  with jax.transfer_guard('disallow'):
    for point in budget.eval_points(config, setup.budget)[len(history.evals):]:
      _start_block(mllogger, history, point)
      while history.step < point.step:
        with jax.profiler.StepTraceAnnotation('train', step_num=history.step):
          state, metrics = setup.train_step(state, next(setup.train_batches))
        history.step += 1
        if trust_ratios is not None and trust_ratios.due(history.step):
          trust_ratios(history.step, state.opt_state)  # A sync, at the chosen steps only.
        # Metrics come to the host only at log steps: a sync with the device.
        at_log_step = history.step % config.log_every_steps == 0 or history.step == num_steps
        if at_log_step:
          history.last_train_metrics = step_log(history.step, metrics)
          if _diverged(history):
            break
        for action in actions:
          action(history.step)
        hook('train_step', history.step, state)
        saves.after_step(history, state, at_log_step)
      if history.diverged:
        break
      _end_block(mllogger, history)
      eval_start = time.perf_counter()
      history.evals.append(evaluation.evaluate_and_log(
          setup.evaluator, state, point, run_start=run_start,
          mllogger=mllogger if history.reached is None else None, writer=writer,
          on_batch=lambda: hook('eval_batch', history.step, state)))
      history.eval_seconds += time.perf_counter() - eval_start
      history.block_start_epoch = point.epoch
      if _reached_target(config, history, mllogger) and config.stop_at_target:
        break
      saves.after_eval(history, state)
  if history.reached is None:
    mllogger.end(mlc.RUN_STOP, metadata={'status': 'aborted'})
  saves.wait()  # The last save must be whole before result.json says the run is done.
  history.run_seconds = time.perf_counter() - run_start
  hook('end', history.step, state)
  return history


def _diverged(history: record.History) -> bool:
  """Whether the last logged loss is NaN or infinite, which ends the run."""
  loss = history.last_train_metrics['loss']
  if not math.isfinite(loss):
    history.diverged = True
    logging.warning('the loss is %s at step %d: the run diverged', loss, history.step)
  return history.diverged


def _block(history: record.History) -> dict[str, Any]:
  """The MLPerf metadata of the block that started after `block_start_epoch`.

  MLPerf numbers epochs from 1: a block starting after epoch 4 starts at 5.
  """
  return {'first_epoch_num': mllog.number(history.block_start_epoch + 1)}


def _start_block(mllogger: mllog.MlperfLogger, history: record.History,
                 point: budget.EvalPoint) -> None:
  """Opens the MLPerf block that ends at the eval of `point`, unless the run resumed
  inside it or its clock has stopped (nothing is logged after run_stop)."""
  if history.reached is None and not history.in_block:
    mllogger.start(mlc.BLOCK_START, metadata={
        **_block(history),
        'epoch_count': mllog.number(point.epoch - history.block_start_epoch)})
  history.in_block = True


def _end_block(mllogger: mllog.MlperfLogger, history: record.History) -> None:
  if history.reached is None:
    mllogger.end(mlc.BLOCK_STOP, metadata=_block(history))
  history.in_block = False


def _reached_target(config: ml_collections.ConfigDict, history: record.History,
                    mllogger: mllog.MlperfLogger) -> bool:
  """Whether the last eval is the first to reach the target; if so the MLPerf
  clock stops there (run_stop success)."""
  if history.reached is not None or history.evals[-1].accuracy < config.target_accuracy:
    return False
  history.reached_index = len(history.evals) - 1
  mllogger.end(mlc.RUN_STOP, metadata={'status': 'success'})
  return True


class _Saves:
  """When the run saves a checkpoint: when the cadence says, and at a stop signal,
  after which it stops (Preempted) once that checkpoint is whole."""

  def __init__(self, checkpointer: checkpoint.RunCheckpointer, cadence: checkpoint.Cadence,
               stop_signals: preemption.StopSignals, mllogger: mllog.MlperfLogger,
               hook: Hook):
    self._checkpointer = checkpointer
    self._cadence = cadence
    self._stop_signals = stop_signals
    self._mllogger = mllogger
    self._hook = hook

  def after_step(self, history: record.History, state: steps.TrainState,
                 at_log_step: bool) -> None:
    stop = self._stop_signals.agreed(at_sync_point=at_log_step)
    if stop or self._cadence.due(history.step, time.perf_counter(), at_log_step):
      self._save(history, state)
    if stop:
      self._stop(f'at step {history.step}')

  def after_eval(self, history: record.History, state: steps.TrainState) -> None:
    if self._stop_signals.agreed(at_sync_point=True):
      self._save(history, state)
      self._stop(f'after the eval at step {history.step}')

  def wait(self) -> None:
    self._checkpointer.wait()

  def _save(self, history: record.History, state: steps.TrainState) -> None:
    history.mlperf_log_bytes = self._mllogger.tell()
    history.saved_wall = time.time()
    self._checkpointer.save(history.step, state, history.to_json())
    self._cadence.saved(time.perf_counter())
    self._hook('checkpoint', history.step, state)

  def _stop(self, where: str) -> None:
    self._checkpointer.wait()
    raise self._stop_signals.preempted(where, self._checkpointer.directory)


def _close_all(closables: Sequence[Any], failing: bool) -> None:
  """Closes each of `closables` (None: not opened yet), all of them even when one
  fails. After a failure (`failing`) closing raises nothing: the metric writer
  and the logs flush onto the same full disk, and the checkpoint manager would
  raise its failed save again, each a second error over the line that says what
  went wrong; those go to the log file. Otherwise the first error is raised."""
  first = None
  for closable in closables:
    if closable is None:
      continue
    try:
      closable.close()
    except Exception as e:  # pylint: disable=broad-except
      if failing:
        logging.info('closing %s after the failure failed too: %s', type(closable).__name__,
                     errors.one_line(f'{type(e).__name__}: {e}'))
      elif first is None:
        first = e
  if first is not None:
    raise first
