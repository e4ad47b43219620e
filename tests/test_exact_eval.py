"""Exact evaluation: every validation example counts once, whatever the batching.

Issue 4: the last partial batch is padded and the padding masked out, so the
count, the accuracy and the loss do not depend on the eval batch size, the
number of devices or the number of processes. The split is a fake ImageNet
with an odd number (13) of validation images, prepared by tfds's real
imagenet2012 builder; the reference applies the model to each image alone and
computes the accuracy and the loss in numpy. Processes are simulated by
evaluating each process's shard in turn and adding up; devices are CPU devices
in a subprocess started with XLA's host device count.
"""

import contextlib
import dataclasses
import functools
import io
import json
import os
import pathlib
import subprocess
import sys
from typing import Callable, Iterator

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec

import models
from configs import embedded_lars
from input_pipeline import datasets
from input_pipeline import pipeline
from input_pipeline import prepare_imagenet
from input_pipeline import preprocessing
from tests import fake_imagenet
from train.run import evaluation
from train.run import programs
from train.run import steps

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGENET = 'imagenet2012'
NUM_VAL = 13
BATCH_SIZES = (1, 5, 13, 32)  # One each, odd, the split, more than the split.
PROCESS_COUNTS = (1, 2, 3)
NUM_DEVICES = 4
DEVICE_BATCH_SIZES = (4, 8)
DEVICE_PROCESS_COUNTS = (1, 2)


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory) -> str:
  """A tfds data_dir holding the fake imagenet2012, with 13 validation images."""
  root = tmp_path_factory.mktemp('imagenet')
  manual_dir, data_dir = str(root / 'manual'), str(root / 'tfds')
  fake_imagenet.make_fake_imagenet_archives(
      manual_dir, images_per_class=1, num_val=NUM_VAL, seed=0)
  with contextlib.redirect_stdout(io.StringIO()):
    prepare_imagenet.prepare(data_dir, manual_dir)
  return data_dir


def _config(data_dir: str) -> ml_collections.ConfigDict:
  config = embedded_lars.get_config()
  config.dataset = IMAGENET
  config.data_dir = data_dir
  config.image_size = 16
  config.model.depth = 10
  config.model.width = 4
  config.model.last_bn_scale = 1.0  # Residual branches that do something.
  return config


def _model_and_state(config: ml_collections.ConfigDict) -> tuple[nn.Module, steps.TrainState]:
  """The ResNet and its state at the config's seed (the optimizer plays no part)."""
  builder = datasets.ensure_prepared(config.dataset, config.data_dir)
  model = models.create_model(
      config, num_classes=builder.info.features['label'].num_classes)
  init = jax.jit(functools.partial(
      steps.create_train_state, model, optax.sgd(0.0), image_size=config.image_size))
  return model, init(jax.random.key(config.seed))


def _variables(state: steps.TrainState) -> dict:
  return {'params': state.params, 'batch_stats': state.batch_stats}


def _with_head(state: steps.TrainState, kernel: np.ndarray,
               bias: np.ndarray) -> steps.TrainState:
  params = flax.core.unfreeze(state.params)
  params['head'] = {'kernel': jnp.asarray(kernel), 'bias': jnp.asarray(bias)}
  return state.replace(params=params)


def _validation_examples(config: ml_collections.ConfigDict) -> tuple[np.ndarray, np.ndarray]:
  """Every validation image, centre-cropped as for eval, and its label: no padding."""
  builder = datasets.ensure_prepared(config.dataset, config.data_dir)
  source = builder.as_data_source('validation',
                                  decoders={'image': tfds.decode.SkipDecoding()})
  images, labels = [], []
  for i in range(len(source)):
    example = {k: tf.constant(v) for k, v in source[i].items()}
    example = preprocessing.decode_and_center_crop(
        example, image_size=config.image_size,
        crop_padding=config.input.eval_crop_padding,
        resize_method=config.input.resize_method)
    images.append(example['image'].numpy())
    labels.append(int(example['label']))
  return np.stack(images), np.array(labels)


def _logits_one_by_one(model: nn.Module, state: steps.TrainState, config: ml_collections.ConfigDict,
                       images: np.ndarray) -> np.ndarray:
  """The eval forward pass on each image alone, normalised here in numpy."""
  apply = jax.jit(lambda variables, x: model.apply(variables, x, train=False))
  mean = np.asarray(config.input.mean_rgb, np.float32)
  stddev = np.asarray(config.input.stddev_rgb, np.float32)
  normalised = (images.astype(np.float32) - mean) / stddev
  return np.concatenate([np.asarray(apply(_variables(state), x[None]), np.float64)
                         for x in normalised])


def _two_class_bias(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """A head bias under which two examples i and j are right, and few others.

  The classes of two examples i and j get a bias above every other logit, so
  that every prediction is one of the two, and an offset between them puts
  the threshold between i and j. Both are then right if their logits prefer
  their own classes: L[i, l_i] + L[j, l_j] > L[i, l_j] + L[j, l_i]. The pair
  with the widest margin is chosen; the other examples split between the two
  classes by their logits, and are right only where they share a label with
  i or j.
  """
  own = logits[np.arange(len(labels)), labels]
  cross = logits[:, labels]  # cross[i, j] = L[i, l_j].
  margin = own[:, None] + own[None, :] - cross - cross.T
  margin[labels[:, None] == labels[None, :]] = -np.inf
  i, j = np.unravel_index(np.argmax(margin), margin.shape)
  assert margin[i, j] > 0, 'no pair of examples prefers its own classes'
  a, b = labels[i], labels[j]
  gap = logits[:, a] - logits[:, b]  # gap[i] - gap[j] is the margin.
  bias = np.zeros(logits.shape[1], np.float32)
  bias[b] = logits.max() - logits.min() + 1.0
  bias[a] = bias[b] - (gap[i] + gap[j]) / 2
  return bias


def _numpy_metrics(logits: np.ndarray, labels: np.ndarray,
                   label_smoothing: float) -> tuple[int, float]:
  """(correct predictions, summed loss), the loss smoothed as in training."""
  num_classes = logits.shape[1]
  shifted = logits - logits.max(axis=1, keepdims=True)
  log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
  targets = np.full_like(log_probs, label_smoothing / num_classes)
  targets[np.arange(len(labels)), labels] += 1 - label_smoothing
  loss = -(targets * log_probs).sum(axis=1)
  return int((logits.argmax(axis=1) == labels).sum()), float(loss.sum())


def _shardings() -> tuple[NamedSharding, NamedSharding]:
  """(replicated, batch-split) over every device, as the training loop makes them."""
  mesh = programs.create_mesh()
  return (NamedSharding(mesh, PartitionSpec()),
          NamedSharding(mesh, PartitionSpec(programs.DATA_AXIS)))


def _compiled_eval_step(config: ml_collections.ConfigDict) -> Callable:
  replicated, batch_sharding = _shardings()
  _, eval_fn = steps.bind_step_constants(config, optax.constant_schedule(0.0))
  return jax.jit(eval_fn, in_shardings=(replicated, batch_sharding),
                 out_shardings=replicated)


def _evaluate_sharded(config: ml_collections.ConfigDict, eval_step: Callable,
                      state: steps.TrainState, batch_size: int,
                      process_count: int) -> tuple[float, float, int]:
  """(correct, summed loss, count) of evaluation.evaluate over every process's shard."""
  _, batch_sharding = _shardings()
  correct = loss_sum = 0.0
  count = 0
  for process_index in range(process_count):
    batches = pipeline.create_eval_dataset(
        config, pipeline.Reading(batch_size, process_index=process_index,
                                 process_count=process_count))
    accuracy, loss, n = evaluation.evaluate(eval_step, state, batches, batch_sharding)
    correct += accuracy * n
    loss_sum += loss * n
    count += n
  return correct, loss_sum, count


@dataclasses.dataclass
class Reference:
  """The state under test and what it gives on each example alone."""
  config: ml_collections.ConfigDict
  state: steps.TrainState
  correct: int
  loss_sum: float
  predictions: np.ndarray


@pytest.fixture(scope='module')
def reference(data_dir) -> Reference:
  config = _config(data_dir)
  model, state = _model_and_state(config)
  images, labels = _validation_examples(config)
  assert len(images) == NUM_VAL
  # Perturbed from the initial state, so that the predictions depend on the
  # image and only some are right: a larger head (it starts at stddev 0.01),
  # and a bias that makes two examples right by construction.
  kernel = np.asarray(state.params['head']['kernel']) * 30
  state = _with_head(state, kernel, np.zeros(kernel.shape[1], np.float32))
  bias = _two_class_bias(_logits_one_by_one(model, state, config, images), labels)
  state = _with_head(state, kernel, bias)
  logits = _logits_one_by_one(model, state, config, images)
  correct, loss_sum = _numpy_metrics(logits, labels, config.label_smoothing)
  return Reference(config=config, state=state, correct=correct, loss_sum=loss_sum,
                   predictions=logits.argmax(axis=1))


@pytest.fixture(scope='module')
def eval_step(reference) -> Callable:
  return _compiled_eval_step(reference.config)


def test_reference_is_neither_all_right_nor_all_wrong(reference):
  assert 0 < reference.correct < NUM_VAL
  assert len(set(reference.predictions.tolist())) > 1


@pytest.mark.parametrize('process_count', PROCESS_COUNTS)
@pytest.mark.parametrize('batch_size', BATCH_SIZES)
def test_evaluate_counts_each_example_once(reference, eval_step, batch_size, process_count):
  correct, loss_sum, count = _evaluate_sharded(
      reference.config, eval_step, reference.state, batch_size, process_count)
  assert count == NUM_VAL
  assert correct == pytest.approx(reference.correct, abs=1e-9)
  assert correct / count == pytest.approx(reference.correct / NUM_VAL, abs=1e-12)
  assert loss_sum / count == pytest.approx(reference.loss_sum / NUM_VAL, rel=1e-5)


def _evaluate_on_devices(data_dir: str, variables_path: str) -> None:
  """Runs in a subprocess with NUM_DEVICES devices; prints the results as JSON.

  One line: {"<batch_size>/<process_count>": [correct, summed loss, count]}.
  """
  assert jax.device_count() == NUM_DEVICES, jax.devices()
  config = _config(data_dir)
  _, state = _model_and_state(config)
  with open(variables_path, 'rb') as f:
    variables = flax.serialization.from_bytes(_variables(state), f.read())
  replicated, _ = _shardings()
  state = jax.device_put(state.replace(**variables), replicated)
  eval_step = _compiled_eval_step(config)
  results = {
      f'{batch_size}/{process_count}': _evaluate_sharded(
          config, eval_step, state, batch_size, process_count)
      for batch_size in DEVICE_BATCH_SIZES for process_count in DEVICE_PROCESS_COUNTS}
  print(json.dumps(results))


@pytest.fixture(scope='module', autouse=True)
def on_devices(request, reference, data_dir,
               tmp_path_factory) -> Iterator[tuple[subprocess.Popen, pathlib.Path] | None]:
  """(the subprocess that evaluates on NUM_DEVICES devices, its folder).

  Started before the module's first test, so that its imports and compilation
  (about 15 s) overlap the single-device tests. Its output goes to files in
  the folder: a pipe nobody reads until the end could fill up and stall it.
  None, and nothing started, when its test does not run (the fast tier).
  """
  if not any(item.name == 'test_evaluate_on_several_devices' for item in request.session.items):
    yield None
    return
  folder = tmp_path_factory.mktemp('devices')
  variables_path = folder / 'variables.msgpack'
  variables_path.write_bytes(flax.serialization.to_bytes(_variables(reference.state)))
  code = ('from tests import test_exact_eval as t; '
          f't._evaluate_on_devices({data_dir!r}, {str(variables_path)!r})')
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'TF_CPP_MIN_LOG_LEVEL': '3',
         # Keeps the test suite's flags (conftest.py) and adds the devices.
         'XLA_FLAGS': ' '.join(filter(None, [
             os.environ.get('XLA_FLAGS'),
             f'--xla_force_host_platform_device_count={NUM_DEVICES}']))}
  with open(folder / 'stdout', 'w') as stdout, open(folder / 'stderr', 'w') as stderr:
    process = subprocess.Popen([sys.executable, '-c', code], cwd=REPO_ROOT, env=env,
                               stdout=stdout, stderr=stderr, text=True)
  yield process, folder
  if process.poll() is None:
    process.kill()
  process.wait()


@pytest.mark.slow  # A subprocess with 8 devices compiles and evaluates (about 40 s).
def test_evaluate_on_several_devices(reference, on_devices):
  process, folder = on_devices
  returncode = process.wait(timeout=240)
  assert returncode == 0, (folder / 'stderr').read_text()[-5000:]
  results = json.loads((folder / 'stdout').read_text().strip().splitlines()[-1])
  assert sorted(results) == sorted(f'{b}/{p}' for b in DEVICE_BATCH_SIZES
                                   for p in DEVICE_PROCESS_COUNTS)
  for key, (correct, loss_sum, count) in results.items():
    assert count == NUM_VAL, key
    assert correct == pytest.approx(reference.correct, abs=1e-9), key
    assert loss_sum / count == pytest.approx(reference.loss_sum / NUM_VAL, rel=1e-5), key
