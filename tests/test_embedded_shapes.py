"""Tests of the embedded shapes dataset: layout, determinism, learnable task.

The `tiny` config is built once per test run (conftest.py's tiny_build).
"""

import collections

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from input_pipeline import embedded_shapes
from input_pipeline import info
from input_pipeline import shapes


@pytest.fixture(scope='module')
def builder(tiny_data_dir) -> tfds.core.DatasetBuilder:
  return embedded_shapes.EmbeddedShapes(data_dir=tiny_data_dir, config='tiny')


def _records(builder, split: str) -> list[dict]:
  """All examples of `split`, in their stored order, with the image as its JPEG bytes."""
  source = builder.as_data_source(split, decoders={'image': tfds.decode.SkipDecoding()})
  return [source[i] for i in range(len(source))]


@pytest.fixture(scope='module')
def train_records(builder) -> list[dict]:
  return _records(builder, 'train')


@pytest.fixture(scope='module')
def validation_records(builder) -> list[dict]:
  return _records(builder, 'validation')


def _index(file_name: bytes) -> int:
  return int(file_name.decode().rsplit('_', 1)[1].split('.')[0])


def test_generation_is_deterministic():
  for split, index in [('train', 0), ('train', 13), ('validation', 7)]:
    first = shapes.generate_example(split, index)
    second = shapes.generate_example(split, index)
    assert first == second


def test_examples_differ_within_and_across_splits():
  # Same class (index % 10) in each pair, so only the random draw differs.
  pairs = [('train', 0), ('train', 10), ('validation', 0)]
  images = {shapes.generate_example(split, index)['image']
            for split, index in pairs}
  assert len(images) == 3


def test_build_stores_the_generated_bytes(train_records, validation_records):
  # The build ran in worker processes: the bytes must still be those of a
  # fresh call, so every build of the dataset is the same.
  for split, records in [('train', train_records),
                         ('validation', validation_records)]:
    for record in records[:5]:
      expected = shapes.generate_example(
          split, _index(record['file_name']))
      assert record['image'] == expected['image']
      assert record['label'] == expected['label']
      assert record['file_name'].decode() == expected['file_name']


def test_layout_matches_imagenet2012(builder, tmp_path):
  imagenet = tfds.builder('imagenet2012', data_dir=tmp_path).info.features
  features = builder.info.features
  assert set(features) == set(imagenet) == {'image', 'label', 'file_name'}
  assert isinstance(features['image'], tfds.features.Image)
  assert features['image'].encoding_format == 'jpeg'
  assert features['image'].shape == imagenet['image'].shape == (None, None, 3)
  assert features['image'].dtype == imagenet['image'].dtype == np.uint8
  assert isinstance(features['label'], tfds.features.ClassLabel)
  assert features['label'].names == list(shapes.CLASS_NAMES)
  assert isinstance(features['file_name'], tfds.features.Text)
  assert builder.info.supervised_keys == ('image', 'label')
  assert set(builder.info.splits) == {'train', 'validation'}


def test_split_sizes_match_info(builder):
  for name, config in [(info.EMBEDDED_SHAPES_TINY, 'tiny'),
                       (info.EMBEDDED_SHAPES, 'default')]:
    facts = info.get_dataset_info(name)
    config = embedded_shapes.EmbeddedShapes.builder_configs[config]
    assert config.num_train_examples == facts.num_train_examples
    assert config.num_validation_examples == facts.num_eval_examples
    assert facts.num_classes == len(shapes.CLASS_NAMES) == 10
  facts = info.get_dataset_info(info.EMBEDDED_SHAPES_TINY)
  assert builder.info.splits['train'].num_examples == facts.num_train_examples
  splits = builder.info.splits
  assert splits['validation'].num_examples == facts.num_eval_examples
  assert builder.info.features['label'].num_classes == facts.num_classes


def test_labels_cover_all_classes_evenly(train_records, validation_records):
  for records in (train_records, validation_records):
    counts = collections.Counter(int(r['label']) for r in records)
    assert sorted(counts) == list(range(10))
    assert max(counts.values()) - min(counts.values()) <= 1
    # The stored order is shuffled: no run of one class.
    labels = [int(r['label']) for r in records[:20]]
    assert labels != sorted(labels)


def test_images_decode_with_varied_sizes(validation_records):
  shapes, sizes = set(), []
  for record in validation_records:
    image = tf.io.decode_jpeg(record['image'], channels=3).numpy()
    assert image.dtype == np.uint8 and image.shape[2] == 3
    assert 64 <= min(image.shape[:2]) and max(image.shape[:2]) <= 128
    shapes.add(image.shape[:2])
    sizes.append(len(record['image']))
  assert len(shapes) > 50
  aspect_ratios = {round(w / h, 1) for h, w in shapes}
  assert {0.7, 1.0, 1.3, 1.8} <= aspect_ratios  # 3:4, 1:1, 4:3, 16:9.
  assert 2000 < np.mean(sizes) < 5000


def test_shapes_survive_a_horizontal_flip():
  # Every polygon is its own mirror image, so a flip keeps the class.
  for name, parts in shapes._SHAPES.items():
    for _, polygon in parts:
      mirrored = polygon * [-1, 1]
      distance = np.abs(mirrored[:, None] - polygon[None]).sum(-1).min(1)
      assert distance.max() < 1e-6, name


def test_object_stands_out_from_its_surroundings():
  # Drawn at least 60 brightness levels off the background under it; the
  # margin below leaves room for the gradient, the lines and the noise.
  luma_weights = [0.299, 0.587, 0.114]
  for index in range(30):
    image, label, coverage = shapes._draw('train', index)
    assert image.dtype == np.uint8 and 0 <= label < 10
    coverage = coverage[..., 0]
    luma = image.astype(np.float64) @ luma_weights
    ys, xs = np.nonzero(coverage > 0.01)
    around = np.zeros_like(coverage, dtype=bool)
    around[max(ys.min() - 4, 0):ys.max() + 5,
           max(xs.min() - 4, 0):xs.max() + 5] = True
    around &= coverage < 0.01
    inside = coverage > 0.99
    assert abs(luma[inside].mean() - luma[around].mean()) > 45, index


def _mean_colours(records) -> tuple[np.ndarray, np.ndarray]:
  colours = [tf.io.decode_jpeg(r['image']).numpy().reshape(-1, 3).mean(0)
             for r in records]
  return np.array(colours), np.array([r['label'] for r in records])


def test_label_not_recoverable_from_mean_colour(train_records,
                                                validation_records):
  train_x, train_y = _mean_colours(train_records)
  valid_x, valid_y = _mean_colours(validation_records)
  class_means = np.stack([train_x[train_y == c].mean(0) for c in range(10)])
  distances = ((valid_x[:, None] - class_means[None]) ** 2).sum(-1)
  accuracy = (distances.argmin(1) == valid_y).mean()
  assert accuracy < 0.3
  # The class means lie within a fraction of the spread of single images.
  assert class_means.std(0).max() < 0.5 * train_x.std(0).min()
