"""The compiled programs of a config: mesh, init, train step and eval step.

Free of TensorFlow, tfds and clu, so that the throughput benchmark's synthetic
mode runs where only JAX, Flax and Optax are installed. The loop
(`train/loop.py`) feeds these programs; the seeds of a study share them through
`StepCache`.
"""

import dataclasses
import json
import time
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import models
import optim
from train import steps

DATA_AXIS = 'data'


def create_mesh() -> Mesh:
  """A 1-D mesh over every device: the batch is split along it, the state replicated."""
  return jax.make_mesh((jax.device_count(),), (DATA_AXIS,))


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
  init: Callable  # rng key -> TrainState, replicated.
  train_step: Callable
  eval_step: Callable
  batch_sharding: NamedSharding
  learning_rate_fn: Callable
  compile_seconds: float


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


def compile_steps(config: ml_collections.ConfigDict, num_classes: int,
                  num_train_examples: int) -> CompiledSteps:
  """Builds the model and optimizer and compiles init, train and eval steps (AOT)."""
  mesh = create_mesh()
  replicated = NamedSharding(mesh, PartitionSpec())
  batch_sharding = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
  model = models.create_model(config, num_classes=num_classes)
  learning_rate_fn = optim.create_learning_rate_fn(config, num_train_examples)
  tx = optim.create_optimizer(config, learning_rate_fn)
  compile_start = time.perf_counter()
  init_fn = jax.jit(lambda rng: steps.create_train_state(model, tx, rng, config.image_size),
                    out_shardings=replicated)
  init = init_fn.lower(jax.random.key(0)).compile()
  abstract_state = jax.eval_shape(init_fn, jax.random.key(0))
  abstract_state = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated), abstract_state)
  train_fn, eval_fn = steps.bind_step_constants(config, learning_rate_fn)
  train_step = jax.jit(
      train_fn, in_shardings=(replicated, batch_sharding),
      out_shardings=(replicated, replicated), donate_argnums=(0,)).lower(
          abstract_state,
          abstract_batch(config, config.global_batch_size, batch_sharding, False)
      ).compile()
  eval_step = jax.jit(
      eval_fn, in_shardings=(replicated, batch_sharding), out_shardings=replicated).lower(
          abstract_state,
          abstract_batch(config, config.eval_batch_size, batch_sharding, True)
      ).compile()
  return CompiledSteps(init=init, train_step=train_step, eval_step=eval_step,
                       batch_sharding=batch_sharding, learning_rate_fn=learning_rate_fn,
                       compile_seconds=time.perf_counter() - compile_start)
