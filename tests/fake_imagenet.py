"""Tiny stand-ins for the ILSVRC2012 tars, in the layout tfds's builder reads.

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

import io
import os
import tarfile

import numpy as np
from PIL import Image

TRAIN_TAR = 'ILSVRC2012_img_train.tar'
VAL_TAR = 'ILSVRC2012_img_val.tar'
# Names from tfds's imagenet2012 builder (CMYK_IMAGES, PNG_IMAGES).
CMYK_FILE = 'n01739381_1309.JPEG'
PNG_FILE = 'n02105855_2933.JPEG'


def validation_labels() -> list[str]:
  """tfds's bundled validation labels, one synset per val file in name order."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  path = tfds.core.tfds_path('datasets/imagenet2012/validation_labels.txt')
  return path.read_text().strip().splitlines()


def default_synsets(num_val: int) -> list[str]:
  """The classes of the first `num_val` val files plus the CMYK and PNG ones."""
  extra = {CMYK_FILE.split('_')[0], PNG_FILE.split('_')[0]}
  return sorted(set(validation_labels()[:num_val]) | extra)


def _image_bytes(rng: np.random.Generator, fmt: str = 'JPEG',
                 mode: str = 'RGB') -> bytes:
  height, width = rng.integers(24, 97, size=2)
  channels = 4 if mode == 'CMYK' else 3
  pixels = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
  buffer = io.BytesIO()
  Image.fromarray(pixels, mode=mode).save(buffer, format=fmt)
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


def make_fake_imagenet_archives(manual_dir: str, *,
                                synsets: list[str] | None = None,
                                images_per_class: int = 2, num_val: int = 6,
                                seed: int = 0) -> dict:
  """Writes the two fake tars into `manual_dir`.

  `synsets` defaults to `default_synsets(num_val)`; the CMYK and PNG files'
  synsets are added to it in any case.

  Returns a dict: 'train' and 'validation' map each file name to its synset,
  'cmyk_file' and 'png_file' name the odd train files, 'synsets' lists the
  train classes.
  """
  rng = np.random.default_rng(seed)
  odd_files = {CMYK_FILE: _image_bytes(rng, mode='CMYK'),
               PNG_FILE: _image_bytes(rng, fmt='PNG')}
  synsets = sorted(set(synsets or default_synsets(num_val))
                   | {name.split('_')[0] for name in odd_files})
  os.makedirs(manual_dir, exist_ok=True)

  train = {}
  with tarfile.open(os.path.join(manual_dir, TRAIN_TAR), 'w') as outer:
    for synset in synsets:
      files = {f'{synset}_{n}.JPEG': _image_bytes(rng)
               for n in range(1, images_per_class + 1)}
      files.update({name: data for name, data in odd_files.items()
                    if name.startswith(synset + '_')})
      train.update(dict.fromkeys(files, synset))
      _add(outer, f'{synset}.tar', _synset_tar(files))

  labels = validation_labels()[:num_val]
  validation = {}
  with tarfile.open(os.path.join(manual_dir, VAL_TAR), 'w') as tar:
    for number, synset in enumerate(labels, start=1):
      name = f'ILSVRC2012_val_{number:08d}.JPEG'
      validation[name] = synset
      _add(tar, name, _image_bytes(rng))

  return {'train': train, 'validation': validation, 'cmyk_file': CMYK_FILE,
          'png_file': PNG_FILE, 'synsets': synsets}
