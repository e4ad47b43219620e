"""Dataset names to tfds builders, and preparing the data on first use.

The embedded shapes dataset builds itself in seconds the first time it is asked
for; ImageNet cannot be downloaded (it needs the ILSVRC2012 tars by hand), so an
unprepared ImageNet fails early with the command that prepares it.
"""

import logging
import os
import shutil
import time
from typing import Callable

import tensorflow as tf
import tensorflow_datasets as tfds
from google.protobuf import json_format
from tensorflow_datasets.core.utils import tqdm_utils

from choices import check_choice
from input_pipeline import embedded_shapes
from input_pipeline import errors
from input_pipeline import info


# Defined without TensorFlow (input_pipeline/errors.py); their names here too.
DataError = errors.DataError
DatasetNotPreparedError = errors.DatasetNotPreparedError


def _one_line(error: BaseException) -> str:
  # TensorFlow prefixes its op errors with the op's internal name in braces.
  text = str(error.message if isinstance(error, tf.errors.OpError) else error)
  text = ' '.join(text.split())
  if text.startswith('{{'):
    text = text.partition('}}')[2].strip()
  return f'{type(error).__name__}: {text.partition(" [Op:")[0]}'


def _remedy(dataset: str, data_path: str) -> str:
  if dataset in _SELF_BUILDING:
    return f'delete {data_path} and the next run builds it again'
  return (f'prepare it again: move {data_path} aside, then run '
          f'{prepare_command(dataset, os.path.dirname(os.path.dirname(data_path)))}')


def remedy(dataset: str, data_path: str) -> str:
  """What to do about a copy of `dataset` in `data_path` that cannot be read: build
  or prepare it again (tfds's `convert_format` would keep the images, but needs
  apache_beam, which the harness does not install)."""
  return _remedy(dataset, data_path)


class _CheckedReads:
  """Iterates `iterable` (a tf.data stream), turning TensorFlow's read errors
  (a truncated or damaged file) into DataError; iterable again if it is."""

  def __init__(self, iterable, dataset: str, data_path: str):
    self._iterable, self._dataset, self._data_path = iterable, dataset, data_path

  def __iter__(self):
    try:
      yield from self._iterable
    except tf.errors.OpError as e:
      raise DataError(f'the data of {self._dataset} in {self._data_path} cannot be read '
                      f'({_one_line(e)}); a file there is damaged: '
                      f'{_remedy(self._dataset, self._data_path)}') from None


def checked_reads(iterable, dataset: str, data_dir: str):
  """`iterable` whose read errors are DataError (see _CheckedReads)."""
  data_path = os.fspath(get_builder(dataset, data_dir).data_path)
  return _CheckedReads(iterable, dataset, data_path)


def hide_gpus_from_tensorflow() -> None:
  """Keeps TensorFlow off the accelerators: they belong to JAX.

  TensorFlow would otherwise reserve most of the GPU memory for an input
  pipeline that runs on the CPU anyway. Safe to call more than once.
  """
  try:
    tf.config.set_visible_devices([], 'GPU')
  except RuntimeError:
    # TensorFlow's devices were initialised already: fine if an earlier call
    # hid the GPUs, worth a warning if something else initialised them first.
    if tf.config.get_visible_devices('GPU'):
      logging.warning('TensorFlow initialised before its GPUs could be hidden; '
                      'it may hold GPU memory that JAX needs.')


hide_gpus_from_tensorflow()


def _embedded(config: str) -> Callable[[str], tfds.core.DatasetBuilder]:
  return lambda data_dir: embedded_shapes.EmbeddedShapes(
      data_dir=data_dir, config=config)


def _imagenet2012(data_dir: str) -> tfds.core.DatasetBuilder:
  # The class itself, not tfds.builder, which wraps the errors of reading its
  # dataset_info.json in a paragraph about constructing the dataset.
  return tfds.builder_cls(info.IMAGENET2012)(data_dir=data_dir)


_BUILDERS: dict[str, Callable[[str], tfds.core.DatasetBuilder]] = {
    info.EMBEDDED_SHAPES: _embedded('default'),
    info.EMBEDDED_SHAPES_TINY: _embedded('tiny'),
    info.IMAGENET2012: _imagenet2012,
}
# Datasets that are generated locally and may therefore be built on demand.
_SELF_BUILDING = frozenset({info.EMBEDDED_SHAPES, info.EMBEDDED_SHAPES_TINY})


def _version_dir(dataset: str, data_dir: str) -> str:
  """Where tfds keeps `dataset` in `data_dir`: <data_dir>/<name>[/<config>]/<version>,
  the version being its builder's (the one get_builder reads)."""
  builder_class = (embedded_shapes.EmbeddedShapes if dataset in _SELF_BUILDING
                   else tfds.builder_cls(dataset))
  return os.path.join(data_dir, dataset, str(builder_class.VERSION))


def get_builder(dataset: str, data_dir: str) -> tfds.core.DatasetBuilder:
  """Returns the tfds builder of `dataset` in `data_dir` (`~` expanded).

  Cheap: it builds nothing. Raises ValueError naming the valid datasets, and
  DataError when the copy there has a dataset_info.json that cannot be read:
  tfds parses it as it makes the builder, and would raise protobuf's ParseError
  (or a UnicodeDecodeError for bytes that are no text).
  """
  check_choice('dataset', dataset, sorted(_BUILDERS), show=str, label='valid datasets')
  data_dir = os.path.expanduser(data_dir)
  try:
    return _BUILDERS[dataset](data_dir)
  except (json_format.Error, UnicodeDecodeError) as e:
    data_path = _version_dir(dataset, data_dir)
    raise DataError(f'{data_path} holds a damaged copy of {dataset} (its dataset_info.json '
                    f'cannot be read: {_one_line(e)}); {_remedy(dataset, data_path)}') from None


def _is_prepared(builder: tfds.core.DatasetBuilder) -> bool:
  # tfds logs a warning when asked about a folder that does not exist, which
  # before the first build is the normal case, not a problem worth a warning.
  return builder.data_path.exists() and builder.is_prepared()


def is_prepared(dataset: str, data_dir: str) -> bool:
  """Whether `dataset` is ready to read in `data_dir`; builds nothing.

  Quietly: it runs at validation, before the command's logs go to their file,
  and tfds logs at INFO each dataset_info.json it reads.
  """
  absl_logger = logging.getLogger('absl')
  level = absl_logger.level
  absl_logger.setLevel(max(level, logging.WARNING))
  try:
    return _is_prepared(get_builder(dataset, data_dir))
  finally:
    absl_logger.setLevel(level)


prepare_command = info.prepare_command


def _not_prepared_message(dataset: str, data_dir: str) -> str:
  return (
      f'{dataset} is not prepared in data_dir={data_dir!r}. ImageNet cannot '
      'be downloaded automatically; prepare it once from the ILSVRC2012 tars '
      f'with\n  {prepare_command(dataset, data_dir)}')


def _warn_if_unchecked(builder: tfds.core.DatasetBuilder) -> None:
  # prepare_imagenet decodes every image once and leaves out those that fail;
  # a build by anything else may hold one that stops training mid-run.
  if not (builder.data_path / info.SKIPPED_IMAGES_FILE).exists():
    logging.warning('%s was not prepared by input_pipeline.prepare_imagenet, so '
                    'its images were not checked: one that does not decode will '
                    'stop training with a tf.data error.', builder.data_path)


def _remove_created(data_dir: str, before: set[str] | None, data_path: str) -> None:
  """Removes what a failed build created: new entries of `data_dir` (tfds'
  downloads/ and the dataset's folder; all of it if it is new), and the empty
  folders above `data_path` (tfds removes its own incomplete ones)."""
  if before is None:
    shutil.rmtree(data_dir, ignore_errors=True)
    return
  for name in set(os.listdir(data_dir)) - before:
    shutil.rmtree(os.path.join(data_dir, name), ignore_errors=True)
  path = data_path
  while path.startswith(data_dir + os.sep) and os.path.isdir(path) and not os.listdir(path):
    os.rmdir(path)
    path = os.path.dirname(path)


def ensure_prepared(dataset: str, data_dir: str) -> tfds.core.DatasetBuilder:
  """Returns the builder of `dataset`, building the embedded datasets if needed.

  Raises DatasetNotPreparedError for an unprepared ImageNet, with the command
  that prepares it.
  """
  builder = get_builder(dataset, data_dir)
  if _is_prepared(builder):
    if dataset not in _SELF_BUILDING:
      _warn_if_unchecked(builder)
    return builder
  data_dir = os.path.expanduser(data_dir)
  data_path = os.fspath(builder.data_path)
  if os.path.isdir(data_path) and os.listdir(data_path):
    # tfds would take a version folder without its dataset_info.json for an
    # empty dataset, "build" nothing into it, and fail later on a missing split.
    raise DataError(f'{data_path} holds a damaged copy of {dataset} (no '
                    f'dataset_info.json); {_remedy(dataset, data_path)}')
  if dataset not in _SELF_BUILDING:
    raise DatasetNotPreparedError(_not_prepared_message(dataset, data_dir))
  # One line, finished when the build is; tqdm's bars would add dozens.
  print(f'Building dataset {dataset} in {data_dir} (first use) ...', end='',
        flush=True)
  start = time.perf_counter()
  progress_bar_was_on = getattr(tqdm_utils, '_active', True)
  tfds.display_progress_bar(False)
  before = set(os.listdir(data_dir)) if os.path.isdir(data_dir) else None
  try:
    builder.download_and_prepare(file_format=info.FILE_FORMAT)
  except (OSError, tf.errors.OpError) as e:
    print(flush=True)  # Ends the 'Building ...' line.
    _remove_created(data_dir, before, data_path)
    raise DataError(f'cannot build {dataset} in {data_dir} ({_one_line(e)}); free disk '
                    'space there or give another --config.data_dir') from None
  except BaseException:  # A Ctrl-C, or the builder's own failure: no half-built copy.
    print(flush=True)
    _remove_created(data_dir, before, data_path)
    raise
  finally:
    tfds.display_progress_bar(progress_bar_was_on)
  print(f' done in {time.perf_counter() - start:.1f} s.', flush=True)
  return builder
