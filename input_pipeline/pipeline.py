"""tf.data pipelines that feed the trainer numpy batches of uint8 images.

Train: this process's shard of the train split, shuffled, repeated forever,
random-resized crop and flip, batched (dropping the remainder), prefetched.
Eval: this process's shard of the validation split once, centre crop, cached in
memory after preprocessing when it fits (`config.input.cache_eval`), padded to
whole batches with a 'mask'.

Every random choice derives from `config.seed` and the process index, so a run
is reproducible (with `deterministic=True`, the default) and another seed gives
another order and other augmentations. TensorFlow is kept off the GPUs.
"""

import functools
import math
import os
from typing import Iterable, Iterator

import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging

from input_pipeline import datasets
from input_pipeline import info
from input_pipeline import preprocessing

Batch = dict[str, np.ndarray]
Example = preprocessing.Example

# Values of config.input.cache_eval; train/run/validation.py lists the same.
CACHE_EVAL_MODES = ('auto', 'always', 'never')


def _options(num_threads: int | None) -> tf.data.Options:
  options = tf.data.Options()
  # A private pool sized to the host, and one thread per op, so that tf.data
  # neither oversubscribes the cores nor competes with JAX's own thread pool.
  options.threading.private_threadpool_size = num_threads or os.cpu_count() or 1
  options.threading.max_intra_op_parallelism = 1
  # Every op keeps its order unless it says otherwise (only the train decoding
  # may, when asked): the cost is some head-of-line blocking, small next to the
  # benefit of reproducible runs. Not the global switch for the train stream:
  # it would also reorder tfds's reads ahead of the shuffle, and with them
  # which example gets which augmentation.
  options.deterministic = True
  return options


def _seeds(seed: int, process_index: int, count: int) -> list[int]:
  # Independent streams for each purpose and each process; a SeedSequence so
  # that nearby run seeds (0, 1, 2, ...) do not give correlated streams.
  state = np.random.SeedSequence([seed, process_index]).generate_state(count)
  return [int(s) for s in state]


def _read_split(builder: tfds.core.DatasetBuilder, split, *, shuffle: bool,
                seed: int | None) -> tf.data.Dataset:
  read_config = tfds.ReadConfig(
      shuffle_seed=seed,
      # Eval caches after preprocessing; a cache of the raw bytes is wasted.
      try_autocache=False,
      # Parallel, interleaved reads of the record files. These are tfds 4.9's
      # defaults (for datasets not marked as ordered), stated here so that a
      # new default cannot slow the input down unnoticed: 16 files open at
      # once (ImageNet's train split has about a thousand), 16 records from
      # each in turn, and tf.data tunes how many files are read in parallel.
      # tfds keeps this interleave in order whenever a shuffle seed is given
      # (always, here): the 16 reads still overlap, and the shuffle buffer
      # downstream absorbs a slow file.
      interleave_cycle_length=16,
      interleave_block_length=16,
      num_parallel_calls_for_interleave_files=tf.data.AUTOTUNE)
  return builder.as_dataset(
      split=split, shuffle_files=shuffle, read_config=read_config,
      # Keep the JPEG bytes so that the crop is fused into the decoding.
      decoders={'image': tfds.decode.SkipDecoding()})


def _image_and_label(example: Example) -> Example:
  # Dropping 'file_name' early keeps it out of the shuffle buffer.
  return {'image': example['image'],
          'label': tf.cast(example['label'], tf.int32)}


def _train_preprocess(config: ml_collections.ConfigDict, example: Example,
                      seed: tf.Tensor) -> Example:
  crop_seed, flip_seed = tf.unstack(
      tf.random.experimental.stateless_split(seed, num=2))
  example = preprocessing.decode_and_random_crop(
      example, crop_seed,
      image_size=config.image_size,
      area_range=tuple(config.input.crop_area_range),
      aspect_ratio_range=tuple(config.input.crop_aspect_ratio_range),
      min_object_covered=config.input.crop_min_object_covered,
      max_attempts=config.input.crop_max_attempts,
      resize_method=config.input.resize_method)
  if config.input.random_flip:
    example = preprocessing.random_flip(example, flip_seed)
  return example


def create_train_dataset(
    config: ml_collections.ConfigDict, *, batch_size: int,
    process_index: int = 0, process_count: int = 1,
    num_threads: int | None = None, deterministic: bool = True, start_batch: int = 0,
) -> tf.data.Dataset:
  """The infinite training stream of this process, as a tf.data.Dataset.

  Yields {'image': uint8 (batch_size, S, S, 3), 'label': int32 (batch_size,)},
  S = config.image_size, from this process's 1/process_count of the train split.
  `batch_size` is the per-process batch size. `num_threads` sizes tf.data's
  private thread pool (default: all cores). `deterministic=False` (the loop
  passes `config.input.deterministic`) lets the decoding finish out of order:
  the stream holds the same augmented images as with True, each moved by no
  more places than there are decodes in flight, differently in every run.
  `start_batch` > 0 starts the stream at that batch, as a resumed run needs:
  its records are still read (through the shuffle), but not decoded.
  """
  datasets.hide_gpus_from_tensorflow()
  builder = datasets.ensure_prepared(config.dataset, config.data_dir)
  files_seed, shuffle_seed, augment_seed = _seeds(
      config.seed, process_index, 3)
  split = tfds.split_for_jax_process(
      'train', process_index=process_index, process_count=process_count)
  ds = _read_split(builder, split, shuffle=True, seed=files_seed)
  ds = ds.map(_image_and_label, num_parallel_calls=tf.data.AUTOTUNE)
  # Shuffle before repeat: each epoch sees every example once, in a new order.
  ds = ds.shuffle(config.input.shuffle_buffer_size, seed=shuffle_seed,
                  reshuffle_each_iteration=True)
  ds = ds.repeat()
  # The position in the stream names each example's augmentation, which keeps
  # it fixed whatever the threading, and different in every epoch.
  ds = ds.enumerate()
  # A resumed run skips the batches it trained on before it stopped: the same
  # records in the same order, read but neither decoded nor augmented.
  ds = ds.skip(start_batch * batch_size)
  preprocess = functools.partial(_train_preprocess, config)
  # The one op that may finish out of order (deterministic=False): a slow
  # decode no longer holds up the batch, and each position keeps its example
  # and augmentation, since everything upstream stays in order.
  ds = ds.map(
      lambda i, example: preprocess(example, tf.stack([augment_seed, i])),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
  ds = ds.batch(batch_size, drop_remainder=True)
  ds = ds.prefetch(tf.data.AUTOTUNE)
  return ds.with_options(_options(num_threads))


def create_train_iterator(
    config: ml_collections.ConfigDict, *, batch_size: int,
    process_index: int = 0, process_count: int = 1,
    num_threads: int | None = None, deterministic: bool = True, start_batch: int = 0,
) -> Iterator[Batch]:
  """Infinite iterator of numpy training batches; see create_train_dataset."""
  return create_train_dataset(
      config, batch_size=batch_size, process_index=process_index,
      process_count=process_count, num_threads=num_threads,
      deterministic=deterministic, start_batch=start_batch).as_numpy_iterator()


def _eval_preprocess(config: ml_collections.ConfigDict,
                     example: Example) -> Example:
  example = preprocessing.decode_and_center_crop(
      example, image_size=config.image_size,
      crop_padding=config.input.eval_crop_padding,
      resize_method=config.input.resize_method)
  return {**example, 'mask': tf.constant(True)}


def eval_cache_bytes(num_examples: int, image_size: int) -> int:
  """Memory that caching `num_examples` preprocessed eval images takes."""
  return num_examples * image_size * image_size * 3


def available_memory_bytes() -> int:
  """Physical memory free now (not counting what the page cache could give back)."""
  return os.sysconf('SC_AVPHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')


def should_cache_eval(mode: str, cache_bytes: int, available_bytes: int) -> bool:
  """Whether to cache the preprocessed eval images, for config.input.cache_eval.

  'always' and 'never' decide alone; 'auto' caches when the cache takes under
  half of `available_bytes`, leaving the other half to the training input and
  the rest of the host. Raises ValueError naming the valid modes.
  """
  if mode not in CACHE_EVAL_MODES:
    raise ValueError(f'unknown cache_eval mode {mode!r}; valid: '
                     f'{", ".join(CACHE_EVAL_MODES)}')
  if mode == 'auto':
    return cache_bytes < available_bytes / 2
  return mode == 'always'


def _decide_eval_cache(config: ml_collections.ConfigDict, num_examples: int) -> bool:
  mode = config.input.cache_eval
  cache_bytes = eval_cache_bytes(num_examples, config.image_size)
  available = available_memory_bytes()
  cache = should_cache_eval(mode, cache_bytes, available)
  logging.info('Eval cache (input.cache_eval=%r): %s %d preprocessed images, '
               '%.1f MB, with %.1f GB of memory free.', mode,
               'caching' if cache else 'not caching', num_examples,
               cache_bytes / 1e6, available / 1e9)
  return cache


def _padding(image_size: int, count: int) -> tf.data.Dataset:
  blank = {'image': tf.zeros([image_size, image_size, 3], tf.uint8),
           'label': tf.constant(0, tf.int32), 'mask': tf.constant(False)}
  return tf.data.Dataset.from_tensors(blank).repeat(count)


def create_eval_dataset(
    config: ml_collections.ConfigDict, *, batch_size: int,
    process_index: int = 0, process_count: int = 1,
    num_threads: int | None = None, cache: bool | None = None,
) -> Iterable[Batch]:
  """A re-iterable pass over this process's shard of the eval split.

  Build it once and iterate it once per evaluation: each `for batch in ...`
  starts a new pass. With the cache, the first pass decodes and caches the
  preprocessed images in memory (S*S*3 bytes per example: 3 KB at 32 px, 150 KB
  at 224 px), later passes read the cache; without it, every pass re-reads and
  re-decodes. `cache=None` decides as `config.input.cache_eval` says (and logs
  the decision); True or False overrides it.

  Every batch holds 'image' uint8 (batch_size, S, S, 3), 'label' int32 and
  'mask' bool (batch_size,): True for real examples, False for the zero padding
  that fills the last batch. Every example of the split appears exactly once
  over the processes. All processes yield the same number of batches, so a
  multi-host evaluation step never waits on a process that ran out.
  """
  datasets.hide_gpus_from_tensorflow()
  builder = datasets.ensure_prepared(config.dataset, config.data_dir)
  eval_split = info.get_dataset_info(config.dataset).eval_split
  split = tfds.split_for_jax_process(
      eval_split, process_index=process_index, process_count=process_count)
  num_local = builder.info.splits[split].num_examples
  num_largest_shard = math.ceil(
      builder.info.splits[eval_split].num_examples / process_count)
  num_batches = math.ceil(num_largest_shard / batch_size)
  if cache is None:
    cache = _decide_eval_cache(config, num_local)

  ds = _read_split(builder, split, shuffle=False, seed=None)
  ds = ds.map(_image_and_label, num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.map(functools.partial(_eval_preprocess, config),
              num_parallel_calls=tf.data.AUTOTUNE)
  if cache:
    ds = ds.cache()
  ds = ds.concatenate(
      _padding(config.image_size, num_batches * batch_size - num_local))
  # The padding makes the count a multiple of batch_size: dropping the
  # (empty) remainder only gives the batches a static shape.
  ds = ds.batch(batch_size, drop_remainder=True)
  ds = ds.prefetch(tf.data.AUTOTUNE)
  ds = ds.with_options(_options(num_threads))
  return tfds.as_numpy(ds)


def create_eval_iterator(
    config: ml_collections.ConfigDict, *, batch_size: int,
    process_index: int = 0, process_count: int = 1,
    num_threads: int | None = None,
) -> Iterator[Batch]:
  """One pass over the eval shard, uncached; see create_eval_dataset.

  For repeated evaluations build create_eval_dataset once and iterate it each
  time instead: this function decodes the images anew on every call.
  """
  return iter(create_eval_dataset(
      config, batch_size=batch_size, process_index=process_index,
      process_count=process_count, num_threads=num_threads, cache=False))
