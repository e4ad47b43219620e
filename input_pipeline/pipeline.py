"""tf.data pipelines that feed the trainer numpy batches of uint8 images.

Both read the dataset's ArrayRecord files by example id (random access), so a
process reads only the examples it uses.

Train: an infinite stream whose global batch t is fixed by `config.seed` and t
alone (input_pipeline/order.py: a permutation of the train split per epoch);
each process takes its contiguous slice of every global batch, so the run is
the same on any number of processes and devices. Random-resized crop and flip,
keyed by (seed, example id, epoch), batched, prefetched. A resumed run starts
at its step at once.
Eval: each process's contiguous share of the validation split once, centre
crop, cached in memory after preprocessing when it fits
(`config.input.cache_eval`), padded to whole batches with a 'mask'.

TensorFlow is kept off the GPUs.
"""

import dataclasses
import functools
import itertools
import math
import os
from typing import Callable, Iterable, Iterator

import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging
from array_record.python import array_record_data_source as ards
from tensorflow_datasets.core import file_adapters

from choices import check_choice
from input_pipeline import datasets
from input_pipeline import info
from input_pipeline import order
from input_pipeline import preprocessing

Batch = dict[str, np.ndarray]
Example = preprocessing.Example

# Values of config.input.cache_eval, defined TensorFlow-free in info.py.
CACHE_EVAL_MODES = info.CACHE_EVAL_MODES
# Eval records read per batch of random-access reads.
_EVAL_READ_BATCH = 256


@dataclasses.dataclass(frozen=True)
class Reading:
  """How one process reads a split: its batch size (per process), its place
  among the processes, and the size of tf.data's private thread pool (None:
  every core)."""
  batch_size: int
  process_index: int = 0
  process_count: int = 1
  num_threads: int | None = None


def _options(num_threads: int | None) -> tf.data.Options:
  options = tf.data.Options()
  # A private pool sized to the host, and one thread per op, so that tf.data
  # neither oversubscribes the cores nor competes with JAX's own thread pool.
  options.threading.private_threadpool_size = num_threads or os.cpu_count() or 1
  options.threading.max_intra_op_parallelism = 1
  # Every op keeps its order unless it says otherwise (only the train decoding
  # may, when asked): the cost is some head-of-line blocking, small next to the
  # benefit of reproducible runs.
  options.deterministic = True
  return options


def _record_source(builder: tfds.core.DatasetBuilder, split: str,
                   dataset: str) -> ards.ArrayRecordDataSource:
  """Random access by example id to the serialized records of `split`.

  The ids are the records' positions in the split as tfds wrote it (an order
  fixed by the build). Reading an example costs the same whatever its id, so a
  process reads only the records it trains on, and a resumed run reads nothing
  it does not train on.
  """
  formats = builder.info.available_file_formats()
  if file_adapters.FileFormat.ARRAY_RECORD not in formats:
    raise datasets.DataError(
        f'{dataset} in {builder.data_path} is stored as '
        f'{", ".join(sorted(f.value for f in formats)) or "nothing readable"}; the input '
        'reads records by index, from array_record: '
        f'{datasets.remedy(dataset, os.fspath(builder.data_path))}')
  if builder.info.file_format != file_adapters.FileFormat.ARRAY_RECORD:
    # Converted: both formats are there, and tfds reads the first by default.
    builder.info.set_file_format(file_adapters.FileFormat.ARRAY_RECORD, override=True,
                                 override_if_initialized=True)
  return ards.ArrayRecordDataSource(builder.info.splits[split].file_instructions)


def _parse_fn(builder: tfds.core.DatasetBuilder) -> Callable[[tf.Tensor], Example]:
  features = builder.info.features

  def parse(record: tf.Tensor) -> Example:
    # Keep the JPEG bytes so that the crop is fused into the decoding.
    example = features.deserialize_example(
        record, decoders={'image': tfds.decode.SkipDecoding()})
    return _image_and_label(example)
  return parse


class _ReadErrors:
  """A read error (a damaged record file), raised where the batches are consumed.

  Raised inside tf.data's generator it would come back as an op error that
  carries, and logs, a Python traceback. Instead the generator stops, and the
  consumer raises a DataLossError, which datasets.checked_reads turns into its
  one line.
  """

  def __init__(self):
    self.error: Exception | None = None

  def checked(self, iterable: Iterable[Batch]) -> Iterator[Batch]:
    yield from iterable
    if self.error is not None:
      raise tf.errors.DataLossError(None, None,
                                    f'{type(self.error).__name__}: {self.error}')


class _CheckedIterable:
  """A re-iterable whose every pass ends with errors.checked."""

  def __init__(self, iterable: Iterable[Batch], errors: _ReadErrors):
    self._iterable, self._errors = iterable, errors

  def __iter__(self) -> Iterator[Batch]:
    return self._errors.checked(self._iterable)


def _read_batches(source: ards.ArrayRecordDataSource,
                  ids: Iterator[tuple[np.ndarray, np.ndarray]], errors: _ReadErrors,
                  ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
  # The reads of one batch run on array_record's threads, one per file touched.
  for batch_ids, epochs in ids:
    try:
      records = source.__getitems__(batch_ids.tolist())
    except Exception as e:  # pylint: disable=broad-except
      errors.error = e
      return
    yield batch_ids, epochs, np.array(records, dtype=object)


def _records_dataset(source: ards.ArrayRecordDataSource, make_ids: Callable[[], Iterator],
                     batch_size: int | None) -> tuple[tf.data.Dataset, _ReadErrors]:
  """(id, epoch, record) elements of the batches of ids that `make_ids` gives."""
  errors = _ReadErrors()
  spec = tf.TensorSpec([batch_size], tf.int64)
  ds = tf.data.Dataset.from_generator(
      lambda: _read_batches(source, make_ids(), errors),
      output_signature=(spec, spec, tf.TensorSpec([batch_size], tf.string)))
  # Reading the next batches overlaps the decoding of this one.
  ds = ds.prefetch(2)
  return ds.unbatch(), errors


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


def create_train_dataset(config: ml_collections.ConfigDict, reading: Reading, *,
                         deterministic: bool = True, start_batch: int = 0) -> tf.data.Dataset:
  """The infinite training stream of this process; see _train_dataset.

  A damaged record file ends this stream early; create_train_iterator raises.
  """
  return _train_dataset(config, reading, deterministic, start_batch)[0]


def _train_dataset(config: ml_collections.ConfigDict, reading: Reading, deterministic: bool,
                   start_batch: int) -> tuple[tf.data.Dataset, _ReadErrors]:
  """The infinite training stream of this process, as a tf.data.Dataset.

  Yields {'image': uint8 (batch_size, S, S, 3), 'label': int32 (batch_size,)},
  S = config.image_size: this process's contiguous slice of each global batch
  of batch_size * process_count examples, in the order input_pipeline/order.py
  fixes from config.seed alone, so the global batches are the same on any
  number of processes. batch_size is `reading.batch_size`, the per-process
  batch size. `deterministic=False` (the loop passes `config.input.deterministic`) lets the
  decoding finish out of order: the stream holds the same augmented images as
  with True, each moved by no more places than there are decodes in flight,
  differently in every run. `start_batch` > 0 starts the stream at that global
  batch, as a resumed run needs, in constant time: nothing before it is read.
  """
  datasets.hide_gpus_from_tensorflow()
  builder = datasets.ensure_prepared(config.dataset, config.data_dir)
  source = _record_source(builder, 'train', config.dataset)
  train_order = order.TrainOrder(config.seed, len(source),
                                 reading.batch_size * reading.process_count)
  index, count = reading.process_index, reading.process_count

  def batches():
    for step in itertools.count(start_batch):
      ids, epochs = train_order.batch(step)
      yield order.process_slice(ids, index, count), order.process_slice(epochs, index, count)

  ds, errors = _records_dataset(source, batches, reading.batch_size)
  parse = _parse_fn(builder)
  preprocess = functools.partial(_train_preprocess, config)
  augment_seed = order.augment_seed(config.seed)

  def parse_and_augment(example_id, epoch, record):
    # Each example's augmentation is keyed by (seed, example, epoch): the same
    # on any number of processes, whatever the threading, new every epoch.
    seed = tf.random.experimental.stateless_fold_in(
        tf.stack([tf.constant(augment_seed, tf.int64), example_id]), epoch)
    return preprocess(parse(record), seed)

  # The one op that may finish out of order (deterministic=False): a slow
  # decode no longer holds up the batch, and each position keeps its example
  # and augmentation, since everything upstream stays in order.
  ds = ds.map(parse_and_augment, num_parallel_calls=tf.data.AUTOTUNE,
              deterministic=deterministic)
  ds = ds.batch(reading.batch_size, drop_remainder=True)
  ds = ds.prefetch(tf.data.AUTOTUNE)
  return ds.with_options(_options(reading.num_threads)), errors


def create_train_iterator(config: ml_collections.ConfigDict, reading: Reading, *,
                          deterministic: bool = True, start_batch: int = 0) -> Iterator[Batch]:
  """Infinite iterator of numpy training batches; see _train_dataset.

  A damaged record file raises tf.errors.DataLossError.
  """
  ds, errors = _train_dataset(config, reading, deterministic, start_batch)
  return errors.checked(ds.as_numpy_iterator())


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
  check_choice('cache_eval mode', mode, CACHE_EVAL_MODES, show=str)
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


def create_eval_dataset(config: ml_collections.ConfigDict, reading: Reading, *,
                        cache: bool | None = None) -> Iterable[Batch]:
  """A re-iterable pass over this process's shard of the eval split.

  Build it once and iterate it once per evaluation: each `for batch in ...`
  starts a new pass. With the cache, the first pass decodes and caches the
  preprocessed images in memory (S*S*3 bytes per example: 3 KB at 32 px, 150 KB
  at 224 px), later passes read the cache; without it, every pass re-reads and
  re-decodes. `cache=None` decides as `config.input.cache_eval` says (and logs
  the decision); True or False overrides it.

  Every batch holds 'image' uint8 (reading.batch_size, S, S, 3), 'label' int32 and
  'mask' bool (its batch size,): True for real examples, False for the zero padding
  that fills the last batch. Every example of the split appears exactly once
  over the processes. All processes yield the same number of batches, so a
  multi-host evaluation step never waits on a process that ran out.
  """
  datasets.hide_gpus_from_tensorflow()
  builder = datasets.ensure_prepared(config.dataset, config.data_dir)
  eval_split = info.get_dataset_info(config.dataset).eval_split
  source = _record_source(builder, eval_split, config.dataset)
  ids = order.eval_range(len(source), reading.process_index, reading.process_count)
  num_local = len(ids)
  batch_size = reading.batch_size
  num_batches = math.ceil(math.ceil(len(source) / reading.process_count) / batch_size)
  if cache is None:
    cache = _decide_eval_cache(config, num_local)

  def batches():
    for start in range(ids.start, ids.stop, _EVAL_READ_BATCH):
      chunk = np.arange(start, min(start + _EVAL_READ_BATCH, ids.stop), dtype=np.int64)
      yield chunk, np.zeros_like(chunk)

  parse = _parse_fn(builder)
  ds, errors = _records_dataset(source, batches, None)
  ds = ds.map(lambda example_id, epoch, record: parse(record),
              num_parallel_calls=tf.data.AUTOTUNE)
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
  ds = ds.with_options(_options(reading.num_threads))
  return _CheckedIterable(tfds.as_numpy(ds), errors)


def create_eval_iterator(config: ml_collections.ConfigDict,
                         reading: Reading) -> Iterator[Batch]:
  """One pass over the eval shard, uncached; see create_eval_dataset.

  For repeated evaluations build create_eval_dataset once and iterate it each
  time instead: this function decodes the images anew on every call.
  """
  return iter(create_eval_dataset(config, reading, cache=False))
