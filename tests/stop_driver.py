"""Runs main.py as `python main.py ARGS` does, with a real stop signal arriving at
one stage of its start: python tests/stop_driver.py STAGE SIGNAL MARKER ARGS...

The process sends the signal to itself when it reaches STAGE, never after a
delay, so which stage is tested does not depend on the machine's speed. It
writes MARKER just before, so the test knows the stage was reached. STAGE:

  import:MODULE  as MODULE's import starts (found through sys.meta_path)
  compile        as the train step's programs are compiled
  first_step     during the first train step (the run saves the next)
"""

import importlib.abc
import os
import runpy
import signal
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _fire(signum: int, marker: str) -> None:
  with open(marker, 'w') as f:
    f.write('reached\n')
  os.kill(os.getpid(), signum)


class _SignalAtImport(importlib.abc.MetaPathFinder):
  """Sends the signal as `module` starts to be imported; finds nothing itself."""

  def __init__(self, module: str, fire):
    self._module = module
    self._fire = fire

  def find_spec(self, fullname, path, target=None):
    del path, target
    if fullname == self._module:
      sys.meta_path.remove(self)
      self._fire()
    return None


class _SignalInTheLoop(importlib.abc.MetaPathFinder):
  """Once train.run.loop is imported: the signal as the train step's programs
  are compiled, or during the first train step."""

  def __init__(self, stage: str, fire):
    self._stage = stage
    self._fire = fire

  def find_spec(self, fullname, path, target=None):
    del path, target
    if fullname == 'train.run.loop':
      sys.meta_path.remove(self)
      if self._stage == 'compile':
        self._patch_compile()
      else:
        self._patch_first_step()
    return None

  def _patch_compile(self) -> None:
    from train.run import programs  # pylint: disable=g-import-not-at-top
    compile_steps = programs.compile_steps

    def compile_after_signal(*args, **kwargs):
      self._fire()
      return compile_steps(*args, **kwargs)
    programs.compile_steps = compile_after_signal

  def _patch_first_step(self) -> None:
    from train.run import checkpoint  # pylint: disable=g-import-not-at-top
    due = checkpoint.Cadence.due

    def due_after_signal(cadence, step, now, at_log_step):
      if step == 1:
        self._fire()
      return due(cadence, step, now, at_log_step)
    checkpoint.Cadence.due = due_after_signal


def main() -> None:
  stage, signal_name, marker, *argv = sys.argv[1:]
  fire = lambda: _fire(getattr(signal, signal_name), marker)
  if stage.startswith('import:'):
    sys.meta_path.insert(0, _SignalAtImport(stage.partition(':')[2], fire))
  elif stage in ('compile', 'first_step'):
    sys.meta_path.insert(0, _SignalInTheLoop(stage, fire))
  else:
    raise ValueError(f'unknown stage {stage!r}')
  sys.path.insert(0, REPO)  # As `python main.py` puts main.py's folder first.
  os.chdir(REPO)
  sys.argv = [os.path.join(REPO, 'main.py'), *argv]
  runpy.run_path(sys.argv[0], run_name='__main__')


if __name__ == '__main__':
  main()
