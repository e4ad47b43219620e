"""The run's record: its history, what it logs at log steps, and the files it leaves.

`History` is what a checkpoint holds besides the state: the evals so far, the
timing so far, where the MLPerf log stood. The run writes config.json before it
starts, its hyperparameters for TensorBoard's HParams view, the train metrics at
log steps (log file, TensorBoard, the console's line), each layer's trust ratio
at the steps of `trust_ratio_log_steps` (TensorBoard and trust_ratios.json), and
result.json at the end.
"""

import dataclasses
import json
import os
import time
from typing import Any, Callable

import jax
import ml_collections
from absl import logging
from clu import metric_writers

import optim
from train.common import console
from train.common import files
from train.run import budget
from train.run import trust_ratio_file

# What is called before a write into the run dir: the run's claim fence
# (train/common/claims.py), or nothing.
BeforeWrite = Callable[[], None]


def _nothing() -> None:
  pass


class FencedWriter(metric_writers.MetricWriter):
  """A metric writer that calls `before_write` before each of its writes.

  Wrapped around the writer that writes into the run dir (TensorBoard's), inside
  CLU's asynchronous writer, so that the check runs just before the write itself,
  in the writer's thread, not when the write was queued.
  """

  def __init__(self, writer: metric_writers.MetricWriter, before_write: BeforeWrite):
    self._writer = writer
    self._before_write = before_write

  def _call(self, method: str, *args, **kwargs) -> Any:
    self._before_write()
    return getattr(self._writer, method)(*args, **kwargs)

  def write_summaries(self, *args, **kwargs):
    return self._call('write_summaries', *args, **kwargs)

  def write_scalars(self, *args, **kwargs):
    return self._call('write_scalars', *args, **kwargs)

  def write_images(self, *args, **kwargs):
    return self._call('write_images', *args, **kwargs)

  def write_videos(self, *args, **kwargs):
    return self._call('write_videos', *args, **kwargs)

  def write_audios(self, *args, **kwargs):
    return self._call('write_audios', *args, **kwargs)

  def write_texts(self, *args, **kwargs):
    return self._call('write_texts', *args, **kwargs)

  def write_histograms(self, *args, **kwargs):
    return self._call('write_histograms', *args, **kwargs)

  def write_hparams(self, *args, **kwargs):
    return self._call('write_hparams', *args, **kwargs)

  def flush(self):
    return self._call('flush')

  def close(self):
    return self._call('close')


@dataclasses.dataclass
class EvalRecord:
  step: int
  epoch: float
  accuracy: float
  loss: float
  seconds: float


@dataclasses.dataclass
class History:
  """The run's position and history: what a checkpoint holds besides the state.

  Saved in each checkpoint as the JSON item named 'progress', under these field
  names: a checkpoint written by an earlier version reads back the same.
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
  def from_json(cls, value: dict[str, Any]) -> 'History':
    value = dict(value, evals=[EvalRecord(**e) for e in value['evals']])
    return cls(**value)

  @property
  def reached(self) -> EvalRecord | None:
    return None if self.reached_index is None else self.evals[self.reached_index]

  @property
  def status(self) -> str:
    """success (the target reached), diverged (NaN or infinite loss first) or aborted."""
    if self.reached is not None:
      return 'success'
    return 'diverged' if self.diverged else 'aborted'

  def resumed(self) -> None:
    """Counts a resume from this history's checkpoint, and the time lost since it."""
    self.num_resumes += 1
    self.resumed_from_steps.append(self.step)
    self.seconds_lost += time.time() - self.saved_wall


class StepLog:
  """What happens at log steps: the train metrics to the writer (the log file and
  TensorBoard), images/s and time left to the console's progress line."""

  def __init__(self, num_steps: int, batch_size: int, writer: metric_writers.MetricWriter,
               start_step: int, progress: console.Progress | None):
    self._num_steps = num_steps
    self._batch_size = batch_size
    self._writer = writer
    self._progress = progress
    self._last = (start_step, time.perf_counter())

  def __call__(self, step: int, metrics: dict[str, jax.Array]) -> dict[str, float]:
    """Fetches the step's metrics (a host sync, so only at log steps), logs them and
    returns them with the images per second since the last log step."""
    host = {k: float(v) for k, v in jax.device_get(metrics).items()}
    now = time.perf_counter()
    last_step, last_time = self._last
    self._last = (step, now)
    host['images_per_second'] = (step - last_step) * self._batch_size / (now - last_time)
    eta = (self._num_steps - step) * self._batch_size / host['images_per_second']
    self._writer.write_scalars(step, {f'train_{k}': v for k, v in host.items()})
    if self._progress is not None:
      self._progress.update(step, self._num_steps, host['images_per_second'], eta)
    return host


class TrustRatioLog:
  """Each layer's LARS or LAMB trust ratio at the config's `trust_ratio_log_steps`
  (the LAMB paper's Figures 9-14): to TensorBoard as `trust_ratio/<layer>` and to
  WORKDIR/trust_ratios.json.

  The optimizer keeps the ratios of its last update in its state
  (optim/trust_ratios.py), so that reading them is a host sync at the logged
  steps only. The ratio logged at step s is that of the update that produced
  step s. The file reads
    {"steps": [s1, s2, ...], "trust_ratios": {"<layer>": [r1, r2, ...], ...}}
  with the layers in their natural name order; it is rewritten whole at each
  logged step, so it is complete up to the last. A resumed run keeps the steps
  up to its checkpoint and logs the later ones again.
  """

  def __init__(self, config: ml_collections.ConfigDict, workdir: str,
               writer: metric_writers.MetricWriter, resumed_step: int | None,
               is_main: bool, before_write: BeforeWrite = _nothing):
    self._before_write = before_write
    self._steps = frozenset(config.trust_ratio_log_steps)
    self._path = os.path.join(workdir, trust_ratio_file.NAME)
    self._writer = writer
    self._is_main = is_main
    self._logged: dict[str, Any] = {'steps': [], 'trust_ratios': {}}
    if resumed_step is not None and os.path.exists(self._path):
      self._logged = _logged_up_to(trust_ratio_file.read(self._path), resumed_step)

  def due(self, step: int) -> bool:
    return step in self._steps

  def __call__(self, step: int, opt_state: Any) -> dict[str, float]:
    """Fetches the ratios in `opt_state` (a host sync), logs and returns them."""
    on_device = optim.layer_trust_ratios(opt_state)
    # Fetched as a list: a dict would come back in sorted, not natural, order.
    ratios = dict(zip(on_device, map(float, jax.device_get(list(on_device.values())))))
    self._writer.write_scalars(step, {f'trust_ratio/{name}': r for name, r in ratios.items()})
    self._logged['steps'].append(step)
    for name, ratio in ratios.items():
      self._logged['trust_ratios'].setdefault(name, []).append(ratio)
    if self._is_main:
      self._before_write()
      files.write_json(self._path, self._logged)
    logging.info('step %d: trust ratios of %d layers logged, %.3g to %.3g', step,
                 len(ratios), min(ratios.values()), max(ratios.values()))
    return ratios


def _logged_up_to(logged: dict[str, Any], step: int) -> dict[str, Any]:
  """The logged ratios of the steps up to `step`."""
  keep = [i for i, s in enumerate(logged['steps']) if s <= step]
  return {'steps': [logged['steps'][i] for i in keep],
          'trust_ratios': {name: [values[i] for i in keep]
                           for name, values in logged['trust_ratios'].items()}}


def write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  files.write_json(os.path.join(workdir, 'config.json'), json.loads(config.to_json()))


HParam = bool | int | float | str


def hparams(config: ml_collections.ConfigDict) -> dict[str, HParam]:
  """The config as TensorBoard's HParams view takes it: one dotted key per value,
  each a bool, number or string.

  A list becomes its JSON text, one column rather than one per element; None
  becomes '' (as CLU writes it), so that a column keeps one type across runs.
  """
  flat: dict[str, HParam] = {}

  def add(prefix: str, value: Any) -> None:
    if isinstance(value, dict):
      for key, inner in value.items():
        add(f'{prefix}.{key}' if prefix else key, inner)
    elif isinstance(value, list):
      flat[prefix] = json.dumps(value)
    else:
      flat[prefix] = '' if value is None else value

  add('', json.loads(config.to_json()))
  return flat


def write_hparams(config: ml_collections.ConfigDict,
                  writer: metric_writers.MetricWriter) -> None:
  """The run's hyperparameters for TensorBoard, so that its HParams view compares the
  runs of a study or a search (each run's TensorBoard folder is its workdir)."""
  writer.write_hparams(hparams(config))


def result(config: ml_collections.ConfigDict, history: History,
           run_budget: budget.Budget, init_seconds: float,
           compile_seconds: float) -> dict[str, Any]:
  """The content of result.json."""
  reached = history.reached
  # Time lost to interruptions is neither training nor eval time.
  train_seconds = history.run_seconds - history.eval_seconds - history.seconds_lost
  return {
      'status': history.status,
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
      'final_eval_accuracy': (history.evals[-1].accuracy
                              if history.evals and not history.diverged else None),
      # The accuracy on the (augmented) training batch of the last logged step.
      'final_train_accuracy': history.last_train_metrics.get('accuracy'),
      'diverged': history.diverged,
      'resumed': history.num_resumes > 0,
      'num_resumes': history.num_resumes,
      'resumed_from_steps': history.resumed_from_steps,
      'seconds_lost_to_interruptions': history.seconds_lost,
      'steps_completed': history.step,
      'num_train_steps': run_budget.num_train_steps,
      'global_batch_size': config.global_batch_size,
      # Training throughput: the run's images over its time outside evals.
      'images_per_second': history.step * config.global_batch_size / train_seconds,
      'run_seconds': history.run_seconds,
      'train_seconds': train_seconds,
      'eval_seconds': history.eval_seconds,
      'init_seconds': init_seconds,
      'compile_seconds': compile_seconds,
      'num_devices': jax.device_count(),
      'platform': jax.devices()[0].platform,
      'evals': [dataclasses.asdict(e) for e in history.evals],
  }


def write_result(result_json: dict[str, Any], workdir: str) -> None:
  files.write_json(os.path.join(workdir, 'result.json'), result_json)
