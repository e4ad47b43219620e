"""Prepares ImageNet (ILSVRC2012) for the harness from the two tars.

  python -m input_pipeline.prepare_imagenet --data_dir=~/tensorflow_datasets \\
      --manual_dir=DIR_WITH_ILSVRC2012_TARS

`manual_dir` must hold ILSVRC2012_img_train.tar (138 GB) and
ILSVRC2012_img_val.tar (6.3 GB) from image-net.org. tfds's own imagenet2012
builder does the work (it also fixes the 22 CMYK JPEGs and the one PNG), with
one addition: every image is decoded once, and one that does not decode (a
damaged copy) is left out, named on the console and listed with its error in
`<data_dir>/imagenet2012/<version>/skipped_images.json` (input_pipeline/
imagenet_builder.py), rather than stopping a training run later. The
output is about the tars' size (~143 GiB); docs/imagenet.md's "Disk space and time"
estimates the time (about an hour on a fast SSD), extrapolated from fake archives.

A missing tar ends with one line naming it and exit status 2, before TensorFlow
is imported. An interrupted build leaves nothing tfds would reuse: tfds writes
into `<data_dir>/imagenet2012/incomplete.*` and renames it when done, so a
re-run starts the build again from the tars; this script first deletes the
folders a killed build left behind (do not run two builds into one data_dir).
"""

import argparse
import gc
import json
import os
import shutil
import signal
import sys
import tarfile
import time

from input_pipeline import info

USAGE_ERROR = 2
_NAMES_SHOWN = 5
TARS = ('ILSVRC2012_img_train.tar', 'ILSVRC2012_img_val.tar')
_WHERE_TO_GET = ('get it from https://image-net.org/download-images (log in, '
                 'ILSVRC2012 downloads: "Training images (Task 1 & 2)" and '
                 '"Validation images (all tasks)")')


class MissingArchiveError(FileNotFoundError):
  """A tar tfds needs is not in manual_dir."""


class BadArchiveError(ValueError):
  """A tar is there but is not, or no longer, what image-net.org serves."""


class DataDirError(ValueError):
  """--data_dir cannot hold the prepared data, or holds a damaged copy of it."""


def check_data_dir(data_dir: str) -> None:
  """Raises DataDirError unless `data_dir` is, or can be created as, a writable
  directory: checked before the tars are read, not an hour into the build."""
  existing = os.path.abspath(data_dir)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    where = '' if existing == os.path.abspath(data_dir) else f' ({existing} is a file)'
    raise DataDirError(f'--data_dir={data_dir} is not a directory{where}; give a directory '
                       'for the tfds data (the one config.data_dir will name)')
  if not os.access(existing, os.W_OK):
    raise DataDirError(f'--data_dir={data_dir}: {existing} is not writable; give a '
                       'directory you can write to')


_DOWNLOAD_AGAIN = ('check its sha256 against image-net.org\'s and download it again')
# What each tar holds first: the train tar holds a tar per class, the
# validation tar the JPEGs themselves.
_FIRST_MEMBERS = {TARS[0]: ('.tar', 'a tar per class (n01440764.tar, ...)'),
                  TARS[1]: ('.JPEG', 'JPEGs (ILSVRC2012_val_00000001.JPEG, ...)')}


def check_archive_contents(manual_dir: str) -> None:
  """Raises BadArchiveError for a tar that is empty, not a tar, or another tar.

  Reads each tar's first header only; a tar cut short further on is found by
  the build itself (see main).
  """
  for name, (suffix, holds) in _FIRST_MEMBERS.items():
    path = os.path.join(manual_dir, name)
    if os.path.getsize(path) == 0:
      raise BadArchiveError(f'{path} is empty (0 bytes); {_DOWNLOAD_AGAIN}')
    try:
      with tarfile.open(path, 'r:') as tar:
        first = tar.next()
    except (tarfile.TarError, OSError, EOFError) as e:
      raise BadArchiveError(f'{path} is not a tar archive ({type(e).__name__}: {e}); '
                            f'{_DOWNLOAD_AGAIN}') from None
    if first is None or not first.name.endswith(suffix):
      found = 'nothing' if first is None else first.name
      raise BadArchiveError(f'{path} is not ILSVRC2012\'s {name}: that holds {holds}, this '
                            f'one starts with {found}; {_DOWNLOAD_AGAIN}')


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


def _remove_created(data_dir: str, before: set[str] | None) -> None:
  """Removes what a failed build created in `data_dir` (tfds' downloads/ and
  imagenet2012/ folders, or `data_dir` itself when it did not exist)."""
  if before is None:
    shutil.rmtree(data_dir, ignore_errors=True)
    return
  for name in set(os.listdir(data_dir)) - before:
    shutil.rmtree(os.path.join(data_dir, name), ignore_errors=True)


def prepare(data_dir: str, manual_dir: str) -> str:
  """Builds imagenet2012 in `data_dir` from the tars in `manual_dir`.

  Returns the dataset's folder. Does nothing (but say so) if it is prepared.
  """
  data_dir = os.path.expanduser(data_dir)
  manual_dir = os.path.expanduser(manual_dir)
  # Imported here so that a missing tar is reported without loading TF.
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  from input_pipeline import datasets  # pylint: disable=g-import-not-at-top
  from input_pipeline import imagenet_builder  # pylint: disable=g-import-not-at-top

  try:  # Before the builder, which would read a damaged dataset_info.json too.
    prepared = datasets.is_prepared(info.IMAGENET2012, data_dir)
  except datasets.DataError as e:
    raise DataDirError(str(e)) from None
  builder = imagenet_builder.CheckedImagenet2012(data_dir=data_dir)
  if prepared:
    print(f'imagenet2012 is already prepared in {builder.data_path}; '
          'nothing to do.', flush=True)
    return os.fspath(builder.data_path)
  check_archives(manual_dir)
  check_archive_contents(manual_dir)
  _remove_stale_builds(builder)
  print(f'Preparing imagenet2012 in {data_dir} from {manual_dir} ...',
        flush=True)
  start = time.perf_counter()
  before = set(os.listdir(data_dir)) if os.path.isdir(data_dir) else None
  try:
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir),
        file_format=info.FILE_FORMAT)
  except BaseException:
    _remove_created(data_dir, before)
    raise
  seconds = time.perf_counter() - start
  _report_skipped(builder.skipped, os.fspath(builder.data_path))
  print(f'Prepared imagenet2012 in {seconds / 60:.1f} min ({seconds:.0f} s); '
        f'the data is in {builder.data_path}', flush=True)
  return os.fspath(builder.data_path)


def _report_skipped(skipped: list[dict[str, str]], data_path: str) -> None:
  """Records the images left out (none, normally) next to the data, and names them."""
  path = os.path.join(data_path, info.SKIPPED_IMAGES_FILE)
  with open(path, 'w') as f:
    json.dump({'count': len(skipped), 'images': skipped}, f, indent=1)
  if skipped:
    names = ', '.join(f'{s["file_name"]} ({s["split"]})' for s in skipped[:_NAMES_SHOWN])
    more = f' and {len(skipped) - _NAMES_SHOWN} more' if len(skipped) > _NAMES_SHOWN else ''
    print(f'Skipped {len(skipped)} image(s) that do not decode as JPEG: {names}{more}; '
          f'each is listed with its error in {path}.', flush=True)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--data_dir', required=True,
                      help='tfds data directory (config.data_dir).')
  parser.add_argument('--manual_dir', required=True,
                      help='folder holding the two ILSVRC2012 tars.')
  args = parser.parse_args(argv)
  # Fail fast, before TensorFlow loads, unless there is nothing to build.
  manual_dir = os.path.expanduser(args.manual_dir)
  interrupted = False
  try:
    check_data_dir(os.path.expanduser(args.data_dir))
    if not info.looks_prepared(info.IMAGENET2012, args.data_dir):
      check_archives(manual_dir)
      check_archive_contents(manual_dir)
    prepare(args.data_dir, args.manual_dir)
  except (MissingArchiveError, BadArchiveError, DataDirError) as e:
    print(f'error: {e}', file=sys.stderr)
    return USAGE_ERROR
  except (tarfile.TarError, EOFError) as e:
    # tfds reads both tars through; it does not say which one ended early. The
    # newline ends the line its progress bar was drawing.
    print(f'\nerror: a tar in {manual_dir} cannot be read to its end ({type(e).__name__}: '
          f'{" ".join(str(e).split())}): one is damaged or was cut short; for each, '
          f'{_DOWNLOAD_AGAIN}', file=sys.stderr)
    return USAGE_ERROR
  except KeyboardInterrupt:  # prepare() has removed what the build had written.
    interrupted = True
  if interrupted:
    # Out of the except clause, the interrupted build's frames are gone; collected,
    # tfds' progress bars they held close (and redraw) before the line, not after.
    gc.collect()
    print(f'\ninterrupted: stopped by SIGINT; nothing half-built is left in {args.data_dir}; '
          'run the same command again to prepare imagenet2012', file=sys.stderr)
    return 128 + signal.SIGINT
  return 0


if __name__ == '__main__':
  sys.exit(main())
