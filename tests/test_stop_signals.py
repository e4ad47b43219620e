"""A Ctrl-C (SIGINT) or SIGTERM early in `python main.py` is never lost.

Early SIGINTs used to be: raised as KeyboardInterrupt inside an import (where an
extension module turned it into an ImportError, or a library swallowed it) or
inside JAX's gc callback (printed as "Exception ignored", then forgotten), they
let the run train to its end and exit 0. Each run here is a fresh
`python main.py` (tests/stop_driver.py), so the imports are real, and it sends
itself a real signal as it reaches a stage, never after a delay: the outcome
does not depend on the machine's speed. Every stage must end in one
`interrupted: ...` (or `preempted: ...`) line, last on stderr, with 128 + the
signal's number, no traceback, and no finished run.

The stop at a training step, and one swallowed by a gc callback, are rows of
tests/test_bad_input.py (ctrl_c_saves_the_step, ctrl_c_swallowed_by_a_gc_callback).
"""

import os
import signal
import subprocess
import sys

import pytest

from tests.test_bad_input import _TINY_RUN

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRIVER = os.path.join(REPO, 'tests', 'stop_driver.py')
HANG_GUARD_SECONDS = 600

# From main.py's first imports to the first train step, in order: absl (right
# after main.py takes the signals over), jax (once the flags are parsed),
# tensorflow (the input pipeline, once the job has started), compilation, the
# first step (the run saves the step it stops at).
STAGES = [('import:absl', 'SIGINT'), ('import:jax', 'SIGINT'),
          ('import:tensorflow', 'SIGINT'), ('compile', 'SIGINT'), ('first_step', 'SIGINT'),
          ('import:tensorflow', 'SIGTERM')]


@pytest.mark.slow  # Each case is a fresh interpreter that imports JAX (and TensorFlow).
@pytest.mark.parametrize('stage,signal_name', STAGES, ids=[f'{s}-{n}' for s, n in STAGES])
def test_an_early_stop_signal_is_honoured(stage, signal_name, tmp_path, tiny_data_dir):
  marker, workdir = tmp_path / 'reached', tmp_path / 'run'
  argv = [f'--config.{k}={v}' for k, v in _TINY_RUN.items()]
  argv += [f'--config.data_dir={tiny_data_dir}', f'--workdir={workdir}']
  done = subprocess.run(
      [sys.executable, DRIVER, stage, signal_name, str(marker), *argv], cwd=REPO,
      capture_output=True, text=True, timeout=HANG_GUARD_SECONDS,
      env=dict(os.environ, JAX_PLATFORMS='cpu'))
  signum = getattr(signal, signal_name)
  assert marker.exists(), f'the run never reached {stage}: {done.stderr}'
  assert 'Traceback' not in done.stderr + done.stdout, done.stderr
  assert 'Exception ignored' not in done.stderr, done.stderr
  assert done.returncode == 128 + signum, done.stderr
  lines = [line for line in done.stderr.splitlines() if line.strip()]
  how = 'interrupted: ' if signum == signal.SIGINT else 'preempted: '
  assert [line for line in lines if line.startswith(how)] == lines[-1:], done.stderr
  assert f'stopped by {signal_name}' in lines[-1]
  assert not (workdir / 'result.json').exists(), 'the run trained to its end'
  if stage == 'first_step':  # It came after step 1's check: step 2 is saved.
    assert 'at step 2; its checkpoint is in' in lines[-1]
    assert (workdir / 'checkpoints' / '2').is_dir(), 'the step was not saved'
