"""One training run from a config to a result: the loop around the pure steps.

Timing follows MLPerf: model creation, compilation, a warm-up step on zeros and
the input pipeline's set-up happen between `init_start` and `init_stop` and are
not timed; the clock starts at `run_start`, before the first training batch is
read, and every eval counts.
"""

import collections
import dataclasses
import json
import math
import os
import signal
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from clu import metric_writers
from jax.sharding import NamedSharding
from mlperf_logging.mllog import constants as mlc

from input_pipeline import datasets
from input_pipeline import info
from input_pipeline import pipeline
from train.common import console
from train.common import errors
from train.common import files
from train.common import stops
from train.run import budget
from train.run import checkpoint
from train.run import distributed
from train.run import mllog
from train.run import programs
from train.run import steps


@dataclasses.dataclass
class EvalRecord:
  step: int
  epoch: float
  accuracy: float
  loss: float
  seconds: float


def device_batches(batches: Iterable[dict[str, np.ndarray]], sharding: NamedSharding,
                   prefetch: int) -> Iterator[dict[str, jax.Array]]:
  """Puts host batches on the devices, `prefetch` batches ahead of the consumer.

  `jax.make_array_from_process_local_data` copies asynchronously, so keeping a few
  batches in flight overlaps the transfer with the running step.
  """
  queue = collections.deque()
  for batch in batches:
    # An explicit transfer, allowed inside the loop's transfer guard (with
    # several processes it would otherwise count as an implicit one).
    with jax.transfer_guard_host_to_device('allow'):
      queue.append(jax.tree.map(
          lambda x: jax.make_array_from_process_local_data(sharding, x), batch))
    if len(queue) > prefetch:
      yield queue.popleft()
  while queue:
    yield queue.popleft()


def evaluate(eval_fn: Callable, state: steps.TrainState,
             eval_batches: Iterable[dict[str, np.ndarray]], sharding: NamedSharding,
             on_batch: Callable[[], None] | None = None) -> tuple[float, float, int]:
  """Accuracy, mean loss and example count over one pass of the eval split."""
  totals = None
  for batch in device_batches(eval_batches, sharding, prefetch=1):
    sums = eval_fn(state, batch)
    totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
    if on_batch is not None:
      on_batch()
  totals = jax.device_get(totals)
  count = int(round(float(totals['count'])))
  return float(totals['correct']) / count, float(totals['loss_sum']) / count, count


def write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  files.write_json(os.path.join(workdir, 'config.json'), json.loads(config.to_json()))


class _LogSteps:
  """What happens at log steps: the train metrics to the log file and TensorBoard,
  images/s and time left to the console's progress line."""

  def __init__(self, num_steps: int, batch_size: int, writer: metric_writers.MetricWriter,
               start_step: int, progress: console.Progress | None):
    self._num_steps = num_steps
    self._batch_size = batch_size
    self._writer = writer
    self._progress = progress
    self._last = (start_step, time.perf_counter())
    self.last_metrics: dict[str, float] = {}

  def __call__(self, step: int, metrics: dict[str, jax.Array]) -> None:
    """Fetches the step's metrics (a host sync, so only at log steps) and logs them."""
    host = {k: float(v) for k, v in jax.device_get(metrics).items()}
    now = time.perf_counter()
    last_step, last_time = self._last
    self._last = (step, now)
    host['images_per_second'] = (step - last_step) * self._batch_size / (now - last_time)
    self.last_metrics = host
    eta = (self._num_steps - step) * self._batch_size / host['images_per_second']
    logging.info('step %d/%d: loss %.4f, train accuracy %.3f, lr %.4g, '
                 '%.0f images/s, time left %.0fs', step, self._num_steps, host['loss'],
                 host['accuracy'], host['learning_rate'], host['images_per_second'], eta)
    self._writer.write_scalars(step, {f'train_{k}': v for k, v in host.items()})
    if self._progress is not None:
      self._progress.update(step, self._num_steps, host['images_per_second'], eta)


@dataclasses.dataclass
class Progress:
  """The loop's position and history: what a checkpoint holds besides the state.

  Times are on the wall clock (`time.time()`), which a resumed process shares
  with the one that was stopped.
  """
  run_start_wall: float
  step: int = 0
  evals: list[EvalRecord] = dataclasses.field(default_factory=list)
  eval_seconds: float = 0.0
  reached_index: int | None = None  # In `evals`: the first eval at the target.
  in_block: bool = False  # The next eval's block_start is logged.
  block_start_epoch: float = 0.0
  mlperf_log_bytes: int = 0  # The log's length when the checkpoint was saved.
  num_resumes: int = 0
  resumed_from_steps: list[int] = dataclasses.field(default_factory=list)
  seconds_lost: float = 0.0  # From each checkpoint used to the end of its restore.
  last_train_metrics: dict[str, float] = dataclasses.field(default_factory=dict)
  saved_wall: float = 0.0
  run_seconds: float = 0.0  # Set at the end: run_start to the last eval, wall clock.
  diverged: bool = False

  def to_json(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, value: dict[str, Any]) -> 'Progress':
    value = dict(value, evals=[EvalRecord(**e) for e in value['evals']])
    return cls(**value)

  @property
  def reached(self) -> EvalRecord | None:
    return None if self.reached_index is None else self.evals[self.reached_index]


# SIGTERM: what schedulers send before they kill; SIGINT: Ctrl-C; SIGUSR2: Slurm's
# warning before a time limit or a preemption, as submitit asks for it.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)


class Preempted(stops.SavedAndStopped):
  """A stop signal (STOP_SIGNALS) arrived: the run saved a checkpoint and stopped;
  the same command resumes it. `signal_number` says which."""

  def __init__(self, message: str, signal_number: int = signal.SIGTERM):
    super().__init__(message)
    self.signal_number = signal_number


class _StopSignals:
  """Turns the STOP_SIGNALS (SIGTERM, SIGINT, Slurm's SIGUSR2) into a flag the loop
  polls, so that each ends the run with a checkpoint.

  A second SIGINT, for a user who will not wait for the save, stops at once
  (KeyboardInterrupt). Installed only in the main thread, where Python delivers
  signals; the previous handlers come back on exit.
  """

  def __init__(self):
    self.raised = False
    self.signal_number = signal.SIGTERM
    self._previous = {}

  @property
  def name(self) -> str:
    return signal.Signals(self.signal_number).name

  def __enter__(self) -> '_StopSignals':
    if threading.current_thread() is threading.main_thread():
      for signum in STOP_SIGNALS:
        self._previous[signum] = signal.signal(signum, self._handle)
    # One that came before (while compiling; a library may have swallowed the
    # exception it raised) stops the run at its first step.
    if stops.received() is not None:
      self.raised, self.signal_number = True, stops.received()
    return self

  def _handle(self, signum, frame) -> None:
    del frame
    if self.raised and signum == signal.SIGINT:
      raise stops.Stopped(signum)
    stops.record(signum)
    self.raised, self.signal_number = True, signum
    logging.warning('%s: saving a checkpoint at the end of this step, then stopping%s',
                    self.name, ' (Ctrl-C again stops without saving)'
                    if signum == signal.SIGINT else '')

  def __exit__(self, *exc) -> None:
    for signum, previous in self._previous.items():
      signal.signal(signum, previous)

  def agreed(self, at_sync_point: bool) -> bool:
    """Whether to stop now. Alone, at the signal; with several processes, which
    must all save at the same step, at the next sync point (a log step or an
    eval) where any of them has had it."""
    if jax.process_count() == 1:
      return self.raised
    if not at_sync_point:
      return False
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    with jax.transfer_guard('allow'):
      return bool(np.any(multihost_utils.process_allgather(np.asarray(self.raised))))


# Points of a run where a test may kill it or read its state: hook(event, step,
# state) is called after every train step ('train_step'), after every eval batch
# ('eval_batch'), right after a checkpoint save starts ('checkpoint') and once
# the run is over ('end').
Hook = Callable[[str, int, steps.TrainState], None]


@dataclasses.dataclass
class _Setup:
  """What the untimed initialisation produces for the timed run."""
  state: steps.TrainState
  train_step: Callable
  eval_step: Callable
  train_batches: Iterator[dict[str, jax.Array]]
  eval_dataset: Iterable[dict[str, np.ndarray]]
  batch_sharding: NamedSharding
  budget: budget.Budget
  num_eval: int
  compile_seconds: float
  progress: Progress | None  # From a checkpoint, or None for a fresh run.


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       step_cache: programs.StepCache | None = None,
                       hook: Hook | None = None,
                       progress: console.Progress | None = None) -> dict:
  """Trains and evaluates as `config` says; writes the run's files; returns result.json.

  A run resumes from the newest readable checkpoint in WORKDIR/checkpoints and
  ends exactly where it would have ended without the interruption (the same
  parameters and evals). `step_cache` lets the runs of a study share compiled
  programs; a run that found its programs compiled reports `compile_seconds` 0.
  `progress`, if given, shows the run's step, images/s and time left on the console.

  Raises:
    Preempted: SIGTERM or SIGINT arrived; a checkpoint of the last step is on disk.
    checkpoint.CheckpointError: a checkpoint cannot be written, or none read.
  """
  step_cache = step_cache or programs.StepCache()
  os.makedirs(workdir, exist_ok=True)
  is_main = jax.process_index() == 0
  if is_main:  # Process 0 writes the run's files; the others only their checkpoint shards.
    write_config(config, workdir)
  # Orbax's set-up below is the first collective between processes.
  distributed.wait_for_all_processes('run start')
  checkpointer = checkpoint.RunCheckpointer(workdir, config.checkpoint.max_to_keep)
  log_path = os.path.join(workdir, 'mlperf.log') if is_main else os.devnull
  resuming = checkpointer.has_checkpoints()
  # A fresh run logs its initialisation; a resumed one appends to the log it
  # continues, once its checkpoint has said where that log stood.
  mllogger = None if resuming else mllog.MlperfLogger(log_path)
  writer = None
  try:
    if mllogger is not None:
      mllogger.event(mlc.CACHE_CLEAR, True)
      mllogger.start(mlc.INIT_START)
    init_start = time.perf_counter()
    compilations = step_cache.num_compilations
    setup = _set_up(config, step_cache, checkpointer, mllogger, resuming)
    if step_cache.num_compilations == compilations:
      setup.compile_seconds = 0.0
    init_seconds = time.perf_counter() - init_start
    if setup.progress is None:
      mllogger.end(mlc.INIT_STOP)
    else:
      mllogger = _reopen_log(log_path, setup.progress, is_main)
    # TensorBoard files from the main process only; the console gets `progress`.
    writer = (metric_writers.AsyncWriter(metric_writers.SummaryWriter(workdir))
              if is_main else metric_writers.MultiWriter([]))
    with _StopSignals() as stop_signal:
      run = _train(config, setup, mllogger, writer, checkpointer, stop_signal, hook,
                   progress)
  except BaseException:
    _close_all((writer, mllogger, checkpointer), failing=True)
    raise
  _close_all((writer, mllogger, checkpointer), failing=False)
  result = _result(config, setup, run, init_seconds)
  if is_main:
    files.write_json(os.path.join(workdir, 'result.json'), result)
  return result


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


def _reopen_log(log_path: str, progress: Progress,
                is_main: bool) -> mllog.MlperfLogger:
  """The MLPerf log of a resumed run: cut back to the checkpoint, then appended to.

  What the stopped process logged after its checkpoint (work that is redone)
  is cut, and a `harness_resume` event marks the interruption. The wall clock
  runs on through it, so the log's run_start to run_stop includes the lost
  time, as MLPerf would count it; such a log is no valid MLPerf result.
  """
  if is_main and os.path.exists(log_path):
    with open(log_path, 'r+b') as f:
      f.truncate(min(progress.mlperf_log_bytes, os.path.getsize(log_path)))
  mllogger = mllog.MlperfLogger(log_path, mode='a')
  mllogger.event(mllog.RESUME, metadata={
      'step': progress.step, 'num_resumes': progress.num_resumes,
      'seconds_lost': round(progress.seconds_lost, 3)})
  return mllogger


def _set_up(config: ml_collections.ConfigDict, step_cache: programs.StepCache,
            checkpointer: checkpoint.RunCheckpointer,
            mllogger: mllog.MlperfLogger | None, resuming: bool) -> _Setup:
  """Data, model, optimizer state and compiled steps: everything before run_start.

  A run with a checkpoint starts from it, its data stream positioned after the
  last batch trained on; a fresh run logs its hyperparameters to `mllogger`.
  """
  builder = _prepared_dataset(config)
  splits = builder.info.splits
  num_eval = splits[info.get_dataset_info(config.dataset).eval_split].num_examples
  run_budget = budget.resolve_budget(config, splits['train'].num_examples)
  compiled = step_cache.get(config, builder.info.features['label'].num_classes,
                            run_budget.num_train_examples)
  progress = None
  if resuming:
    # The shapes, dtypes and shardings to restore into: init's outputs.
    abstract_state = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
        compiled.init.out_info)
    restored = checkpointer.restore_latest(abstract_state)
    state, progress = restored[0], Progress.from_json(restored[1])
    progress.num_resumes += 1
    progress.resumed_from_steps.append(progress.step)
    progress.seconds_lost += time.time() - progress.saved_wall
    logging.info('resuming from the checkpoint of step %d (resume %d)', progress.step,
                 progress.num_resumes)
  else:
    for key, value in mllog.hyperparameters(
        config, run_budget, num_eval_examples=num_eval).items():
      mllogger.event(key, value)
    state = compiled.init(jax.random.key(config.seed))
  _warm_up(config, compiled, state)
  batch_sharding = compiled.batch_sharding
  # This process's share of each global batch, and of the eval split.
  process = jax.process_index(), jax.process_count()
  per_process_batch = config.global_batch_size // jax.process_count()
  _check_process_rows(batch_sharding, config.global_batch_size)
  # Global batch t is fixed by the seed and t alone (input_pipeline/order.py),
  # so the step is the input's whole position: a resumed run, on any number of
  # processes, starts there without reading what came before.
  train_batches = device_batches(datasets.checked_reads(
      pipeline.create_train_iterator(
          config, pipeline.Reading(per_process_batch, *process),
          deterministic=config.input.deterministic,
          start_batch=0 if progress is None else progress.step),
      config.dataset, config.data_dir), batch_sharding, config.input.prefetch_batches)
  eval_dataset = datasets.checked_reads(pipeline.create_eval_dataset(
      config, pipeline.Reading(config.eval_batch_size // jax.process_count(), *process)),
      config.dataset, config.data_dir)
  return _Setup(state=state, train_step=compiled.train_step, eval_step=compiled.eval_step,
                train_batches=train_batches, eval_dataset=eval_dataset,
                batch_sharding=batch_sharding, budget=run_budget, num_eval=num_eval,
                compile_seconds=compiled.compile_seconds, progress=progress)


def _check_process_rows(sharding: NamedSharding, global_batch: int) -> None:
  """The input gives process p the contiguous slice p of every global batch:
  the mesh must put exactly those rows on p's devices."""
  rows = sharding.addressable_devices_indices_map((global_batch,))
  starts = sorted(index[0].start or 0 for index in rows.values())
  size = global_batch // jax.process_count()
  if starts[0] != jax.process_index() * size or starts[-1] - starts[0] >= size:
    raise RuntimeError(f'process {jax.process_index()} holds rows {starts} of the global '
                       f'batch; the input gives it rows {jax.process_index() * size} to '
                       f'{(jax.process_index() + 1) * size - 1}')


def _prepared_dataset(config: ml_collections.ConfigDict):
  """The dataset's tfds builder, prepared by process 0 while the others wait:
  processes that share a disk must not build the same files at once."""
  is_main = jax.process_index() == 0
  builder = datasets.ensure_prepared(config.dataset, config.data_dir) if is_main else None
  if jax.process_count() > 1:
    # However long process 0 takes to build it: a barrier, then a collective.
    distributed.wait_for_all_processes('dataset prepared')
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices('dataset prepared')
  return builder or datasets.ensure_prepared(config.dataset, config.data_dir)


def _warm_up(config: ml_collections.ConfigDict, compiled: programs.CompiledSteps,
             state: steps.TrainState) -> None:
  """Runs the train and eval programs once, on zero batches, before init_stop.

  A program's first execution pays one-off costs (on GPUs: autotuning, loading
  kernels, allocating buffers) that would otherwise fall into the timed run.
  MLPerf lets that happen untimed as long as no training or validation data is
  touched, hence batches of zeros. The train step donates its state, so it runs
  on a copy; the run's own state is not changed.
  """
  def zeros(batch_size: int, with_mask: bool) -> dict[str, jax.Array]:
    abstract = programs.abstract_batch(config, batch_size, compiled.batch_sharding, with_mask)
    return {k: jnp.zeros(v.shape, v.dtype, device=v.sharding) for k, v in abstract.items()}

  scratch = jax.tree.map(jnp.copy, state)
  scratch, metrics = compiled.train_step(scratch, zeros(config.global_batch_size, False))
  sums = compiled.eval_step(scratch, zeros(config.eval_batch_size, True))
  jax.block_until_ready((scratch, metrics, sums))


@dataclasses.dataclass
class _Loop:
  """The timed run as it goes, shared by the small functions that make up `_train`."""
  config: ml_collections.ConfigDict
  setup: _Setup
  mllogger: mllog.MlperfLogger
  writer: metric_writers.MetricWriter
  checkpointer: checkpoint.RunCheckpointer
  stop_signal: _StopSignals
  hook: Hook
  p: Progress
  log_steps: _LogSteps
  cadence: checkpoint.Cadence
  run_start: float  # The run's clock on this process's perf counter.
  state: steps.TrainState
  diverged: bool = False


def _train(config: ml_collections.ConfigDict, setup: _Setup,
           mllogger: mllog.MlperfLogger, writer: metric_writers.MetricWriter,
           checkpointer: checkpoint.RunCheckpointer, stop_signal: _StopSignals,
           hook: Hook | None, progress: console.Progress | None = None) -> Progress:
  """The timed run: from run_start (or the checkpoint) to run_stop.

  Blocks of training end at the evals of `budget.eval_points`. The MLPerf log
  ends at run_stop: at the first eval that reaches the target (success) or at
  the end of the budget (aborted). With stop_at_target=False training goes on
  to the end of the budget for result.json and TensorBoard only, so the log
  holds the evals of an MLPerf run and no eval after its clock stopped.

  The loss is checked at log steps, where the metrics come to the host anyway:
  a NaN or infinite loss ends the run as diverged (run_stop aborted).
  """
  if setup.progress is None:
    mllogger.start(mlc.RUN_START)
  p = setup.progress or Progress(run_start_wall=time.time())
  run = _Loop(
      config, setup, mllogger, writer, checkpointer, stop_signal,
      hook=hook or (lambda event, step, state: None), p=p,
      log_steps=_LogSteps(setup.budget.num_train_steps, config.global_batch_size, writer,
                          p.step, progress),
      cadence=checkpoint.Cadence(config, time.perf_counter()),
      # Across interruptions: the wall clock, which a resumed process shares.
      run_start=time.perf_counter() - (time.time() - p.run_start_wall),
      state=setup.state)
  # Any implicit host-device transfer in the loop is a hidden sync: fail loudly.
  with jax.transfer_guard('disallow'):
    for point in budget.eval_points(config, setup.budget)[len(p.evals):]:
      _train_block(run, point)
      if run.diverged or _end_block_and_evaluate(run, point):
        break
  if p.reached is None:
    mllogger.end(mlc.RUN_STOP, metadata={'status': 'aborted'})
  # The last save must be whole before result.json says the run is done.
  checkpointer.wait()
  p.run_seconds = time.perf_counter() - run.run_start
  p.diverged = run.diverged
  run.hook('end', p.step, run.state)
  return p


def _block(p: Progress) -> dict[str, Any]:
  """The MLPerf metadata of the block that started after `p.block_start_epoch`.

  MLPerf numbers epochs from 1: a block starting after epoch 4 starts at 5.
  """
  return {'first_epoch_num': mllog.number(p.block_start_epoch + 1)}


def _train_block(run: _Loop, point: budget.EvalPoint) -> None:
  """Trains up to the eval at `point` (or a diverged loss); opens the block's MLPerf
  record unless the run resumed inside it or its clock has stopped."""
  p = run.p
  if p.reached is None and not p.in_block:  # Nothing in the MLPerf log after run_stop.
    run.mllogger.start(mlc.BLOCK_START, metadata={
        **_block(p), 'epoch_count': mllog.number(point.epoch - p.block_start_epoch)})
  p.in_block = True
  while p.step < point.step and not run.diverged:
    _train_step(run)


def _train_step(run: _Loop) -> None:
  """One step; at log steps the metrics; a checkpoint when due or when stopped."""
  p = run.p
  with jax.profiler.StepTraceAnnotation('train', step_num=p.step):
    run.state, metrics = run.setup.train_step(run.state, next(run.setup.train_batches))
  p.step += 1
  at_log_step = (p.step % run.config.log_every_steps == 0
                 or p.step == run.setup.budget.num_train_steps)
  if at_log_step:
    run.log_steps(p.step, metrics)
    p.last_train_metrics = run.log_steps.last_metrics
    if not math.isfinite(p.last_train_metrics['loss']):
      run.diverged = True
      logging.warning('the loss is %s at step %d: the run diverged',
                      p.last_train_metrics['loss'], p.step)
      return
  run.hook('train_step', p.step, run.state)
  stop = run.stop_signal.agreed(at_log_step)
  if stop or run.cadence.due(p.step, time.perf_counter(), at_log_step):
    _save(run)
  if stop:
    _stop(run, f'at step {p.step}')


def _end_block_and_evaluate(run: _Loop, point: budget.EvalPoint) -> bool:
  """Closes the block, evaluates, and says whether the run stops at its target."""
  p = run.p
  mlperf = run.mllogger if p.reached is None else None  # Nothing after run_stop.
  if mlperf is not None:
    mlperf.end(mlc.BLOCK_STOP, metadata=_block(p))
  p.in_block = False
  eval_start = time.perf_counter()
  p.evals.append(_evaluate_and_log(run.setup, run.state, point, run_start=run.run_start,
                                   mllogger=mlperf, writer=run.writer,
                                   on_batch=lambda: run.hook('eval_batch', p.step, run.state)))
  p.eval_seconds += time.perf_counter() - eval_start
  p.block_start_epoch = point.epoch
  if p.reached is None and p.evals[-1].accuracy >= run.config.target_accuracy:
    p.reached_index = len(p.evals) - 1
    run.mllogger.end(mlc.RUN_STOP, metadata={'status': 'success'})
    if run.config.stop_at_target:
      return True
  if run.stop_signal.agreed(at_sync_point=True):
    _save(run)
    _stop(run, f'after the eval at step {p.step}')
  return False


def _save(run: _Loop) -> None:
  p = run.p
  p.mlperf_log_bytes = run.mllogger.tell()
  p.saved_wall = time.time()
  run.checkpointer.save(p.step, run.state, p.to_json())
  run.cadence.saved(time.perf_counter())
  run.hook('checkpoint', p.step, run.state)


def _stop(run: _Loop, where: str) -> None:
  """Ends the run for a stop signal, once the checkpoint just started is whole."""
  run.checkpointer.wait()
  raise Preempted(f'stopped by {run.stop_signal.name} {where}; its checkpoint is in '
                  f'{run.checkpointer.directory}', run.stop_signal.signal_number)


def _evaluate_and_log(setup: _Setup, state: steps.TrainState, point: budget.EvalPoint, *,
                      run_start: float, mllogger: mllog.MlperfLogger | None,
                      writer: metric_writers.MetricWriter,
                      on_batch: Callable[[], None] | None = None) -> EvalRecord:
  """One full pass over the eval split, logged to TensorBoard, the console and,
  unless `mllogger` is None, MLPerf."""
  epoch_num = {'epoch_num': mllog.number(point.epoch)}
  if mllogger is not None:
    mllogger.start(mlc.EVAL_START, metadata=epoch_num)
  accuracy, loss, count = evaluate(setup.eval_step, state, setup.eval_dataset,
                                   setup.batch_sharding, on_batch)
  if count != setup.num_eval:
    raise RuntimeError(f'evaluated {count} examples, the split has {setup.num_eval}')
  if mllogger is not None:
    mllogger.event(mlc.EVAL_ACCURACY, accuracy, metadata=epoch_num)
    mllogger.end(mlc.EVAL_STOP, metadata=epoch_num)
  record = EvalRecord(step=point.step, epoch=point.epoch, accuracy=accuracy, loss=loss,
                      seconds=time.perf_counter() - run_start)
  writer.write_scalars(point.step, {'eval_accuracy': accuracy, 'eval_loss': loss})
  logging.info('eval at step %d (epoch %.2f): accuracy %.4f, loss %.4f, %.1fs into the run',
               point.step, point.epoch, accuracy, loss, record.seconds)
  return record


def _status(p: Progress) -> str:
  """success (the target reached), diverged (NaN or infinite loss first) or aborted."""
  if p.reached is not None:
    return 'success'
  return 'diverged' if p.diverged else 'aborted'


def _result(config: ml_collections.ConfigDict, setup: _Setup, p: Progress,
            init_seconds: float) -> dict:
  """The content of result.json."""
  reached = p.reached
  # Time lost to interruptions is neither training nor eval time.
  train_seconds = p.run_seconds - p.eval_seconds - p.seconds_lost
  return {
      'status': _status(p),
      'seed': config.seed,
      'dataset': config.dataset,
      'target_accuracy': config.target_accuracy,
      'reached_target': reached is not None,
      'steps_to_target': None if reached is None else reached.step,
      # From run_start to the end of the reaching eval, on the wall clock: a
      # resumed run's includes the time lost to its interruptions, as MLPerf's
      # log interval would.
      'seconds_to_target': None if reached is None else reached.seconds,
      # The reaching eval's epoch: whole MLPerf epochs with the cadence in epochs.
      'epochs_to_target': None if reached is None else reached.epoch,
      'final_eval_accuracy': p.evals[-1].accuracy if p.evals and not p.diverged else None,
      # The accuracy on the (augmented) training batch of the last logged step.
      'final_train_accuracy': p.last_train_metrics.get('accuracy'),
      'diverged': p.diverged,
      'resumed': p.num_resumes > 0,
      'num_resumes': p.num_resumes,
      'resumed_from_steps': p.resumed_from_steps,
      'seconds_lost_to_interruptions': p.seconds_lost,
      'steps_completed': p.step,
      'num_train_steps': setup.budget.num_train_steps,
      'global_batch_size': config.global_batch_size,
      # Training throughput: the run's images over its time outside evals.
      'images_per_second': p.step * config.global_batch_size / train_seconds,
      'run_seconds': p.run_seconds,
      'train_seconds': train_seconds,
      'eval_seconds': p.eval_seconds,
      'init_seconds': init_seconds,
      'compile_seconds': setup.compile_seconds,
      'num_devices': jax.device_count(),
      'platform': jax.devices()[0].platform,
      'evals': [dataclasses.asdict(e) for e in p.evals],
  }
