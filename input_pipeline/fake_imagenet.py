"""Stand-ins for the ILSVRC2012 tars, in the layout tfds's builder reads.

  python -m input_pipeline.fake_imagenet --manual_dir=/tmp/fake_imagenet/manual \\
      --data_dir=/tmp/fake_imagenet/tfds --num_classes=20 --images_per_class=50 \\
      --num_val=200

writes the two tars with ImageNet-like JPEGs (350x400 px, about 110 KB each),
prepares them with prepare_imagenet, and prints the time and the bytes on disk
of each step. The input benchmark reads the result (`python -m
train.bench.input_throughput --dataset=imagenet2012 --data_dir=...`). To time the
preparation as ImageNet's would run, make the train split larger than 1 GB
(e.g. --num_classes=100 --images_per_class=100): tfds shuffles a smaller split
in memory, a larger one (ImageNet's) through temporary files on disk. Without
`image_size` the library function writes tiny noise images, for the tests.

`ILSVRC2012_img_train.tar` holds one `<synset>.tar` per class, each holding
`<synset>_<n>.JPEG` files; `ILSVRC2012_img_val.tar` is flat,
`ILSVRC2012_val_%08d.JPEG`.

tfds does not read the validation labels from the tar: it sorts the names in the
val tar and zips them with its bundled `validation_labels.txt` (50,000 synsets,
one per val image in file-name order). A val tar holding only some of the files
would therefore be labelled by position, not by number; so the fake holds
exactly the first `num_val` files, whose labels are the first `num_val` lines.

Like the real archives, the train set has a CMYK JPEG and a PNG named .JPEG.
tfds converts only the files it knows by name (its CMYK_IMAGES and PNG_IMAGES
lists), so the fakes reuse two of those names and their synsets.
"""

import argparse
import io
import os
import sys
import tarfile
import time

import numpy as np
from PIL import Image
from PIL import ImageDraw

from choices import check_choice

TRAIN_TAR = 'ILSVRC2012_img_train.tar'
VAL_TAR = 'ILSVRC2012_img_val.tar'
# Names from tfds's imagenet2012 builder (CMYK_IMAGES, PNG_IMAGES).
CMYK_FILE = 'n01739381_1309.JPEG'
PNG_FILE = 'n02105855_2933.JPEG'

# ImageNet's photos average about 400x350 px and 110 KB (the train tar holds
# 1,281,167 of them in 138 GiB), most of them saved at JPEG quality ~90.
IMAGENET_LIKE_SIZE = (350, 400)  # (height, width)
PHOTO_QUALITY = 90
# 110 KB at 400x350 px is over 6 bits per pixel: photos get there from fine
# texture (leaves, fur, grass). Smooth content alone compresses to ~12 KB, and
# pure noise looks and decodes unlike a photo, so the fakes are a clutter of
# shapes with texture at several scales and a little grain. Tuned so that the
# mean JPEG is 105-110 KB at IMAGENET_LIKE_SIZE; decoding cost follows the
# bytes (entropy decoding) and the pixels (IDCT), so both are matched.
_SMALL_SHAPES_PER_PIXEL = 1000 / (350 * 400)
_COARSE_TEXTURE_SIGMA = 16.0  # Colour blotches at 1/8 of the resolution.
_FINE_TEXTURE_SIGMA = 28.0  # Luminance texture at 1/2 of the resolution.
_LUMA_GRAIN_SIGMA = 24.0
_CHROMA_GRAIN_SIGMA = 10.0


def validation_labels() -> list[str]:
  """tfds's bundled validation labels, one synset per val file in name order."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  path = tfds.core.tfds_path('datasets/imagenet2012/validation_labels.txt')
  return path.read_text().strip().splitlines()


def default_synsets(num_val: int) -> list[str]:
  """The classes of the first `num_val` val files plus the CMYK and PNG ones."""
  extra = {CMYK_FILE.split('_')[0], PNG_FILE.split('_')[0]}
  return sorted(set(validation_labels()[:num_val]) | extra)


def _gradient(rng: np.random.Generator, height: int,
              width: int) -> np.ndarray:
  start, end = rng.uniform(0, 255, size=(2, 3))
  angle = rng.uniform(0, 2 * np.pi)
  y, x = np.mgrid[0:height, 0:width].astype(np.float32)
  t = np.cos(angle) * x / width + np.sin(angle) * y / height
  t = (t - t.min()) / (t.max() - t.min() + 1e-6)
  return start + t[..., None] * (end - start)


def _draw_shapes(canvas: Image.Image, rng: np.random.Generator, count: int,
                 scale_range: tuple[float, float]) -> None:
  """Draws `count` filled ellipses, boxes and polygons of random colours."""
  width, height = canvas.size
  # Every random number drawn at once: per-shape draws took most of the time.
  colours = rng.integers(0, 256, size=(count, 3))
  radii = (max(height, width) * rng.uniform(*scale_range, size=(count, 1))
           * rng.uniform(0.3, 1.0, size=(count, 2)))
  centres = rng.uniform(0, 1, size=(count, 2)) * (width, height)
  kinds = rng.integers(3, size=count)
  sides = rng.integers(3, 7, size=count)
  # Up to 6 corners on each shape's ellipse, in angular order: convex polygons.
  angles = np.sort(rng.uniform(0, 2 * np.pi, size=(count, 6)), axis=1)
  corners = centres[:, None] + radii[:, None] * np.stack(
      [np.cos(angles), np.sin(angles)], axis=-1)
  boxes = np.concatenate([centres - radii, centres + radii], axis=1)
  draw = ImageDraw.Draw(canvas)
  for colour, box, kind, n, polygon in zip(
      map(tuple, colours.tolist()), boxes.tolist(), kinds.tolist(),
      sides.tolist(), corners.tolist()):
    if kind == 0:
      draw.ellipse(box, fill=colour)
    elif kind == 1:
      draw.rectangle(box, fill=colour)
    else:
      draw.polygon([tuple(corner) for corner in polygon[:n]], fill=colour)


def _texture(rng: np.random.Generator, height: int, width: int, factor: int,
             sigma: float, channels: int) -> np.ndarray:
  """Gaussian noise drawn at 1/factor of the resolution, upsampled bicubically."""
  small = rng.normal(0, sigma, size=(channels, height // factor + 2,
                                     width // factor + 2)).astype(np.float32)
  return np.stack([
      np.asarray(Image.fromarray(plane).resize((width, height),
                                               Image.Resampling.BICUBIC))
      for plane in small], axis=-1)


def photo_like_pixels(rng: np.random.Generator, height: int,
                      width: int) -> np.ndarray:
  """A uint8 (height, width, 3) image that compresses like a photo."""
  canvas = Image.fromarray(_gradient(rng, height, width).astype(np.uint8))
  _draw_shapes(canvas, rng, 20, (0.03, 0.6))
  _draw_shapes(canvas, rng, round(_SMALL_SHAPES_PER_PIXEL * height * width),
               (0.005, 0.05))
  # Compressed into [28, 228], so that the texture is rarely clipped away.
  image = np.asarray(canvas, np.float32) * (200 / 255) + 28
  image += _texture(rng, height, width, 8, _COARSE_TEXTURE_SIGMA, 3)
  image += _texture(rng, height, width, 2, _FINE_TEXTURE_SIGMA, 1)
  image += rng.normal(0, _LUMA_GRAIN_SIGMA, size=(height, width, 1))
  image += rng.normal(0, _CHROMA_GRAIN_SIGMA, size=(height, width, 3))
  return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _image_bytes(rng: np.random.Generator,
                 image_size: tuple[int, int] | None = None, fmt: str = 'JPEG',
                 mode: str = 'RGB') -> bytes:
  """An encoded image: tiny noise, or photo-like at (height, width) image_size."""
  buffer = io.BytesIO()
  if image_size is None:
    height, width = rng.integers(24, 97, size=2)
    channels = 4 if mode == 'CMYK' else 3
    pixels = rng.integers(0, 256, size=(height, width, channels),
                          dtype=np.uint8)
    Image.fromarray(pixels, mode=mode).save(buffer, format=fmt)
  else:
    image = Image.fromarray(photo_like_pixels(rng, *image_size)).convert(mode)
    quality = {'quality': PHOTO_QUALITY} if fmt == 'JPEG' else {}
    image.save(buffer, format=fmt, **quality)
  return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
  member = tarfile.TarInfo(name)
  member.size = len(data)
  tar.addfile(member, io.BytesIO(data))


def _synset_tar(files: dict[str, bytes]) -> bytes:
  buffer = io.BytesIO()
  with tarfile.open(fileobj=buffer, mode='w') as tar:
    for name, data in files.items():
      _add(tar, name, data)
  return buffer.getvalue()


def damaged(data: bytes, how: str) -> bytes:
  """`data` as a damaged copy would hold it: 'truncated' (cut in half) or 'garbage'."""
  check_choice('damage', how, ('truncated', 'garbage'), show=str)
  if how == 'truncated':
    return data[:len(data) // 2]
  return np.random.default_rng(len(data)).bytes(len(data))


def make_fake_imagenet_archives(manual_dir: str, *,
                                synsets: list[str] | None = None,
                                images_per_class: int = 2, num_val: int = 6,
                                seed: int = 0,
                                image_size: tuple[int, int] | None = None,
                                damage: dict[str, str] | None = None,
                                ) -> dict:
  """Writes the two fake tars into `manual_dir`.

  `synsets` defaults to `default_synsets(num_val)`; the CMYK and PNG files'
  synsets are added to it in any case. `image_size` (height, width) makes
  every image photo-like at that size (IMAGENET_LIKE_SIZE for ImageNet's
  average), JPEG quality PHOTO_QUALITY; None keeps tiny noise images of 24-96 px.
  `damage` maps file names (train or val) to how each is damaged (`damaged`).

  Returns a dict: 'train' and 'validation' map each file name to its synset,
  'cmyk_file' and 'png_file' name the odd train files, 'synsets' lists the
  train classes, 'image_bytes' is the total size of all the image files.
  """
  rng = np.random.default_rng(seed)
  damage = damage or {}
  odd_files = {CMYK_FILE: _image_bytes(rng, image_size, mode='CMYK'),
               PNG_FILE: _image_bytes(rng, image_size, fmt='PNG')}
  synsets = sorted(set(synsets or default_synsets(num_val))
                   | {name.split('_')[0] for name in odd_files})
  os.makedirs(manual_dir, exist_ok=True)

  train = {}
  image_bytes = 0
  with tarfile.open(os.path.join(manual_dir, TRAIN_TAR), 'w') as outer:
    for synset in synsets:
      files = {f'{synset}_{n}.JPEG': _image_bytes(rng, image_size)
               for n in range(1, images_per_class + 1)}
      files.update({name: data for name, data in odd_files.items()
                    if name.startswith(synset + '_')})
      files = {name: damaged(data, damage[name]) if name in damage else data
               for name, data in files.items()}
      train.update(dict.fromkeys(files, synset))
      image_bytes += sum(map(len, files.values()))
      _add(outer, f'{synset}.tar', _synset_tar(files))

  labels = validation_labels()[:num_val]
  validation = {}
  with tarfile.open(os.path.join(manual_dir, VAL_TAR), 'w') as tar:
    for number, synset in enumerate(labels, start=1):
      name = f'ILSVRC2012_val_{number:08d}.JPEG'
      validation[name] = synset
      data = _image_bytes(rng, image_size)
      if name in damage:
        data = damaged(data, damage[name])
      image_bytes += len(data)
      _add(tar, name, data)

  return {'train': train, 'validation': validation, 'cmyk_file': CMYK_FILE,
          'png_file': PNG_FILE, 'synsets': synsets, 'image_bytes': image_bytes}


def tree_bytes(path: str) -> int:
  """Bytes of all the files under `path` (what `du -b` counts, without dirs)."""
  return sum(os.path.getsize(os.path.join(root, name))
             for root, _, names in os.walk(path) for name in names)


def _write(args: argparse.Namespace) -> int:
  """Writes the tars; returns the number of images written."""
  synsets = sorted(set(validation_labels()))[:args.num_classes]
  start = time.perf_counter()
  fakes = make_fake_imagenet_archives(
      args.manual_dir, synsets=synsets, images_per_class=args.images_per_class,
      num_val=args.num_val, seed=args.seed, image_size=tuple(args.image_size))
  seconds = time.perf_counter() - start
  count = len(fakes['train']) + len(fakes['validation'])
  tars = ', '.join(
      f'{name} {os.path.getsize(os.path.join(args.manual_dir, name)):,} B'
      for name in (TRAIN_TAR, VAL_TAR))
  print(f'Wrote {len(fakes["train"]):,} train images in '
        f'{len(fakes["synsets"])} classes and {len(fakes["validation"]):,} '
        f'val images, {args.image_size[0]}x{args.image_size[1]} px, mean '
        f'{fakes["image_bytes"] / count / 1000:.1f} KB, in {seconds:.1f} s '
        f'into {args.manual_dir}: {tars}.', flush=True)
  return count


def _prepare(args: argparse.Namespace, count: int) -> None:
  """Prepares the tars with prepare_imagenet and reports rate and bytes."""
  # Imported here: writing the tars needs no TensorFlow.
  from input_pipeline import datasets  # pylint: disable=g-import-not-at-top
  from input_pipeline import info  # pylint: disable=g-import-not-at-top
  from input_pipeline import prepare_imagenet  # pylint: disable=g-import-not-at-top
  if datasets.is_prepared(info.IMAGENET2012, args.data_dir):
    print(f'imagenet2012 is already prepared in {args.data_dir}: not timed '
          '(delete it to time a fresh build).', flush=True)
    return
  start = time.perf_counter()
  path = prepare_imagenet.prepare(args.data_dir, args.manual_dir)
  seconds = time.perf_counter() - start
  tars = sum(os.path.getsize(os.path.join(args.manual_dir, name))
             for name in (TRAIN_TAR, VAL_TAR))
  prepared = tree_bytes(path)
  print(f'Prepared {count:,} images in {seconds:.1f} s: '
        f'{count / seconds:.0f} images/s. On disk: tars {tars:,} B, prepared '
        f'{prepared:,} B ({prepared / tars:.2f}x the tars).', flush=True)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--manual_dir', required=True,
                      help='where to write the two tars.')
  parser.add_argument('--data_dir', default=None,
                      help='tfds data directory to prepare them into; '
                      'omitted: only write the tars.')
  parser.add_argument('--num_classes', type=int, default=20,
                      help='train classes (plus those of the CMYK and PNG '
                      'files).')
  parser.add_argument('--images_per_class', type=int, default=50)
  parser.add_argument('--num_val', type=int, default=200)
  parser.add_argument('--image_size', type=int, nargs=2,
                      default=list(IMAGENET_LIKE_SIZE),
                      metavar=('HEIGHT', 'WIDTH'))
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args(argv)
  count = _write(args)
  if args.data_dir:
    _prepare(args, count)
  return 0


if __name__ == '__main__':
  sys.exit(main())
