"""Tests of datasets.py, preprocessing.py and pipeline.py.

Each preprocessing function runs eagerly and inside tf.data. The pipelines read
the `tiny` embedded dataset, built once per test run (conftest.py's tiny_build).
"""

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from configs import embedded_lars
from input_pipeline import datasets
from input_pipeline import embedded_shapes
from input_pipeline import info
from input_pipeline import pipeline
from input_pipeline import preprocessing

TINY = 'embedded_shapes/tiny'
NUM_TRAIN, NUM_VALIDATION = 512, 200
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# --- datasets.py -----------------------------------------------------------


@pytest.fixture
def built(tiny_build) -> tuple[str, str]:
  """(data_dir with `tiny` built by ensure_prepared, what it printed)."""
  return tiny_build


@pytest.fixture
def config(built):
  config = embedded_lars.get_config()
  config.dataset = TINY
  config.data_dir = built[0]
  config.image_size = 32
  return config


def test_importing_the_package_does_not_import_tensorflow():
  code = ('import sys, input_pipeline, input_pipeline.info; '
          'assert "tensorflow" not in sys.modules')
  subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, check=True)


def test_gpus_are_hidden_from_tensorflow(monkeypatch):
  """The call that keeps TensorFlow off the GPUs, and its warning when too late.

  tensorflow-cpu sees no GPU in any case, so this checks the call itself.
  """
  calls, warnings = [], []
  monkeypatch.setattr(tf.config, 'set_visible_devices', lambda *a: calls.append(a))
  datasets.hide_gpus_from_tensorflow()
  assert calls == [([], 'GPU')]

  def already_initialised(*unused_args):
    raise RuntimeError('Visible devices cannot be modified after being initialized')
  monkeypatch.setattr(tf.config, 'set_visible_devices', already_initialised)
  monkeypatch.setattr(datasets.logging, 'warning', lambda msg, *a: warnings.append(msg))
  monkeypatch.setattr(tf.config, 'get_visible_devices', lambda kind: [])
  datasets.hide_gpus_from_tensorflow()  # An earlier call hid them: nothing to say.
  assert warnings == []
  monkeypatch.setattr(tf.config, 'get_visible_devices', lambda kind: ['/GPU:0'])
  datasets.hide_gpus_from_tensorflow()
  assert len(warnings) == 1 and 'GPU memory' in warnings[0]


def test_get_builder():
  builder = datasets.get_builder(TINY, '~/some_dir')
  assert isinstance(builder, embedded_shapes.EmbeddedShapes)
  assert builder.builder_config.name == 'tiny'
  assert str(builder.data_dir).startswith(os.path.expanduser('~/some_dir'))
  assert datasets.get_builder(
      'embedded_shapes', '/x').builder_config.name == 'default'
  assert datasets.get_builder('imagenet2012', '/x').name == 'imagenet2012'
  with pytest.raises(ValueError, match='embedded_shapes/tiny.*imagenet2012'):
    datasets.get_builder('mnist', '/x')


def test_ensure_prepared_builds_once_and_says_so(built, capsys):
  data_dir, printed = built
  assert printed.count('\n') == 1
  assert 'Building dataset embedded_shapes/tiny' in printed
  assert ' s.' in printed
  assert datasets.is_prepared(TINY, data_dir)
  builder = datasets.ensure_prepared(TINY, data_dir)
  assert builder.info.splits['train'].num_examples == NUM_TRAIN
  assert capsys.readouterr().out == ''  # Already built: silent.


def test_is_prepared_is_false_in_an_empty_dir(tmp_path):
  assert not datasets.is_prepared(TINY, str(tmp_path))
  assert not datasets.is_prepared('imagenet2012', str(tmp_path))
  assert not os.listdir(tmp_path)  # And it built nothing.


def test_unprepared_imagenet_says_how_to_prepare_it(tmp_path):
  with pytest.raises(datasets.DatasetNotPreparedError) as error:
    datasets.ensure_prepared('imagenet2012', str(tmp_path))
  message = str(error.value)
  assert str(tmp_path) in message
  assert 'python -m input_pipeline.prepare_imagenet' in message
  assert '--manual_dir=' in message


# --- preprocessing.py ------------------------------------------------------

HEIGHT, WIDTH = 90, 120


def _jpeg() -> tf.Tensor:
  """A JPEG whose every column and row differ, so crops and flips show."""
  y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
  image = np.stack([x * 2, y * 2, (x + y) % 256], axis=-1).astype(np.uint8)
  return tf.io.encode_jpeg(image, quality=95)


def _example() -> dict[str, tf.Tensor]:
  return {'image': _jpeg(), 'label': tf.constant(3, tf.int64)}


CROP_ARGS = dict(area_range=(0.25, 1.0), aspect_ratio_range=(0.75, 1.33),
                 min_object_covered=0.1, max_attempts=10)


def _in_tf_data(fn, example):
  """Runs fn on `example` inside a tf.data map (graph mode)."""
  ds = tf.data.Dataset.from_tensors(example).map(fn)
  return next(iter(ds))


def _seed(i: int) -> tf.Tensor:
  return tf.constant([7, i], tf.int64)


def test_crop_window_respects_area_and_aspect_ratio():
  shape = tf.constant([HEIGHT, WIDTH, 3], tf.int32)
  windows = [preprocessing.sample_crop_window(shape, _seed(i), **CROP_ARGS)
             for i in range(100)]
  windows = np.array([w.numpy() for w in windows])
  y, x, h, w = windows.T
  assert (y >= 0).all() and (x >= 0).all()
  assert (y + h <= HEIGHT).all() and (x + w <= WIDTH).all()
  area = h * w / (HEIGHT * WIDTH)
  rounding = 2 / min(HEIGHT, WIDTH)  # Sides are whole pixels.
  assert (area >= 0.25 - rounding).all() and (area <= 1.0).all()
  aspect = w / h
  assert (aspect >= 0.75 * (1 - rounding)).all()
  assert (aspect <= 1.33 * (1 + rounding)).all()
  assert len({tuple(w) for w in windows}) > 50  # The seeds matter.


def test_crop_window_falls_back_to_the_whole_image():
  shape = tf.constant([HEIGHT, WIDTH, 3], tf.int32)
  window = preprocessing.sample_crop_window(
      shape, _seed(0), area_range=(0.9, 1.0), aspect_ratio_range=(20.0, 30.0),
      min_object_covered=0.1, max_attempts=10)
  assert window.numpy().tolist() == [0, 0, HEIGHT, WIDTH]


def _random_crop(example, seed):
  return preprocessing.decode_and_random_crop(
      example, seed, image_size=32, resize_method='bicubic', **CROP_ARGS)


@pytest.mark.parametrize('mode', ['eager', 'tf.data'])
def test_decode_and_random_crop(mode):
  run = ((lambda fn: fn(_example())) if mode == 'eager'
         else (lambda fn: _in_tf_data(fn, _example())))
  out = run(lambda ex: _random_crop(ex, _seed(0)))
  assert out['image'].shape == (32, 32, 3) and out['image'].dtype == tf.uint8
  assert out['label'] == 3  # Other keys pass through.
  again = run(lambda ex: _random_crop(ex, _seed(0)))
  np.testing.assert_array_equal(out['image'], again['image'])
  others = [run(lambda ex, i=i: _random_crop(ex, _seed(i)))['image'].numpy()
            for i in range(1, 4)]
  assert not any(np.array_equal(out['image'], o) for o in others)


def test_eager_and_tf_data_agree():
  eager = _random_crop(_example(), _seed(5))['image']
  graph = _in_tf_data(lambda ex: _random_crop(ex, _seed(5)), _example())
  graph = graph['image']
  np.testing.assert_array_equal(eager, graph)


def test_fused_crop_equals_crop_of_decoded_image():
  jpeg = _jpeg()
  window = [10, 20, 50, 60]
  fused = tf.io.decode_and_crop_jpeg(jpeg, window, channels=3).numpy()
  full = tf.io.decode_jpeg(jpeg, channels=3).numpy()[10:60, 20:80]
  assert np.abs(fused.astype(int) - full).max() <= 2


def test_resize_methods():
  image = tf.io.decode_jpeg(_jpeg())
  for method in ('bicubic', 'bilinear'):
    out = preprocessing.resize_to_uint8(image, 16, method)
    assert out.shape == (16, 16, 3) and out.dtype == tf.uint8
  with pytest.raises(ValueError, match='bicubic'):
    preprocessing.resize_to_uint8(image, 16, 'nearest')


@pytest.mark.parametrize('mode', ['eager', 'tf.data'])
def test_random_flip_reverses_columns_for_about_half_the_seeds(mode):
  image = tf.io.decode_jpeg(_jpeg())
  example = {'image': image, 'label': tf.constant(1)}
  flipped = 0
  for i in range(20):
    fn = lambda ex, i=i: preprocessing.random_flip(ex, _seed(i))
    out = fn(example) if mode == 'eager' else _in_tf_data(fn, example)
    out = out['image'].numpy()
    if np.array_equal(out, image.numpy()[:, ::-1]):
      flipped += 1
    else:
      np.testing.assert_array_equal(out, image.numpy())
  assert 3 <= flipped <= 17


def test_center_crop_window():
  window = preprocessing.center_crop_window(
      tf.constant([HEIGHT, WIDTH, 3]), image_size=32, crop_padding=4)
  y, x, h, w = window.numpy()
  assert h == w == int(32 / 36 * HEIGHT)  # 80 of the shorter 90.
  assert (y, x) == ((HEIGHT - h + 1) // 2, (WIDTH - w + 1) // 2)
  window = preprocessing.center_crop_window(
      tf.constant([256, 300, 3]), image_size=224, crop_padding=32)
  assert window.numpy().tolist() == [16, 38, 224, 224]


@pytest.mark.parametrize('mode', ['eager', 'tf.data'])
def test_decode_and_center_crop(mode):
  fn = lambda ex: preprocessing.decode_and_center_crop(
      ex, image_size=32, crop_padding=4, resize_method='bicubic')
  out = fn(_example()) if mode == 'eager' else _in_tf_data(fn, _example())
  assert out['image'].shape == (32, 32, 3) and out['image'].dtype == tf.uint8
  assert out['label'] == 3
  # The same as cropping the decoded image by hand and resizing it.
  y, x, side, _ = preprocessing.center_crop_window(
      tf.constant([HEIGHT, WIDTH, 3]), 32, 4).numpy()
  by_hand = tf.io.decode_jpeg(_jpeg())[y:y + side, x:x + side]
  by_hand = preprocessing.resize_to_uint8(by_hand, 32, 'bicubic')
  assert np.abs(out['image'].numpy().astype(int) - by_hand.numpy()).max() <= 2


# --- pipeline.py -----------------------------------------------------------


def _take(iterator, n: int) -> list[dict[str, np.ndarray]]:
  return [next(iterator) for _ in range(n)]


def test_split_sizes(config):
  # The training loop reads these from the builder; info.py states them without
  # TensorFlow for the budget arithmetic. Both must agree.
  splits = datasets.ensure_prepared(config.dataset, config.data_dir).info.splits
  facts = info.get_dataset_info(config.dataset)
  assert splits['train'].num_examples == NUM_TRAIN == facts.num_train_examples
  assert splits[facts.eval_split].num_examples == NUM_VALIDATION == facts.num_eval_examples
  assert splits['validation[:50%]'].num_examples == NUM_VALIDATION // 2


def test_train_batches(config):
  batch = next(pipeline.create_train_iterator(config, pipeline.Reading(24)))
  assert set(batch) == {'image', 'label'}
  assert batch['image'].shape == (24, 32, 32, 3)
  assert batch['image'].dtype == np.uint8
  assert batch['label'].shape == (24,) and batch['label'].dtype == np.int32
  assert ((0 <= batch['label']) & (batch['label'] < 10)).all()
  assert batch['image'].std() > 10  # Real pictures, not blanks.


def test_train_is_reproducible_and_depends_on_the_seed(config):
  first = _take(pipeline.create_train_iterator(config, pipeline.Reading(16)), 3)
  again = _take(pipeline.create_train_iterator(config, pipeline.Reading(16)), 3)
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a['image'], b['image'])
    np.testing.assert_array_equal(a['label'], b['label'])
  config.seed = 1
  other = _take(pipeline.create_train_iterator(config, pipeline.Reading(16)), 3)
  assert not np.array_equal(first[0]['image'], other[0]['image'])
  assert not all(np.array_equal(a['label'], b['label'])
                 for a, b in zip(first, other))


def _digests(images: np.ndarray) -> list[str]:
  return [hashlib.sha1(image.tobytes()).hexdigest() for image in images]


def test_processes_read_slices_of_the_same_global_batches(config):
  # Each example's augmentation is keyed by (seed, example, epoch), so the
  # processes' images, side by side, are the one-process batch exactly.
  steps = NUM_TRAIN // 64 + 2  # Past the end of the first epoch.
  whole = _take(pipeline.create_train_iterator(config, pipeline.Reading(64)), steps)
  for process_count in (2, 4):
    parts = [_take(pipeline.create_train_iterator(
        config, pipeline.Reading(64 // process_count, process_index=i,
                                 process_count=process_count)), steps)
             for i in range(process_count)]
    for step, batch in enumerate(whole):
      for key in batch:
        np.testing.assert_array_equal(
            np.concatenate([part[step][key] for part in parts]), batch[key],
            err_msg=f'{process_count} processes, step {step}, {key}')


def test_train_epoch_holds_every_example_once(config):
  # Whole-image crops without flips make each example's image fixed, so that
  # the examples of an epoch can be told apart by content.
  config.input.crop_area_range = (1.0, 1.0)
  config.input.random_flip = False
  epoch = _take(pipeline.create_train_iterator(config, pipeline.Reading(32)), NUM_TRAIN // 32)
  assert len(set(_digests(np.concatenate([b['image'] for b in epoch])))) == NUM_TRAIN


def test_train_resumes_at_any_step_in_constant_time(config):
  # The stream from batch t is the tail of the stream from 0: nothing before t
  # is read, so starting at a late step costs what starting at 0 costs.
  whole = _take(pipeline.create_train_iterator(config, pipeline.Reading(32)), 18)
  tail = _take(pipeline.create_train_iterator(config, pipeline.Reading(32), start_batch=15), 3)
  for a, b in zip(whole[15:], tail):
    np.testing.assert_array_equal(a['image'], b['image'])
  def first_batch_seconds(start_batch: int) -> float:
    start = time.perf_counter()
    next(pipeline.create_train_iterator(config, pipeline.Reading(32), start_batch=start_batch))
    return time.perf_counter() - start
  first_batch_seconds(0)  # Traces the functions once.
  early = min(first_batch_seconds(16) for _ in range(2))
  late = min(first_batch_seconds(16 * 10**6) for _ in range(2))  # 10^6 epochs on.
  assert late < 3 * early + 0.5, (early, late)


def test_a_tfrecord_build_says_what_to_do(config, tmp_path):
  # A build as TFRecord, as the harness made them before issue 15, in the info
  # tfds reads (its record files do not matter: none is read).
  version = os.path.join('embedded_shapes', 'tiny', '1.0.0')
  shutil.copytree(os.path.join(config.data_dir, version), tmp_path / version)
  info_path = tmp_path / version / 'dataset_info.json'
  dataset_info = json.loads(info_path.read_text())
  info_path.write_text(json.dumps({**dataset_info, 'fileFormat': 'tfrecord'}))
  config.data_dir = str(tmp_path)
  message = ('stored as tfrecord; the input reads records by index, from array_record: '
             f'delete {tmp_path / version} and the next run builds it again')
  for create in (pipeline.create_train_iterator, pipeline.create_eval_dataset):
    with pytest.raises(datasets.DataError, match=re.escape(message)):
      create(config, pipeline.Reading(8))


def _eval_pass(eval_data) -> dict[str, np.ndarray]:
  batches = list(eval_data)
  return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def test_eval_sees_every_example_once(config):
  eval_data = pipeline.create_eval_dataset(config, pipeline.Reading(64))
  out = _eval_pass(eval_data)
  assert out['image'].shape == (256, 32, 32, 3)  # 4 batches for 200 examples.
  assert out['image'].dtype == np.uint8 and out['label'].dtype == np.int32
  assert out['mask'].dtype == bool
  assert out['mask'].sum() == NUM_VALIDATION
  assert out['mask'][:NUM_VALIDATION].all()  # Padding only at the end.
  assert not out['image'][~out['mask']].any()
  real = out['image'][out['mask']]
  assert len(set(_digests(real))) == NUM_VALIDATION
  labels = np.bincount(out['label'][out['mask']], minlength=10)
  assert labels.tolist() == [20] * 10
  # Re-iterable, from the cache, with the same content.
  again = _eval_pass(eval_data)
  for key in out:
    np.testing.assert_array_equal(out[key], again[key])
  once = list(pipeline.create_eval_iterator(config, pipeline.Reading(64)))
  np.testing.assert_array_equal(
      np.concatenate([b['image'] for b in once]), out['image'])


def test_eval_shards_cover_the_split_with_equal_batch_counts(config):
  passes = [_eval_pass(pipeline.create_eval_dataset(
      config, pipeline.Reading(32, process_index=i, process_count=3)))
            for i in range(3)]
  assert {len(p['mask']) for p in passes} == {96}  # ceil(67 / 32) batches.
  assert [p['mask'].sum() for p in passes] == [67, 67, 66]
  digests = [set(_digests(p['image'][p['mask']])) for p in passes]
  assert len(set.union(*digests)) == NUM_VALIDATION
  assert sum(len(d) for d in digests) == NUM_VALIDATION


def test_train_out_of_order_keeps_each_position_content(config):
  # config.input.deterministic=False (what the loop passes) only lets the
  # decoding finish out of order: the example and augmentation at each position
  # of the stream are fixed upstream, so the stream holds the same images,
  # merely permuted within the few decodes in flight.
  ordered = _take(pipeline.create_train_iterator(config, pipeline.Reading(32)), 20)
  unordered = _take(pipeline.create_train_iterator(
      config, pipeline.Reading(32), deterministic=False), 16)
  for batch in unordered:
    assert batch['image'].shape == (32, 32, 32, 3)
    assert batch['image'].dtype == np.uint8 and batch['label'].dtype == np.int32
    assert ((0 <= batch['label']) & (batch['label'] < 10)).all()
  # Random crops make every position's image unique: the first 512 out of
  # order are 512 distinct images among the first 640 in order.
  unordered_images = set(_digests(np.concatenate([b['image'] for b in unordered])))
  assert len(unordered_images) == 16 * 32
  assert unordered_images <= set(_digests(np.concatenate([b['image'] for b in ordered])))


def test_eval_cache_bytes():
  # ImageNet's validation split at 224 px: 7.5 GB on one host.
  assert pipeline.eval_cache_bytes(50_000, 224) == 7_526_400_000
  assert pipeline.eval_cache_bytes(25_000, 224) == 7_526_400_000 // 2


@pytest.mark.parametrize('mode,cache_bytes,available,expected', [
    ('always', 10**12, 1, True),
    ('never', 1, 10**12, False),
    ('auto', 499, 1000, True),  # Under half of the free memory.
    ('auto', 500, 1000, False),
    ('auto', 1, 0, False),
])
def test_should_cache_eval(mode, cache_bytes, available, expected):
  assert pipeline.should_cache_eval(mode, cache_bytes, available) is expected


def test_should_cache_eval_names_the_valid_modes():
  with pytest.raises(ValueError, match='auto, always, never'):
    pipeline.should_cache_eval('True', 1, 10**12)


def test_cache_eval_modes_agree_with_validation():
  from train.run import validation  # pylint: disable=g-import-not-at-top
  assert pipeline.CACHE_EVAL_MODES == validation.CACHE_EVAL_MODES


def test_eval_dataset_logs_its_cache_decision(config, caplog, monkeypatch):
  # 200 images of 32x32x3 bytes: 0.6 MB.
  def decision(available_bytes: int) -> str:
    monkeypatch.setattr(pipeline, 'available_memory_bytes', lambda: available_bytes)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger='absl'):
      pipeline.create_eval_dataset(config, pipeline.Reading(64))
    return caplog.text
  assert "input.cache_eval='auto'): caching 200 preprocessed images, 0.6 MB" in (
      decision(2_000_000))
  assert "input.cache_eval='auto'): not caching 200" in decision(1_000_000)
  config.input.cache_eval = 'always'
  assert "input.cache_eval='always'): caching" in decision(0)
