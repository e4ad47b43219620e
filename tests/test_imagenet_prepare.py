"""prepare_imagenet on tiny fake ILSVRC2012 tars, read back through the pipeline."""

import contextlib
import io
import json
import logging
import math
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from configs import default
from configs import embedded_lars
from input_pipeline import datasets
from input_pipeline import imagenet_builder
from input_pipeline import info
from input_pipeline import pipeline
from input_pipeline import prepare_imagenet
from input_pipeline import preprocessing
from tests import fake_imagenet
from train.run import loop
from train.run import validation

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGENET = 'imagenet2012'


def _prepare(data_dir, manual_dir) -> str:
  stdout = io.StringIO()
  with contextlib.redirect_stdout(stdout):
    prepare_imagenet.prepare(data_dir, manual_dir)
  return stdout.getvalue()


@pytest.fixture(scope='module')
def prepared(tmp_path_factory):
  """(data_dir, manual_dir, what the fakes hold, what the build printed)."""
  root = tmp_path_factory.mktemp('imagenet')
  manual_dir, data_dir = str(root / 'manual'), str(root / 'tfds')
  fakes = fake_imagenet.make_fake_imagenet_archives(
      manual_dir, images_per_class=2, num_val=6, seed=0)
  return data_dir, manual_dir, fakes, _prepare(data_dir, manual_dir)


def _examples(data_dir: str, split: str) -> dict[str, dict]:
  builder = tfds.builder(IMAGENET, data_dir=data_dir)
  source = builder.as_data_source(split, decoders={'image': tfds.decode.SkipDecoding()})
  return {ex['file_name'].decode(): ex for ex in (source[i] for i in range(len(source)))}


def _label_names(data_dir: str):
  return tfds.builder(IMAGENET, data_dir=data_dir).info.features['label']


def _config(data_dir: str):
  config = embedded_lars.get_config()
  config.dataset = IMAGENET
  config.data_dir = data_dir
  config.image_size = 32
  return config


def test_prepare_reports_where_the_data_is(prepared):
  data_dir, _, _, printed = prepared
  assert datasets.is_prepared(IMAGENET, data_dir)
  last = printed.strip().splitlines()[-1]
  assert last.startswith('Prepared imagenet2012 in ')
  assert os.path.join(data_dir, IMAGENET) in last
  assert 'Skipped' not in printed
  assert _skipped_record(data_dir) == {'count': 0, 'images': []}


def _skipped_record(data_dir: str) -> dict:
  path = tfds.builder(IMAGENET, data_dir=data_dir).data_path / info.SKIPPED_IMAGES_FILE
  return json.loads(path.read_text())


def test_train_labels_are_the_synset_of_each_file(prepared):
  data_dir, _, fakes, _ = prepared
  examples = _examples(data_dir, 'train')
  assert set(examples) == set(fakes['train'])
  label = _label_names(data_dir)
  for name, example in examples.items():
    assert label.int2str(example['label']) == fakes['train'][name] == (
        name.split('_')[0])


def test_val_labels_follow_tfds_labels_file(prepared):
  data_dir, _, fakes, _ = prepared
  examples = _examples(data_dir, 'validation')
  labels_file = fake_imagenet.validation_labels()
  label = _label_names(data_dir)
  assert set(examples) == set(fakes['validation'])
  for name, example in examples.items():
    number = int(name[len('ILSVRC2012_val_'):-len('.JPEG')])
    assert label.int2str(example['label']) == labels_file[number - 1]
    assert label.int2str(example['label']) == fakes['validation'][name]


def test_cmyk_and_png_files_are_stored_as_rgb_jpeg(prepared):
  data_dir, _, fakes, _ = prepared
  examples = _examples(data_dir, 'train')
  for name in (fakes['cmyk_file'], fakes['png_file']):
    encoded = examples[name]['image']
    # tf.io.decode_jpeg reads PNGs and CMYK JPEGs alike (giving 3 channels),
    # so it proves nothing: look at the format and colour model themselves.
    with Image.open(io.BytesIO(encoded)) as image:
      assert (image.format, image.mode) == ('JPEG', 'RGB'), name
    # The pipeline's fused crop reads JPEG only.
    assert tf.image.decode_and_crop_jpeg(encoded, [0, 0, 8, 8]).shape == (
        8, 8, 3)


def test_pipeline_reads_every_image(prepared):
  data_dir, _, fakes, _ = prepared
  config = _config(data_dir)
  batch_size = 4
  # Shuffle before repeat: the first epoch's batches hold every train image,
  # the CMYK and the PNG one among them.
  batches = math.ceil(len(fakes['train']) / batch_size)
  train = pipeline.create_train_iterator(config, pipeline.Reading(batch_size))
  labels = []
  for _ in range(batches):
    batch = next(train)
    assert batch['image'].shape == (batch_size, 32, 32, 3)
    labels.extend(batch['label'])
  label = _label_names(data_dir)
  assert {label.int2str(l) for l in labels} <= set(fakes['synsets'])

  eval_batches = list(pipeline.create_eval_dataset(config, pipeline.Reading(4)))
  mask = np.concatenate([b['mask'] for b in eval_batches])
  eval_labels = np.concatenate([b['label'] for b in eval_batches])[mask]
  assert sorted(label.int2str(l) for l in eval_labels) == sorted(
      fakes['validation'].values())


def _crop_windows(jpeg: bytes, count: int) -> tuple[tuple[int, int], np.ndarray]:
  """(height, width) of the JPEG and `count` windows at the MLPerf defaults."""
  crop = default.get_config().input
  shape = tf.image.extract_jpeg_shape(jpeg)
  sample = lambda i: preprocessing.sample_crop_window(
      shape, tf.stack([tf.constant(0, tf.int64), i]),
      area_range=tuple(crop.crop_area_range),
      aspect_ratio_range=tuple(crop.crop_aspect_ratio_range),
      min_object_covered=crop.crop_min_object_covered,
      max_attempts=crop.crop_max_attempts)
  windows = tf.data.Dataset.range(count).map(sample).batch(count)
  return tuple(shape.numpy()[:2]), next(iter(windows)).numpy()


def test_crop_windows_on_every_train_image_respect_the_mlperf_ranges(prepared):
  data_dir, _, _, _ = prepared
  crop = default.get_config().input
  area_low, area_high = crop.crop_area_range
  aspect_low, aspect_high = crop.crop_aspect_ratio_range
  # The whole image is the object: covering 10% of it means 10% of its area.
  area_low = max(area_low, crop.crop_min_object_covered)
  sizes, num_windows, num_whole = set(), 0, 0
  for name, example in _examples(data_dir, 'train').items():
    (height, width), windows = _crop_windows(example['image'], count=200)
    sizes.add((height, width))
    y, x, h, w = windows.T
    assert (y >= 0).all() and (x >= 0).all(), name
    assert (y + h <= height).all() and (x + w <= width).all(), name
    # The whole image is the fallback when no window fits in 10 attempts.
    whole = (h == height) & (w == width)
    y, x, h, w = windows[~whole].T
    # tf keeps windows whose pixel count is within the range exactly; the width
    # is height * ratio in whole pixels, so the ratio may miss by a pixel.
    area = h * w / (height * width)
    assert (area >= area_low).all() and (area <= area_high).all(), name
    aspect = w / h
    assert (aspect >= aspect_low - 1 / h).all(), name
    assert (aspect <= aspect_high + 1 / h).all(), name
    num_windows += len(windows)
    num_whole += whole.sum()
  # Images of many shapes (24 to 96 pixels a side, either way round), and
  # real crops rather than the fallback nearly always.
  assert len(sizes) > 10
  assert num_whole < 0.02 * num_windows


def test_rerun_on_a_prepared_dir_says_so(prepared):
  data_dir, manual_dir, _, _ = prepared
  printed = _prepare(data_dir, manual_dir)
  assert 'already prepared' in printed


def _run_module(*args):
  env = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'}
  return subprocess.run(
      [sys.executable, '-m', 'input_pipeline.prepare_imagenet', *args],
      cwd=_REPO_ROOT, capture_output=True, text=True, env=env, timeout=60,
      check=False)


def test_missing_archive_is_one_line_and_exit_2(tmp_path):
  manual_dir = tmp_path / 'manual'
  manual_dir.mkdir()
  (manual_dir / 'ILSVRC2012_img_train.tar').write_bytes(b'')
  result = _run_module(f'--data_dir={tmp_path / "tfds"}',
                       f'--manual_dir={manual_dir}')
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr
  assert 'ILSVRC2012_img_val.tar' in lines[0]
  assert 'ILSVRC2012_img_train.tar' not in lines[0]
  assert str(manual_dir) in lines[0]
  assert 'image-net.org' in lines[0]
  assert 'Traceback' not in result.stderr + result.stdout


def test_rerun_after_an_interruption_builds_from_scratch(tmp_path, monkeypatch):
  manual_dir, data_dir = str(tmp_path / 'manual'), str(tmp_path / 'tfds')
  fakes = fake_imagenet.make_fake_imagenet_archives(
      manual_dir, images_per_class=1, num_val=2, seed=1)

  # Interrupted while converting the PNG, midway through the train split.
  def interrupt(*args, **kwargs):
    raise KeyboardInterrupt
  monkeypatch.setattr(tfds.core.utils, 'png_to_jpeg', interrupt)
  with pytest.raises(KeyboardInterrupt):
    _prepare(data_dir, manual_dir)
  monkeypatch.undo()
  assert not datasets.is_prepared(IMAGENET, data_dir)

  # A build killed outright leaves its incomplete folder behind.
  stale = os.path.join(data_dir, IMAGENET, 'incomplete.ABC123_5.1.0')
  os.makedirs(stale)
  printed = _prepare(data_dir, manual_dir)
  assert not os.path.exists(stale)
  assert 'interrupted build' in printed
  assert datasets.is_prepared(IMAGENET, data_dir)
  assert set(_examples(data_dir, 'train')) == set(fakes['train'])


def _encoded(fmt: str = 'JPEG') -> bytes:
  pixels = np.random.default_rng(0).integers(0, 256, size=(40, 30, 3), dtype=np.uint8)
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format=fmt)
  return buffer.getvalue()


@pytest.mark.parametrize('data,readable', [
    (_encoded(), True),
    (fake_imagenet.damaged(_encoded(), 'truncated'), False),
    (fake_imagenet.damaged(_encoded(), 'garbage'), False),
    (_encoded('PNG'), False),  # The pipeline's decoder reads JPEG only.
    (b'', False),
])
def test_decode_error_is_none_only_for_what_the_pipeline_decodes(data, readable):
  error = imagenet_builder.decode_error(data)
  assert (error is None) == readable
  if error is not None:
    assert '\n' not in error and '{{' not in error
  if readable:  # The pipeline's own fused decode and crop reads it.
    assert tf.image.decode_and_crop_jpeg(data, [0, 0, 8, 8], channels=3).shape == (8, 8, 3)


def test_images_that_do_not_decode_are_skipped_named_and_counted(tmp_path):
  manual_dir, data_dir = str(tmp_path / 'manual'), str(tmp_path / 'tfds')
  synsets = fake_imagenet.default_synsets(2)
  damage = {f'{synsets[0]}_1.JPEG': 'truncated', f'{synsets[1]}_1.JPEG': 'garbage',
            'ILSVRC2012_val_00000002.JPEG': 'truncated'}
  fakes = fake_imagenet.make_fake_imagenet_archives(
      manual_dir, images_per_class=1, num_val=2, seed=2, damage=damage)
  printed = _prepare(data_dir, manual_dir)
  skipped_line = next(l for l in printed.splitlines() if l.startswith('Skipped'))
  assert skipped_line.startswith('Skipped 3 image(s) that do not decode as JPEG: ')
  assert all(name in skipped_line for name in damage)
  record = _skipped_record(data_dir)
  assert record['count'] == 3
  assert {(i['file_name'], i['split']) for i in record['images']} == {
      (f'{synsets[0]}_1.JPEG', 'train'), (f'{synsets[1]}_1.JPEG', 'train'),
      ('ILSVRC2012_val_00000002.JPEG', 'validation')}
  assert all(i['error'] for i in record['images'])
  # The rest is there, and each of those images decodes.
  for split in ('train', 'validation'):
    examples = _examples(data_dir, split)
    assert set(examples) == set(fakes[split]) - set(damage)
    assert all(imagenet_builder.decode_error(e['image']) is None for e in examples.values())


def test_reading_a_build_whose_images_were_not_checked_warns(prepared, caplog):
  data_dir = prepared[0]
  with caplog.at_level(logging.WARNING):
    datasets.ensure_prepared(IMAGENET, data_dir)
  assert 'not checked' not in caplog.text
  skipped = tfds.builder(IMAGENET, data_dir=data_dir).data_path / info.SKIPPED_IMAGES_FILE
  hidden = skipped.parent / 'hidden.json'
  skipped.rename(hidden)  # As a build by plain tfds leaves it.
  try:
    with caplog.at_level(logging.WARNING):
      datasets.ensure_prepared(IMAGENET, data_dir)
  finally:
    hidden.rename(skipped)
  assert 'its images were not checked' in caplog.text


@pytest.mark.slow  # Compiles and trains (about 20 s).
def test_harness_trains_on_the_prepared_archives(prepared, tmp_path):
  """The whole harness on imagenet2012 as tfds prepared it: validation, two steps, an eval."""
  data_dir, _, fakes, _ = prepared
  config = _config(data_dir)
  config.global_batch_size = 8
  config.eval_batch_size = 4  # 6 validation images: the last batch is padded.
  config.model.virtual_batch_size = 8
  config.num_train_steps = 2
  config.lr.warmup_steps = 1.0
  config.eval_every_steps = 2
  validation.validate_config(config, num_devices=jax.device_count())
  result = loop.train_and_evaluate(config, str(tmp_path / 'run'))
  assert result['steps_completed'] == 2 and len(result['evals']) == 1
  assert result['dataset'] == IMAGENET
  with open(tmp_path / 'run' / 'mlperf.log') as f:
    assert f'"key": "eval_samples", "value": {len(fakes["validation"])}' in f.read()
