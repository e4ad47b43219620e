"""Filesystems that fail under a running job: each failure ends it in one line.

tests/test_bad_input.py fakes full and read-only disks in Python. Orbax writes a
checkpoint's arrays in its background threads, through TensorStore's C++ file
layer, after `CheckpointManager.save` has returned: no Python patch reaches that
write. The slow tests here fill a real filesystem (a small tmpfs, which needs
root to mount: the tests run as root here and in CI) under a run's checkpoints.
"""

import errno
import json
import os
import subprocess
import sys
import tempfile
import threading

import numpy as np
import pytest

from train.common import claims
from train.common import files
from train.run import checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Hang guard, not a time limit: a run of 40 tiny steps takes under a minute.
HANG_GUARD_SECONDS = 600
# Room for config.json, the logs and the first checkpoints of the tiny run,
# not for all four of its checkpoints: one save is cut short by a full disk.
TMPFS_SIZE = '1m'
_TINY_RUN = {'dataset': 'embedded_shapes/tiny', 'model.width': 4, 'global_batch_size': 64,
             'eval_batch_size': 100, 'num_train_steps': 40, 'eval_every_steps': 40,
             'lr.warmup_steps': 1.0, 'checkpoint.every_steps': 10}


# --- fast: the words of the one line -------------------------------------------


@pytest.mark.parametrize('number, remedy', [
    (errno.ENOSPC, 'free disk space there'),
    (errno.EDQUOT, 'free disk space there'),
    (errno.EROFS, 'make /d writable or choose a writable directory'),
    (errno.EACCES, 'make /d writable or choose a writable directory'),
    (errno.ENAMETOOLONG, 'choose a shorter path'),
    (errno.ENOENT, 'check that /d exists and is writable'),
])
def test_the_remedy_follows_the_errno(number, remedy):
  assert files.remedy(number, '/d') == remedy


def test_a_failed_write_names_its_file_and_remedy():
  message = str(files.write_error('/d/f.json', OSError(errno.EROFS, os.strerror(errno.EROFS))))
  assert message == ('cannot write /d/f.json (OSError: Read-only file system); make /d '
                     'writable or choose a writable directory, then re-run the same command')


def test_the_errno_of_a_tensorstore_error_is_found():
  # TensorStore's words for a write that the disk refused (from a real full tmpfs).
  error = ValueError('RESOURCE_EXHAUSTED: Error writing local file "/x/30.orbax-checkpoint-tmp'
                     '/state/d/1": Failed to write 3510 bytes to file 8: No space left on '
                     "device [os_error_code='28']")
  assert checkpoint._errno(error) == errno.ENOSPC  # pylint: disable=protected-access
  wrapped = RuntimeError('save failed')
  wrapped.__cause__ = OSError(errno.EROFS, os.strerror(errno.EROFS))
  assert checkpoint._errno(wrapped) == errno.EROFS  # pylint: disable=protected-access
  assert checkpoint._errno(ValueError('shapes differ')) is None  # pylint: disable=protected-access


def test_a_save_is_fenced_as_it_starts_and_before_its_rename(tmp_path):
  """The claim fence (train/common/claims.py) runs before a save starts, and in
  Orbax's thread before the save's temporary directory is made and before it
  becomes '<step>': lost in between, the save never appears, and the next one
  is not started."""
  fences = []

  def fence() -> None:
    fences.append(threading.current_thread() is threading.main_thread())
    if len(fences) > 2:
      raise claims.ClaimLost('lost the claim (a test)')

  checkpointer = checkpoint.RunCheckpointer(str(tmp_path), max_to_keep=2, fence=fence)
  checkpointer.save(1, {'w': np.zeros(3, np.float32)}, {'step': 1})
  with pytest.raises(checkpoint.CheckpointError, match='lost the claim'):
    checkpointer.wait()
  checkpointer.close()
  assert fences == [True, False, False]  # In this thread, then twice in Orbax's.
  assert not checkpoint.has_checkpoints(str(tmp_path))
  assert os.listdir(checkpoint.directory(str(tmp_path))) == []
  again = checkpoint.RunCheckpointer(str(tmp_path), max_to_keep=2, fence=fence)
  with pytest.raises(claims.ClaimLost):  # The next save is refused before it starts.
    again.save(2, {'w': np.zeros(3, np.float32)}, {'step': 2})
  again.close()
  assert len(fences) == 4 and os.listdir(checkpoint.directory(str(tmp_path))) == []


# --- slow: a real full filesystem ------------------------------------------------


@pytest.fixture
def small_disk():
  """A TMPFS_SIZE tmpfs, mounted for the test and unmounted after it."""
  if os.geteuid() != 0:
    pytest.skip('mounting a tmpfs needs root (the tests run as root here and in CI)')
  path = tempfile.mkdtemp(prefix='small_disk_')
  subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={TMPFS_SIZE}', 'tmpfs', path],
                 check=True)
  try:
    yield path
  finally:
    subprocess.run(['umount', path], check=True)
    os.rmdir(path)


def _train(workdir: str, data_dir: str, **changes) -> subprocess.CompletedProcess:
  overrides = {**_TINY_RUN, 'data_dir': data_dir, **changes}
  return subprocess.run(
      [sys.executable, 'main.py', '--config=configs/embedded_lars.py', f'--workdir={workdir}',
       *(f'--config.{key}={value}' for key, value in overrides.items())],
      cwd=REPO, env=dict(os.environ, JAX_PLATFORMS='cpu'), capture_output=True, text=True,
      timeout=HANG_GUARD_SECONDS, check=False)


def _ends_in_one_line(done: subprocess.CompletedProcess, expected: str) -> str:
  """The line that ended the run, checked: exit status 2, no traceback, and no
  error line but the last."""
  assert done.returncode == 2, done.stderr[-3000:]
  assert 'Traceback' not in done.stderr + done.stdout, done.stderr[-3000:]
  assert 'Event loop is closed' not in done.stderr, done.stderr[-3000:]
  lines = [line for line in done.stderr.splitlines() if line.strip()]
  assert lines[-1].startswith('error: ') and expected in lines[-1], done.stderr[-3000:]
  assert sum(line.startswith('error') for line in lines) == 1, done.stderr[-3000:]
  return lines[-1]


def _unfinished(workdir: str) -> list[str]:
  directory = checkpoint.directory(workdir)
  return [name for name in os.listdir(directory) if checkpoint.TMP_INFIX in name]


@pytest.mark.slow  # Two tiny training runs.
def test_a_background_checkpoint_write_on_a_full_disk_is_one_line(small_disk, tiny_data_dir):
  workdir = os.path.join(small_disk, 'run')
  done = _train(workdir, tiny_data_dir)
  line = _ends_in_one_line(done, 'cannot write the checkpoint of step ')
  assert 'No space left on device' in line and 'free disk space or set checkpoint' in line
  step = int(line.split('cannot write the checkpoint of step ')[1].split()[0])
  assert str(step) not in os.listdir(checkpoint.directory(workdir))
  assert not _unfinished(workdir), 'the failed save left its temporary directory'

  # The user changes the model in config.json and runs again: the checkpoints on
  # the full disk are of the other model; the run must end in its own line.
  config_path = os.path.join(workdir, 'config.json')
  with open(config_path) as f:
    config = json.load(f)
  config['model']['width'] = 2 * _TINY_RUN['model.width']
  with open(config_path, 'w') as f:
    f.write(json.dumps(config, indent=2) + '\n')
  again = _train(workdir, tiny_data_dir, **{'model.width': 2 * _TINY_RUN['model.width']})
  line = _ends_in_one_line(again, f'no checkpoint in {checkpoint.directory(workdir)} can be read')
  # Checked before Orbax reads an array: its failing reads would log tracebacks.
  assert 'belongs to another model or optimizer' in line and 'has shape (4,) there, (8,) here' in line, line
  assert not _unfinished(workdir)
