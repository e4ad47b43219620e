"""Whether the compiled steps of a run can fit on a device, from the model's shape alone.

The estimate is a lower bound, not a forecast: it counts each convolution's
output once per image (the backward pass must keep it) and the float32
parameters twice (the values and their gradient). XLA needs more than that (BN
outputs, ReLU masks, optimizer slots, workspace), so a config refused here can
never run, while one accepted may still run out of memory. The point is to turn
`image_size=1000000`, which would otherwise fail after a minute of compiling with
an allocator's traceback, into one line at validation.

A run compiles three programs (train/run/programs.py): init, the train step
(global_batch_size) and the eval step (eval_batch_size). Both steps are
estimated here; init builds the state alone, which the train step's bound
already holds (the parameters and their gradient), so it needs no check of its own.
Beside the train step, the loop keeps input.prefetch_batches batches on the
devices (`batch_bytes`).
"""

import dataclasses
import os
from typing import Any, Callable

import ml_collections

from models import resnet

_DTYPE_BYTES = {'float32': 4, 'bfloat16': 2}
_PARAM_COPIES = 2  # The parameters and their gradient, float32 each.


@dataclasses.dataclass(frozen=True)
class DeviceMemory:
  """What one training process can hold: `bytes` for each of `num_local_devices`.

  `shared` is True on a CPU, where every local device draws on the same host
  memory, so their needs add up.
  """
  bytes: int
  where: str  # In words, for messages: 'cpu host memory available', ...
  num_local_devices: int = 1
  shared: bool = False


def _host_available_bytes() -> int:
  """MemAvailable of /proc/meminfo (what can be allocated without swapping)."""
  try:
    with open('/proc/meminfo') as f:
      for line in f:
        if line.startswith('MemAvailable:'):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return os.sysconf('SC_AVPHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')


def device_memory() -> DeviceMemory:
  """The memory of this process's devices: the accelerator's limit, or the host's."""
  import jax  # pylint: disable=g-import-not-at-top
  devices = jax.local_devices()
  stats = None
  try:
    stats = devices[0].memory_stats()
  except Exception:  # pylint: disable=broad-except  # Not every backend has stats.
    pass
  if stats and stats.get('bytes_limit'):
    return DeviceMemory(int(stats['bytes_limit']), f'{devices[0].device_kind} memory',
                        len(devices))
  return DeviceMemory(_host_available_bytes(), 'host memory available', len(devices),
                      shared=True)


def _ceil_half(size: int, stride: int) -> int:
  return -(-size // stride)


def conv_output_sizes(config: ml_collections.ConfigDict) -> tuple[list[int], int]:
  """Per image, the elements of each conv output in order; and the conv parameter count.

  Follows models/resnet.py: the stem, then each stage's blocks with their
  projection shortcuts. The dense head is left out (it needs the class count,
  and is small).
  """
  model = config.model
  width, size = model.width, config.image_size
  if model.stem == 'imagenet':  # 7x7/2 conv, then a 3x3/2 max-pool.
    size = _ceil_half(size, 2)
    outputs, params = [size * size * width], 7 * 7 * 3 * width
    size = _ceil_half(size, 2)
  else:  # 3x3/1 conv.
    outputs, params = [size * size * width], 3 * 3 * 3 * width
  partial_model = resnet.MODELS_BY_DEPTH[model.depth]
  bottleneck = partial_model.keywords['block_cls'] is resnet.BottleneckBlock
  channels = width
  for i, num_blocks in enumerate(partial_model.keywords['stage_sizes']):
    filters = width * 2**i
    out = 4 * filters if bottleneck else filters
    for j in range(num_blocks):
      stride = 2 if i > 0 and j == 0 else 1
      size_in, size = size, _ceil_half(size, stride)
      if bottleneck:
        first = size if model.version == 'v1.0' else size_in
        outputs += [first * first * filters, size * size * filters, size * size * out]
        params += channels * filters + 9 * filters * filters + filters * out
      else:
        outputs += [size * size * filters] * 2
        params += 9 * channels * filters + 9 * filters * filters
      if channels != out or stride != 1:  # The projection shortcut.
        outputs.append(size * size * out)
        params += channels * out
      channels = out
  return outputs, params


def conv_outputs_and_params(config: ml_collections.ConfigDict) -> tuple[int, int]:
  """Per image, the elements of every conv output together; and the conv parameter count."""
  outputs, params = conv_output_sizes(config)
  return sum(outputs), params


def _input_bytes(config: ml_collections.ConfigDict) -> int:
  """One image of the batch as the step gets it (uint8) and as the stem reads it."""
  pixels = config.image_size * config.image_size * 3
  return pixels * (1 + _DTYPE_BYTES.get(config.model.dtype, 4))


def batch_bytes(config: ml_collections.ConfigDict, per_device_batch: int) -> int:
  """One device's share of an input batch as it waits on the device (uint8 images):
  the loop keeps input.prefetch_batches of them there ahead of the step."""
  return config.image_size * config.image_size * 3 * per_device_batch


def step_bytes(config: ml_collections.ConfigDict, per_device_batch: int) -> int:
  """The lower bound of the module docstring, for one device's share of a train step."""
  elements, params = conv_outputs_and_params(config)
  per_image = elements * _DTYPE_BYTES.get(config.model.dtype, 4) + _input_bytes(config)
  return per_image * per_device_batch + params * 4 * _PARAM_COPIES


def eval_step_bytes(config: ml_collections.ConfigDict, per_device_batch: int) -> int:
  """The same for an eval step: the forward pass keeps nothing for a backward one,
  so it needs the parameters once and, per image, its input and the largest single
  conv output (which must exist at once)."""
  outputs, params = conv_output_sizes(config)
  per_image = max(outputs) * _DTYPE_BYTES.get(config.model.dtype, 4) + _input_bytes(config)
  return per_image * per_device_batch + params * 4


def gigabytes(num_bytes: float) -> str:
  return f'{num_bytes / 2**30:.3g} GiB'


def largest_fitting(fits, start: int) -> int:
  """The largest n in [0, start] with fits(n), for a predicate false at `start`
  and monotone (true below some point); 0 when even 1 does not fit."""
  low, high = 0, start
  while high - low > 1:
    middle = (low + high) // 2
    if fits(middle):
      low = middle
    else:
      high = middle
  return low


# A config that cannot fit, as validation's ConfigError takes it: the key to
# change, its value, and what is allowed (the largest value that fits).
Problem = tuple[str, Any, str]


def _need(config: ml_collections.ConfigDict, device: DeviceMemory,
          bytes_of: Callable[[ml_collections.ConfigDict, int], int],
          image_size: int, batch: int) -> int:
  """What one step needs at `image_size` and `batch` per device, on each of the
  process's devices together when they share the host's memory."""
  sized = config.copy_and_resolve_references()
  sized.image_size = image_size
  sharers = device.num_local_devices if device.shared else 1
  return bytes_of(sized, batch) * sharers


def train_step_problem(config: ml_collections.ConfigDict, num_devices: int,
                       device: DeviceMemory) -> Problem | None:
  """Names image_size when a single image per device is already too much, else
  the batch, with the largest value that would pass."""
  per_device = config.global_batch_size // num_devices
  step = lambda size, batch: _need(config, device, step_bytes, size, batch)
  needed = step(config.image_size, per_device)
  if needed <= device.bytes:
    return None
  # The largest values named below leave room for the prefetched batches too
  # (prefetch_problem), so that the value suggested passes.
  ahead = config.input.prefetch_batches
  need = lambda size, batch: step(size, batch) + ahead * _need(
      config, device, batch_bytes, size, batch)
  what = (f'one training step of ResNet-{config.model.depth} (width {config.model.width}) '
          f'at {config.image_size} px, {per_device} images per device, needs at least '
          f'{gigabytes(needed)}, over the {gigabytes(device.bytes)} of '
          f'{device.where}')
  if need(config.image_size, 1) > device.bytes:
    largest = largest_fitting(lambda s: need(s, per_device) <= device.bytes,
                              config.image_size)
    return ('image_size', config.image_size,
            f'{what}; allowed: at most image_size={largest} at this batch')
  largest = largest_fitting(lambda b: need(config.image_size, b) <= device.bytes, per_device)
  return ('global_batch_size', config.global_batch_size,
          f'{what}; allowed: at most {largest} images per device '
          f'(global_batch_size {largest * num_devices})')


def eval_step_problem(config: ml_collections.ConfigDict, num_devices: int,
                      device: DeviceMemory) -> Problem | None:
  """Names eval_batch_size, with the largest that would pass. An eval step needs
  less than a train step at the same batch, so one image always fits here once
  the train step's check has passed."""
  per_device = config.eval_batch_size // num_devices
  need = lambda batch: _need(config, device, eval_step_bytes, config.image_size, batch)
  needed = need(per_device)
  if needed <= device.bytes:
    return None
  largest = largest_fitting(lambda b: need(b) <= device.bytes, per_device)
  return (
      'eval_batch_size', config.eval_batch_size,
      f'one eval step of ResNet-{config.model.depth} (width {config.model.width}) at '
      f'{config.image_size} px, {per_device} images per device, needs at least '
      f'{gigabytes(needed)}, over the {gigabytes(device.bytes)} of '
      f'{device.where}; allowed: at most {largest} images per device '
      f'(eval_batch_size {largest * num_devices})')


def prefetch_problem(config: ml_collections.ConfigDict, num_devices: int,
                     device: DeviceMemory) -> Problem | None:
  """The batches the loop puts on the devices ahead of the step fit beside it."""
  per_device = config.global_batch_size // num_devices
  step = _need(config, device, step_bytes, config.image_size, per_device)
  batch = _need(config, device, batch_bytes, config.image_size, per_device)
  ahead = config.input.prefetch_batches
  if step + ahead * batch <= device.bytes:
    return None
  largest = (device.bytes - step) // batch
  return (
      'input.prefetch_batches', ahead,
      f'{ahead:,} batches of {per_device} images per device at {config.image_size} px, '
      f'beside one training step, need at least {gigabytes(step + ahead * batch)}, '
      f'over the {gigabytes(device.bytes)} of {device.where}; allowed: at most '
      f'{largest:,} batches ahead')
