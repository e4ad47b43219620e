"""The eval: one pass over the validation split, and where its numbers go.

Every example counts once: the last partial batch is padded and the padding
masked out (train/run/steps.py's eval_step), so the accuracy does not depend on
the eval batch size or the number of devices.
"""

import dataclasses
import time
from typing import Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from clu import metric_writers
from jax.sharding import NamedSharding
from mlperf_logging.mllog import constants as mlc

from train.run import budget
from train.run import mllog
from train.run import programs
from train.run import record
from train.run import steps


def evaluate(eval_fn: Callable, state: steps.TrainState,
             eval_batches: Iterable[dict[str, np.ndarray]], sharding: NamedSharding,
             on_batch: Callable[[], None] | None = None) -> tuple[float, float, int]:
  """Accuracy, mean loss and example count over one pass of the eval split."""
  totals = None
  for batch in programs.device_batches(eval_batches, sharding, prefetch=1):
    sums = eval_fn(state, batch)
    totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
    if on_batch is not None:
      on_batch()
  totals = jax.device_get(totals)
  count = int(round(float(totals['count'])))
  return float(totals['correct']) / count, float(totals['loss_sum']) / count, count


@dataclasses.dataclass(frozen=True)
class Evaluator:
  """The compiled eval step and the split it runs over, whole on every call."""
  eval_step: Callable
  dataset: Iterable[dict[str, np.ndarray]]
  batch_sharding: NamedSharding
  num_examples: int

  def __call__(self, state: steps.TrainState,
               on_batch: Callable[[], None] | None = None) -> tuple[float, float]:
    """Accuracy and mean loss over the split."""
    accuracy, loss, count = evaluate(self.eval_step, state, self.dataset,
                                     self.batch_sharding, on_batch)
    if count != self.num_examples:
      raise RuntimeError(f'evaluated {count} examples, the split has {self.num_examples}')
    return accuracy, loss


def evaluate_and_log(evaluator: Evaluator, state: steps.TrainState,
                     point: budget.EvalPoint, *, run_start: float,
                     mllogger: mllog.MlperfLogger | None,
                     writer: metric_writers.MetricWriter,
                     on_batch: Callable[[], None] | None = None) -> record.EvalRecord:
  """One full pass over the eval split, logged to TensorBoard, the log file and,
  unless `mllogger` is None (its clock has stopped), MLPerf."""
  epoch_num = {'epoch_num': mllog.number(point.epoch)}
  if mllogger is not None:
    mllogger.start(mlc.EVAL_START, metadata=epoch_num)
  accuracy, loss = evaluator(state, on_batch)
  if mllogger is not None:
    mllogger.event(mlc.EVAL_ACCURACY, accuracy, metadata=epoch_num)
    mllogger.end(mlc.EVAL_STOP, metadata=epoch_num)
  evaluated = record.EvalRecord(step=point.step, epoch=point.epoch, accuracy=accuracy,
                                loss=loss, seconds=time.perf_counter() - run_start)
  writer.write_scalars(point.step, {'eval_accuracy': accuracy, 'eval_loss': loss})
  logging.info('eval at step %d (epoch %.2f): accuracy %.4f, loss %.4f, %.1fs into the run',
               point.step, point.epoch, accuracy, loss, evaluated.seconds)
  return evaluated
