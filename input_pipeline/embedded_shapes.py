"""A small, self-generated stand-in for ImageNet: ten classes of drawn shapes.

The harness must run end to end on machines without ImageNet, so this tfds builder
draws its own images, with the same features as `imagenet2012` (a JPEG `image`, a
`label` and a `file_name`; splits `train` and `validation`). The ImageNet
preprocessing (fused decode-and-crop, random-resized crops, flips) then runs on it
unchanged.

It has to behave like a small vision task and not like a lookup table: the class is
the *shape* of one object, while its colour, size, position, rotation, the
background and the image size all vary at random. Every shape is symmetric about
its vertical axis and the rotation range is symmetric, so a horizontal flip keeps
the class distribution unchanged; random-resized crops keep at least part of the
object. The recipe (near-neutral gradient background, 1-3 distracting lines, light
noise, an object at least 60 brightness levels off its background, 0.3-0.8 of the
shorter side, rotated within +-30 degrees, near the centre) was found learnable on
a CPU in a few hundred steps; saturated backgrounds, full rotations and objects
anywhere in the frame were not.

Generation is deterministic: example `i` of split `s` is drawn from a generator
seeded with `(s, i)`, so every build writes the same bytes.

Build it by instantiating the builder directly, e.g.
  EmbeddedShapes(data_dir=..., config='tiny').download_and_prepare(
      file_format='array_record')
"""

import dataclasses
import os
import pickle
import subprocess
import sys
from typing import Iterator

import tensorflow_datasets as tfds

from input_pipeline import info
from input_pipeline import shapes


@dataclasses.dataclass(eq=False)
class EmbeddedShapesConfig(tfds.core.BuilderConfig):
  num_train_examples: int = 0
  num_validation_examples: int = 0


def _config(name: str, dataset: str, description: str) -> EmbeddedShapesConfig:
  # The sizes live in info.py, which the TF-free training code reads.
  facts = info.get_dataset_info(dataset)
  return EmbeddedShapesConfig(
      name=name, description=description,
      num_train_examples=facts.num_train_examples,
      num_validation_examples=facts.num_eval_examples)


class EmbeddedShapes(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Ten classes of shapes on noisy backgrounds, laid out like imagenet2012.

  Not registered with tfds by name: the harness instantiates it directly, which
  keeps the data flow visible and avoids name clashes with other builders.
  """

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [
      _config('default', info.EMBEDDED_SHAPES, 'Benchmark size.'),
      _config('tiny', info.EMBEDDED_SHAPES_TINY, 'For tests.'),
  ]
  DEFAULT_CONFIG_NAME = 'default'

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(encoding_format='jpeg'),
            'label': tfds.features.ClassLabel(names=shapes.CLASS_NAMES),
            'file_name': tfds.features.Text(),
        }),
        supervised_keys=('image', 'label'),
    )

  # tfds announces a download of 'Unknown size' and its completion around every
  # build; `datasets.ensure_prepared` prints one line of its own instead.
  def _log_download_bytes(self) -> None:
    pass

  def _log_download_done(self) -> None:
    pass

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    config = self.builder_config
    return {
        'train': self._generate_examples('train', config.num_train_examples),
        'validation': self._generate_examples(
            'validation', config.num_validation_examples),
    }

  def _generate_examples(self, split: str, num_examples: int) -> Iterator[
      tuple[str, dict[str, bytes | int | str]]]:
    # Drawing costs about a millisecond per image, as much as tfds's writing, so
    # two worker processes draw while this process writes (see shapes.py for
    # why they are plain subprocesses).
    workers = [_start_worker(split, start, stop)
               for start, stop in _halves(num_examples)]
    drawn = False
    try:
      # Round robin: each worker blocks only when its pipe is full, so both
      # keep drawing while the examples are written. The keys, not the order
      # of arrival, fix where tfds stores each example.
      live = list(workers)
      while live:
        for worker in list(live):
          try:
            example = pickle.load(worker.stdout)
          except EOFError:
            live.remove(worker)
            continue
          yield example['file_name'], example
      drawn = True
    finally:
      for worker in workers:
        if not drawn:  # Stopped (Ctrl-C) or failed: what they draw is not wanted.
          worker.kill()
        worker.stdout.close()
        worker.wait()
    # Only after a whole pass: a worker's own failure must not hide the error
    # (or the Ctrl-C) that ended the pass and the worker with it.
    for worker in workers:
      if worker.returncode != 0:
        raise RuntimeError(f'drawing worker {worker.args} failed with status '
                           f'{worker.returncode}')


def _halves(num_examples: int) -> list[tuple[int, int]]:
  middle = num_examples // 2
  return [(0, middle), (middle, num_examples)]


def _start_worker(split: str, start: int, stop: int) -> subprocess.Popen:
  repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      filter(None, [repo_root, os.environ.get('PYTHONPATH')])))
  return subprocess.Popen(
      [sys.executable, '-m', 'input_pipeline.shapes', split, str(start), str(stop)],
      stdout=subprocess.PIPE, env=env, cwd=repo_root)
