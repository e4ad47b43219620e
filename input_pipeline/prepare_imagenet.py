"""Prepares ImageNet (ILSVRC2012) for the harness from the two tars.

  python -m input_pipeline.prepare_imagenet --data_dir=~/tensorflow_datasets \\
      --manual_dir=DIR_WITH_ILSVRC2012_TARS

`manual_dir` must hold ILSVRC2012_img_train.tar (138 GB) and
ILSVRC2012_img_val.tar (6.3 GB) from image-net.org. tfds's own imagenet2012
builder does the work (it also fixes the 22 CMYK JPEGs and the one PNG). The
output is about the tars' size (~143 GiB); the README's "Disk space and time"
estimates the time (about an hour on a fast SSD), extrapolated from fake archives.

A missing tar ends with one line naming it and exit status 2, before TensorFlow
is imported. An interrupted build leaves nothing tfds would reuse: tfds writes
into `<data_dir>/imagenet2012/incomplete.*` and renames it when done, so a
re-run starts the build again from the tars; this script first deletes the
folders a killed build left behind (do not run two builds into one data_dir).
"""

import argparse
import os
import shutil
import sys
import time

USAGE_ERROR = 2
TARS = ('ILSVRC2012_img_train.tar', 'ILSVRC2012_img_val.tar')
_WHERE_TO_GET = ('get it from https://image-net.org/download-images (log in, '
                 'ILSVRC2012 downloads: "Training images (Task 1 & 2)" and '
                 '"Validation images (all tasks)")')


class MissingArchiveError(FileNotFoundError):
  """A tar tfds needs is not in manual_dir."""


def check_archives(manual_dir: str) -> None:
  """Raises MissingArchiveError, with a one-line message, for a missing tar."""
  for name in TARS:
    path = os.path.join(manual_dir, name)
    if not os.path.isfile(path):
      raise MissingArchiveError(
          f'{name} not found: looked for {path}; {_WHERE_TO_GET}.')


def _remove_stale_builds(builder) -> None:
  # A build killed outright (not by an exception, which tfds cleans up after)
  # leaves its incomplete.* folder, up to the size of the whole dataset.
  parent = os.fspath(builder.data_path.parent)
  if not os.path.isdir(parent):
    return
  for name in sorted(os.listdir(parent)):
    if name.startswith('incomplete.'):
      path = os.path.join(parent, name)
      print(f'Removing {path}, left by an interrupted build.', flush=True)
      shutil.rmtree(path, ignore_errors=True)


def prepare(data_dir: str, manual_dir: str) -> str:
  """Builds imagenet2012 in `data_dir` from the tars in `manual_dir`.

  Returns the dataset's folder. Does nothing (but say so) if it is prepared.
  """
  data_dir = os.path.expanduser(data_dir)
  manual_dir = os.path.expanduser(manual_dir)
  # Imported here so that a missing tar is reported without loading TF.
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from input_pipeline import datasets  # pylint: disable=g-import-not-at-top
  from input_pipeline import info  # pylint: disable=g-import-not-at-top

  builder = datasets.get_builder(info.IMAGENET2012, data_dir)
  if datasets.is_prepared(info.IMAGENET2012, data_dir):
    print(f'imagenet2012 is already prepared in {builder.data_path}; '
          'nothing to do.', flush=True)
    return os.fspath(builder.data_path)
  check_archives(manual_dir)
  _remove_stale_builds(builder)
  print(f'Preparing imagenet2012 in {data_dir} from {manual_dir} ...',
        flush=True)
  start = time.perf_counter()
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  seconds = time.perf_counter() - start
  print(f'Prepared imagenet2012 in {seconds / 60:.1f} min ({seconds:.0f} s); '
        f'the data is in {builder.data_path}', flush=True)
  return os.fspath(builder.data_path)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--data_dir', required=True,
                      help='tfds data directory (config.data_dir).')
  parser.add_argument('--manual_dir', required=True,
                      help='folder holding the two ILSVRC2012 tars.')
  args = parser.parse_args(argv)
  # Fail fast, before TensorFlow loads, unless there is nothing to build.
  try:
    if not _looks_prepared(args.data_dir):
      check_archives(os.path.expanduser(args.manual_dir))
    prepare(args.data_dir, args.manual_dir)
  except MissingArchiveError as e:
    print(f'error: {e}', file=sys.stderr)
    return USAGE_ERROR
  return 0


def _looks_prepared(data_dir: str) -> bool:
  # A cheap stand-in for datasets.is_prepared, which needs TensorFlow: any
  # finished version folder has a dataset_info.json.
  root = os.path.join(os.path.expanduser(data_dir), 'imagenet2012')
  return os.path.isdir(root) and any(
      os.path.isfile(os.path.join(root, version, 'dataset_info.json'))
      for version in os.listdir(root))


if __name__ == '__main__':
  sys.exit(main())
