"""Everything a run does before its clock starts: MLPerf's untimed initialisation.

Between `init_start` and `init_stop`: the dataset prepared, the budget resolved,
the programs compiled, the state initialised or restored from the newest
checkpoint, a warm-up step on zeros, and the input pipelines set up at the
run's position.
"""

import dataclasses
import os
from typing import Callable, Iterator

import jax
import jax.numpy as jnp
import ml_collections
from absl import logging
from jax.sharding import NamedSharding

from input_pipeline import datasets
from input_pipeline import info
from input_pipeline import pipeline
from train.run import budget
from train.run import checkpoint
from train.run import distributed
from train.run import evaluation
from train.run import mllog
from train.run import programs
from train.run import record
from train.run import steps


@dataclasses.dataclass
class Setup:
  """What the untimed initialisation produces for the timed run."""
  state: steps.TrainState
  train_step: Callable
  train_batches: Iterator[dict[str, jax.Array]]
  evaluator: evaluation.Evaluator
  budget: budget.Budget
  compile_seconds: float  # 0 where the step cache held the programs already.
  history: record.History | None  # From a checkpoint, or None for a fresh run.


def set_up(config: ml_collections.ConfigDict, step_cache: programs.StepCache,
           checkpointer: checkpoint.RunCheckpointer,
           mllogger: mllog.MlperfLogger | None, resuming: bool) -> Setup:
  """Data, model, optimizer state and compiled steps: everything before run_start.

  A run with a checkpoint starts from it, its data stream positioned after the
  last batch trained on; a fresh run logs its hyperparameters to `mllogger`.
  """
  builder = _prepared_dataset(config)
  splits = builder.info.splits
  num_eval = splits[info.get_dataset_info(config.dataset).eval_split].num_examples
  run_budget = budget.resolve_budget(config, splits['train'].num_examples)
  compilations = step_cache.num_compilations
  compiled = step_cache.get(config, builder.info.features['label'].num_classes,
                            run_budget.num_train_examples)
  compiled_now = step_cache.num_compilations > compilations
  if resuming:
    state, history = _restore(checkpointer, compiled)
  else:
    for key, value in mllog.hyperparameters(
        config, run_budget, num_eval_examples=num_eval).items():
      mllogger.event(key, value)
    state, history = compiled.init(jax.random.key(config.seed)), None
  _warm_up(config, compiled, state)
  batch_sharding = compiled.batch_sharding
  _check_process_rows(batch_sharding, config.global_batch_size)
  # This process's share of each global batch, and of the eval split.
  process = jax.process_index(), jax.process_count()
  per_process_batch = config.global_batch_size // jax.process_count()
  # Global batch t is fixed by the seed and t alone (input_pipeline/order.py),
  # so the step is the input's whole position: a resumed run, on any number of
  # processes, starts there without reading what came before.
  train_batches = programs.device_batches(datasets.checked_reads(
      pipeline.create_train_iterator(
          config, pipeline.Reading(per_process_batch, *process),
          deterministic=config.input.deterministic,
          start_batch=0 if history is None else history.step),
      config.dataset, config.data_dir), batch_sharding, config.input.prefetch_batches)
  eval_dataset = datasets.checked_reads(pipeline.create_eval_dataset(
      config, pipeline.Reading(config.eval_batch_size // jax.process_count(), *process)),
      config.dataset, config.data_dir)
  return Setup(state=state, train_step=compiled.train_step, train_batches=train_batches,
               evaluator=evaluation.Evaluator(compiled.eval_step, eval_dataset,
                                              batch_sharding, num_eval),
               budget=run_budget,
               compile_seconds=compiled.compile_seconds if compiled_now else 0.0,
               history=history)


def _restore(checkpointer: checkpoint.RunCheckpointer, compiled: programs.CompiledSteps,
             ) -> tuple[steps.TrainState, record.History]:
  """The state and history of the newest readable checkpoint, counted as a resume."""
  # The shapes, dtypes and shardings to restore into: init's outputs.
  abstract_state = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
      compiled.init.out_info)
  state, saved_history = checkpointer.restore_latest(abstract_state)
  history = record.History.from_json(saved_history)
  history.resumed()
  logging.info('resuming from the checkpoint of step %d (resume %d)', history.step,
               history.num_resumes)
  return state, history


def reopen_mlperf_log(log_path: str, history: record.History, is_main: bool,
                      before_write: Callable[[], None] | None = None) -> mllog.MlperfLogger:
  """The MLPerf log of a resumed run: cut back to the checkpoint, then appended to.

  What the stopped process logged after its checkpoint (work that is redone)
  is cut, and a `harness_resume` event marks the interruption. The wall clock
  runs on through it, so the log's run_start to run_stop includes the lost
  time, as MLPerf would count it; such a log is no valid MLPerf result.
  `before_write` is called before each write (the run's claim fence).
  """
  if is_main and os.path.exists(log_path):
    if before_write is not None:
      before_write()
    with open(log_path, 'r+b') as f:
      f.truncate(min(history.mlperf_log_bytes, os.path.getsize(log_path)))
  mllogger = mllog.MlperfLogger(log_path, mode='a', before_write=before_write)
  mllogger.event(mllog.RESUME, metadata={
      'step': history.step, 'num_resumes': history.num_resumes,
      'seconds_lost': round(history.seconds_lost, 3)})
  return mllogger


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
