"""Throughput of the training input pipeline alone, in images per second.

  python -m train.bench.input_throughput --dataset=embedded_shapes --num_threads=1,2
  # ImageNet-like JPEGs: write and prepare fake archives first (see
  # input_pipeline/fake_imagenet.py), then
  python -m train.bench.input_throughput --dataset=imagenet2012 \\
      --data_dir=/tmp/fake_imagenet/tfds --num_threads=1,2
  python -m train.bench.input_throughput --mode=decode_only --dataset=imagenet2012 \\
      --data_dir=/tmp/fake_imagenet/tfds

`--mode=pipeline` iterates the numpy batches of create_train_dataset (the
seed's order of example ids, their records read by index, fused decode-and-crop,
flip, batch, prefetch) with tf.data's private
pool at `num_threads` threads. `--mode=decode_only` is the reference point: the
same random-resized crop (JPEG shape, crop window, fused decode_and_crop_jpeg,
resize) over the same JPEGs held in memory, in a loop on one core (TensorFlow's
op pools set to one thread), without tf.data.

Each measurement runs `warmup_batches` first (letting tf.data's autotuner
settle), then times `repetitions` windows of
`batches` batches each. It prints the median images/s with the lowest and
highest window, the median per thread (the "per core" figure), and images per
CPU-second: images over the process's CPU time, all threads counted, the Python
loop's included. The base config is the dataset's: configs/default.py (MLPerf
ImageNet preprocessing) for imagenet2012, configs/embedded_lars.py for the
embedded shapes.
"""

import argparse
import dataclasses
import functools
import os
import statistics
import sys
import time
from typing import Callable

# Keep TensorFlow's C++ log lines out of the report (as main.py does).
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

# pylint: disable=g-import-not-at-top,wrong-import-position
import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from choices import check_choice
from configs import default
from configs import embedded_lars
from input_pipeline import datasets
from input_pipeline import info
from input_pipeline import pipeline
from input_pipeline import preprocessing
from train.bench import arguments

# pylint: enable=g-import-not-at-top,wrong-import-position

PIPELINE, DECODE_ONLY = 'pipeline', 'decode_only'
# Each dataset's input settings (crop ranges, resize, eval crop) come from
# the config that trains on it.
_BASE_CONFIGS: dict[str, Callable[[], ml_collections.ConfigDict]] = {
    info.IMAGENET2012: default.get_config,
    info.EMBEDDED_SHAPES: embedded_lars.get_config,
    info.EMBEDDED_SHAPES_TINY: embedded_lars.get_config,
}


@dataclasses.dataclass(frozen=True)
class Report:
  """One measurement: a mode, a dataset and a thread count."""
  mode: str
  dataset: str
  image_size: int
  batch_size: int
  num_threads: int
  warmup_batches: int
  batches: int  # Per repetition.
  images_per_second: tuple[float, ...]  # One per repetition.
  cpu_seconds: float  # Process CPU time over all repetitions.
  wall_seconds: float  # Wall time over all repetitions.
  load_average: float  # 1-minute load average before the warm-up.

  @property
  def images(self) -> int:
    """Images in each timed window."""
    return self.batches * self.batch_size

  @property
  def median(self) -> float:
    return statistics.median(self.images_per_second)

  @property
  def per_thread(self) -> float:
    return self.median / self.num_threads

  @property
  def per_cpu_second(self) -> float:
    return self.images * len(self.images_per_second) / self.cpu_seconds

  @property
  def cores_busy(self) -> float:
    return self.cpu_seconds / self.wall_seconds


def base_config(dataset: str, data_dir: str,
                image_size: int | None = None) -> ml_collections.ConfigDict:
  """The config whose input settings the benchmark uses for `dataset`."""
  check_choice('dataset', dataset, sorted(_BASE_CONFIGS), show=str, label='valid datasets')
  config = _BASE_CONFIGS[dataset]()
  config.dataset = dataset
  config.data_dir = data_dir
  if image_size is not None:
    config.image_size = image_size
  return config


def _time_windows(step: Callable[[], None], *, warmup_batches: int,
                  batches: int, repetitions: int,
                  ) -> tuple[list[float], float, float]:
  """Seconds of each window of `batches` steps, then CPU and wall seconds."""
  for _ in range(warmup_batches):
    step()
  seconds = []
  cpu_start, wall_start = time.process_time(), time.perf_counter()
  for _ in range(repetitions):
    start = time.perf_counter()
    for _ in range(batches):
      step()
    seconds.append(time.perf_counter() - start)
  return (seconds, time.process_time() - cpu_start,
          time.perf_counter() - wall_start)


def _measure(mode: str, config: ml_collections.ConfigDict,
             step: Callable[[], None], *, batch_size: int, num_threads: int,
             warmup_batches: int, batches: int, repetitions: int) -> Report:
  load_average = os.getloadavg()[0]
  seconds, cpu, wall = _time_windows(
      step, warmup_batches=warmup_batches, batches=batches,
      repetitions=repetitions)
  return Report(
      mode=mode, dataset=config.dataset, image_size=config.image_size,
      batch_size=batch_size, num_threads=num_threads,
      warmup_batches=warmup_batches, batches=batches,
      images_per_second=tuple(batches * batch_size / s for s in seconds),
      cpu_seconds=cpu, wall_seconds=wall, load_average=load_average)


def measure_pipeline(config: ml_collections.ConfigDict, *, batch_size: int,
                     num_threads: int, warmup_batches: int, batches: int,
                     repetitions: int, deterministic: bool | None = None,
                     ) -> Report:
  """Times create_train_dataset's numpy batches on `num_threads` threads.

  `deterministic` defaults to config.input.deterministic, as in training.
  """
  if deterministic is None:
    deterministic = config.input.deterministic
  iterator = pipeline.create_train_dataset(
      config, pipeline.Reading(batch_size, num_threads=num_threads),
      deterministic=deterministic).as_numpy_iterator()
  return _measure(
      PIPELINE, config, lambda: next(iterator), batch_size=batch_size,
      num_threads=num_threads, warmup_batches=warmup_batches, batches=batches,
      repetitions=repetitions)


def load_jpegs(config: ml_collections.ConfigDict, num_images: int,
               ) -> list[bytes]:
  """The first `num_images` encoded train images of config.dataset."""
  builder = datasets.ensure_prepared(config.dataset, config.data_dir)
  source = builder.as_data_source('train', decoders={'image': tfds.decode.SkipDecoding()})
  return [source[i]['image'] for i in range(min(num_images, len(source)))]


def _decode_batch_fn(config: ml_collections.ConfigDict,
                     ) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
  """A tf.function: (JPEG strings [n], step) -> random crops uint8 [n,S,S,3]."""
  size = config.image_size
  crop = functools.partial(
      preprocessing.decode_and_random_crop,
      image_size=size,
      area_range=tuple(config.input.crop_area_range),
      aspect_ratio_range=tuple(config.input.crop_aspect_ratio_range),
      min_object_covered=config.input.crop_min_object_covered,
      max_attempts=config.input.crop_max_attempts,
      resize_method=config.input.resize_method)

  @tf.function
  def decode_batch(jpegs: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
    count = tf.size(jpegs, out_type=tf.int64)
    seeds = tf.stack([tf.fill([count], step), tf.range(count)], axis=1)
    # One image after another: the loop of the reference, without Python's
    # per-op overhead.
    return tf.map_fn(
        lambda args: crop({'image': args[0]}, args[1])['image'],
        (jpegs, seeds), parallel_iterations=1,
        fn_output_signature=tf.TensorSpec([size, size, 3], tf.uint8))

  return decode_batch


def measure_decode_only(config: ml_collections.ConfigDict, *, batch_size: int,
                        num_images: int, warmup_batches: int, batches: int,
                        repetitions: int) -> Report:
  """Times the bare fused decode-and-crop and resize over in-memory JPEGs.

  Runs on as many threads as TensorFlow's op pools allow: call
  limit_tensorflow_to_one_thread() first, before TensorFlow starts, for the
  one-core reference (main does).
  """
  jpegs = load_jpegs(config, num_images)
  # Whole batches, cycling through the images when there are fewer.
  count = max(batch_size, len(jpegs) - len(jpegs) % batch_size)
  pool = [jpegs[i % len(jpegs)] for i in range(count)]
  chunks = [tf.constant(pool[i:i + batch_size])
            for i in range(0, count, batch_size)]
  decode_batch = _decode_batch_fn(config)
  steps = iter(range(sys.maxsize))

  def step() -> None:
    i = next(steps)
    images = decode_batch(chunks[i % len(chunks)], tf.constant(i, tf.int64))
    np.asarray(images)

  return _measure(
      DECODE_ONLY, config, step, batch_size=batch_size, num_threads=1,
      warmup_batches=warmup_batches, batches=batches, repetitions=repetitions)


def limit_tensorflow_to_one_thread() -> None:
  """Sets TensorFlow's intra- and inter-op pools to one thread each.

  Must run before TensorFlow executes its first op; raises RuntimeError after.
  """
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)


def format_report(report: Report) -> str:
  """One line: what was measured and its images/s."""
  low, high = min(report.images_per_second), max(report.images_per_second)
  return (
      f'{report.mode:<11} {report.dataset:<15} {report.image_size:>3} px  '
      f'batch {report.batch_size}  threads {report.num_threads}: '
      f'{report.median:,.0f} images/s median ({low:,.0f}-{high:,.0f} over '
      f'{len(report.images_per_second)} x {report.batches} batches), '
      f'{report.per_thread:,.0f} per thread, {report.per_cpu_second:,.0f} per '
      f'CPU-second ({report.cores_busy:.2f} cores busy); load '
      f'{report.load_average:.2f} before')


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--mode', choices=(PIPELINE, DECODE_ONLY),
                      default=PIPELINE)
  parser.add_argument('--dataset', default='embedded_shapes',
                      help='embedded_shapes, embedded_shapes/tiny or '
                      'imagenet2012.')
  parser.add_argument('--data_dir', default='~/tensorflow_datasets')
  parser.add_argument('--image_size', type=int, default=None,
                      help="default: the dataset's config (32 embedded, 224 "
                      'ImageNet).')
  parser.add_argument('--batch_size', type=int, default=256)
  parser.add_argument('--num_threads', type=arguments.positive_ints, default=[1, 2],
                      help='comma-separated tf.data pool sizes (pipeline '
                      'mode); decode_only always uses one.')
  parser.add_argument('--deterministic', choices=('true', 'false'),
                      default=None,
                      help='pipeline mode; default: the config (as training).')
  parser.add_argument('--warmup_batches', type=int, default=10)
  parser.add_argument('--batches', type=int, default=20,
                      help='batches per timed repetition.')
  parser.add_argument('--repetitions', type=int, default=5)
  parser.add_argument('--decode_images', type=int, default=1024,
                      help='decode_only: JPEGs held in memory and cycled.')
  return parser


def main(argv: list[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  if args.mode == DECODE_ONLY:
    limit_tensorflow_to_one_thread()
  config = base_config(args.dataset, args.data_dir, args.image_size)
  windows = dict(warmup_batches=args.warmup_batches, batches=args.batches,
                 repetitions=args.repetitions)
  if args.mode == DECODE_ONLY:
    print(format_report(measure_decode_only(
        config, batch_size=args.batch_size, num_images=args.decode_images,
        **windows)), flush=True)
    return 0
  deterministic = (None if args.deterministic is None
                   else args.deterministic == 'true')
  for threads in args.num_threads:
    print(format_report(measure_pipeline(
        config, batch_size=args.batch_size, num_threads=threads,
        deterministic=deterministic, **windows)), flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
