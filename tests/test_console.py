"""The console of a command: quiet, one progress line, the log in a file; the
persistent compilation cache; `--help` without TensorFlow."""

import io
import os
import re
import subprocess
import sys

import pytest

from tests import study_runs
from train.cli import compilation_cache
from train.common import console

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# 8 steps of ResNet-10 width 4 on 512 training images, 2 evals.
TINY = study_runs.QUICK_TINY
# An absl or Python log record as absl prints it: 'I0102 03:04:05.678 ...'.
LOG_RECORD = re.compile(r'^[IWEF]\d{4} \d\d:\d\d:\d\d')

RESULT = {'final_eval_accuracy': 0.25, 'target_accuracy': 0.2, 'reached_target': True,
          'steps_to_target': 4, 'status': 'success', 'run_seconds': 12.34}


class _Clock:
  def __init__(self):
    self.now = 0.0

  def __call__(self):
    return self.now


class _Terminal(io.StringIO):
  def isatty(self):
    return True


def test_progress_in_a_file_is_plain_lines_at_most_every_interval():
  stream, clock = io.StringIO(), _Clock()
  with console.Progress(2, stream, every_secs=30.0, clock=clock) as progress:
    progress.start_run('lars seed 0')
    clock.now = 10.0
    progress.update(4, 8, 500.0, run_left=5.0)
    clock.now = 20.0
    progress.update(8, 8, 520.0, run_left=0.0)  # Within 30 s of the last line: not shown.
    progress.finish_run(console.run_line('lars seed 0', RESULT))
    progress.start_run('lars seed 1')
    clock.now = 30.0
    progress.update(2, 8, 505.0, run_left=6.0)  # Nor here.
    clock.now = 41.0
    progress.update(4, 8, 510.0, run_left=4.0)
  lines = stream.getvalue().splitlines()
  assert lines == [
      'runs 0/2 done | lars seed 0: step 4/8, 500 images/s | time left 20s',
      'lars seed 0: final accuracy 0.2500, reached 20.0% at step 4 (success), 12.3s',
      'runs 1/2 done | lars seed 1: step 4/8, 510 images/s | time left 4s',
  ]
  assert '\r' not in stream.getvalue()


def test_progress_on_a_terminal_rewrites_one_line_and_clears_it():
  stream, clock = _Terminal(), _Clock()
  with console.Progress(1, stream, clock=clock) as progress:
    progress.start_run('lars seed 0')
    progress.update(4, 8, 500.0, run_left=5.0)
    progress.update(8, 8, 500.0, run_left=0.0)
    console.clear_line()  # As a log record on the console does.
    progress.update(8, 8, 500.0, run_left=0.0)
  text = stream.getvalue()
  assert text.startswith('\rruns 0/1 done | lars seed 0: setting up\033[K\r')
  assert '\n' not in text  # Never more than the one line ...
  assert text.count('\r\033[K') == 2  # ... cleared for the record and at the end.
  assert text.endswith('\r\033[K')


def test_run_lines_and_durations():
  assert console.duration(45) == '45s' and console.duration(185) == '3m05s'
  assert console.duration(7440) == '2h04m'
  line = console.run_line('nesterov seed 3', {**RESULT, 'reached_target': False,
                                              'status': 'aborted'}, earlier=True)
  assert line == ('nesterov seed 3: final accuracy 0.2500, did not reach 20.0% (aborted), '
                  'finished earlier')


def test_compilation_cache_directory_defaults():
  assert compilation_cache.default_dir({'JAX_COMPILATION_CACHE_DIR': '/c'}) == '/c'
  assert (compilation_cache.default_dir({'XDG_CACHE_HOME': '/x'})
          == '/x/large-batch-harness/jax')
  assert compilation_cache.default_dir({}).endswith('/.cache/large-batch-harness/jax')


def _python(code: str, **env) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True,
                        text=True, timeout=300, env={**os.environ, **env})


def test_help_imports_no_tensorflow():
  proc = _python(
      'import runpy, sys\n'
      'sys.argv = ["main.py", "--help"]\n'
      'try:\n'
      '  runpy.run_path("main.py", run_name="__main__")\n'
      'except SystemExit:\n'
      '  pass\n'
      'heavy = [m for m in ("tensorflow", "tensorflow_datasets", "clu", "orbax") '
      'if m in sys.modules]\n'
      'print("HEAVY", heavy, file=sys.stderr)\n')
  assert 'HEAVY []' in proc.stderr, proc.stderr[-2000:]
  assert '--compilation_cache_dir' in proc.stdout + proc.stderr


def test_compilation_cache_off_writes_nothing(tmp_path):
  """With the cache off, a compilation leaves the default directory alone."""
  proc = _python(
      'import jax, jax.numpy as jnp\n'
      'from train.cli import compilation_cache\n'
      'assert compilation_cache.configure("") is None\n'
      'jax.jit(lambda x: x * 2 + 1)(jnp.ones(3)).block_until_ready()\n',
      XDG_CACHE_HOME=str(tmp_path / 'xdg'), JAX_COMPILATION_CACHE_DIR='')
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert not (tmp_path / 'xdg').exists()


@pytest.mark.slow  # A study of main.py that trains (about 40 s).
def test_study_console_is_quiet_and_its_log_is_full(tmp_path):
  """A study from the command line: progress and one line per run on the console,
  every log record (Orbax's, tfds', the harness's) in WORKDIR/log.txt, and the
  compiled programs in the cache directory."""
  workdir, cache = tmp_path / 'study', tmp_path / 'cache'
  args = ['--num_seeds=2', f'--workdir={workdir}', f'--compilation_cache_dir={cache}',
          *[f'--config.{k}={v}' for k, v in {**TINY, 'data_dir': tmp_path / 'data'}.items()]]
  proc = subprocess.run([sys.executable, os.path.join(REPO, 'main.py'), *args], cwd=REPO,
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  err = proc.stderr.splitlines()
  assert not [line for line in err if LOG_RECORD.match(line)], proc.stderr
  assert 'All log messages before absl::InitializeLog' not in proc.stderr
  assert any(line.startswith('runs 0/2 done | embedded_lars seed 0: step 4/8,') and
             'images/s | time left' in line for line in err), proc.stderr
  for seed in (0, 1):
    assert any(line.startswith(f'embedded_lars seed {seed}: final accuracy ')
               for line in err), proc.stderr
  assert f'report: {workdir}/report.md' in proc.stdout
  log = (workdir / 'log.txt').read_text()
  for record in ('checkpoint_manager.py', 'dataset_info.py', '[4] train_accuracy=',
                 'steps/s, 50.0% (4/8), ETA',
                 'eval at step 8', 'persistent compilation cache: '):
    assert record in log, record
  assert len(os.listdir(cache)) > 0
  assert len(proc.stdout.splitlines()) + len(err) < 40
