"""Drawing the embedded shapes dataset's images: numpy and PIL only, no TensorFlow.

The tfds builder in `embedded_shapes.py` draws its examples in worker processes,
`python -m input_pipeline.shapes SPLIT START STOP`, which pickle them to their
standard output. Keeping the drawing here, free of TensorFlow, lets a worker start
in a fraction of a second. Plain subprocesses rather than multiprocessing: forking
a process that already runs JAX's threads can deadlock, and 'spawn' re-imports
the caller's main module, which hangs a script that has no __main__ guard.

Generation is deterministic: example `i` of split `s` is drawn from a generator
seeded with `(s, i)`, so every build writes the same bytes.
"""

import io
import math
import pickle
import signal
import sys
from typing import BinaryIO

import numpy as np
from PIL import Image
from PIL import ImageDraw

# Every shape is a list of (fill, polygon) with the polygon in unit coordinates
# (y points down, the shape fits in [-1, 1]^2 and is symmetric about x = 0). A fill
# of 0 cuts a hole, e.g. the inside of the ring.
Polygon = np.ndarray


def _ellipse(radius: float = 1.0, num_vertices: int = 48) -> Polygon:
  # A polygon rather than ImageDraw.ellipse so that all shapes share one code
  # path for rotation and scaling.
  t = np.linspace(0.0, 2 * np.pi, num_vertices, endpoint=False)
  return np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1)


def _star(num_points: int = 5, inner_radius: float = 0.42) -> Polygon:
  k = np.arange(2 * num_points)
  t = -np.pi / 2 + k * np.pi / num_points  # The first point looks up.
  r = np.where(k % 2 == 0, 1.0, inner_radius)
  return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def _heart() -> Polygon:
  t = np.linspace(0.0, 2 * np.pi, 64, endpoint=False)
  x = 16 * np.sin(t) ** 3
  y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
  p = np.stack([x, y], axis=1)
  p -= (p.max(axis=0) + p.min(axis=0)) / 2
  return p / np.abs(p).max()


def _poly(*xy: tuple[float, float]) -> Polygon:
  return np.array(xy, dtype=np.float64)


# Ten shapes chosen to stay apart after a +-30 degree rotation, an aspect-ratio
# distortion of 3:4 to 4:3 (the crop) and a downscale to 32 px: no pair is a
# rotation of another within that range (a plus and an X would be; a square and a
# diamond would be), and circle/hexagon-like pairs are avoided.
_SHAPES: dict[str, list[tuple[int, Polygon]]] = {
    'circle': [(1, _ellipse())],
    'square': [(1, _poly((-1, -1), (1, -1), (1, 1), (-1, 1)))],
    'triangle': [(1, _poly((0, -0.87), (1, 0.87), (-1, 0.87)))],
    'star': [(1, _star())],
    'cross': [(1, _poly(
        (-.3, -1), (.3, -1), (.3, -.3), (1, -.3), (1, .3), (.3, .3),
        (.3, 1), (-.3, 1), (-.3, .3), (-1, .3), (-1, -.3), (-.3, -.3)))],
    'ring': [(1, _ellipse()), (0, _ellipse(radius=0.55))],
    'heart': [(1, _heart())],
    'arrow': [(1, _poly(
        (0, -1), (.8, -.15), (.3, -.15), (.3, 1), (-.3, 1), (-.3, -.15),
        (-.8, -.15)))],
    'bar': [(1, _poly((-1, -.3), (1, -.3), (1, .3), (-1, .3)))],
    'hourglass': [(1, _poly(
        (-.8, -1), (.8, -1), (.12, 0), (.8, 1), (-.8, 1), (-.12, 0)))],
}
CLASS_NAMES: tuple[str, ...] = tuple(_SHAPES)

# Aspect ratios (width:height) as ImageNet's photos commonly have them.
_ASPECT_RATIOS = ((4, 3), (3, 4), (1, 1), (3, 2), (2, 3), (16, 9))
_MIN_SIDE, _MAX_SIDE = 64, 128
# Shapes are drawn at 3x and box-filtered down: anti-aliased edges, as a
# camera gives, for about 0.2 ms per image.
_SUPERSAMPLING = 3
_MIN_BRIGHTNESS_GAP = 60.0
# With the light noise below, quality 93 gives JPEGs of about 3.3 KB (0.38 bytes
# per pixel; ImageNet's are about 0.8): small enough to keep the input pipeline
# cheap, while leaving JPEG artefacts around the edges as in real photos.
_JPEG_QUALITY = 93
_SPLIT_SEEDS = {'train': 0, 'validation': 1}


def _luma(rgb: np.ndarray) -> np.ndarray:
  return rgb @ np.array([0.299, 0.587, 0.114], dtype=rgb.dtype)


def _image_size(rng: np.random.Generator) -> tuple[int, int]:
  """Returns (width, height): sides in [64, 128] at an ImageNet-like ratio."""
  aw, ah = _ASPECT_RATIOS[rng.integers(len(_ASPECT_RATIOS))]
  ratio = max(aw, ah) / min(aw, ah)
  long_side = int(rng.integers(math.ceil(_MIN_SIDE * ratio), _MAX_SIDE + 1))
  short_side = round(long_side / ratio)
  return (long_side, short_side) if aw >= ah else (short_side, long_side)


def _background(rng: np.random.Generator, width: int,
                height: int) -> np.ndarray:
  """A gradient between two near-neutral colours, crossed by 1-3 thin lines."""
  grey = rng.uniform(50, 205)
  start = grey + rng.uniform(-15, 15, 3)
  end = start + rng.uniform(-40, 40) + rng.uniform(-10, 10, 3)
  angle = rng.uniform(0, 2 * np.pi)
  proj = (np.arange(width) - width / 2)[None, :] * np.cos(angle) + (
      np.arange(height) - height / 2)[:, None] * np.sin(angle)
  t = ((proj - proj.min()) / max(np.ptp(proj), 1e-6))[..., None]
  t = t.astype(np.float32)  # float32 throughout: this runs once per pixel.
  gradient = start.astype(np.float32) * (1 - t) + end.astype(np.float32) * t
  image = Image.fromarray(np.clip(gradient, 0, 255).astype(np.uint8))
  draw = ImageDraw.Draw(image)
  for _ in range(rng.integers(1, 4)):
    xy = rng.uniform(0, 1, 4) * [width, height, width, height]
    colour = np.clip(rng.uniform(40, 215) + rng.uniform(-15, 15, 3), 0, 255)
    draw.line(list(xy), fill=tuple(colour.astype(int)),
              width=int(rng.integers(1, 3)))
  return np.asarray(image, dtype=np.float32)


def _shape_mask(rng: np.random.Generator, shape: str, width: int,
                height: int) -> np.ndarray:
  """Coverage in [0, 1] of the randomly placed, scaled and rotated shape."""
  size = rng.uniform(0.3, 0.8) * min(width, height)
  # Near the centre, and never pushed further than the frame allows.
  cx = width / 2 + rng.uniform(-1, 1) * min(0.15 * width, (width - size) / 2)
  cy = height / 2 + rng.uniform(-1, 1) * min(0.15 * height, (height - size) / 2)
  theta = np.deg2rad(rng.uniform(-30, 30))
  rotation = np.array([[np.cos(theta), -np.sin(theta)],
                       [np.sin(theta), np.cos(theta)]])
  ss = _SUPERSAMPLING
  mask = Image.new('L', (width * ss, height * ss), 0)
  draw = ImageDraw.Draw(mask)
  for fill, polygon in _SHAPES[shape]:
    xy = (polygon @ rotation.T * (size / 2) + [cx, cy]) * ss
    draw.polygon([tuple(p) for p in xy], fill=255 * fill)
  return np.asarray(mask.reduce(ss), dtype=np.float32)[..., None] / 255


def _object_colour(rng: np.random.Generator,
                   surrounding_luma: float) -> np.ndarray:
  # Any hue, drawn independently of the class, so that colour says nothing
  # about the label; only the brightness gap keeps the shape visible.
  while True:
    colour = rng.uniform(0, 255, 3)
    if abs(_luma(colour) - surrounding_luma) >= _MIN_BRIGHTNESS_GAP:
      return colour.astype(np.float32)


def draw_example(split: str, index: int) -> tuple[np.ndarray, int]:
  """Returns example `index` of `split` as (uint8 HxWx3 image, label)."""
  image, label, _ = _draw(split, index)
  return image, label


def _draw(split: str, index: int) -> tuple[np.ndarray, int, np.ndarray]:
  """Returns (image, label, the shape's HxWx1 coverage in [0, 1])."""
  rng = np.random.default_rng([_SPLIT_SEEDS[split], index])
  # Labels cycle through the classes so that every split is balanced; tfds
  # shuffles the records on writing, so the stored order is not periodic.
  label = index % len(CLASS_NAMES)
  width, height = _image_size(rng)
  background = _background(rng, width, height)
  mask = _shape_mask(rng, CLASS_NAMES[label], width, height)
  # The background under the shape stands in for its surroundings: the
  # gradient changes little over the shape's extent.
  surrounding = float((_luma(background) * mask[..., 0]).sum() / mask.sum())
  image = background * (1 - mask) + _object_colour(rng, surrounding) * mask
  noise = rng.standard_normal(image.shape, dtype=np.float32)
  image += noise * np.float32(rng.uniform(2, 6))
  return np.clip(image + 0.5, 0, 255).astype(np.uint8), label, mask


def file_name(split: str, index: int) -> str:
  return f'shapes_{split}_{index:06d}.JPEG'


def generate_example(split: str, index: int) -> dict[str, bytes | int | str]:
  """Returns example `index` of `split` as tfds will store it (JPEG bytes)."""
  image, label = draw_example(split, index)
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format='JPEG', quality=_JPEG_QUALITY)
  # tfds's Image feature stores bytes as given: no decode and second encode.
  return {'image': buffer.getvalue(), 'label': label,
          'file_name': file_name(split, index)}


def write_examples(split: str, start: int, stop: int, stream: BinaryIO) -> None:
  """Pickles examples start..stop-1 of `split` onto `stream`, one at a time."""
  for index in range(start, stop):
    pickle.dump(generate_example(split, index), stream, protocol=pickle.HIGHEST_PROTOCOL)
  stream.flush()


if __name__ == '__main__':
  # A drawing worker of the tfds builder: python -m input_pipeline.shapes SPLIT START STOP
  # A Ctrl-C reaches the whole terminal's process group: the builder decides
  # what it means, and ends this worker (or it ends when its pipe closes).
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  write_examples(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.stdout.buffer)
