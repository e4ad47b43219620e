"""tfds's imagenet2012 builder, leaving out the images the input pipeline cannot decode.

ImageNet's own tars hold none (tfds already repairs their CMYK JPEGs and their
PNG), but a damaged copy can: a file cut short, or bytes that are no JPEG at
all. tfds stores the image bytes as they come, so such a file would surface
only when tf.data decodes it, deep into a training run, as an error that names
no file. This builder decodes every image once while preparing, with the
pipeline's own op (tf.image.decode_and_crop_jpeg over the whole image), leaves
out those that fail and lists them in `skipped`; prepare_imagenet prints them
and writes them next to the data (info.SKIPPED_IMAGES_FILE). The prepared dataset is the
one tfds's registered builder reads: same name, version and features.

A decode costs about 1.5 ms of CPU for an ImageNet-sized image, as much as tfds
spends on the rest of the image, so the decodes run on a thread pool (the ops
release the GIL), a bounded window ahead of tfds's writer.
"""

import collections
import concurrent.futures
import os
import re
from typing import Any, Iterator

import tensorflow as tf
from tensorflow_datasets.datasets.imagenet2012 import imagenet2012_dataset_builder

from input_pipeline import info

# Images read ahead of the writer per thread: enough to keep the threads busy,
# few enough (~110 KB each) to stay small next to tfds's own buffers.
_AHEAD_PER_THREAD = 4


def decode_error(data: bytes) -> str | None:
  """Why the pipeline's JPEG decoder rejects `data`, in one line; None if it reads it."""
  try:
    height, width = tf.unstack(tf.image.extract_jpeg_shape(data)[:2])
    # Over the whole image: a crop would stop reading at its last row, and miss
    # a file cut short after it.
    tf.image.decode_and_crop_jpeg(data, tf.stack([0, 0, height, width]), channels=3)
  except tf.errors.InvalidArgumentError as e:
    # Eager errors wrap the message in the op's names: keep the message.
    message = re.sub(r'\{\{[^}]*\}\}|\[Op:\w+\]', '', e.message)
    return ' '.join(message.split()) or 'not a readable JPEG'
  return None


def _split_name(validation_labels: Any, labels_exist: bool) -> str:
  """Which split tfds's _generate_examples is writing, from its arguments."""
  if not labels_exist:
    return 'test'
  return 'validation' if validation_labels else 'train'


def with_decode_errors(examples: Iterator[tuple[str, dict]], num_threads: int,
                       ) -> Iterator[tuple[str, dict, str | None]]:
  """(key, example with its image as bytes, decode_error of the image), in order."""
  window = collections.deque()
  with concurrent.futures.ThreadPoolExecutor(num_threads) as pool:
    for key, example in examples:
      # The image is a file object on the tar stream: read it before the next.
      image = example['image']
      data = image if isinstance(image, bytes) else image.read()
      window.append((key, {**example, 'image': data}, pool.submit(decode_error, data)))
      if len(window) > _AHEAD_PER_THREAD * num_threads:
        key, example, error = window.popleft()
        yield key, example, error.result()
    for key, example, error in window:
      yield key, example, error.result()


class CheckedImagenet2012(imagenet2012_dataset_builder.Builder, skip_registration=True):
  """imagenet2012 as tfds builds it, less the images that do not decode."""

  name = info.IMAGENET2012

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    # {'split', 'file_name', 'error'} for each image left out.
    self.skipped: list[dict[str, str]] = []

  def _generate_examples(self, archive, validation_labels=None, labels_exist=True):
    split = _split_name(validation_labels, labels_exist)
    examples = super()._generate_examples(archive, validation_labels, labels_exist)
    for key, example, error in with_decode_errors(examples, os.cpu_count() or 1):
      if error is None:
        yield key, example
      else:
        self.skipped.append(
            {'split': split, 'file_name': example['file_name'], 'error': error})
