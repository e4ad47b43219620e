"""MLPerf-style ImageNet preprocessing as small functions from example to example.

Each function takes an example dict (at least 'image') and returns a new dict with
'image' replaced and every other key passed through, so the pipeline composes
them in plain Python and each runs alike eagerly and inside `tf.data`.

The input 'image' is the raw JPEG string (read with tfds's SkipDecoding): the
crops are fused into the decode (`tf.io.decode_and_crop_jpeg`), which decodes only
the pixels inside the window; on ImageNet, where a random-resized crop keeps on
average about half of a ~400x350 photo, that is most of the decoding cost saved.

Images leave as uint8: normalisation by mean and standard deviation happens on
the device, which moves a quarter of the bytes of float32 from host to device.

Randomness is stateless: every random function takes a `seed` (a shape [2]
integer tensor) that the pipeline derives from the run seed and the example's
position in the stream, so a run is reproducible and independent of threading.
"""

from typing import Any

import tensorflow as tf

from choices import check_choice

Example = dict[str, Any]

_RESIZE_METHODS = {
    'bicubic': tf.image.ResizeMethod.BICUBIC,
    'bilinear': tf.image.ResizeMethod.BILINEAR,
}


def resize_to_uint8(image: tf.Tensor, image_size: int,
                    method: str) -> tf.Tensor:
  """Resizes to image_size x image_size and rounds back into uint8."""
  check_choice('resize_method', method, sorted(_RESIZE_METHODS), show=str)
  # Bicubic overshoots at edges: clip before the cast, which would wrap around.
  image = tf.image.resize(image, [image_size, image_size],
                          method=_RESIZE_METHODS[method])
  return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def sample_crop_window(
    image_shape: tf.Tensor, seed: tf.Tensor, *,
    area_range: tuple[float, float],
    aspect_ratio_range: tuple[float, float],
    min_object_covered: float,
    max_attempts: int) -> tf.Tensor:
  """Returns a random crop window [offset_y, offset_x, height, width] (int32).

  The window covers a fraction `area_range` of the image at a width/height ratio
  in `aspect_ratio_range` (Inception-style random-resized crop). The whole image
  counts as the object, as ImageNet's boxes are not used. When no window fits in
  `max_attempts` the op returns the whole image, the fallback of Google's MLPerf
  JAX pipeline (the TF reference and the Flax example centre-crop instead).
  """
  whole_image = tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, shape=[1, 1, 4])
  begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
      image_shape,
      bounding_boxes=whole_image,
      seed=seed,
      min_object_covered=min_object_covered,
      aspect_ratio_range=aspect_ratio_range,
      area_range=area_range,
      max_attempts=max_attempts,
      use_image_if_no_bounding_boxes=True)
  return tf.stack([begin[0], begin[1], size[0], size[1]])


def decode_and_random_crop(
    example: Example, seed: tf.Tensor, *,
    image_size: int,
    area_range: tuple[float, float],
    aspect_ratio_range: tuple[float, float],
    min_object_covered: float,
    max_attempts: int,
    resize_method: str) -> Example:
  """Decodes a random-resized crop of example['image'] (JPEG) to uint8 SxSx3."""
  jpeg = example['image']
  window = sample_crop_window(
      tf.image.extract_jpeg_shape(jpeg), seed,
      area_range=area_range, aspect_ratio_range=aspect_ratio_range,
      min_object_covered=min_object_covered, max_attempts=max_attempts)
  image = tf.io.decode_and_crop_jpeg(jpeg, window, channels=3)
  return {**example, 'image': resize_to_uint8(image, image_size, resize_method)}


def random_flip(example: Example, seed: tf.Tensor) -> Example:
  """Flips example['image'] left to right with probability 1/2."""
  image = tf.image.stateless_random_flip_left_right(example['image'], seed)
  return {**example, 'image': image}


def center_crop_window(image_shape: tf.Tensor, image_size: int,
                       crop_padding: int) -> tf.Tensor:
  """Returns the central square [offset_y, offset_x, side, side] (int32).

  The side is image_size / (image_size + crop_padding) of the shorter side: with
  the MLPerf values (224, 32) that is the usual 'resize to 256, crop 224'.
  """
  height, width = image_shape[0], image_shape[1]
  fraction = image_size / (image_size + crop_padding)
  side = tf.cast(
      fraction * tf.cast(tf.minimum(height, width), tf.float32), tf.int32)
  offset_y = (height - side + 1) // 2
  offset_x = (width - side + 1) // 2
  return tf.stack([offset_y, offset_x, side, side])


def decode_and_center_crop(example: Example, *, image_size: int,
                           crop_padding: int, resize_method: str) -> Example:
  """Decodes the central crop of the JPEG in example['image'] (uint8, SxSx3)."""
  jpeg = example['image']
  window = center_crop_window(
      tf.image.extract_jpeg_shape(jpeg), image_size, crop_padding)
  image = tf.io.decode_and_crop_jpeg(jpeg, window, channels=3)
  return {**example, 'image': resize_to_uint8(image, image_size, resize_method)}
