"""One training run from a config to a result: the loop around the pure steps.

Timing follows MLPerf: model creation, compilation, a warm-up step on zeros and
the input pipeline's set-up happen between `init_start` and `init_stop` and are
not timed; the clock starts at `run_start`, before the first training batch is
read, and every eval counts.
"""

import collections
import dataclasses
import json
import os
import time
from typing import Any, Callable, Iterable, Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from clu import metric_writers
from clu import periodic_actions
from jax.sharding import NamedSharding
from mlperf_logging.mllog import constants as mlc

from input_pipeline import datasets
from input_pipeline import info
from input_pipeline import pipeline
from train import budget
from train import mlperf_log
from train import programs
from train import steps


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
    queue.append(jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, x), batch))
    if len(queue) > prefetch:
      yield queue.popleft()
  while queue:
    yield queue.popleft()


def evaluate(eval_fn: Callable, state: steps.TrainState,
             eval_batches: Iterable[dict[str, np.ndarray]],
             sharding: NamedSharding) -> tuple[float, float, int]:
  """Accuracy, mean loss and example count over one pass of the eval split."""
  totals = None
  for batch in device_batches(eval_batches, sharding, prefetch=1):
    sums = eval_fn(state, batch)
    totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
  totals = jax.device_get(totals)
  count = int(round(float(totals['count'])))
  return float(totals['correct']) / count, float(totals['loss_sum']) / count, count


def write_json(path: str, value: Any) -> None:
  """Writes atomically: a reader never sees half a file."""
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(value, f, indent=2)
    f.write('\n')
  os.replace(tmp, path)


def write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  write_json(os.path.join(workdir, 'config.json'), json.loads(config.to_json()))


class _ProgressLine:
  """Console progress at log steps: loss, accuracy, learning rate, images/s, time left."""

  def __init__(self, num_steps: int, batch_size: int, writer: metric_writers.MetricWriter):
    self._num_steps = num_steps
    self._batch_size = batch_size
    self._writer = writer
    self._last = (0, time.perf_counter())
    self.last_metrics: dict[str, float] = {}

  def __call__(self, step: int, t: float, metrics: dict[str, jax.Array]) -> None:
    """Fetches the step's metrics (a host sync, so only at log steps) and logs them."""
    del t  # clu's wall time; images/s uses the monotonic perf counter instead.
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


@dataclasses.dataclass
class _Outcome:
  """What the timed run produces."""
  evals: list[EvalRecord]
  steps_completed: int
  reached_step: int | None
  reached_epoch: float | None
  reached_seconds: float | None
  run_seconds: float
  eval_seconds: float
  last_train_metrics: dict[str, float]


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       step_cache: programs.StepCache | None = None) -> dict:
  """Trains and evaluates as `config` says; writes the run's files; returns result.json.

  `step_cache` lets the runs of a study share compiled programs; a run that found
  its programs compiled reports `compile_seconds` 0.
  """
  step_cache = step_cache or programs.StepCache()
  os.makedirs(workdir, exist_ok=True)
  write_config(config, workdir)
  is_main = jax.process_index() == 0
  # TensorBoard files from the main process only; the console gets _ProgressLine.
  writer = (metric_writers.AsyncWriter(metric_writers.SummaryWriter(workdir))
            if is_main else metric_writers.MultiWriter([]))
  mllogger = mlperf_log.MlperfLogger(os.path.join(workdir, 'mlperf.log'))
  try:
    mllogger.event(mlc.CACHE_CLEAR, True)
    mllogger.start(mlc.INIT_START)
    init_start = time.perf_counter()
    compilations = step_cache.num_compilations
    setup = _set_up(config, mllogger, step_cache)
    if step_cache.num_compilations == compilations:
      setup.compile_seconds = 0.0
    init_seconds = time.perf_counter() - init_start
    mllogger.end(mlc.INIT_STOP)
    outcome = _train(config, setup, mllogger, writer)
  finally:
    writer.close()
    mllogger.close()
  result = _result(config, setup, outcome, init_seconds)
  if is_main:
    write_json(os.path.join(workdir, 'result.json'), result)
  return result


def _set_up(config: ml_collections.ConfigDict, mllogger: mlperf_log.MlperfLogger,
            step_cache: programs.StepCache) -> _Setup:
  """Data, model, optimizer state and compiled steps: everything before run_start."""
  builder = datasets.ensure_prepared(config.dataset, config.data_dir)
  splits = builder.info.splits
  num_eval = splits[info.get_dataset_info(config.dataset).eval_split].num_examples
  run_budget = budget.resolve_budget(config, splits['train'].num_examples)
  for key, value in mlperf_log.hyperparameters(
      config, run_budget, num_eval_examples=num_eval).items():
    mllogger.event(key, value)

  compiled = step_cache.get(config, builder.info.features['label'].num_classes,
                            run_budget.num_train_examples)
  state = compiled.init(jax.random.key(config.seed))
  _warm_up(config, compiled, state)
  batch_sharding = compiled.batch_sharding

  shard = dict(process_index=jax.process_index(), process_count=jax.process_count())
  train_batches = device_batches(
      pipeline.create_train_iterator(
          config, batch_size=config.global_batch_size // jax.process_count(),
          deterministic=config.input.deterministic, **shard),
      batch_sharding, config.input.prefetch_batches)
  eval_dataset = pipeline.create_eval_dataset(
      config, batch_size=config.eval_batch_size // jax.process_count(), **shard)
  return _Setup(state=state, train_step=compiled.train_step, eval_step=compiled.eval_step,
                train_batches=train_batches, eval_dataset=eval_dataset,
                batch_sharding=batch_sharding, budget=run_budget, num_eval=num_eval,
                compile_seconds=compiled.compile_seconds)


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


def _train(config: ml_collections.ConfigDict, setup: _Setup,
           mllogger: mlperf_log.MlperfLogger,
           writer: metric_writers.MetricWriter) -> _Outcome:
  """The timed run: from run_start to run_stop.

  Blocks of training end at the evals of `budget.eval_points`. The MLPerf log
  ends at run_stop: at the first eval that reaches the target (success) or at
  the end of the budget (aborted). With stop_at_target=False training goes on
  to the end of the budget for result.json and TensorBoard only, so the log
  holds the evals of an MLPerf run and no eval after its clock stopped.
  """
  mllogger.start(mlc.RUN_START)
  run_start = time.perf_counter()
  num_steps = setup.budget.num_train_steps
  report_progress = periodic_actions.ReportProgress(
      num_train_steps=num_steps, writer=writer, every_secs=30.0)
  progress_line = _ProgressLine(num_steps, config.global_batch_size, writer)
  log_train_metrics = periodic_actions.PeriodicCallback(
      every_steps=config.log_every_steps, on_steps=[num_steps], callback_fn=progress_line)
  state = setup.state
  evals: list[EvalRecord] = []
  eval_seconds = 0.0
  reached = None
  step = 0
  block_start_epoch = 0.0
  # Any implicit host-device transfer in the loop is a hidden sync: fail loudly.
  with jax.transfer_guard('disallow'):
    for point in budget.eval_points(config, setup.budget):
      mlperf = mllogger if reached is None else None  # Nothing after run_stop.
      # MLPerf numbers epochs from 1: a block starting after epoch 4 starts at 5.
      block = {'first_epoch_num': mlperf_log.number(block_start_epoch + 1)}
      if mlperf is not None:
        mlperf.start(mlc.BLOCK_START, metadata={
            **block, 'epoch_count': mlperf_log.number(point.epoch - block_start_epoch)})
      while step < point.step:
        with jax.profiler.StepTraceAnnotation('train', step_num=step):
          state, metrics = setup.train_step(state, next(setup.train_batches))
        step += 1
        report_progress(step, time.time())
        log_train_metrics(step, time.time(), metrics=metrics)
      if mlperf is not None:
        mlperf.end(mlc.BLOCK_STOP, metadata=block)
      eval_start = time.perf_counter()
      evals.append(_evaluate_and_log(setup, state, point, run_start=run_start,
                                     mllogger=mlperf, writer=writer))
      eval_seconds += time.perf_counter() - eval_start
      block_start_epoch = point.epoch
      if reached is None and evals[-1].accuracy >= config.target_accuracy:
        reached = evals[-1]
        mllogger.end(mlc.RUN_STOP, metadata={'status': 'success'})
        if config.stop_at_target:
          break
  run_seconds = time.perf_counter() - run_start
  if reached is None:
    mllogger.end(mlc.RUN_STOP, metadata={'status': 'aborted'})
  return _Outcome(evals=evals, steps_completed=step,
                  reached_step=reached.step if reached else None,
                  reached_epoch=reached.epoch if reached else None,
                  reached_seconds=reached.seconds if reached else None,
                  run_seconds=run_seconds, eval_seconds=eval_seconds,
                  last_train_metrics=progress_line.last_metrics)


def _evaluate_and_log(setup: _Setup, state: steps.TrainState, point: budget.EvalPoint, *,
                      run_start: float, mllogger: mlperf_log.MlperfLogger | None,
                      writer: metric_writers.MetricWriter) -> EvalRecord:
  """One full pass over the eval split, logged to TensorBoard, the console and,
  unless `mllogger` is None, MLPerf."""
  epoch_num = {'epoch_num': mlperf_log.number(point.epoch)}
  if mllogger is not None:
    mllogger.start(mlc.EVAL_START, metadata=epoch_num)
  accuracy, loss, count = evaluate(setup.eval_step, state, setup.eval_dataset,
                                   setup.batch_sharding)
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


def _result(config: ml_collections.ConfigDict, setup: _Setup, outcome: _Outcome,
            init_seconds: float) -> dict:
  """The content of result.json."""
  reached = outcome.reached_step is not None
  train_seconds = outcome.run_seconds - outcome.eval_seconds
  return {
      'status': 'success' if reached else 'aborted',
      'seed': config.seed,
      'dataset': config.dataset,
      'target_accuracy': config.target_accuracy,
      'reached_target': reached,
      'steps_to_target': outcome.reached_step,
      'seconds_to_target': outcome.reached_seconds,
      # The reaching eval's epoch: whole MLPerf epochs with the cadence in epochs.
      'epochs_to_target': outcome.reached_epoch,
      'final_eval_accuracy': outcome.evals[-1].accuracy,
      # The accuracy on the (augmented) training batch of the last logged step.
      'final_train_accuracy': outcome.last_train_metrics.get('accuracy'),
      'steps_completed': outcome.steps_completed,
      'num_train_steps': setup.budget.num_train_steps,
      'global_batch_size': config.global_batch_size,
      # Training throughput: the run's images over its time outside evals.
      'images_per_second': outcome.steps_completed * config.global_batch_size / train_seconds,
      'run_seconds': outcome.run_seconds,
      'train_seconds': train_seconds,
      'eval_seconds': outcome.eval_seconds,
      'init_seconds': init_seconds,
      'compile_seconds': setup.compile_seconds,
      'num_devices': jax.device_count(),
      'platform': jax.devices()[0].platform,
      'evals': [dataclasses.asdict(e) for e in outcome.evals],
  }
