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

