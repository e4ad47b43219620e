"""The pure functions of training: state, loss, train step and eval step.

Nothing here touches the host: `train_step` and `eval_step` are jitted once by the
loop (`train/run/loop.py`) and return device arrays that are fetched only at log and
eval steps.
"""

import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax.training import train_state

import optim

Batch = dict[str, jnp.ndarray]
Metrics = dict[str, jnp.ndarray]


class TrainState(train_state.TrainState):
  """Flax's TrainState plus the BatchNorm moving averages."""
  batch_stats: Any


def create_train_state(model: nn.Module, tx: optax.GradientTransformation,
                       rng: jax.Array, image_size: int) -> TrainState:
  """Initialises parameters, BN statistics and optimizer state (pure; jit it)."""
  dummy = jnp.zeros((1, image_size, image_size, 3), jnp.float32)
  variables = model.init(rng, dummy, train=False)
  return TrainState.create(apply_fn=model.apply, params=variables['params'],
                           batch_stats=variables['batch_stats'], tx=tx)


def normalize_images(images: jnp.ndarray, mean_rgb: tuple[float, ...],
                     stddev_rgb: tuple[float, ...], dtype: Any) -> jnp.ndarray:
  """uint8 images from the input pipeline to normalised `dtype` on the device."""
  mean = jnp.asarray(mean_rgb, jnp.float32)
  stddev = jnp.asarray(stddev_rgb, jnp.float32)
  return ((images.astype(jnp.float32) - mean) / stddev).astype(dtype)


def cross_entropy_loss(logits: jnp.ndarray, labels: jnp.ndarray,
                       label_smoothing: float) -> jnp.ndarray:
  """Per-example cross entropy against one-hot labels smoothed by tau.

  The smoothed target is (1 - tau) * one_hot + tau / num_classes, as in the MLPerf
  reference and Szegedy et al.
  """
  num_classes = logits.shape[-1]
  targets = optax.smooth_labels(jax.nn.one_hot(labels, num_classes), label_smoothing)
  return optax.softmax_cross_entropy(logits.astype(jnp.float32), targets)


def training_loss(params: Any, batch_stats: Any, apply_fn: Callable, images: jnp.ndarray,
                  labels: jnp.ndarray, label_smoothing: float,
                  ) -> tuple[jnp.ndarray, tuple[jnp.ndarray, Any]]:
  """The loss the train step minimises: the mean smoothed cross entropy of the model
  in training mode (BatchNorm on the batch's statistics).

  Differentiate it in `params`; it returns, beside the loss, the logits and the
  updated BN moving averages. The train step and the throughput benchmark's bare
  forward and backward pass (train/bench/throughput.py) both use it.
  """
  logits, updates = apply_fn({'params': params, 'batch_stats': batch_stats}, images,
                             train=True, mutable=['batch_stats'])
  loss = jnp.mean(cross_entropy_loss(logits, labels, label_smoothing))
  return loss, (logits, updates['batch_stats'])


def train_step(state: TrainState, batch: Batch, *, mean_rgb: tuple[float, ...],
               stddev_rgb: tuple[float, ...], dtype: Any, label_smoothing: float,
               learning_rate_fn: Callable[[jnp.ndarray], jnp.ndarray],
               ) -> tuple[TrainState, Metrics]:
  """One optimizer update on `batch`; returns the new state and batch metrics."""
  images = normalize_images(batch['image'], mean_rgb, stddev_rgb, dtype)
  grad_fn = jax.value_and_grad(training_loss, has_aux=True)
  (loss, (logits, batch_stats)), grads = grad_fn(
      state.params, state.batch_stats, state.apply_fn, images, batch['label'],
      label_smoothing)
  metrics = {
      'loss': loss,
      'accuracy': jnp.mean(jnp.argmax(logits, -1) == batch['label']),
      'learning_rate': learning_rate_fn(state.step),
  }
  new_state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  return new_state, metrics


def eval_step(state: TrainState, batch: Batch, *, mean_rgb: tuple[float, ...],
              stddev_rgb: tuple[float, ...], dtype: Any,
              label_smoothing: float) -> Metrics:
  """Sums of correct predictions, loss and real examples; padding is masked out.

  The model is evaluated at the optimizer's evaluation point: the parameters
  themselves, or for a Schedule-Free group its average x (optim/schedule_free.py).
  """
  images = normalize_images(batch['image'], mean_rgb, stddev_rgb, dtype)
  params = optim.evaluation_params(state.opt_state, state.params)
  logits = state.apply_fn({'params': params, 'batch_stats': state.batch_stats},
                          images, train=False)
  mask = batch['mask'].astype(jnp.float32)
  loss = cross_entropy_loss(logits, batch['label'], label_smoothing)
  correct = (jnp.argmax(logits, -1) == batch['label']).astype(jnp.float32)
  return {
      'correct': jnp.sum(correct * mask),
      'loss_sum': jnp.sum(loss * mask),
      'count': jnp.sum(mask),
  }


def bind_step_constants(config: ml_collections.ConfigDict,
                        learning_rate_fn: Callable[[jnp.ndarray], jnp.ndarray],
                        ) -> tuple[Callable, Callable]:
  """`train_step` and `eval_step` with the config's constants bound."""
  constants = dict(mean_rgb=tuple(config.input.mean_rgb),
                   stddev_rgb=tuple(config.input.stddev_rgb),
                   dtype=jnp.dtype(config.model.dtype),
                   label_smoothing=config.label_smoothing)
  return (functools.partial(train_step, learning_rate_fn=learning_rate_fn, **constants),
          functools.partial(eval_step, **constants))
