"""The input benchmark on the tiny embedded dataset, and the fake-ImageNet maker.

Few batches and one thread: the tests check the reports, not the speed.
"""

import io
import os
import tarfile

import numpy as np
import pytest
from PIL import Image

from input_pipeline import fake_imagenet
from train.bench import input_throughput

TINY = 'embedded_shapes/tiny'


@pytest.fixture(scope='module')
def tiny_config(tiny_data_dir):
  config = input_throughput.base_config(TINY, tiny_data_dir, image_size=24)
  return config


def _check_report(report: input_throughput.Report, *, mode: str, batch_size: int,
                  num_threads: int, batches: int, repetitions: int) -> None:
  assert (report.mode, report.dataset, report.image_size) == (mode, TINY, 24)
  assert (report.batch_size, report.num_threads) == (batch_size, num_threads)
  assert (report.batches, report.images) == (batches, batches * batch_size)
  assert len(report.images_per_second) == repetitions
  assert all(rate > 0 for rate in report.images_per_second)
  assert min(report.images_per_second) <= report.median <= max(
      report.images_per_second)
  assert report.per_thread == pytest.approx(report.median / num_threads)
  assert report.per_cpu_second > 0 and report.cores_busy > 0
  line = input_throughput.format_report(report)
  assert mode in line and 'images/s' in line and f'threads {num_threads}' in line


def test_pipeline_report(tiny_config):
  report = input_throughput.measure_pipeline(
      tiny_config, batch_size=16, num_threads=1, warmup_batches=2, batches=3,
      repetitions=2)
  _check_report(report, mode=input_throughput.PIPELINE, batch_size=16, num_threads=1,
                batches=3, repetitions=2)


def test_decode_only_report(tiny_config):
  report = input_throughput.measure_decode_only(
      tiny_config, batch_size=8, num_images=20, warmup_batches=1, batches=2,
      repetitions=3)
  _check_report(report, mode=input_throughput.DECODE_ONLY, batch_size=8,
                num_threads=1, batches=2, repetitions=3)


def test_command_line_prints_one_line_per_thread_count(tiny_config, capsys):
  assert input_throughput.main([
      f'--dataset={TINY}', f'--data_dir={tiny_config.data_dir}',
      '--image_size=16', '--batch_size=8', '--num_threads=1,2',
      '--warmup_batches=1', '--batches=2', '--repetitions=1']) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  assert [line.split(': ')[0].split()[-1] for line in lines[-2:]] == ['1', '2']


def test_unknown_dataset_names_the_valid_ones():
  with pytest.raises(ValueError, match='embedded_shapes.*imagenet2012'):
    input_throughput.base_config('cifar10', '/tmp')


def _jpegs(manual_dir: str) -> dict[str, bytes]:
  """Every image file in the two tars, by name."""
  files = {}
  with tarfile.open(os.path.join(manual_dir, fake_imagenet.VAL_TAR)) as tar:
    files.update({m.name: tar.extractfile(m).read() for m in tar})
  with tarfile.open(os.path.join(manual_dir, fake_imagenet.TRAIN_TAR)) as outer:
    for member in outer:
      inner = io.BytesIO(outer.extractfile(member).read())
      with tarfile.open(fileobj=inner) as tar:
        files.update({m.name: tar.extractfile(m).read() for m in tar})
  return files


def test_fake_imagenet_images_have_the_requested_size(tmp_path):
  fakes = fake_imagenet.make_fake_imagenet_archives(
      str(tmp_path), synsets=['n01440764'], images_per_class=2, num_val=2,
      image_size=(60, 80))
  files = _jpegs(str(tmp_path))
  assert set(files) == set(fakes['train']) | set(fakes['validation'])
  assert fakes['image_bytes'] == sum(map(len, files.values()))
  for name, data in files.items():
    with Image.open(io.BytesIO(data)) as image:
      assert image.size == (80, 60), name  # PIL gives (width, height).
      expected = {fakes['png_file']: ('PNG', 'RGB'),
                  fakes['cmyk_file']: ('JPEG', 'CMYK')}.get(name,
                                                            ('JPEG', 'RGB'))
      assert (image.format, image.mode) == expected, name


def _photo_like_jpeg_bytes(rng: np.random.Generator) -> int:
  pixels = fake_imagenet.photo_like_pixels(
      rng, *fake_imagenet.IMAGENET_LIKE_SIZE)
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format='JPEG',
                               quality=fake_imagenet.PHOTO_QUALITY)
  return len(buffer.getvalue())


def test_photo_like_jpegs_are_imagenet_sized():
  # ImageNet's mean is ~110 KB at ~400x350 px (uniform noise: ~127 KB).
  rng = np.random.default_rng(0)
  sizes = [_photo_like_jpeg_bytes(rng) for _ in range(4)]
  assert 95_000 < np.mean(sizes) < 125_000
