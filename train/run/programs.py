"""The compiled programs of a config: mesh, init, train step and eval step.

Free of TensorFlow, tfds and clu, so that the throughput benchmark's synthetic
mode runs where only JAX, Flax and Optax are installed. The loop
(`train/run/loop.py`) feeds these programs through `device_batches`; the seeds of a
study share them through `StepCache`.
"""

import collections
import dataclasses
import functools
import json
import time
from typing import Callable, Iterable, Iterator, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec

import models
import optim
from train.run import budget
from train.run import steps

DATA_AXIS = 'data'


def create_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1-D mesh over `devices` (default: every device of every process).

  The batch is split along it and the state replicated. Its axis is JAX's default
  `Explicit` type: a sharding that the program cannot keep (a virtual-BN group
  split across devices, say) fails at trace time instead of silently becoming
  communication.
  """
  devices = jax.devices() if devices is None else list(devices)
  return jax.make_mesh((len(devices),), (DATA_AXIS,), devices=devices)


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


def abstract_batch(config: ml_collections.ConfigDict, batch_size: int,
                    sharding: NamedSharding, with_mask: bool) -> dict:
  shape = (batch_size, config.image_size, config.image_size, 3)
  batch = {'image': jax.ShapeDtypeStruct(shape, jnp.uint8, sharding=sharding),
           'label': jax.ShapeDtypeStruct((batch_size,), jnp.int32, sharding=sharding)}
  if with_mask:
    batch['mask'] = jax.ShapeDtypeStruct((batch_size,), jnp.bool_, sharding=sharding)
  return batch


@dataclasses.dataclass
class CompiledSteps:
  """The compiled programs of one config: they do not depend on the seed."""
  init: Callable  # rng key -> TrainState, laid out as `state_shardings` says.
  train_step: Callable
  eval_step: Callable | None  # None when compiled with `with_eval=False`.
  batch_sharding: NamedSharding
  learning_rate_fn: Callable
  compile_seconds: float


def state_shardings(state: steps.TrainState, mesh: Mesh,
                    shard_optimizer_state: bool = False) -> steps.TrainState:
  """The sharding of each leaf of a (possibly abstract) train state.

  Parameters and BN statistics are replicated: every device needs all of them
  for its share of the batch. The optimizer state is read only by the update, so
  with `shard_optimizer_state` each of its arrays is split along its largest axis
  that the device count divides (ZeRO stage 1): a device then keeps and updates
  1/N of the momenta, and XLA all-gathers the updated parameters. That saves
  memory (LAMB keeps two float32 copies of the parameters) for one all-gather of
  the parameters per step; arrays that no axis divides stay replicated.
  """
  replicated = NamedSharding(mesh, PartitionSpec())
  everything_replicated = jax.tree.map(lambda _: replicated, state)
  if not shard_optimizer_state:
    return everything_replicated

  def optimizer_leaf(x) -> NamedSharding:
    for axis in sorted(range(x.ndim), key=lambda a: -x.shape[a]):
      if x.shape[axis] % mesh.size == 0:
        return NamedSharding(mesh, PartitionSpec(
            *(DATA_AXIS if a == axis else None for a in range(x.ndim))))
    return replicated

  return everything_replicated.replace(
      opt_state=jax.tree.map(optimizer_leaf, state.opt_state))


def _with_shardings(shapes, shardings):
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                      shapes, shardings)


def _seedless_key(config: ml_collections.ConfigDict) -> str:
  """The config as JSON without its seed: equal keys compile to the same programs."""
  values = json.loads(config.to_json())
  values.pop('seed')
  return json.dumps(values, sort_keys=True)


class StepCache:
  """Compiled steps by config, so that the seeds of a study compile once.

  The seed only changes the initial parameters (an argument of the compiled init)
  and the data order, so every seed of a config reuses the same executables.
  """

  def __init__(self):
    self._compiled: dict[str, CompiledSteps] = {}
    self.num_compilations = 0

  def get(self, config: ml_collections.ConfigDict, num_classes: int,
          num_train_examples: int) -> CompiledSteps:
    key = _seedless_key(config)
    if key not in self._compiled:
      self._compiled[key] = compile_steps(config, num_classes, num_train_examples)
      self.num_compilations += 1
    return self._compiled[key]


@dataclasses.dataclass
class LoweredSteps:
  """The programs of one config, traced and lowered to XLA but not compiled."""
  init: jax.stages.Lowered
  train_step: jax.stages.Lowered
  eval_step: jax.stages.Lowered | None
  batch_sharding: NamedSharding
  learning_rate_fn: Callable


def lower_steps(config: ml_collections.ConfigDict, num_classes: int,
                num_train_examples: int, *, mesh: Mesh | None = None,
                shard_optimizer_state: bool = False, with_eval: bool = True) -> LoweredSteps:
  """Builds the model and optimizer and lowers init, train and eval steps.

  Lowering traces every function of the config (model, optimizer, schedule,
  loss) at its shapes without XLA compiling them: a config that cannot train
  fails here, in seconds (tests/test_configs.py lowers every variant).
  """
  mesh = mesh or create_mesh()
  replicated = NamedSharding(mesh, PartitionSpec())
  batch_sharding = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
  model = models.create_model(config, num_classes=num_classes)
  learning_rate_fn = budget.learning_rate_fn(config, num_train_examples)
  tx = optim.create_optimizer(config, learning_rate_fn)
  init_fn = functools.partial(steps.create_train_state, model, tx,
                              image_size=config.image_size)
  shapes = jax.eval_shape(init_fn, jax.random.key(0))
  shardings = state_shardings(shapes, mesh, shard_optimizer_state)
  init = jax.jit(init_fn, out_shardings=shardings).lower(jax.random.key(0))
  abstract_state = _with_shardings(shapes, shardings)
  train_fn, eval_fn = steps.bind_step_constants(config, learning_rate_fn)
  train_step = jax.jit(
      train_fn, in_shardings=(shardings, batch_sharding),
      out_shardings=(shardings, replicated), donate_argnums=(0,)).lower(
          abstract_state,
          abstract_batch(config, config.global_batch_size, batch_sharding, False))
  eval_step = None
  if with_eval:
    eval_step = jax.jit(
        eval_fn, in_shardings=(shardings, batch_sharding), out_shardings=replicated).lower(
            abstract_state,
            abstract_batch(config, config.eval_batch_size, batch_sharding, True))
  return LoweredSteps(init=init, train_step=train_step, eval_step=eval_step,
                      batch_sharding=batch_sharding, learning_rate_fn=learning_rate_fn)


def compile_steps(config: ml_collections.ConfigDict, num_classes: int,
                  num_train_examples: int, *, mesh: Mesh | None = None,
                  shard_optimizer_state: bool = False,
                  with_eval: bool = True) -> CompiledSteps:
  """The programs of `lower_steps`, compiled ahead of time.

  `mesh` defaults to every device; a smaller one (the tests run 1, 2, 4 and 8
  devices in one process) compiles the same programs for fewer devices. The
  throughput benchmark leaves out the eval step (`with_eval=False`), which would
  only add compile time. `compile_seconds` counts lowering and compiling.
  """
  compile_start = time.perf_counter()
  lowered = lower_steps(config, num_classes, num_train_examples, mesh=mesh,
                        shard_optimizer_state=shard_optimizer_state, with_eval=with_eval)
  return CompiledSteps(
      init=lowered.init.compile(), train_step=lowered.train_step.compile(),
      eval_step=lowered.eval_step.compile() if with_eval else None,
      batch_sharding=lowered.batch_sharding, learning_rate_fn=lowered.learning_rate_fn,
      compile_seconds=time.perf_counter() - compile_start)
