"""Training throughput in images per second: compute alone, input alone, both together.

  python main.py bench                          # ResNet-50 at 224 px, synthetic data
  python main.py bench --config.model.dtype=bfloat16 --per_device_batch_size=256
  python main.py bench --config=configs/embedded_lars.py --modes=synthetic,input,train

Modes (`--modes`, any of them, in one table):
- `synthetic`: the compiled train step on a batch generated on the device, so no
  input pipeline and no host-to-device copy; next to it, the bare model's
  forward and backward pass (the gradient of the loss: no optimizer, no BN
  moving averages, no metrics), timed in the same process. Imports no
  TensorFlow, tfds or clu: it runs where only JAX, Flax and Optax are installed.
- `input`: the training input pipeline alone, numpy batches on the host
  (input_pipeline/input_throughput.py), per process.
- `train`: what the training loop does each step with real input: the next
  pipeline batch, its copy to the devices, the step.
With several modes the last line says whether input or compute bounds a run.

Each measurement compiles first (timed apart), runs `warmup_steps` untimed steps,
then times `repetitions` windows of `steps` steps, each ended by
`block_until_ready`; the table gives the median window and the spread (slowest
and fastest). Model FLOPs per image are 3 x XLA's count of the forward pass (the
backward pass costs about two forwards: the convention of model FLOPs
utilisation, MFU), and MFU is the achieved model FLOP/s over the devices' peak:
the datasheet's for known accelerators, `--peak_tflops` if given, and on a CPU
the rate of a large matmul measured on the spot (a practical ceiling, not a
datasheet figure). The global batch is `per_device_batch_size` times the device
count, whatever the config says; the MLPerf closed-division checks are off,
since a benchmark is no submission.
"""

import collections
import dataclasses
import functools
import glob
import gzip
import json
import os
import re
import statistics
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec

import models
from input_pipeline import info
from train.bench import modes
from train.run import programs
from train.run import steps

SYNTHETIC, INPUT, TRAIN, MODES = modes.SYNTHETIC, modes.INPUT, modes.TRAIN, modes.MODES
STEP, GRADIENT, INPUT_ONLY, LOOP = 'step', 'gradient', 'input', 'loop'

# Dense peak TFLOP/s per device (bfloat16, float32) from the vendors' datasheets,
# by a substring of jax's device_kind; the first match counts. float32 on NVIDIA
# GPUs is the TF32 tensor-core rate, which XLA uses for float32 convolutions and
# matmuls at JAX's default precision; TPUs run float32 matmuls as bfloat16
# passes at that precision, so their two figures are the same.
_PEAK_TFLOPS: tuple[tuple[str, float, float], ...] = (
    ('H100 PCIe', 756.0, 378.0),
    ('H100 NVL', 835.0, 418.0),
    ('H200 NVL', 835.0, 418.0),
    ('H100', 989.0, 495.0),
    ('H200', 989.0, 495.0),
    ('A100', 312.0, 156.0),
    ('TPU v4', 275.0, 275.0),
    ('TPU v5 lite', 197.0, 197.0),
    ('TPU v5', 459.0, 459.0),
    ('TPU v6 lite', 918.0, 918.0),
)
_MATMUL_SIZE = 2048  # The CPU's measured peak: a 2048^3 matmul (17 GFLOP).


@dataclasses.dataclass(frozen=True)
class Measurement:
  """Timed windows of one thing: a train step, the model's gradient, the input."""
  kind: str  # STEP, GRADIENT, INPUT_ONLY or LOOP.
  name: str
  batch_size: int  # Images per step (the global batch; per process for the input).
  steps: int  # Per window.
  seconds: tuple[float, ...]  # One per window.
  cpu_seconds: tuple[float, ...]  # This process's CPU time (all threads), per window.
  flops_per_image: float | None  # Model FLOPs; None where no model runs.

  @property
  def images_per_second(self) -> tuple[float, ...]:
    return tuple(self.steps * self.batch_size / s for s in self.seconds)

  @property
  def median(self) -> float:
    return statistics.median(self.images_per_second)

  @property
  def step_milliseconds(self) -> float:
    return 1000 * statistics.median(self.seconds) / self.steps

  @property
  def cpu_milliseconds(self) -> float:
    """CPU time per step, all threads: on a shared host, steadier than wall time."""
    return 1000 * statistics.median(self.cpu_seconds) / self.steps

  @property
  def flops_per_second(self) -> float | None:
    return None if self.flops_per_image is None else self.median * self.flops_per_image


@dataclasses.dataclass(frozen=True)
class Peak:
  flops_per_second: float  # All devices together.
  source: str


@dataclasses.dataclass(frozen=True)
class Windows:
  warmup_steps: int
  steps: int
  repetitions: int


def bench_config(config: ml_collections.ConfigDict, per_device_batch_size: int,
                 num_devices: int) -> ml_collections.ConfigDict:
  """A copy of `config` with the benchmark's global batch, in the open division."""
  config = config.copy_and_resolve_references()
  config.global_batch_size = per_device_batch_size * num_devices
  config.mlperf.submission_division = 'open'
  return config


def time_windows(run_steps: Callable[[int], Any], windows: Windows,
                 ) -> tuple[tuple[float, ...], tuple[float, ...]]:
  """Wall and CPU seconds of each window; `run_steps(n)` runs n steps, returns outputs.

  Dispatch is asynchronous: a window ends only when its last outputs are ready.
  """
  jax.block_until_ready(run_steps(windows.warmup_steps))
  seconds, cpu_seconds = [], []
  for _ in range(windows.repetitions):
    start, cpu_start = time.perf_counter(), time.process_time()
    jax.block_until_ready(run_steps(windows.steps))
    seconds.append(time.perf_counter() - start)
    cpu_seconds.append(time.process_time() - cpu_start)
  return tuple(seconds), tuple(cpu_seconds)


def train_step_runner(train_step: Callable, state: steps.TrainState,
                      next_batch: Callable[[], dict]) -> Callable[[int], Any]:
  """`run_steps` for time_windows: carries the (donated) state from call to call."""
  carried = [state]

  def run_steps(n: int) -> Any:
    outputs = carried[0]
    for _ in range(n):
      state, metrics = train_step(carried[0], next_batch())
      carried[0] = state
      outputs = (state, metrics)
    return outputs

  return run_steps


def synthetic_batch(config: ml_collections.ConfigDict, num_classes: int,
                    sharding: NamedSharding) -> dict[str, jax.Array]:
  """A random uint8 batch made on the devices, each its own shard: no host copy."""
  abstract = programs.abstract_batch(config, config.global_batch_size, sharding, False)

  def make(key: jax.Array) -> dict[str, jax.Array]:
    image_key, label_key = jax.random.split(key)
    image = abstract['image']
    return {'image': jax.random.randint(image_key, image.shape, 0, 256).astype(jnp.uint8),
            'label': jax.random.randint(label_key, abstract['label'].shape, 0, num_classes,
                                        jnp.int32)}

  return jax.jit(make, out_shardings={k: sharding for k in abstract})(jax.random.key(0))


def forward_flops_per_image(config: ml_collections.ConfigDict, num_classes: int) -> float:
  """XLA's FLOP count of the model's forward pass on one image (eval mode)."""
  model = models.create_model(config, num_classes)
  shape = (1, config.image_size, config.image_size, 3)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape),
                                                train=False))
  lowered = jax.jit(functools.partial(model.apply, train=False)).lower(
      variables, jax.ShapeDtypeStruct(shape, jnp.dtype(config.model.dtype)))
  cost = lowered.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost['flops'])


def compile_forward_backward(config: ml_collections.ConfigDict, num_classes: int,
                             batch_sharding: NamedSharding) -> Callable:
  """The bare model's gradient: (params, batch_stats, images, labels) -> grads.

  The part of a train step that is the model: the forward pass with batch
  statistics and its backward pass. The optimizer, the BN moving averages (XLA
  drops them, since nothing returns them), the metrics and the normalisation of
  uint8 images are left out. Gradients come back replicated, so on several
  devices their all-reduce is in, as in the step.
  """
  model = models.create_model(config, num_classes)
  dtype = jnp.dtype(config.model.dtype)

  def grads(params, batch_stats, images, labels):
    # The train step's loss; what it returns besides is unused, so XLA drops it.
    grads, _ = jax.grad(steps.training_loss, has_aux=True)(
        params, batch_stats, model.apply, images, labels, config.label_smoothing)
    return grads

  replicated = NamedSharding(batch_sharding.mesh, PartitionSpec())
  shape = (config.global_batch_size, config.image_size, config.image_size, 3)
  variables = jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1,) + shape[1:]), train=False))
  abstract = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated), variables)
  return jax.jit(grads, out_shardings=replicated).lower(
      abstract['params'], abstract['batch_stats'],
      jax.ShapeDtypeStruct(shape, dtype, sharding=batch_sharding),
      jax.ShapeDtypeStruct(shape[:1], jnp.int32, sharding=batch_sharding)).compile()


def device_peak(dtype: str, peak_tflops: float | None) -> Peak | None:
  """The devices' peak FLOP/s: the flag, the datasheet, or a CPU's measured matmul.

  None for an accelerator that the table does not know (then no MFU).
  """
  devices = jax.devices()
  if peak_tflops is not None:
    return Peak(peak_tflops * 1e12 * len(devices), f'--peak_tflops={peak_tflops:g} per device')
  kind = devices[0].device_kind
  for name, bf16, f32 in _PEAK_TFLOPS:
    if name in kind:
      per_device = bf16 if dtype == 'bfloat16' else f32
      return Peak(per_device * 1e12 * len(devices),
                  f'{kind} datasheet, {per_device:g} TFLOP/s {dtype} per device')
  if devices[0].platform == 'cpu':
    # One host per process, as in a multi-host run: each brings its own cores.
    return Peak(measure_matmul_flops(dtype) * jax.process_count(),
                f'measured {_MATMUL_SIZE}^3 {dtype} matmul on this host (all its cores)'
                + (f' x {jax.process_count()} processes' if jax.process_count() > 1 else ''))
  return None


def measure_matmul_flops(dtype: str, repetitions: int = 5) -> float:
  """The best rate of a square matmul on this process's first device, in FLOP/s.

  On a CPU the virtual devices of one host share its cores, so this is the
  host's ceiling whatever the device count.
  """
  n = _MATMUL_SIZE
  a = jnp.ones((n, n), dtype, device=jax.local_devices()[0])
  matmul = jax.jit(jnp.matmul).lower(a, a).compile()
  jax.block_until_ready(matmul(a, a))
  best = float('inf')
  for _ in range(repetitions):
    start = time.perf_counter()
    jax.block_until_ready(matmul(a, a))
    best = min(best, time.perf_counter() - start)
  return 2 * n**3 / best


def measure_synthetic(config: ml_collections.ConfigDict, num_classes: int,
                      windows: Windows, compiled: programs.CompiledSteps,
                      flops_per_image: float) -> tuple[list[Measurement], dict[str, float]]:
  """The train step and the bare model's gradient on device-made data."""
  batch = synthetic_batch(config, num_classes, compiled.batch_sharding)
  state = compiled.init(jax.random.key(config.seed))
  params, batch_stats = jax.tree.map(jnp.copy, (state.params, state.batch_stats))
  step_times = time_windows(
      train_step_runner(compiled.train_step, state, lambda: batch), windows)

  compile_start = time.perf_counter()
  grads = compile_forward_backward(config, num_classes, compiled.batch_sharding)
  compile_seconds = time.perf_counter() - compile_start
  images = jax.jit(functools.partial(
      steps.normalize_images, mean_rgb=tuple(config.input.mean_rgb),
      stddev_rgb=tuple(config.input.stddev_rgb), dtype=jnp.dtype(config.model.dtype)),
      out_shardings=compiled.batch_sharding)(batch['image'])

  def run_grads(n: int) -> list:
    return [grads(params, batch_stats, images, batch['label']) for _ in range(n)]

  grad_times = time_windows(run_grads, windows)
  n = config.global_batch_size
  return ([Measurement(STEP, 'train step, synthetic data', n, windows.steps, *step_times,
                       flops_per_image),
           Measurement(GRADIENT, 'model forward+backward only', n, windows.steps,
                       *grad_times, flops_per_image)],
          {'forward+backward': compile_seconds})


def measure_input(config: ml_collections.ConfigDict, windows: Windows,
                  num_threads: int | None) -> Measurement:
  """The training input pipeline alone, this process's share of the batch."""
  from train.bench import input_throughput  # pylint: disable=g-import-not-at-top
  batch_size = config.global_batch_size // jax.process_count()
  report = input_throughput.measure_pipeline(
      config, batch_size=batch_size, num_threads=num_threads or os.cpu_count() or 1,
      warmup_batches=windows.warmup_steps, batches=windows.steps,
      repetitions=windows.repetitions)
  seconds = tuple(windows.steps * batch_size / r for r in report.images_per_second)
  # The report has the CPU time of all windows together: share it out evenly.
  cpu_seconds = (report.cpu_seconds / windows.repetitions,) * windows.repetitions
  name = 'input pipeline alone' + (' (per process)' if jax.process_count() > 1 else '')
  return Measurement(INPUT_ONLY, name, batch_size, windows.steps, seconds, cpu_seconds,
                     None)


def measure_train_loop(config: ml_collections.ConfigDict, windows: Windows,
                       compiled: programs.CompiledSteps, flops_per_image: float,
                       num_threads: int | None) -> Measurement:
  """Steps fed as the loop feeds them: pipeline batch, copy to the devices, step."""
  from input_pipeline import pipeline  # pylint: disable=g-import-not-at-top
  batches = programs.device_batches(
      pipeline.create_train_iterator(
          config, pipeline.Reading(config.global_batch_size // jax.process_count(),
                                   jax.process_index(), jax.process_count(), num_threads),
          deterministic=config.input.deterministic),
      compiled.batch_sharding, config.input.prefetch_batches)
  state = compiled.init(jax.random.key(config.seed))
  times = time_windows(
      train_step_runner(compiled.train_step, state, lambda: next(batches)), windows)
  return Measurement(LOOP, 'train loop, real input', config.global_batch_size,
                     windows.steps, *times, flops_per_image)


def verdict(measurements: Sequence[Measurement]) -> str | None:
  """One line: does input or compute bound a run? None without input and a step."""
  by_kind = {m.kind: m for m in measurements}
  step, loop, pipeline = by_kind.get(STEP), by_kind.get(LOOP), by_kind.get(INPUT_ONLY)
  parts = []
  consumer = step or loop
  if pipeline is not None and consumer is not None:
    consumed = consumer.median / jax.process_count()  # Per process, as the input is.
    ratio = pipeline.median / consumed
    bound = 'compute-bound' if ratio >= 1 else 'INPUT-BOUND'
    what = 'the step' if step is not None else 'the loop with real input'
    parts.append(f'{bound}: the input pipeline alone delivers {ratio:.2f}x what {what} '
                 'consumes')
  if loop is not None and step is not None:
    parts.append(f'the loop with real input runs at {loop.median / step.median:.0%} of '
                 'the synthetic step rate')
  return 'verdict: ' + '; '.join(parts) if parts else None


def _model_name(config: ml_collections.ConfigDict) -> str:
  model = config.model
  return f'ResNet-{model.depth} {model.version} width {model.width}, {model.stem} stem'


def _table_row(m: Measurement, peak: Peak | None) -> str:
  rates, achieved = m.images_per_second, m.flops_per_second
  tflops = '-' if achieved is None else f'{achieved / 1e12:.3g}'
  mfu = ('-' if achieved is None or peak is None
         else f'{achieved / peak.flops_per_second:.1%}')
  return (f'| {m.name} | {m.median:,.1f} | {min(rates):,.1f}-{max(rates):,.1f} | '
          f'{m.step_milliseconds:,.1f} | {m.cpu_milliseconds:,.1f} | {tflops} | {mfu} |')


def format_table(config: ml_collections.ConfigDict, measurements: Sequence[Measurement],
                 peak: Peak | None, compile_seconds: dict[str, float],
                 num_params: int) -> str:
  """A header, a markdown table (one row per measurement) and the verdict."""
  devices = jax.devices()
  per_device = config.global_batch_size // len(devices)
  lines = [
      f'{_model_name(config)} ({num_params / 1e6:.2f}M parameters), '
      f'{config.image_size} px, {config.model.dtype}; batch {config.global_batch_size} '
      f'({per_device} per device) on {len(devices)} x {devices[0].device_kind} '
      f'({devices[0].platform}), {jax.process_count()} process(es); JAX {jax.__version__}',
  ]
  flops = next((m.flops_per_image for m in measurements if m.flops_per_image), None)
  if flops:
    lines.append(f'model FLOPs per image: {flops / 1e9:.3g} GFLOP (3 x XLA\'s count of '
                 'the forward pass)')
  if peak is not None:
    lines.append(f'peak: {peak.flops_per_second / 1e12:.3g} TFLOP/s ({peak.source})')
  elif flops:
    lines.append(f'peak: unknown for {devices[0].device_kind}; give --peak_tflops for MFU')
  lines.append('compile: ' + ', '.join(f'{k} {v:.1f} s' for k, v in compile_seconds.items()))
  lines += ['', '| measured | images/s (median) | spread (min-max) | ms per step | '
            'CPU ms per step | TFLOP/s | MFU |', '|---|---|---|---|---|---|---|']
  lines += [_table_row(m, peak) for m in measurements]
  repetitions = len(measurements[0].seconds) if measurements else 0
  steps_per = measurements[0].steps if measurements else 0
  lines.append(f'\n{repetitions} windows of {steps_per} steps each')
  line = verdict(measurements)
  if line:
    lines.append(line)
  return '\n'.join(lines)


def run(config: ml_collections.ConfigDict, modes: Sequence[str], windows: Windows,
        peak_tflops: float | None = None, input_threads: int | None = None,
        profile_dir: str | None = None) -> str:
  """Runs the measurements of `modes` on a validated bench config; returns the table."""
  num_classes = info.get_dataset_info(config.dataset).num_classes
  compiled = None
  compile_seconds: dict[str, float] = {}
  flops = None
  if SYNTHETIC in modes or TRAIN in modes:
    compiled = programs.compile_steps(
        config, num_classes, info.get_dataset_info(config.dataset).num_train_examples,
        with_eval=False)
    compile_seconds['init and train step'] = compiled.compile_seconds
    flops = 3 * forward_flops_per_image(config, num_classes)
  measurements: list[Measurement] = []
  profile_summary = ''
  if SYNTHETIC in modes:
    found, seconds = measure_synthetic(config, num_classes, windows, compiled, flops)
    measurements += found
    compile_seconds.update(seconds)
    if profile_dir:
      profile_summary = profile_steps(config, num_classes, compiled, windows.steps,
                                      profile_dir)
  if INPUT in modes:
    measurements.append(measure_input(config, windows, input_threads))
  if TRAIN in modes:
    measurements.append(measure_train_loop(config, windows, compiled, flops, input_threads))
  peak = device_peak(config.model.dtype, peak_tflops) if flops else None
  model = models.create_model(config, num_classes)
  variables = jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, config.image_size, config.image_size, 3)),
      train=False))
  table = format_table(config, measurements, peak, compile_seconds,
                       models.count_params(variables))
  return table + ('\n' + profile_summary if profile_summary else '')


def profile_steps(config: ml_collections.ConfigDict, num_classes: int,
                  compiled: programs.CompiledSteps, num_steps: int, profile_dir: str) -> str:
  """Writes a profiler trace of synthetic steps; returns its op time per step by op.

  The trace (in `profile_dir`) opens in TensorBoard's profile plugin or Perfetto.
  """
  batch = synthetic_batch(config, num_classes, compiled.batch_sharding)
  state = compiled.init(jax.random.key(config.seed))
  state, _ = compiled.train_step(state, batch)  # Outside the trace: first-run costs.
  jax.block_until_ready(state)
  with jax.profiler.trace(profile_dir):
    for step in range(num_steps):
      with jax.profiler.StepTraceAnnotation('train', step_num=step):
        state, metrics = compiled.train_step(state, batch)
    jax.block_until_ready((state, metrics))
  traces = glob.glob(os.path.join(profile_dir, 'plugins', 'profile', '*', '*.trace.json.gz'))
  if not traces:
    return f'profile: written to {profile_dir}'
  return summarize_trace(max(traces, key=os.path.getmtime), num_steps)


def summarize_trace(path: str, num_steps: int, top: int = 8) -> str:
  """Device op time per step in a profiler trace, by op name (numbering dropped).

  Device ops are the events of a device's process (GPU, TPU) or, on a CPU, of
  XLA's Eigen threads; the trace's format is the Chrome trace-event JSON.
  """
  with gzip.open(path) as f:
    events = json.load(f)['traceEvents']
  names = {(e['pid'], e.get('tid')): e['args']['name'] for e in events
           if e.get('ph') == 'M' and e.get('name') in ('process_name', 'thread_name')}

  def on_device(event: dict) -> bool:
    return (names.get((event['pid'], None), '').startswith('/device:')
            or 'XLAEigen' in names.get((event['pid'], event.get('tid')), ''))

  micros: dict[str, float] = collections.Counter()
  counts: dict[str, int] = collections.Counter()
  for event in events:
    if event.get('ph') != 'X' or not on_device(event):
      continue
    name = re.sub(r'\.\d+$', '', event['name'])
    if name.startswith(('ThunkExecutor', '$')):  # Waits and Python frames, not ops.
      continue
    micros[name] += event.get('dur', 0)
    counts[name] += 1
  total = sum(micros.values()) / 1000 / num_steps
  lines = [f'profile ({path}): device op time {total:.2f} ms per step, by op:']
  for name, us in sorted(micros.items(), key=lambda item: -item[1])[:top]:
    ms = us / 1000 / num_steps
    lines.append(f'  {ms:7.2f} ms ({ms / total:4.0%}) {counts[name] / num_steps:5.0f} x {name}')
  return '\n'.join(lines)
