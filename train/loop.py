"""One training run from a config to a result: the loop around the pure steps.

Timing follows MLPerf: model creation, compilation and the input pipeline's set-up
happen between `init_start` and `init_stop` and are not timed; the clock starts at
`run_start`, before the first training batch is read, and every eval counts.
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
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from mlperf_logging.mllog import constants as mlc

import models
import optim
from input_pipeline import datasets
from input_pipeline import pipeline
from train import mlperf_log
from train import steps

DATA_AXIS = 'data'


@dataclasses.dataclass
class EvalRecord:
  step: int
  epoch: float
  accuracy: float
  loss: float
  seconds: float


def create_mesh() -> Mesh:
  """A 1-D mesh over every device: the batch is split along it, the state replicated."""
  return jax.make_mesh((jax.device_count(),), (DATA_AXIS,))


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


def _abstract_batch(config: ml_collections.ConfigDict, batch_size: int,
                    sharding: NamedSharding, with_mask: bool) -> dict:
  shape = (batch_size, config.image_size, config.image_size, 3)
  batch = {'image': jax.ShapeDtypeStruct(shape, jnp.uint8, sharding=sharding),
           'label': jax.ShapeDtypeStruct((batch_size,), jnp.int32, sharding=sharding)}
  if with_mask:
    batch['mask'] = jax.ShapeDtypeStruct((batch_size,), jnp.bool_, sharding=sharding)
  return batch


def _write_json(path: str, value: Any) -> None:
  """Writes atomically: a reader never sees half a file."""
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(value, f, indent=2)
    f.write('\n')
  os.replace(tmp, path)


def write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  _write_json(os.path.join(workdir, 'config.json'), json.loads(config.to_json()))


class _ProgressLine:
  """Console progress at log steps: loss, accuracy, learning rate, images/s, time left."""

  def __init__(self, num_steps: int, batch_size: int, start_step: int = 0):
    self._num_steps = num_steps
    self._batch_size = batch_size
    self._last = (start_step, time.perf_counter())

  def __call__(self, step: int, metrics: dict[str, float]) -> float:
    """Logs one line; returns images/s since the last call (evals included)."""
    now = time.perf_counter()
    last_step, last_time = self._last
    self._last = (step, now)
    images_per_second = (step - last_step) * self._batch_size / (now - last_time)
    eta = (self._num_steps - step) * self._batch_size / images_per_second
    logging.info('step %d/%d: loss %.4f, train accuracy %.3f, lr %.4g, '
                 '%.0f images/s, time left %.0fs', step, self._num_steps,
                 metrics['loss'], metrics['accuracy'], metrics['learning_rate'],
                 images_per_second, eta)
    return images_per_second


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains and evaluates as `config` says; writes the run's files; returns result.json."""
  os.makedirs(workdir, exist_ok=True)
  write_config(config, workdir)
  mllogger = mlperf_log.MlperfLogger(os.path.join(workdir, 'mlperf.log'))
  try:
    return _run(config, workdir, mllogger)
  finally:
    mllogger.close()


def _run(config: ml_collections.ConfigDict, workdir: str,
         mllogger: mlperf_log.MlperfLogger) -> dict:
  mllogger.event(mlc.CACHE_CLEAR, True)
  mllogger.start(mlc.INIT_START)
  init_start = time.perf_counter()

  builder = datasets.ensure_prepared(config.dataset, config.data_dir)
  num_train = pipeline.num_examples(builder, 'train')
  num_eval = pipeline.num_examples(builder, 'validation')
  for key, value in mlperf_log.hyperparameters(
      config, num_train_examples=num_train, num_eval_examples=num_eval).items():
    mllogger.event(key, value)

  mesh = create_mesh()
  replicated = NamedSharding(mesh, PartitionSpec())
  batch_sharding = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
  process_batch = config.global_batch_size // jax.process_count()
  process_eval_batch = config.eval_batch_size // jax.process_count()

  model = models.create_model(config, num_classes=builder.info.features['label'].num_classes)
  learning_rate_fn = optim.create_learning_rate_fn(config)
  tx = optim.create_optimizer(config, learning_rate_fn)
  init_fn = jax.jit(lambda rng: steps.create_train_state(model, tx, rng, config.image_size),
                    out_shardings=replicated)
  state = init_fn(jax.random.key(config.seed))

  train_fn, eval_fn = steps.bind_step_constants(config, learning_rate_fn)
  train_step = jax.jit(train_fn, in_shardings=(replicated, batch_sharding),
                       out_shardings=(replicated, replicated), donate_argnums=(0,))
  eval_step = jax.jit(eval_fn, in_shardings=(replicated, batch_sharding),
                      out_shardings=replicated)
  compile_start = time.perf_counter()
  train_step = train_step.lower(
      state, _abstract_batch(config, config.global_batch_size, batch_sharding, False)).compile()
  eval_step = eval_step.lower(
      state, _abstract_batch(config, config.eval_batch_size, batch_sharding, True)).compile()
  compile_seconds = time.perf_counter() - compile_start

  train_batches = device_batches(
      pipeline.create_train_iterator(
          config, batch_size=process_batch, process_index=jax.process_index(),
          process_count=jax.process_count()),
      batch_sharding, config.input.prefetch_batches)
  eval_dataset = pipeline.create_eval_dataset(
      config, batch_size=process_eval_batch, process_index=jax.process_index(),
      process_count=jax.process_count())

  is_main = jax.process_index() == 0
  writer = metric_writers.create_default_writer(workdir, just_logging=not is_main)
  report_progress = periodic_actions.ReportProgress(
      num_train_steps=config.num_train_steps, writer=writer, every_secs=10.0)
  init_seconds = time.perf_counter() - init_start
  mllogger.end(mlc.INIT_STOP)

  # The timed run.
  mllogger.start(mlc.RUN_START)
  run_start = time.perf_counter()
  progress_line = _ProgressLine(config.num_train_steps, config.global_batch_size)
  steps_per_epoch = num_train / config.global_batch_size
  evals: list[EvalRecord] = []
  eval_seconds = 0.0
  reached_step = None
  reached_seconds = None
  step = 0
  block_start_epoch = 0.0
  mllogger.start(mlc.BLOCK_START, metadata={
      'first_epoch_num': 0.0,
      'epoch_count': min(config.eval_every_steps, config.num_train_steps) / steps_per_epoch})
  while step < config.num_train_steps:
    with jax.profiler.StepTraceAnnotation('train', step_num=step):
      state, metrics = train_step(state, next(train_batches))
    step += 1
    report_progress(step, time.time())
    if step % config.log_every_steps == 0 or step == config.num_train_steps:
      host_metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
      host_metrics['images_per_second'] = progress_line(step, host_metrics)
      writer.write_scalars(step, {f'train_{k}': v for k, v in host_metrics.items()})
    if step % config.eval_every_steps == 0 or step == config.num_train_steps:
      epoch = step / steps_per_epoch
      mllogger.end(mlc.BLOCK_STOP, metadata={'first_epoch_num': block_start_epoch})
      mllogger.start(mlc.EVAL_START, metadata={'epoch_num': epoch})
      eval_start = time.perf_counter()
      accuracy, loss, count = evaluate(eval_step, state, eval_dataset, batch_sharding)
      eval_end = time.perf_counter()
      eval_seconds += eval_end - eval_start
      mllogger.event(mlc.EVAL_ACCURACY, accuracy, metadata={'epoch_num': epoch})
      mllogger.end(mlc.EVAL_STOP, metadata={'epoch_num': epoch})
      if count != num_eval:
        raise RuntimeError(f'evaluated {count} examples, the split has {num_eval}')
      record = EvalRecord(step=step, epoch=epoch, accuracy=accuracy, loss=loss,
                          seconds=eval_end - run_start)
      evals.append(record)
      writer.write_scalars(step, {'eval_accuracy': accuracy, 'eval_loss': loss})
      logging.info('eval at step %d (epoch %.2f): accuracy %.4f, loss %.4f, %.1fs into the run',
                   step, epoch, accuracy, loss, record.seconds)
      if reached_step is None and accuracy >= config.target_accuracy:
        reached_step, reached_seconds = step, record.seconds
      if reached_step is not None and config.stop_at_target:
        break
      if step < config.num_train_steps:
        block_start_epoch = epoch
        next_eval = min(step + config.eval_every_steps, config.num_train_steps)
        mllogger.start(mlc.BLOCK_START, metadata={
            'first_epoch_num': epoch, 'epoch_count': (next_eval - step) / steps_per_epoch})
  run_seconds = time.perf_counter() - run_start
  status = 'success' if reached_step is not None else 'aborted'
  mllogger.end(mlc.RUN_STOP, metadata={'status': status})
  writer.flush()

  train_seconds = run_seconds - eval_seconds
  result = {
      'status': status,
      'seed': config.seed,
      'dataset': config.dataset,
      'target_accuracy': config.target_accuracy,
      'reached_target': reached_step is not None,
      'steps_to_target': reached_step,
      'seconds_to_target': reached_seconds,
      'epochs_to_target': None if reached_step is None else reached_step / steps_per_epoch,
      'final_eval_accuracy': evals[-1].accuracy,
      'steps_completed': step,
      'num_train_steps': config.num_train_steps,
      'global_batch_size': config.global_batch_size,
      'images_per_second': step * config.global_batch_size / train_seconds,
      'run_seconds': run_seconds,
      'train_seconds': train_seconds,
      'eval_seconds': eval_seconds,
      'init_seconds': init_seconds,
      'compile_seconds': compile_seconds,
      'num_devices': jax.device_count(),
      'platform': jax.devices()[0].platform,
      'evals': [dataclasses.asdict(e) for e in evals],
  }
  if is_main:
    _write_json(os.path.join(workdir, 'result.json'), result)
  return result
