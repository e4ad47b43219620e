"""Bad input on main.py's command line, tried systematically.

Each row of CASES is one mistake: the arguments (and the files it needs), the
text its one line on stderr must contain, and the exit status (2). Every case
must end with exactly one line on stderr, starting 'error: ', nothing on stdout,
no traceback, and its directory exactly as it was: nothing written, nothing
overwritten. docs/troubleshooting.md is built from this table, and a test
checks that it quotes every row's `expected`.

Speed: `python main.py` costs 2-3 s a case in imports alone (10 with
TensorFlow), too slow for a table this long. One driver process (this file, run
as a script) imports main.py's dependencies once and runs each case in a forked
child through main.py's own `__main__` entry (runpy), so flag parsing,
validation and the workdir checks are main.py's exactly; a case takes about
0.05 s. Forking is safe there: the driver never starts a JAX backend (JAX warns
of forks only after one has started, as its threads would be copied
mid-flight), and each child starts its own. The driver also imports the
libraries that the cases which reach the data or train would each import again
(TensorFlow alone is 10-15 s a case on 2 busy cores). Importing them starts
no runtime (TensorFlow's and tf.data's start in the child that uses them), and
none of the harness's own modules is preloaded beyond main.py's, so each child
imports those as `python main.py` would.

Adding a row: append a Case, and quote its `expected` in
docs/troubleshooting.md. `{dir}` in its arguments is the case's own directory, which
`setup` fills (in the test process); `in_child` runs in the case's process just
before main.py, for failures that must be simulated. `--workdir={dir}/run` is
added when the arguments name no workdir, so a check that fails to fire cannot
write into runs/. A few rows run another entry point: `main.py bench` (argv
starting with 'bench') or `python -m input_pipeline.prepare_imagenet`.

No verdict depends on how busy the machine is. A case's outcome is read from
what it printed and its exit status, never from how long it took; every case
ends by construction (a check that fails to fire would at worst run a 4-step
tiny training). CASE_HANG_GUARD_SECONDS only ends a case that hangs, and is
minutes long: a case that reaches it fails as hung.
"""

import atexit
import dataclasses
import functools
import hashlib
import importlib
import json
import os
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Callable

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(REPO, 'main.py')
USAGE_ERROR = 2
INTERRUPTED = 130  # 128 + SIGINT.
# Hang guards, not time limits: a case normally ends in under a minute even on
# a machine whose cores are busy with other work.
CASE_HANG_GUARD_SECONDS = 300
DRIVER_HANG_GUARD_SECONDS = 1800
PREPARE_IMAGENET = 'input_pipeline.prepare_imagenet'
# Third-party libraries the driver imports once for every child (see Speed above):
# the cases that reach the data, train or checkpoint import them.
PRELOADED_LIBRARIES = ('tensorflow', 'tensorflow_datasets', 'orbax.checkpoint')
# Cases marked `unprivileged` run as this user when the tests run as root, for
# whom permission bits mean nothing (uid 65534 is `nobody` on most systems).
UNPRIVILEGED_UID = 65534


@dataclasses.dataclass(frozen=True)
class Case:
  """One bad input and what the user must see."""
  name: str
  argv: tuple[str, ...]
  expected: str  # Part of the one stderr line, quoted in docs/troubleshooting.md.
  also: tuple[str, ...] = ()  # More parts of that line; '{dir}' as in argv.
  setup: Callable[[str], None] | None = None  # Fills the case's directory.
  status: int = USAGE_ERROR
  unprivileged: bool = False  # Needs permission bits to bite (see above).
  # Runs in the case's process just before main.py, with the case's directory,
  # e.g. to patch a function that simulates a failure (a full disk).
  in_child: Callable[[str], None] | None = None
  # The mistake surfaces once training has started, after TensorFlow's and the
  # loop's own log lines: the error must then be the last line, not the only one.
  mid_run: bool = False
  prefix: str = 'error: '  # How that line starts.
  module: str = ''  # Run this module's __main__ (python -m) instead of main.py.
  # Paths (under the case's directory) that must exist afterwards, and that
  # must not: what the case must keep, and what it must not leave behind.
  keeps: tuple[str, ...] = ()
  leaves_no: tuple[str, ...] = ()


# --- setups: each gets the case's directory ------------------------------------


def _write(name: str, text: str, mode: int | None = None) -> Callable[[str], None]:
  def setup(directory: str) -> None:
    path = os.path.join(directory, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
      f.write(text)
    if mode is not None:
      os.chmod(path, mode)
  return setup


def _read_only_dir(name: str) -> Callable[[str], None]:
  def setup(directory: str) -> None:
    os.makedirs(os.path.join(directory, name), mode=0o555)
    os.chmod(os.path.join(directory, name), 0o555)
  return setup


def _run_of_embedded_lars(seed: int) -> Callable[[str], None]:
  """A workdir holding an unfinished run of embedded_lars.py with `seed`."""
  def setup(directory: str) -> None:
    from configs import embedded_lars  # pylint: disable=g-import-not-at-top
    config = embedded_lars.get_config()
    config.seed = seed
    _write('run/config.json', config.to_json())(directory)
  return setup


# A short run on the tiny embedded data (built in the case's directory) that
# saves a checkpoint every 2 steps: for the failures that come once it trains.
_TINY_RUN = {'dataset': 'embedded_shapes/tiny', 'model.width': 4, 'global_batch_size': 64,
             'eval_batch_size': 100, 'num_train_steps': 4, 'eval_every_steps': 4,
             'lr.warmup_steps': 1.0, 'checkpoint.every_steps': 2}


def _tiny_run_argv(*more: str) -> tuple[str, ...]:
  return (*(f'--config.{k}={v}' for k, v in _TINY_RUN.items()),
          '--config.data_dir={dir}/data', *more)


def _full_disk(directory: str) -> None:
  """In the case's process: every checkpoint save fails as on a full disk."""
  del directory
  import errno  # pylint: disable=g-import-not-at-top

  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

  def save(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
  ocp.CheckpointManager.save = save


def _corrupt_checkpoint(directory: str) -> None:
  """An unfinished tiny run whose only checkpoint (step 2) is garbage."""
  from configs import embedded_lars  # pylint: disable=g-import-not-at-top
  from train.common import config_dicts  # pylint: disable=g-import-not-at-top
  config = config_dicts.with_overrides(
      embedded_lars.get_config(), {**_TINY_RUN, 'data_dir': f'{directory}/data'})
  # As train/run/record.write_config writes it, which the resumed run does again.
  _write('run/config.json', json.dumps(json.loads(config.to_json()), indent=2) + '\n')(directory)
  _write('run/checkpoints/2/state/garbage', 'not a checkpoint\n')(directory)
  _write('run/checkpoints/2/progress/garbage', 'not a checkpoint\n')(directory)


def _disk_full_at_start(directory: str) -> None:
  """In the case's process: a file opened for writing under `directory` is
  created, but writing into it fails as on a full disk."""
  _failing_writes(directory)


def _data_dir_full(directory: str) -> None:
  """In the case's process: writing the embedded dataset's records fails (ENOSPC)."""
  del directory
  import errno  # pylint: disable=g-import-not-at-top
  from tensorflow_datasets.core import file_adapters  # pylint: disable=g-import-not-at-top

  def write_examples(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
  for adapter in file_adapters.ADAPTER_FOR_FORMAT.values():
    adapter.write_examples = classmethod(write_examples)


def _interrupt_after_step_1(directory: str) -> None:
  """In the case's process: Ctrl-C (SIGINT) arrives during step 1."""
  del directory
  from train.run import checkpoint  # pylint: disable=g-import-not-at-top
  due = checkpoint.Cadence.due

  def due_then_interrupt(self, step, now, at_log_step):
    if step == 1:
      os.kill(os.getpid(), signal.SIGINT)
    return due(self, step, now, at_log_step)
  checkpoint.Cadence.due = due_then_interrupt


def _interrupt_while_writing_records(directory: str) -> None:
  """In the case's process: Ctrl-C (SIGINT) arrives as a dataset build writes its
  records (the embedded dataset's first build, or prepare_imagenet's)."""
  del directory
  from tensorflow_datasets.core import file_adapters  # pylint: disable=g-import-not-at-top

  def interrupting(write):
    def write_examples(cls, *args, **kwargs):
      del cls
      os.kill(os.getpid(), signal.SIGINT)
      return write(*args, **kwargs)
    return classmethod(write_examples)
  for adapter in file_adapters.ADAPTER_FOR_FORMAT.values():
    adapter.write_examples = interrupting(adapter.write_examples)


def _interrupt_inside_a_gc_callback(directory: str) -> None:
  """In the case's process: Ctrl-C arrives, once the job has started, while a gc
  callback runs, so the exception it raises there is swallowed (Python only
  prints it), as it was in JAX's _xla_gc_callback during compilation."""
  del directory
  import gc  # pylint: disable=g-import-not-at-top

  from train.cli import compilation_cache  # pylint: disable=g-import-not-at-top
  configure = compilation_cache.configure

  def interrupt(phase, info):
    del phase, info
    gc.callbacks.remove(interrupt)
    os.kill(os.getpid(), signal.SIGINT)
    for _ in range(3):  # Python runs the handler here, inside the callback.
      pass

  def configure_then_interrupt(*args, **kwargs):
    gc.callbacks.insert(0, interrupt)
    gc.collect()
    return configure(*args, **kwargs)
  compilation_cache.configure = configure_then_interrupt


def _interrupt_the_wait_for_workers(directory: str) -> None:
  """In the case's process: Ctrl-C arrives as a submitter first shows how its
  workers stand (they are started, and it waits for them)."""
  del directory
  from train.cli import launchers  # pylint: disable=g-import-not-at-top
  describe_counts = launchers.describe_counts

  def describe_then_interrupt(counts):
    os.kill(os.getpid(), signal.SIGINT)
    return describe_counts(counts)
  launchers.describe_counts = describe_then_interrupt


# 'path': the session's built embedded_shapes/tiny (conftest.py's tiny_data_dir),
# set by the outcomes fixture before the cases' setups run.
_TINY_DATA = {}


def _tiny_data(damage: Callable[[str], None]) -> Callable[[str], None]:
  """{dir}/data holding a copy of embedded_shapes/tiny, then `damage`(its version folder)."""
  def setup(directory: str) -> None:
    shutil.copytree(_TINY_DATA['path'], os.path.join(directory, 'data'))
    damage(os.path.join(directory, 'data', 'embedded_shapes', 'tiny', '1.0.0'))
  return setup


def _truncate_train_records(version_dir: str) -> None:
  for name in os.listdir(version_dir):
    if '-train.array_record' in name:
      path = os.path.join(version_dir, name)
      os.truncate(path, os.path.getsize(path) // 2)


def _delete_dataset_info(version_dir: str) -> None:
  os.remove(os.path.join(version_dir, 'dataset_info.json'))


def _two_gpus(directory: str) -> None:
  """In the case's process: a machine with two GPUs, as CUDA_VISIBLE_DEVICES says."""
  del directory
  os.environ['CUDA_VISIBLE_DEVICES'] = '0,1'


def _held(name: str) -> Callable[[str], None]:
  """{dir}/<name> claimed by the test's own process, alive while the case runs."""
  def setup(directory: str) -> None:
    from train.common import claims  # pylint: disable=g-import-not-at-top
    claims.try_acquire(os.path.join(directory, name)).stop_heartbeat()
  return setup


def _study_of_embedded_lars(damage: dict[str, str]) -> Callable[[str], None]:
  """{dir}/study: a study of embedded_lars.py, seed 0 finished, with the files of
  `damage` ({relative path: text}) written over."""
  def setup(directory: str) -> None:
    from configs import embedded_lars  # pylint: disable=g-import-not-at-top
    values = json.loads(embedded_lars.get_config().to_json())
    as_written = lambda v: json.dumps(v, indent=2) + '\n'  # As train/common/files.write_json.
    files = {'study/study_spec.json': as_written(
                 {'kind': 'study', 'configs': {'embedded_lars': values}}),
             'study/config.json': as_written(values),
             'study/seed_0/config.json': as_written(values),
             'study/seed_0/result.json': '{}\n', **damage}
    for name, text in files.items():
      _write(name, text)(directory)
  return setup


def _pending_study(edit: Callable[[dict], None] | None = None,
                   damage: Callable[[str], None] | None = None,
                   kind: str = 'study') -> Callable[[str], None]:
  """{dir}/study: a pending study (plan and spec only) of embedded_lars.py with
  2 seeds on the tiny budget, as `main.py --num_seeds=2` plans it (a comparison
  of two copies, 'a' and 'b', when `kind` says so); then `edit`(plan.json's
  values) and `damage`({dir}). {dir}/o/victim/mine.txt stands for a user's files
  outside the study."""
  def setup(directory: str) -> None:
    from configs import embedded_lars  # pylint: disable=g-import-not-at-top
    from train.common import config_dicts  # pylint: disable=g-import-not-at-top
    from train.experiments import plan as plan_lib  # pylint: disable=g-import-not-at-top
    config = config_dicts.with_overrides(
        embedded_lars.get_config(), {**_TINY_RUN, 'data_dir': f'{directory}/data'})
    study = os.path.join(directory, 'study')
    if kind == 'study':
      entries = [plan_lib.Entry('embedded_lars', config, study)]
    else:
      entries = [plan_lib.Entry(n, config, os.path.join(study, n)) for n in ('a', 'b')]
    spec = {'kind': kind, 'configs': {e.name: plan_lib.config_values(config) for e in entries}}
    plan_lib.write_plan(plan_lib.make_plan(kind, 'embedded_lars', study, entries, 2), spec)
    _write('o/victim/mine.txt', 'mine\n')(directory)
    path = os.path.join(study, 'plan.json')
    with open(path) as f:
      values = json.load(f)
    if edit:
      edit(values)
    with open(path, 'w') as f:
      json.dump(values, f, indent=2)
    if damage:
      damage(directory)
  return setup


def _set(field: str, value: object) -> Callable[[dict], None]:
  """Sets plan.json's `field`, e.g. 'runs.0.run_dir' ('{dir}' as in argv)."""
  def edit(values: dict) -> None:
    *parents, leaf = field.split('.')
    node = values
    for part in parents:
      node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(leaf) if isinstance(node, list) else leaf] = value
  return edit


def _symlink(name: str, target: str) -> Callable[[str], None]:
  """{dir}/<name> a symbolic link to `target` ('{dir}' replaced)."""
  def damage(directory: str) -> None:
    path = os.path.join(directory, name)
    if os.path.isdir(path) and not os.path.islink(path):
      shutil.rmtree(path)
    os.symlink(target.replace('{dir}', directory), path)
  return damage


def _absolute_run_dir(directory: str) -> None:
  """plan.json's runs[0].run_dir set to {dir}/o/victim, an existing folder outside."""
  path = os.path.join(directory, 'study', 'plan.json')
  with open(path) as f:
    values = json.load(f)
  values['runs'][0]['run_dir'] = os.path.join(directory, 'o', 'victim')
  with open(path, 'w') as f:
    json.dump(values, f, indent=2)
# A finished study made by main.py (2 seeds of _TINY_RUN), built once per test
# process on the first case that asks and copied for each: {'path': its folder}.
_FINISHED_STUDY = {}


def _finished_study(read_only: bool = False) -> Callable[[str], None]:
  """{dir}/study: a study that `python main.py --num_seeds=2` finished (its
  report, MLPerf folder and claims included); every folder of it read-only
  (0o555) if `read_only`."""
  def setup(directory: str) -> None:
    if 'path' not in _FINISHED_STUDY:
      root = tempfile.mkdtemp(prefix='bad_input_study_')
      atexit.register(shutil.rmtree, root, ignore_errors=True)
      study = os.path.join(root, 'study')
      argv = [a.replace('{dir}', root) for a in _tiny_run_argv()]
      done = subprocess.run(
          [sys.executable, MAIN, '--config=configs/embedded_lars.py', '--num_seeds=2',
           f'--workdir={study}', *argv, f'--config.data_dir={_TINY_DATA["path"]}'],
          cwd=REPO, env=dict(os.environ, JAX_PLATFORMS='cpu'), capture_output=True,
          text=True, timeout=CASE_HANG_GUARD_SECONDS, check=False)
      assert done.returncode == 0, done.stderr[-3000:]
      _FINISHED_STUDY['path'] = study
    target = os.path.join(directory, 'study')
    shutil.copytree(_FINISHED_STUDY['path'], target, symlinks=True)
    if read_only:
      for path, dirs, _ in os.walk(target, topdown=False):
        for name in dirs:
          os.chmod(os.path.join(path, name), 0o555)
      os.chmod(target, 0o555)
  return setup


def _finished_studies(directory: str) -> None:
  """{dir}/s: finished studies written without training (tests/finished_studies.py)
  for `main.py profile`: w1_a, w1_b, w2_a and w2_b (optimizers a and b on
  workloads w1 and w2), cmp (a comparison of a and b), busy (a study with a
  pending run) and notes (a folder of something else)."""
  from tests import finished_studies  # pylint: disable=g-import-not-at-top
  root = os.path.join(directory, 's')
  for name, steps in (('w1_a', [100, 200]), ('w1_b', [300]), ('w2_a', [100]), ('w2_b', [None])):
    finished_studies.write_study(os.path.join(root, name), name[-1], steps)
  finished_studies.write_comparison(os.path.join(root, 'cmp'), {'a': [100], 'b': [200]})
  finished_studies.write_study(os.path.join(root, 'busy'), 'a', [100], unfinished=[
      {'run': 'a seed 1', 'seed': 1, 'state': 'pending', 'detail': ''}])
  _write('s/notes/notes.txt', 'mine\n')(directory)


_PROFILE = ('profile', '--workdir={dir}/out')
_W1 = 'w1:a={dir}/s/w1_a,w1:b={dir}/s/w1_b'
_W2 = 'w2:a={dir}/s/w2_a,w2:b={dir}/s/w2_b'


def _disk_full_after_claim(directory: str) -> None:
  """In the case's process: the disk fills up once a single run has written its
  claim ({dir}/run/claim): writing any other file under `directory` fails."""
  _failing_writes(directory, spared=os.path.join(directory, 'run', 'claim'))


def _failing_writes(directory: str, spared: str | None = None) -> None:
  """In the case's process: files under `directory` (but not under `spared`)
  can be created, but writing into them fails as on a full disk (ENOSPC):
  through open() and through os.open()'s file descriptors alike."""
  import builtins  # pylint: disable=g-import-not-at-top
  import errno  # pylint: disable=g-import-not-at-top
  real_open, real_os_open, real_write, real_close = builtins.open, os.open, os.write, os.close
  full_fds = set()

  def no_space():
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

  class FullFile:
    def __init__(self, f):
      self._f = f

    def write(self, data):
      raise no_space()

    def __enter__(self):
      return self

    def __exit__(self, *exc):
      self._f.close()

    def __iter__(self):
      return iter(self._f)

    def __getattr__(self, name):
      return getattr(self._f, name)

  def full(path) -> bool:
    if not isinstance(path, (str, os.PathLike)):
      return False
    path = os.path.abspath(os.fspath(path))
    inside = path.startswith(directory + os.sep)
    return inside and not (spared and path.startswith(spared + os.sep))

  def full_open(file, mode='r', *args, **kwargs):
    f = real_open(file, mode, *args, **kwargs)
    return FullFile(f) if any(c in mode for c in 'wax+') and full(file) else f

  def full_os_open(path, flags, *args, **kwargs):
    fd = real_os_open(path, flags, *args, **kwargs)
    if flags & (os.O_WRONLY | os.O_RDWR) and full(path):
      full_fds.add(fd)
    return fd

  def full_write(fd, data):
    if fd in full_fds:
      raise no_space()
    return real_write(fd, data)

  def close(fd):
    full_fds.discard(fd)  # Its number may next be another file's.
    real_close(fd)
  builtins.open, os.open, os.write, os.close = full_open, full_os_open, full_write, close


def _fake_imagenet(train_tar: Callable[[bytes], bytes]) -> Callable[[str], None]:
  """{dir}/manual holding fake ILSVRC2012 tars, the train tar replaced by
  train_tar(its bytes)."""
  def setup(directory: str) -> None:
    from input_pipeline import fake_imagenet  # pylint: disable=g-import-not-at-top
    manual = os.path.join(directory, 'manual')
    fake_imagenet.make_fake_imagenet_archives(manual, images_per_class=1, num_val=2)
    path = os.path.join(manual, 'ILSVRC2012_img_train.tar')
    with open(path, 'rb') as f:
      data = f.read()
    with open(path, 'wb') as f:
      f.write(train_tar(data))
  return setup


def _a_tar_of_text(data: bytes) -> bytes:
  """Another tar than ImageNet's: one text file."""
  del data
  import io  # pylint: disable=g-import-not-at-top
  import tarfile  # pylint: disable=g-import-not-at-top
  buffer = io.BytesIO()
  with tarfile.open(fileobj=buffer, mode='w') as tar:
    text = b'not imagenet\n'
    member = tarfile.TarInfo('README.txt')
    member.size = len(text)
    tar.addfile(member, io.BytesIO(text))
  return buffer.getvalue()


def _a_config_file(body: str) -> Callable[[str], None]:
  """{dir}/mine.py: embedded_lars.py's config changed by `body` (uses `config`)."""
  text = ('from configs import embedded_lars\n\n\ndef get_config():\n'
          '  config = embedded_lars.get_config()\n'
          + ''.join(f'  {line}\n' for line in body.splitlines()) + '  return config\n')
  return _write('mine.py', text)


# --- sizes without bounds, Slurm submission failures, data -----------------------


def _garble_dataset_info(version_dir: str) -> None:
  with open(os.path.join(version_dir, 'dataset_info.json'), 'w') as f:
    f.write('garbage, not JSON\n')


def _imagenet_with_garbled_info(directory: str) -> None:
  """{dir}/imagenet2012/<its builder's version>/ holding a dataset_info.json of garbage."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  version = tfds.builder_cls('imagenet2012').VERSION
  _write(f'imagenet2012/{version}/dataset_info.json', 'garbage, not JSON\n')(directory)


def _fake_sbatch(said: str) -> Callable[[str], None]:
  """{dir}/bin/sbatch: prints `said` on stderr and fails, as sbatch does when it
  refuses a job; `_fake_sbatch_first` puts it first on the case's PATH."""
  return _write('bin/sbatch', f"#!/bin/sh\necho \"{said}\" >&2\nexit 1\n", 0o755)


def _fake_sbatch_first(directory: str) -> None:
  os.environ['PATH'] = f'{os.path.join(directory, "bin")}{os.pathsep}{os.environ["PATH"]}'


def _fake_slurm(**said: str) -> Callable[[str], None]:
  """{dir}/bin/<command> for each keyword: prints its text and succeeds, as the
  cluster's command would (`_fake_sbatch_first` puts them first on the PATH)."""
  def setup(directory: str) -> None:
    for command, text in said.items():
      _write(f'bin/{command}', f"#!/bin/sh\ncat <<'EOF'\n{text}\nEOF\n", 0o755)(directory)
  return setup


# scontrol's words for the two workers of array 77, which Slurm could not start
# on node2: their log files, in the study directory, cannot be opened there.
_LAUNCH_FAILED = '\n'.join(
    f'JobId={78 + task} ArrayJobId=77 ArrayTaskId={task} JobName=harness-run '
    'JobState=FAILED Reason=JobLaunchFailure Dependency=(null) ExitCode=0:53 NodeList=node2'
    for task in range(2))


def _clock_ahead(seconds: float) -> Callable[[str], None]:
  """In the case's process: this host's clock `seconds` ahead of its filesystem's."""
  def in_child(directory: str) -> None:
    del directory
    real = time.time
    time.time = lambda: real() + seconds
  return in_child


_CONTROLLER_DOWN = ('sbatch: error: Batch job submission failed: Unable to contact slurm '
                    'controller (connect failure)')
_SLURM_STUDY = ('--num_seeds=2', '--launcher=slurm')


_PREPARE = ('--data_dir={dir}/tfds', '--manual_dir={dir}/manual')


# --- the table -----------------------------------------------------------------

_MLPERF = '--config=configs/mlperf_lars_32k.py'
_COMPARE = '--compare=configs/embedded_lars.py,configs/embedded_nesterov.py'
_SEARCH = '--config=configs/embedded_nesterov_search.py'
# A config file whose staged search grids a continuous axis.
_GRID_OF_A_RANGE = '''from configs import embedded_nesterov
from configs import search_space as ss


def get_config():
  return embedded_nesterov.get_config()


def get_search():
  return ss.Search(stages=(ss.Stage('sweep', (ss.Range('lr.peak', 0.1, 1.0),), mode='grid'),))
'''

_SCALING = '--config=configs/embedded_scaling.py'


def _scaling_file(scaling: str) -> str:
  """A config file of embedded_nesterov.py whose get_scaling() returns `scaling`."""
  return ('from configs import embedded_nesterov\n'
          'from configs import search_space as ss\n\n\n'
          'def get_config():\n  return embedded_nesterov.get_config()\n\n\n'
          f'def get_scaling():\n  return {scaling}\n')


CASES = [
    # Overrides that do not parse.
    Case('unknown_key', ('--config.no_such_key=1',), "unknown config key 'no_such_key'"),
    Case('misspelt_nested_key', ('--config.optimizer.nam=lars',),
         "did you mean 'optimizer.name'?", also=("unknown config key 'optimizer.nam'",)),
    Case('int_given_a_word', ('--config.global_batch_size=many',),
         "global_batch_size takes an integer, not 'many'"),
    Case('int_given_a_fraction', ('--config.num_train_steps=2.5',),
         "num_train_steps takes an integer, not '2.5'"),
    Case('float_given_a_word', ('--config.lr.peak=fast',), "lr.peak takes a number, not 'fast'"),
    Case('bool_given_a_word', ('--config.stop_at_target=maybe',),
         "stop_at_target takes True or False, not 'maybe'"),
    Case('override_before_config', ('--config.seed=1', '--config=configs/embedded_lars.py'),
         'give --config=FILE before its --config.KEY=VALUE overrides'),
    # Values that validation refuses.
    Case('zero_batch', ('--config.global_batch_size=0',),
         'global_batch_size=0 is not allowed; allowed: an integer > 0'),
    Case('negative_batch', ('--config.global_batch_size=-64',),
         'global_batch_size=-64 is not allowed'),
    Case('batch_not_divisible_by_virtual_batch', ('--config.model.virtual_batch_size=48',),
         'model.virtual_batch_size=48 is not allowed; allowed: a divisor of the per-device batch'),
    Case('warmup_longer_than_budget', ('--config.lr.warmup_steps=1000',),
         'lr.warmup_steps=1000.0 is not allowed; allowed: the warmup'),
    Case('budget_in_steps_and_epochs', ('--config.num_epochs=5',),
         'num_train_steps=400 is not allowed; allowed: 0 when num_epochs=5.0 gives it in epochs'),
    Case('unknown_optimizer', ('--config.optimizer.name=adadelta',),
         "optimizer.name='adadelta' is not allowed; allowed: adagrad, adam, adamw, lamb, lars"),
    Case('unknown_schedule', ('--config.lr.schedule=exponential',),
         "lr.schedule='exponential' is not allowed; allowed: cosine, linear, "
         "piecewise_polynomial, piecewise_polynomial_factor, step"),
    Case('unknown_depth', ('--config.model.depth=42',),
         'model.depth=42 is not allowed; allowed: 10, 14, 18, 34, 50'),
    Case('image_size_too_small', ('--config.image_size=4',),
         "image_size=4 is not allowed; allowed: >= 8 for model.stem='small'"),
    Case('image_size_too_small_for_imagenet_stem', (_MLPERF, '--config.image_size=16'),
         "image_size=16 is not allowed; allowed: >= 32 for model.stem='imagenet'"),
    Case('target_as_a_percentage', ('--config.target_accuracy=75.9',),
         'target_accuracy=75.9 is not allowed; allowed: a fraction in (0, 1)'),
    Case('target_zero', ('--config.target_accuracy=0',), 'target_accuracy=0.0 is not allowed'),
    Case('eval_offset_out_of_range', (_MLPERF, '--config.eval_offset_epochs=4'),
         'eval_offset_epochs=4 is not allowed; allowed: an integer in [0, eval_every_epochs=4.0)'),
    # None on the command line: set (so the steps cadence must be given), or refused by name.
    Case('eval_every_epochs_none_without_steps', (_MLPERF, '--config.eval_every_epochs=None'),
         'eval_every_steps=0 is not allowed; allowed: an integer > 0 (or 0 with '
         'eval_every_epochs set)'),
    Case('eval_every_epochs_given_a_word', ('--config.eval_every_epochs=often',),
         "eval_every_epochs='often' is not allowed; allowed: None (cadence in steps) or a number"),
    Case('none_for_a_key_that_needs_a_number', ('--config.lr.peak=None',),
         'lr.peak=None is not allowed; allowed: a number > 0'),
    # MLPerf closed division.
    Case('closed_division_label_smoothing', (_MLPERF, '--config.label_smoothing=0.2'),
         "in the MLPerf closed division; set mlperf.submission_division='open' to run it",
         also=('label_smoothing=0.2 is not allowed; allowed: 0 or 0.1',)),
    Case('closed_division_schedule', (_MLPERF, '--config.lr.schedule=cosine'),
         "lr.schedule='cosine' is not allowed; allowed: 'piecewise_polynomial'",
         also=('in the MLPerf closed division',)),
    # Config files that set what default.py does not define, or too little.
    Case('config_file_adds_a_key', ('--config={dir}/mine.py',),
         "sets unknown config key 'lr.my_typo_peak'; did you mean 'lr.peak'?",
         also=('{dir}/mine.py sets',), setup=_a_config_file('config.lr.my_typo_peak = 3.0')),
    Case('config_file_lacks_a_key', ('--config={dir}/mine.py',),
         "lacks the config key 'lr.peak'; start from configs/default.py's get_config()",
         setup=_a_config_file("del config.lr['peak']")),
    Case('config_file_section_none', ('--config={dir}/mine.py',),
         "sets the section 'lr' to None; keep it a ConfigDict",
         setup=_a_config_file('config.lr = None')),
    Case('config_file_returns_a_dict', ('--config={dir}/dict.py',),
         'get_config() returned dict, not a ConfigDict',
         setup=_write('dict.py', "def get_config():\n  return {'seed': 0}\n")),
    # Values that pass one by one but cannot run.
    Case('image_size_beyond_memory', ('--config.image_size=1000000',),
         'image_size=1000000 is not allowed; one training step of ResNet-10',
         also=('needs at least', 'allowed: at most image_size=')),
    Case('budget_beyond_step_counter', ('--config.num_train_steps=1000000000000',),
         'num_train_steps=1000000000000 is not allowed; allowed: a budget of at most '
         '2,147,483,647 steps'),
    Case('eval_cadence_too_fine', ('--config.num_train_steps=100000000',
                                   '--config.eval_every_steps=1'),
         'eval_every_steps=1 is not allowed; allowed: a cadence of at most 100,000 evals'),
    # Data.
    Case('unknown_dataset', ('--config.dataset=mnist',),
         "dataset='mnist' is not allowed; allowed: embedded_shapes"),
    Case('dataset_not_prepared', ('--config.dataset=imagenet2012', '--config.data_dir={dir}'),
         "it is not prepared in", also=(
             'prepare it with: python -m input_pipeline.prepare_imagenet --data_dir={dir}',)),
    Case('data_dir_missing', ('--config.dataset=imagenet2012', '--config.data_dir={dir}/nowhere'),
         'allowed: an existing tfds data directory', also=("data_dir='{dir}/nowhere'",)),
    Case('data_dir_not_writable', ('--config.data_dir={dir}/locked/tfds',),
         'allowed: a writable directory to build embedded_shapes in',
         setup=_read_only_dir('locked'), unprivileged=True),
    Case('data_dir_is_a_file', ('--config.data_dir={dir}/taken',),
         'allowed: a writable directory to build embedded_shapes in', also=(
             '({dir}/taken is not a directory)',),
         setup=_write('taken', 'mine\n'), keeps=('taken',)),
    Case('data_dir_full', _tiny_run_argv(),
         'cannot build embedded_shapes/tiny in', also=(
             '{dir}/data (OSError: ', 'No space left on device',
             'free disk space there or give another'),
         in_child=_data_dir_full, mid_run=True, leaves_no=('data',)),
    Case('truncated_records', _tiny_run_argv(),
         'cannot be read (DataLossError: RuntimeError: Corrupted Riegeli/records file', also=(
             'the data of embedded_shapes/tiny in {dir}/data/embedded_shapes/tiny/1.0.0',
             'delete {dir}/data/embedded_shapes/tiny/1.0.0 and the next run builds it again'),
         setup=_tiny_data(_truncate_train_records), mid_run=True),
    Case('deleted_dataset_info', _tiny_run_argv(),
         'holds a damaged copy of embedded_shapes/tiny (no dataset_info.json)',
         setup=_tiny_data(_delete_dataset_info), mid_run=True),
    Case('prepare_imagenet_empty_train_tar', _PREPARE,
         'ILSVRC2012_img_train.tar is empty (0 bytes); check its sha256',
         setup=_fake_imagenet(lambda data: b''), module=PREPARE_IMAGENET),
    Case('prepare_imagenet_wrong_train_tar', _PREPARE,
         "is not ILSVRC2012's ILSVRC2012_img_train.tar: that holds a tar per class",
         also=('this one starts with README.txt',),
         setup=_fake_imagenet(_a_tar_of_text), module=PREPARE_IMAGENET),
    Case('prepare_imagenet_truncated_train_tar', _PREPARE,
         'cannot be read to its end (ReadError: unexpected end of data)',
         also=('a tar in {dir}/manual',),
         setup=_fake_imagenet(lambda data: data[:len(data) // 2]),
         module=PREPARE_IMAGENET, mid_run=True, leaves_no=('tfds',)),
    # Config files.
    Case('config_file_missing', ('--config=configs/no_such_file.py',),
         'config file configs/no_such_file.py does not exist'),
    Case('config_file_unreadable', ('--config={dir}/private.py',),
         'cannot be read (permission denied); make it readable',
         also=('config file {dir}/private.py',),
         setup=_write('private.py', 'from configs.embedded_lars import get_config\n', 0o000),
         unprivileged=True),
    Case('config_file_syntax_error', ('--config={dir}/broken.py',), 'SyntaxError: invalid syntax',
         also=('cannot load config file {dir}/broken.py',),
         setup=_write('broken.py', 'def get_config(:\n')),
    Case('config_file_get_config_fails', ('--config={dir}/fails.py',),
         'get_config() failed: RuntimeError: no such recipe',
         setup=_write('fails.py', 'def get_config():\n  raise RuntimeError("no such recipe")\n')),
    Case('config_file_without_get_config', ('--config={dir}/empty.py',), 'has no get_config()',
         setup=_write('empty.py', 'X = 1\n')),
    Case('unknown_variant', ('--config=configs/nesterov_a.py:no_such_variant',),
         "unknown variant 'no_such_variant' of nesterov_a.py; valid: bn_init"),
    # The workdir: never written into when it holds something else.
    Case('workdir_is_a_file', ('--workdir={dir}/taken',), 'is a file; give a directory',
         also=('--workdir={dir}/taken is a file',), setup=_write('taken', 'mine\n')),
    Case('workdir_inside_a_file', ('--workdir={dir}/taken/run',), 'is a file; give a directory',
         also=('cannot be created: {dir}/taken is a file',), setup=_write('taken', 'mine\n')),
    Case('study_workdir_is_a_file', ('--num_seeds=2', '--workdir={dir}/taken'),
         'is a file; give a directory', setup=_write('taken', 'mine\n')),
    Case('workdir_not_writable', ('--workdir={dir}/locked/run', '--config.data_dir={dir}'),
         'is not writable; choose a --workdir you can write to',
         also=('cannot be created: {dir}/locked',),
         setup=_read_only_dir('locked'), unprivileged=True),
    Case('workdir_holds_a_finished_run', ('--workdir={dir}',),
         'already holds a finished run (result.json); choose a new --workdir',
         setup=_write('result.json', '{}')),
    Case('workdir_holds_another_config', ('--config.seed=3', '--workdir={dir}/run'),
         'holds a run of another config', also=('seed: 0 there, 3 here; choose a new --workdir',),
         setup=_run_of_embedded_lars(seed=0)),
    Case('workdir_holds_a_broken_config_json', ('--workdir={dir}/run',),
         'holds a config.json that cannot be read', setup=_write('run/config.json', '{"seed": ')),
    Case('disk_full_at_start', ('--workdir={dir}/run',),
         '/run (OSError: No space left on device); free disk space there',
         also=('cannot write the claim on --workdir={dir}/run', 'then re-run the same command'),
         in_child=_disk_full_at_start, leaves_no=('run',)),
    Case('study_seed_result_corrupt', ('--num_seeds=1', '--workdir={dir}/study'),
         'result.json cannot be read (JSONDecodeError', also=(
             '{dir}/study/seed_0/result.json cannot be read',
             'move {dir}/study/seed_0 aside (the seed then runs again)'),
         setup=_study_of_embedded_lars({'study/seed_0/result.json': '{"status": '}),
         mid_run=True),
    Case('study_spec_corrupt', ('--num_seeds=1', '--workdir={dir}/study'),
         'study_spec.json cannot be read (JSONDecodeError', also=(
             'it records what the study holds: restore it, or choose a new --workdir',),
         setup=_study_of_embedded_lars({'study/study_spec.json': '{"kind": '}), mid_run=True),
    # Checkpoints: once training has started.
    Case('disk_full_while_checkpointing', _tiny_run_argv(),
         'cannot write the checkpoint of step 2', also=(
             'No space left on device', 'free disk space or set checkpoint.every_steps=0'),
         in_child=_full_disk, mid_run=True),
    Case('corrupt_checkpoint', _tiny_run_argv(),
         'can be read (step 2', also=('no checkpoint in {dir}/run/checkpoints can be read',
                                      'move that directory aside to start the run afresh'),
         setup=_corrupt_checkpoint, mid_run=True),
    Case('ctrl_c_saves_the_step', _tiny_run_argv(),
         'stopped by SIGINT at step 2; its checkpoint is in',
         also=('{dir}/run/checkpoints; run the same command again to resume',), prefix='interrupted: ', status=INTERRUPTED,
         in_child=_interrupt_after_step_1, mid_run=True, keeps=('run/checkpoints/2',)),
    # Other flags.
    Case('unknown_flag', ('--no_such_flag=1',),
         "Unknown command line flag 'no_such_flag'; python main.py --help lists the flags"),
    Case('positional_argument', ('train',),
         "unexpected arguments ['train']; pass settings as --config.KEY=VALUE"),
    Case('num_seeds_zero', ('--num_seeds=0',), '--num_seeds=0: 0 is not a positive integer'),
    Case('num_seeds_given_a_word', ('--num_seeds=two',),
         '--num_seeds=two: invalid literal for int()'),
    Case('num_trials_negative', ('--num_trials=-1',),
         '--num_trials=-1: -1 is not a non-negative integer'),
    Case('num_trials_without_search_space', ('--num_trials=2',),
         '--num_trials needs a search space'),
    Case('compare_unknown_variant',
         ('--compare=configs/embedded_lars.py:nope,configs/embedded_nesterov.py',),
         'has no variants; drop ":nope"',
         also=('--compare: config file configs/embedded_lars.py',)),
    Case('compare_missing_file', ('--compare=configs/embedded_lars.py,configs/no_such_file.py',),
         '--compare: config file', also=('no_such_file.py does not exist',)),
    Case('compare_override_breaks_a_config', (_COMPARE, '--config.lr.warmup_steps=500.0'),
         'embedded_lars: config error: lr.warmup_steps=500.0 is not allowed'),
    Case('compare_one_config', ('--compare=configs/embedded_lars.py',),
         'a comparison needs at least 2'),
    Case('compare_with_config', ('--config=configs/embedded_lars.py', _COMPARE),
         'give either --config or --compare'),
    Case('compare_with_num_trials', (_COMPARE, '--num_trials=2'),
         '--compare and --num_trials do not combine'),
    # --search: a config file's get_search(), the one source of its trials and seeds.
    Case('search_without_get_search', ('--search',),
         '--search needs a staged search: ', also=('has no get_search()',)),
    Case('search_with_num_trials', (_SEARCH, '--search', '--num_trials=2'),
         '--search and --num_trials do not combine'),
    Case('search_with_num_seeds', (_SEARCH, '--search', '--num_seeds=3'),
         '--search and --num_seeds do not combine'),
    Case('search_with_compare', (_COMPARE, '--search'), '--search and --compare do not combine'),
    Case('search_grid_of_a_range', ('--config={dir}/mine.py', '--search'),
         "get_search(): stage 1 ('sweep'): a grid runs Choice axes only; lr.peak is a Range",
         setup=_write('mine.py', _GRID_OF_A_RANGE)),
    # --robustness: one --config on workload variants, each one workload key changed.
    Case('robustness_unknown_key', ('--robustness=width=16',),
         "--robustness entry 'width=16': width is not a workload key; give activation=relu",
         also=('give activation=relu|silu|gelu or last_bn_scale=NUMBER',)),
    Case('robustness_entry_not_key_value', ('--robustness=silu',),
         "--robustness entry 'silu' is not KEY=VALUE; give activation=relu",
         also=('relu|silu|gelu or last_bn_scale=NUMBER, e.g. --robustness=activation=silu,'
               'activation=gelu,last_bn_scale=8',)),
    Case('robustness_base_value', ('--robustness=activation=relu',),
         "--robustness entry 'activation=relu' is the base config's own model.activation; a "
         'variant must change the workload'),
    Case('robustness_variant_twice', ('--robustness=last_bn_scale=8,last_bn_scale=8.0',),
         '--robustness names the variant last_bn_scale_8 twice; give each variant once'),
    Case('robustness_scale_not_a_number', ('--robustness=last_bn_scale=big',),
         "--robustness entry 'last_bn_scale=big': 'big' is not a finite number"),
    Case('robustness_unknown_activation', ('--robustness=activation=tanh',),
         "activation_tanh: config error: model.activation='tanh' is not allowed; allowed: "
         'relu, silu, gelu'),
    Case('robustness_empty_list', ('--robustness=',), '--robustness= names no variant'),
    Case('robustness_empty_entry', ('--robustness=activation=silu,',),
         '--robustness=activation=silu,: an entry of the list is empty'),
    Case('robustness_with_compare', (_COMPARE, '--robustness=activation=silu'),
         '--robustness and --compare do not combine: a robustness comparison runs one '
         '--config on its variants'),
    Case('robustness_with_search', (_SEARCH, '--search', '--robustness=activation=silu'),
         '--robustness and --search do not combine: tune on the base workload first'),
    Case('robustness_with_num_trials',
         ('--config=configs/embedded_search.py', '--num_trials=2', '--robustness=activation=silu'),
         '--robustness and --num_trials do not combine'),
    Case('robustness_given_to_profile',
         ('profile', '--workdir={dir}/p', '--studies=a=b', '--robustness=activation=silu'),
         '--robustness is not a flag of main.py profile'),
    Case('plan_kind_robustness_without_its_base', ('report', '--workdir={dir}/study'),
         "kind=robustness needs the entry 'base' first and a variant after it",
         setup=_pending_study(_set('kind', 'robustness'), kind='comparison')),
    # --scaling: a config file's get_scaling(), the one source of its batch sizes and seeds.
    Case('scaling_unknown_mode', (_SCALING, '--scaling=yes'),
         'flag --scaling=yes: value should be one of <tuned', also=('untuned>',)),
    Case('scaling_without_get_scaling', ('--scaling=tuned',),
         '--scaling needs a scaling study: ', also=('has no get_scaling()',)),
    Case('scaling_with_compare', (_COMPARE, '--scaling=untuned'),
         '--scaling and --compare do not combine'),
    Case('scaling_with_search', (_SCALING, '--scaling=tuned', '--search'),
         '--scaling and --search do not combine'),
    Case('scaling_with_num_seeds', (_SCALING, '--scaling=untuned', '--num_seeds=3'),
         '--scaling and --num_seeds do not combine'),
    Case('scaling_with_a_batch_size_override',
         (_SCALING, '--scaling=tuned', '--config.global_batch_size=64'),
         '--config.global_batch_size does not combine with --scaling'),
    Case('scaling_batch_sizes_not_increasing', ('--config={dir}/down.py', '--scaling=untuned'),
         'get_scaling(): batch_sizes=(256, 128) must increase (each size once)',
         setup=_write('down.py', _scaling_file('ss.Scaling(batch_sizes=(256, 128))'))),
    Case('scaling_batch_size_not_divisible_by_virtual_batch',
         ('--config={dir}/small.py', '--scaling=untuned'),
         'get_scaling(): batch size 32: config error: model.virtual_batch_size=64 is not '
         'allowed; allowed: a divisor of the per-device batch 32',
         setup=_write('small.py', _scaling_file('ss.Scaling(batch_sizes=(32, 128))'))),
    Case('scaling_tuned_without_stages', ('--config={dir}/untuned.py', '--scaling=tuned'),
         'get_scaling(): --scaling=tuned needs the stages of a search',
         setup=_write('untuned.py', _scaling_file('ss.Scaling(batch_sizes=(64, 128))'))),
    Case('worker_on_a_scaling_study', ('worker', '--workdir={dir}'),
         'holds a batch-size scaling study, whose batch sizes its own command plans one after '
         'another', setup=_write('study_spec.json', '{"kind": "scaling"}')),
    Case('robustness_with_scaling',
         (_SCALING, '--scaling=tuned', '--robustness=activation=silu'),
         '--robustness and --scaling do not combine: a scaling study runs the base workload'),
    Case('worker_on_a_staged_search', ('worker', '--workdir={dir}'),
         'holds a staged search, whose stages its own command plans one after another',
         setup=_write('study_spec.json', '{"kind": "staged_search"}')),
    # main.py bench: its mistakes read as main.py's.
    Case('bench_unknown_key', ('bench', '--config.no_such_key=1'),
         "unknown config key 'no_such_key' in --config.no_such_key=1; every key is defined"),
    Case('bench_unknown_flag', ('bench', '--no_such_flag=1'),
         "Unknown command line flag 'no_such_flag'; python main.py bench --help lists"),
    Case('bench_config_file_adds_a_key', ('bench', '--config={dir}/mine.py'),
         "sets unknown config key 'lr.my_typo_peak'", setup=_a_config_file(
             'config.lr.my_typo_peak = 3.0')),
    Case('bench_image_size_beyond_memory', ('bench', '--config.image_size=1000000'),
         'image_size=1000000 is not allowed; one training step of ResNet-50'),
    Case('bench_unknown_mode', ('bench', '--modes=synthetic,speed'),
         '--modes=synthetic,speed: want one or more of synthetic, input, train'),
    Case('bench_zero_steps', ('bench', '--steps=0'), 'flag --steps=0'),
    Case('bench_batch_not_divisible_by_virtual_batch',
         ('bench', '--per_device_batch_size=48', '--config=configs/embedded_lars.py'),
         'model.virtual_batch_size=64 is not allowed'),
    Case('bench_positional_argument', ('bench', 'extra'), "unexpected arguments ['extra']"),
    Case('bench_partial_coordinator', ('bench', '--coordinator_address=localhost:1234'),
         'give all three or none'),
    Case('bench_flag_of_training', ('bench', '--num_seeds=2'),
         '--num_seeds is a flag of training (main.py without bench)'),
    Case('training_with_a_bench_flag', ('--modes=input',), '--modes is a flag of main.py bench'),
    # Workers, reports and launchers (docs/cluster.md).
    Case('worker_without_workdir', ('worker',), 'main.py worker needs --workdir=DIR'),
    Case('worker_with_a_config', ('worker', '--workdir={dir}', '--config=configs/embedded_lars.py'),
         '--config is not a flag of main.py worker: the plan in --workdir says what to run'),
    Case('report_of_a_missing_dir', ('report', '--workdir={dir}/nothing'),
         'does not exist; give the directory of a study, comparison or search'),
    Case('report_of_a_dir_without_a_plan', ('report', '--workdir={dir}'),
         'holds no study plan (plan.json)', setup=_write('notes.txt', 'mine\n')),
    Case('launcher_for_a_single_run', ('--launcher=local',),
         '--launcher=local runs the seeds of a study, comparison or search; add --num_seeds=1'),
    Case('slurm_flag_without_slurm', ('--num_seeds=2', '--slurm_partition=gpu'),
         '--slurm_partition needs --launcher=slurm'),
    Case('num_workers_inline', ('--num_seeds=2', '--num_workers=2'),
         '--num_workers needs --launcher=local or --launcher=slurm'),
    Case('slurm_flag_with_local_workers', ('--num_seeds=2', '--launcher=local', '--slurm_nodes=2'),
         '--slurm_nodes needs --launcher=slurm'),
    Case('sbatch_option_not_key_value',
         ('--num_seeds=2', '--launcher=slurm', '--slurm_option=exclusive'),
         '--slurm_option=exclusive is not KEY=VALUE'),
    Case('sbatch_option_of_the_harness',
         ('--num_seeds=2', '--launcher=slurm', '--slurm_option=nodes=2'),
         'the harness sets nodes (from its --slurm_* flags)'),
    Case('local_workers_do_not_divide_the_gpus',
         ('--num_seeds=2', '--launcher=local', '--num_workers=3'),
         '--num_workers=3 does not divide the 2 GPUs of this machine',
         in_child=_two_gpus),
    Case('workdir_held_by_a_live_run', ('--workdir={dir}/run',), 'is held by host',
         also=('--workdir={dir}/run is held by host', 'wait for it to end or stop it'),
         setup=_held('run')),
    # The files of a shared study directory are input (docs/cluster.md,
    # "Plan, workers, report"): no path in them leads outside the study.
    Case('plan_run_dir_absolute_outside', ('worker', '--workdir={dir}/study'),
         'runs[0].run_dir leads to', also=(
             '{dir}/study/plan.json: runs[0].run_dir leads to {dir}/o/victim; a run\'s '
             'directory must be {dir}/study/seed_0',
             'plan.json was changed or damaged: restore it, or start the study afresh'),
         setup=_pending_study(damage=_absolute_run_dir), keeps=('o/victim/mine.txt',),
         leaves_no=('o/claims', 'o/victim.interrupted.1')),
    Case('plan_run_dir_dotdot', ('worker', '--workdir={dir}/study'),
         "(seed_<seed> in its entry's directory), and no other run's",
         also=('runs[0].run_dir leads to {dir}/o/x;',),
         setup=_pending_study(_set('runs.0.run_dir', '../o/x')), leaves_no=('o/x', 'o/claims')),
    Case('plan_run_dir_is_the_study', ('worker', '--workdir={dir}/study'),
         'runs[0].run_dir leads to',
         also=('runs[0].run_dir leads to {dir}/study;',),
         setup=_pending_study(_set('runs.0.run_dir', '.'))),
    Case('plan_run_dir_inside_another_run', ('worker', '--workdir={dir}/study'),
         "a run's directory must be",
         also=('runs[0].run_dir leads to {dir}/study/seed_1/seed_0;',),
         setup=_pending_study(_set('runs.0.run_dir', 'seed_1/seed_0'))),
    Case('plan_runs_share_a_run_dir', ('worker', '--workdir={dir}/study'),
         'and no other run\'s;', also=('runs[1].run_dir leads to {dir}/study/seed_0;',),
         setup=_pending_study(_set('runs.1.run_dir', 'seed_0'))),
    Case('plan_run_dir_is_the_claims_folder', ('worker', '--workdir={dir}/study'),
         'runs[0].run_dir leads to', also=('runs[0].run_dir leads to {dir}/study/claims;',),
         setup=_pending_study(_set('runs.0.run_dir', 'claims'))),
    Case('plan_run_dir_is_the_plan', ('worker', '--workdir={dir}/study'),
         'runs[0].run_dir leads to', also=('runs[0].run_dir leads to {dir}/study/plan.json;',),
         setup=_pending_study(_set('runs.0.run_dir', 'plan.json'))),
    Case('plan_entry_directory_outside', ('report', '--workdir={dir}/study'),
         "entries[0].directory leads to", also=(
             "entries[0].directory leads to {dir}/o2; an entry's directory must be "
             '{dir}/study,',),
         setup=_pending_study(_set('entries.0.directory', '../o2')), leaves_no=('o2',)),
    Case('study_seed_dir_links_outside', ('worker', '--workdir={dir}/study'),
         'is a symbolic link (to', also=(
             '{dir}/study/seed_0 is a symbolic link (to {dir}/o/victim), where the study '
             'keeps a folder of its own; move it aside, then run the command again',),
         setup=_pending_study(damage=_symlink('study/seed_0', '{dir}/o/victim')),
         keeps=('o/victim/mine.txt',)),
    Case('comparison_entry_dir_links_outside', ('report', '--workdir={dir}/study'),
         'where the study keeps a folder of its own',
         also=('{dir}/study/a is a symbolic link (to {dir}/o/victim)',),
         setup=_pending_study(kind='comparison',
                              damage=_symlink('study/a', '{dir}/o/victim')),
         keeps=('o/victim/mine.txt',)),
    Case('study_seed_dir_is_a_symlink_loop', ('worker', '--workdir={dir}/study'),
         'move it aside, then run the command again',
         also=('{dir}/study/seed_0 is a symbolic link (to {dir}/study/seed_0)',),
         setup=_pending_study(damage=_symlink('study/seed_0', '{dir}/study/seed_0'))),
    Case('study_claims_is_a_file', ('worker', '--workdir={dir}/study'),
         'is a file, where the study keeps a folder of its own',
         also=('{dir}/study/claims is a file',),
         setup=_pending_study(damage=_write('study/claims', 'mine\n'))),
    Case('study_command_on_a_seed_dir_linking_outside',
         _tiny_run_argv('--num_seeds=2', '--workdir={dir}/study'),
         'is a symbolic link (to', also=('{dir}/study/seed_0 is a symbolic link',),
         setup=_pending_study(damage=_symlink('study/seed_0', '{dir}/o/victim')),
         mid_run=True, keeps=('o/victim/mine.txt',)),
    Case('plan_entry_config_not_a_config', ('worker', '--workdir={dir}/study'),
         'entries[0].config=5 is not a config (a JSON object)',
         setup=_pending_study(_set('entries.0.config', 5))),
    Case('plan_config_has_an_obsolete_key', ('worker', '--workdir={dir}/study'),
         "sets config key 'old_key', which configs/default.py no longer defines",
         also=('finish it with that version',),
         setup=_pending_study(_set('entries.0.config.old_key', 1))),
    Case('plan_kind_search_on_a_study', ('report', '--workdir={dir}/study'),
         'kind=search needs search=', setup=_pending_study(_set('kind', 'search'))),
    Case('plan_json_empty', ('worker', '--workdir={dir}/study'),
         'plan.json cannot be read (JSONDecodeError',
         setup=_pending_study(damage=_write('study/plan.json', ''))),
    Case('report_of_a_file', ('report', '--workdir={dir}/taken'),
         'is a file, not a directory', setup=_write('taken', 'mine\n')),
    Case('study_spec_is_a_list', ('--num_seeds=1', '--workdir={dir}/study'),
         'study_spec.json holds a JSON list, not an object',
         setup=_study_of_embedded_lars({'study/study_spec.json': '[]\n'}), mid_run=True),
    Case('workdir_config_json_is_a_list', ('--workdir={dir}/run',),
         'holds a config.json that is a JSON list, not a config',
         setup=_write('run/config.json', '[]\n')),
    # main.py profile (docs/outputs.md, "Performance profiles"): finished studies only.
    Case('profile_without_workdir', ('profile', f'--studies={_W1},{_W2}'),
         'main.py profile needs --workdir=DIR, where it writes report.md',
         setup=_finished_studies),
    Case('profile_without_studies', _PROFILE, '--studies names no study; give '
         'WORKLOAD:OPTIMIZER=DIR (one finished study) or WORKLOAD=DIR'),
    Case('profile_entry_without_a_directory', (*_PROFILE, '--studies=w1:a'),
         "--studies entry 'w1:a' is not WORKLOAD:OPTIMIZER=DIR"),
    Case('profile_of_a_missing_dir', (*_PROFILE, f'--studies={_W1},w2:a={{dir}}/s/nothing'),
         'does not exist; give the directory of a finished study or comparison',
         also=('--studies w2:a: {dir}/s/nothing does not exist',), setup=_finished_studies),
    Case('profile_of_a_dir_that_is_no_study', (*_PROFILE, f'--studies={_W1},w2:a={{dir}}/s/notes'),
         'holds no study.json or comparison.json; give WORKLOAD:OPTIMIZER=DIR',
         setup=_finished_studies),
    Case('profile_of_an_unfinished_study', (*_PROFILE, f'--studies={_W1},w2:a={{dir}}/s/busy'),
         'is not a finished study: 1 of its planned runs has no result (1 pending)',
         also=('then python main.py report --workdir={dir}/s/busy',), setup=_finished_studies),
    Case('profile_of_a_comparison_as_one_study', (*_PROFILE, f'--studies={_W1},w2:a={{dir}}/s/cmp'),
         'is a comparison, not one study; give it as w2=',
         also=('give it as w2={dir}/s/cmp (each of its configs an optimizer)',),
         setup=_finished_studies),
    Case('profile_of_one_workload', (*_PROFILE, f'--studies={_W1}'),
         '--studies names 1 workload (w1); a performance profile needs at least 2 workloads',
         setup=_finished_studies),
    Case('profile_of_one_optimizer', (*_PROFILE, '--studies=w1:a={dir}/s/w1_a,w2:a={dir}/s/w2_a'),
         '--studies names 1 optimizer (a); a performance profile needs at least 2 optimizers',
         setup=_finished_studies),
    Case('profile_names_a_study_twice', (*_PROFILE, f'--studies={_W1},{_W2},w2:b={{dir}}/s/cmp/b'),
         '--studies gives w2:b twice', also=('({dir}/s/w2_b and {dir}/s/cmp/b)',),
         setup=_finished_studies),
    Case('profile_names_a_directory_twice', (*_PROFILE, f'--studies={_W1},w2=' '{dir}/s/cmp,'
                                                        'w3:a={dir}/s/cmp/a,w3:b={dir}/s/w2_b'),
         'twice (as w2:a and w3:a); each study is one optimizer on one workload',
         setup=_finished_studies),
    Case('profile_without_an_optimizer_on_a_workload',
         (*_PROFILE, f'--studies={_W1},w2:a={{dir}}/s/w2_a'),
         'optimizer b has no study on workload w2; give w2:b=DIR, or leave b out',
         setup=_finished_studies),
    Case('profile_into_a_study', ('profile', '--workdir={dir}/s/w1_a', f'--studies={_W1},{_W2}'),
         'holds other files (seed_0, seed_1, study.json); main.py profile writes report.md',
         setup=_finished_studies),
    Case('profile_with_a_flag_of_training', (*_PROFILE, '--num_seeds=2'),
         '--num_seeds is not a flag of main.py profile, which reads finished studies'),
    Case('training_with_a_flag_of_profile', ('--studies=w1:a=x',),
         '--studies is a flag of main.py profile; drop it'),
    Case('profile_time_in_hours', (*_PROFILE, '--profile_time=hours'),
         '--profile_time=hours'),
    # Sizes without bounds, Slurm submission failures, data.
    Case('num_seeds_beyond_limit', ('--num_seeds=1000000',),
         '--num_seeds=1000000 is more than the 1,000 seeds a study may have'),
    Case('num_trials_beyond_limit', ('--num_trials=1000000',),
         '--num_trials=1000000 is more than the 1,000 trials a search may have'),
    Case('plan_beyond_limit',
         ('--config=configs/embedded_search.py', '--num_trials=100', '--num_seeds=1000'),
         'is 100,000 runs, more than the 10,000 one plan may hold'),
    Case('seed_beyond_32_bits', ('--config.seed=18446744073709551616',),
         'seed=18446744073709551616 is not allowed; allowed: an integer in [0, 4294967295]'),
    Case('study_seeds_beyond_32_bits', ('--num_seeds=2', '--config.seed=4294967295'),
         'runs seeds up to 4294967296, past the largest seed 4294967295'),
    Case('eval_batch_beyond_memory', ('--config.eval_batch_size=1000000000',),
         'eval_batch_size=1000000000 is not allowed; one eval step of ResNet-10',
         also=('allowed: at most',)),
    Case('prefetch_beyond_memory', ('--config.input.prefetch_batches=100000000',),
         'input.prefetch_batches=100000000 is not allowed; 100,000,000 batches of 128 images',
         also=('beside one training step', 'batches ahead')),
    Case('bench_input_threads_beyond_limit', ('bench', '--input_threads=100000000000'),
         '--input_threads=100000000000: 100000000000 is not an integer in the range [1, 1024]'),
    Case('crop_attempts_beyond_int32', ('--config.input.crop_max_attempts=10000000000',),
         'input.crop_max_attempts=10000000000 is not allowed; allowed: an integer > 0, at '
         'most 2,147,483,647 (a 32-bit integer'),
    Case('peak_lr_infinite', ('--config.lr.peak=inf',),
         'lr.peak=inf is not allowed; allowed: a number > 0 (a finite one: inf, -inf and '
         'nan are not numbers here)'),
    Case('momentum_nan', ('--config.optimizer.momentum=nan',),
         'optimizer.momentum=nan is not allowed; allowed: a number in [0, 1) (a finite one'),
    Case('sbatch_short_option_of_the_harness', (*_SLURM_STUDY, '--slurm_option=N=4'),
         "N stands for sbatch's --nodes; the harness sets nodes"),
    Case('sbatch_abbreviated_option_of_the_harness', (*_SLURM_STUDY, '--slurm_option=partitio=gpu'),
         "partitio stands for sbatch's --partition; the harness sets partition"),
    Case('sbatch_short_option', (*_SLURM_STUDY, '--slurm_option=q=high'),
         "q stands for sbatch's --qos; give the long name: --slurm_option=qos=high"),
    Case('sbatch_refuses_an_option', (*_SLURM_STUDY, '--slurm_option=no-such=1'),
         "sbatch did not take the job array of 2 workers (sbatch: unrecognized option "
         "'--no-such=1')", also=('the plan in {dir}/run is kept',
                                 'python main.py worker --workdir={dir}/run'),
         setup=_fake_sbatch("sbatch: unrecognized option '--no-such=1'"),
         in_child=_fake_sbatch_first, mid_run=True, keeps=('run/plan.json',)),
    Case('slurm_controller_down', _SLURM_STUDY,
         f'({_CONTROLLER_DOWN}); the plan in', also=('{dir}/run is kept',),
         setup=_fake_sbatch(_CONTROLLER_DOWN), in_child=_fake_sbatch_first, mid_run=True,
         keeps=('run/plan.json',)),
    # What a cluster's user can get wrong (docs/cluster.md).
    Case('slurm_partition_unknown', (*_SLURM_STUDY, '--slurm_partition=gpu'),
         '--slurm_partition=gpu: Slurm has no partition gpu (sinfo lists debug, long); give '
         'one of those', setup=_fake_slurm(sinfo='debug\nlong\ndebug'),
         in_child=_fake_sbatch_first),
    Case('slurm_time_shorter_than_a_checkpoint', (*_SLURM_STUDY, '--slurm_time=5'),
         '--slurm_time=5 (300 s) is shorter than checkpoint.every_seconds=600 of '
         'embedded_lars', also=('give --slurm_time=10 or more',)),
    Case('clock_ahead_of_the_filesystem', (),
         's ahead of the filesystem of --workdir=',
         also=('--workdir={dir}/run, which dates a file made there now',
               'clocks must agree within 60 s; set this host\'s clock (NTP)'),
         in_child=_clock_ahead(3600.0)),
    Case('worker_clock_behind_the_filesystem', ('worker', '--workdir={dir}/study'),
         's behind the filesystem of --workdir=', also=('--workdir={dir}/study,',),
         setup=_pending_study(),
         in_child=_clock_ahead(-3600.0)),
    Case('study_dir_unseen_by_a_node', _SLURM_STUDY,
         'Slurm could not start 2 worker(s) (77_0 on node2, ...: JobLaunchFailure)',
         also=('node2 cannot open it: such a node does not see the study directory {dir}/run, '
               'or sees it at another path; mount the shared filesystem at the same path on '
               'every node (or leave those nodes out: --slurm_option=exclude=node2)',
               'the plan in {dir}/run is kept'),
         setup=_fake_slurm(sbatch='Submitted batch job 77', squeue='',
                           scontrol=_LAUNCH_FAILED),
         in_child=_fake_sbatch_first, mid_run=True, keeps=('run/plan.json',)),
    Case('garbled_dataset_info', _tiny_run_argv(),
         'holds a damaged copy of embedded_shapes/tiny (its dataset_info.json cannot be '
         'read: ParseError', also=(
             'delete {dir}/data/embedded_shapes/tiny/1.0.0 and the next run builds it again',),
         setup=_tiny_data(_garble_dataset_info), mid_run=True),
    Case('imagenet_garbled_dataset_info',
         ('--config.dataset=imagenet2012', '--config.data_dir={dir}'),
         'holds a damaged copy of imagenet2012 (its dataset_info.json cannot be read',
         also=('prepare it again: move {dir}/imagenet2012/',),
         setup=_imagenet_with_garbled_info),
    Case('prepare_imagenet_data_dir_is_a_file', ('--data_dir={dir}/taken', '--manual_dir={dir}'),
         'is not a directory; give a directory for the tfds data',
         also=('--data_dir={dir}/taken is not a directory',),
         setup=_write('taken', 'mine\n'), module=PREPARE_IMAGENET),
    # Stop signals outside the training steps, and config-file mistakes.
    Case('ctrl_c_swallowed_by_a_gc_callback', _tiny_run_argv(),
         'stopped by SIGINT at step 1; its checkpoint is in',
         also=('{dir}/run/checkpoints; run the same command again to resume',),
         prefix='interrupted: ', status=INTERRUPTED, in_child=_interrupt_inside_a_gc_callback,
         mid_run=True, keeps=('run/checkpoints/1',)),
    Case('ctrl_c_while_building_the_dataset', _tiny_run_argv(),
         'stopped by SIGINT without saving (checkpoints written before are kept)',
         prefix='interrupted: ', status=INTERRUPTED, in_child=_interrupt_while_writing_records,
         mid_run=True, leaves_no=('data',)),
    Case('prepare_imagenet_ctrl_c', _PREPARE,
         'stopped by SIGINT; nothing half-built is left in', also=('{dir}/tfds',),
         prefix='interrupted: ', status=INTERRUPTED, setup=_fake_imagenet(lambda data: data),
         in_child=_interrupt_while_writing_records, module=PREPARE_IMAGENET, mid_run=True,
         leaves_no=('tfds',)),
    Case('ctrl_c_while_waiting_for_local_workers',
         _tiny_run_argv('--num_seeds=2', '--launcher=local', '--num_workers=1',
                        '--workdir={dir}/study'),
         'stopped by SIGINT while waiting; sent SIGTERM to its local workers (pids ',
         also=('each saves its run and stops; python main.py report --workdir={dir}/study says',),
         prefix='interrupted: ', status=INTERRUPTED, in_child=_interrupt_the_wait_for_workers,
         mid_run=True),
    Case('config_file_is_a_directory', ('--config={dir}/configs',),
         'is a directory; give the path of a .py config file',
         also=('config file {dir}/configs is a directory',),
         setup=_write('configs/mine.py', 'from configs.embedded_lars import get_config\n')),
    Case('config_file_returns_none', ('--config={dir}/none.py',),
         'get_config() returned None; end it with `return config`',
         setup=_write('none.py', 'def get_config():\n  config = 1\n')),
    Case('config_file_calls_sys_exit', ('--config={dir}/exits.py',),
         'it called sys.exit(0); a config file only defines get_config()',
         also=('cannot load config file {dir}/exits.py',),
         setup=_write('exits.py', 'import sys\nsys.exit(0)\n')),
    Case('config_file_raises_keyboard_interrupt', ('--config={dir}/ki.py',),
         'get_config() failed: KeyboardInterrupt',
         setup=_write('ki.py', 'def get_config():\n  raise KeyboardInterrupt\n')),
    Case('compare_empty_entry', ('--compare=,',),
         '--compare=,: an entry of the list is empty; give config files separated by single '
         'commas'),
    Case('compare_empty_list', ('--compare=',), '--compare= names no config file'),
    # Filesystems that fail (full, read-only, names too long). A study's
    # report and worker write into the study; tests/test_full_disk.py fills a real
    # filesystem under Orbax's background writes.
    Case('report_of_a_read_only_study', ('report', '--workdir={dir}/study'),
         'is not writable, and main.py report writes its files there; make it writable',
         also=('--workdir={dir}/study is not writable',),
         setup=_finished_study(read_only=True), unprivileged=True),
    Case('worker_of_a_read_only_study', ('worker', '--workdir={dir}/study'),
         'is not writable, and main.py worker writes its files there',
         also=('--workdir={dir}/study is not writable',),
         setup=_finished_study(read_only=True), unprivileged=True),
    Case('report_on_a_full_disk', ('report', '--workdir={dir}/study'),
         '(OSError: No space left on device); free disk space there, then re-run the same '
         'command', also=('cannot write {dir}/study/mlperf/',),
         setup=_finished_study(), in_child=_disk_full_at_start),
    Case('worker_on_a_full_disk', ('worker', '--workdir={dir}/study'),
         'No space left on device); free disk space there', also=('cannot write {dir}/study/',),
         setup=_finished_study(), in_child=_disk_full_at_start, mid_run=True),
    Case('disk_full_after_the_claim', _tiny_run_argv(),
         'run/config.json (OSError: No space left on device); free disk space there',
         also=('cannot write {dir}/run/config.json',),
         in_child=_disk_full_after_claim, leaves_no=('run',)),
    Case('workdir_name_too_long', ('--workdir={dir}/' + 'a' * 4000,),
         '(OSError: File name too long); choose a shorter path, then re-run the same command',
         also=('cannot write the claim on --workdir={dir}/aaaa',)),
    # A link in place of a log file would carry the log anywhere (train/cli/logs.py).
    Case('study_log_links_outside', _tiny_run_argv('--num_seeds=2', '--workdir={dir}/study'),
         'is a symbolic link (to', also=(
             '{dir}/study/log.txt is a symbolic link (to {dir}/o/victim/mine.txt), where the '
             'log is written as a file of its own; move the link aside',),
         setup=_pending_study(damage=_symlink('study/log.txt', '{dir}/o/victim/mine.txt')),
         keeps=('o/victim/mine.txt',)),
]


# --- the driver: runs in its own process ---------------------------------------


def _run_case_in_child(case: Case, argv: list[str], directory: str, out_path: str,
                       err_path: str) -> int:
  """In a forked child (tests/forked.py): main.py's __main__ with `argv`; returns
  the exit status the interpreter would have made of it."""
  for fd, path in ((1, out_path), (2, err_path)):
    os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666), fd)
  if case.unprivileged and os.geteuid() == 0:
    os.setgroups([])
    os.setgid(UNPRIVILEGED_UID)
    os.setuid(UNPRIVILEGED_UID)
  # Ctrl-C as at a terminal: a suite started in the background by a script
  # (`cmd &` without job control) inherits SIGINT ignored, and Python then
  # raises no KeyboardInterrupt for it (prepare_imagenet_ctrl_c relies on one).
  signal.signal(signal.SIGINT, signal.default_int_handler)
  if case.in_child:
    case.in_child(directory)
  os.chdir(REPO)
  try:
    if case.module:
      sys.argv = [case.module, *argv]
      runpy.run_module(case.module, run_name='__main__', alter_sys=True)
    else:
      sys.argv = [MAIN, *argv]
      runpy.run_path(MAIN, run_name='__main__')
  except SystemExit as e:
    # What the interpreter does with sys.exit's argument.
    if isinstance(e.code, int) or e.code is None:
      return e.code or 0
    print(e.code, file=sys.stderr)
    return 1
  return 0


def _drive(spec_path: str, results_path: str) -> None:
  """Runs the cases of the spec file ({'index', 'argv'} each); writes what each did."""
  with open(spec_path) as f:
    spec = json.load(f)
  sys.path.insert(0, REPO)  # As `python main.py` puts main.py's folder first.
  from tests import forked  # pylint: disable=g-import-not-at-top (needs REPO on the path)
  # main.py's top level (its imports and definitions, not its __main__ block),
  # loaded once for every child to inherit. Nothing there starts a JAX backend,
  # which would make the forks unsafe.
  runpy.run_path(MAIN, run_name='bad_input_preload')
  for module in ('train.cli.exits', 'train.cli.jobs'):  # What main() imports once flags parse.
    importlib.import_module(module)
  for module in PRELOADED_LIBRARIES:
    importlib.import_module(module)
  results = []
  scratch = tempfile.mkdtemp(prefix='bad_input_out_')
  for entry in spec:
    out_path = os.path.join(scratch, f'{entry["index"]}.out')
    err_path = os.path.join(scratch, f'{entry["index"]}.err')
    start = time.perf_counter()
    pid = forked.fork(functools.partial(_run_case_in_child, CASES[entry['index']],
                                        entry['argv'], entry['dir'], out_path, err_path))
    (ended,) = forked.wait([pid], CASE_HANG_GUARD_SECONDS)
    with open(out_path) as out, open(err_path) as err:
      results.append({'status': ended.status, 'hung': ended.hung, 'stdout': out.read(),
                      'stderr': err.read(), 'seconds': time.perf_counter() - start})
  shutil.rmtree(scratch)
  with open(results_path, 'w') as f:
    json.dump(results, f)


# --- the tests -----------------------------------------------------------------


def _argv(case: Case, directory: str) -> list[str]:
  argv = [a.replace('{dir}', directory) for a in case.argv]
  runs_training = not case.module and argv[:1] not in (['bench'], ['worker'], ['report'],
                                                       ['profile'])
  if runs_training and not any(a.startswith('--workdir') for a in argv):
    argv.append(f'--workdir={directory}/run')
  return argv


def _snapshot(directory: str) -> dict[str, str]:
  """Every path under `directory` with its mode and, for a file, its content hash."""
  seen = {}
  for root, dirs, files in os.walk(directory):
    for name in dirs + files:
      path = os.path.join(root, name)
      digest = ''
      if name in files and os.access(path, os.R_OK):
        with open(path, 'rb') as f:
          digest = hashlib.sha256(f.read()).hexdigest()
      seen[os.path.relpath(path, directory)] = f'{oct(os.lstat(path).st_mode)} {digest}'
  return seen


def _others_can_read_the_repo() -> bool:
  """Whether the unprivileged user can reach main.py and the config files."""
  path, ok = REPO, bool(os.stat(MAIN).st_mode & 0o004)
  while ok and path != os.path.dirname(path):
    ok, path = bool(os.stat(path).st_mode & 0o001), os.path.dirname(path)
  return ok


def _runnable(case: Case) -> bool:
  return not (case.unprivileged and os.geteuid() == 0 and not _others_can_read_the_repo())


def _selected_cases(session: pytest.Session) -> set[str]:
  """The names of the cases whose tests this session runs (`-k name` runs only those)."""
  selected = set()
  for item in session.items:
    callspec = getattr(item, 'callspec', None)
    if item.path.name == os.path.basename(__file__) and callspec and 'case' in callspec.params:
      selected.add(callspec.params['case'].name)
  return selected


@pytest.fixture(scope='module')
def outcomes(tiny_data_dir, request):
  """{case name: {'result': what the driver saw, 'before'/'after': snapshots, 'dir'}}
  for the cases this session selected (all of them in a whole-suite run)."""
  _TINY_DATA['path'] = tiny_data_dir
  selected = _selected_cases(request.session)
  # Not pytest's tmp_path: its folders are private to their owner, and the
  # unprivileged cases must reach theirs.
  root = tempfile.mkdtemp(prefix='bad_input_')
  os.chmod(root, 0o755)
  try:
    runs = {}
    for index, case in enumerate(CASES):
      if not _runnable(case) or case.name not in selected:
        continue
      directory = os.path.join(root, f'{index:02d}_{case.name}')
      os.mkdir(directory)
      os.chmod(directory, 0o777)  # Writable for the unprivileged user too.
      if case.setup:
        case.setup(directory)
      runs[case.name] = {'index': index, 'dir': directory, 'before': _snapshot(directory)}
    spec = [{'index': run['index'], 'argv': _argv(CASES[run['index']], run['dir']),
             'dir': run['dir']} for run in runs.values()]
    spec_path = os.path.join(root, 'spec.json')
    results_path = os.path.join(root, 'results.json')
    with open(spec_path, 'w') as f:
      json.dump(spec, f)
    env = dict(os.environ, JAX_PLATFORMS='cpu')
    subprocess.run([sys.executable, os.path.abspath(__file__), spec_path, results_path],
                   cwd=REPO, env=env, check=True, timeout=DRIVER_HANG_GUARD_SECONDS)
    with open(results_path) as f:
      for run, result in zip(runs.values(), json.load(f)):
        run.update(result=result, after=_snapshot(run['dir']))
    yield runs
  finally:
    for path, dirs, _ in os.walk(root):
      for name in dirs:
        os.chmod(os.path.join(path, name), 0o755)
    shutil.rmtree(root)


@pytest.mark.slow  # Its fixture runs all the cases, some train (minutes).
@pytest.mark.parametrize('case', CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_and_exit_status_2(case, outcomes):
  if case.name not in outcomes:
    pytest.skip('the unprivileged user cannot read the repository')
  run = outcomes[case.name]
  result = run['result']
  stderr = result['stderr']
  assert not result['hung'], f'hung: still running after {CASE_HANG_GUARD_SECONDS} s'
  assert 'Traceback' not in stderr + result['stdout'], stderr
  assert result['status'] == case.status, stderr
  assert case.mid_run or result['stdout'] == ''
  lines = [line for line in stderr.splitlines() if line.strip()]
  assert lines and (case.mid_run or len(lines) == 1), stderr
  assert lines[-1].startswith(case.prefix), stderr
  for part in (case.expected, *case.also):
    assert part.replace('{dir}', run['dir']) in lines[-1]
  if case.mid_run:  # A run that started writes its own files, and only those.
    changed = [p for p, v in run['before'].items() if run['after'].get(p) != v]
    # A folder's entry changes with its mtime as files come and go.
    assert all(os.path.isdir(os.path.join(run['dir'], p)) for p in changed), changed
  else:
    assert run['after'] == run['before'], 'the case changed its directory'
  for path in case.keeps:
    assert path in run['after'], f'{path} is gone'
  for path in case.leaves_no:
    assert path not in run['after'] or path in run['before'], f'{path} was left behind'


def test_case_names_are_unique():
  assert len({c.name for c in CASES}) == len(CASES)


def test_readme_troubleshooting_quotes_every_case():
  # The troubleshooting table lives in docs/troubleshooting.md, which the README links.
  with open(os.path.join(REPO, 'README.md')) as f:
    assert '(docs/troubleshooting.md)' in f.read(), 'README.md does not link the table'
  with open(os.path.join(REPO, 'docs', 'troubleshooting.md')) as f:
    page = f.read()
  assert page.startswith('# Troubleshooting\n'), 'docs/troubleshooting.md has no title'
  missing = [c.name for c in CASES if c.expected not in page]
  assert not missing, f'docs/troubleshooting.md does not quote: {missing}'


if __name__ == '__main__':
  _drive(*sys.argv[1:])
