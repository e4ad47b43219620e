"""Trains a tiny ResNet for a few steps on a given mesh and saves what it ends with.

Run as a subprocess by tests/test_sharding.py: a device count (virtual CPU
devices) can only be chosen before JAX starts.

  python tests/sharding_worker.py OUT --cpu_devices=8 --meshes=1,2,4,8 --hlo

For each mesh size n it writes OUT/mesh_<n>.npz: the loss of every step, the initial parameters and the final parameters and BN
statistics, flattened by path. Every layout sees the same global batches.
"""

import argparse
import json
import os
import re
import sys
import time

import jax

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec

import models
from configs import embedded_lars
from train.run import programs

# pylint: enable=g-import-not-at-top,wrong-import-position

NUM_STEPS = 10
NUM_CLASSES = 10
COLLECTIVE = re.compile(
    r'\b(all-reduce|all-gather|reduce-scatter|collective-permute|all-to-all)(?:-start)?\(')


def tiny_config():
  """ResNet-10 of width 4 on 8x8 images, batch 64 in BN groups of 8.

  After a 2-step warmup, LARS at eta_peak 1 moves the weights by a few percent
  in 10 steps: far more than round-off, yet gently enough that round-off is not
  amplified. (At eta_peak 10 the loss climbs, and a last-bit difference in the
  gradient sum grows to 1e-4 in the loss within 8 steps.)
  """
  config = embedded_lars.get_config()
  config.image_size = 8
  config.global_batch_size = 64
  config.model.width = 4
  config.model.virtual_batch_size = 8
  config.lr.peak = 1.0
  config.lr.warmup_steps = 2.0
  return config


def global_batches(config, num_steps: int) -> list[dict[str, np.ndarray]]:
  rng = np.random.default_rng(0)
  shape = (config.global_batch_size, config.image_size, config.image_size, 3)
  return [{'image': rng.integers(0, 256, shape, dtype=np.uint8),
           'label': rng.integers(0, NUM_CLASSES, shape[:1], dtype=np.int32)}
          for _ in range(num_steps)]


def local_rows(sharding: NamedSharding, batch: dict[str, np.ndarray]) -> dict:
  """This process's share of a global batch: the rows of its devices, in order.

  The input pipeline of a multi-process run reads exactly this share; here it is
  cut out of the one global batch that every layout shares.
  """
  rows = sharding.addressable_devices_indices_map(batch['label'].shape)
  starts = sorted({index[0].start or 0 for index in rows.values()})
  per_device = batch['label'].shape[0] // sharding.mesh.size
  take = np.concatenate([np.arange(s, s + per_device) for s in starts])
  return {k: v[take] for k, v in batch.items()}


def host_copy(tree) -> dict[str, np.ndarray]:
  """A replicated (or sharded) pytree as numpy, keyed by path; one process's view."""
  def fetch(x):
    if x.is_fully_addressable:
      return np.asarray(jax.device_get(x))
    return np.asarray(x.addressable_shards[0].data)  # Replicated: any shard is all.
  return {jax.tree_util.keystr(path): fetch(x)
          for path, x in jax.tree_util.tree_leaves_with_path(tree)}


def compile_steps(config, mesh, shard_optimizer_state: bool = False,
                  ) -> programs.CompiledSteps:
  return programs.compile_steps(config, NUM_CLASSES, 1000, mesh=mesh,
                                shard_optimizer_state=shard_optimizer_state,
                                with_eval=False)


def train(config, compiled: programs.CompiledSteps) -> dict[str, np.ndarray]:
  state = compiled.init(jax.random.key(0))
  initial = host_copy(state.params)
  losses = []
  for batch in global_batches(config, NUM_STEPS):
    local = local_rows(compiled.batch_sharding, batch)
    device_batch = {k: jax.make_array_from_process_local_data(
        compiled.batch_sharding, v, batch[k].shape) for k, v in local.items()}
    state, metrics = compiled.train_step(state, device_batch)
    losses.append(metrics['loss'])
  result = {f'initial{k}': v for k, v in initial.items()}
  result.update({f'params{k}': v for k, v in host_copy(state.params).items()})
  result.update({f'batch_stats{k}': v for k, v in host_copy(state.batch_stats).items()})
  result['loss'] = np.array([host_copy(loss)[''] for loss in losses])
  result['opt_state_sharded'] = np.array(sum(
      not s.sharding.is_fully_replicated for s in jax.tree.leaves(state.opt_state)))
  return result


def collectives(hlo_text: str) -> dict[str, list[str]]:
  """The collective ops of a compiled program's HLO, by kind: their result types."""
  found: dict[str, list[str]] = {}
  for line in hlo_text.splitlines():
    match = COLLECTIVE.search(line)
    if match and ' = ' in line:
      found.setdefault(match.group(1), []).append(
          line[line.index(' = ') + 3:match.start()].strip())
  return found


def elements(result_type: str) -> int:
  """Elements in an HLO result type such as `(f32[4]{0}, f32[3,3,3,4]{...})`."""
  return sum(int(np.prod([int(d) for d in dims.split(',') if d]))
             for dims in re.findall(r'[a-z]+\d*\[([\d,]*)\]', result_type))


def hlo_report(config, mesh, train_step_hlo: str) -> dict:
  """What crosses devices in the compiled programs of an n-device mesh.

  - `forward`: the model's training forward pass (BN on group statistics) on
    the project's mesh, with a per-device batch of one BN group.
  - `forward_split_groups`: the same on an Auto mesh with half a group per
    device, where XLA must combine partial group sums across devices: the
    control that shows the count can see statistics traffic.
  - `train_step`: every collective of the compiled train step, and the
    elements it all-reduces next to the parameter and BN-statistic counts.
  """
  size = config.image_size
  model = models.create_model(config, NUM_CLASSES)
  variables = jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, size, size, 3)), train=False))

  def forward(variables, images):
    logits, _ = model.apply(variables, images, train=True, mutable=['batch_stats'])
    return logits

  def forward_collectives(mesh, batch_size):
    replicated = NamedSharding(mesh, PartitionSpec())
    batch = NamedSharding(mesh, PartitionSpec(programs.DATA_AXIS))
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated), variables)
    images = jax.ShapeDtypeStruct((batch_size, size, size, 3), jnp.float32,
                                  sharding=batch)
    return collectives(jax.jit(forward, out_shardings=batch).lower(
        abstract, images).compile().as_text())

  vbs = config.model.virtual_batch_size
  auto_mesh = jax.make_mesh((mesh.size,), (programs.DATA_AXIS,),
                            axis_types=(AxisType.Auto,), devices=mesh.devices)
  train_collectives = collectives(train_step_hlo)
  return {
      'forward': forward_collectives(mesh, mesh.size * vbs),
      'forward_split_groups': forward_collectives(auto_mesh, mesh.size * vbs // 2),
      'train_step': train_collectives,
      'train_step_all_reduce_elements': sum(
          elements(t) for t in train_collectives.get('all-reduce', [])),
      'num_params': models.count_params(variables),
      'num_batch_stats': sum(int(np.prod(x.shape))
                             for x in jax.tree.leaves(variables['batch_stats'])),
  }


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument('out')
  parser.add_argument('--cpu_devices', type=int, required=True)
  parser.add_argument('--meshes', default='',
                      help='mesh sizes to train on; default: all devices.')
  parser.add_argument('--shard_optimizer_state', action='store_true',
                      help='also train on all devices with the optimizer state sharded.')
  parser.add_argument('--hlo', action='store_true')
  args = parser.parse_args()
  jax.config.update('jax_num_cpu_devices', args.cpu_devices)
  config = tiny_config()
  sizes = [int(n) for n in args.meshes.split(',') if n] or [jax.device_count()]
  runs = {f'mesh_{n}': (programs.create_mesh(jax.devices()[:n]), False) for n in sizes}
  largest = programs.create_mesh(jax.devices()[:max(sizes)])
  if args.shard_optimizer_state:
    runs[f'mesh_{largest.size}_sharded_opt'] = (largest, True)
  timings, compiled = {}, {}
  for name, (mesh, shard_optimizer_state) in runs.items():
    start = time.perf_counter()
    compiled[name] = compile_steps(config, mesh, shard_optimizer_state)
    np.savez(os.path.join(args.out, f'{name}.npz'), **train(config, compiled[name]))
    timings[name] = time.perf_counter() - start
  if args.hlo:  # On the largest mesh.
    start = time.perf_counter()
    with open(os.path.join(args.out, 'hlo.json'), 'w') as f:
      json.dump(hlo_report(config, largest,
                           compiled[f'mesh_{largest.size}'].train_step.as_text()), f, indent=1)
    timings['hlo'] = time.perf_counter() - start
  with open(os.path.join(args.out, 'timings.json'), 'w') as f:
    json.dump(timings, f)


if __name__ == '__main__':
  main()
