"""Driver of the staged search's kill-and-resume test (tests/test_staged_search.py).

  python tests/staged_driver.py SPEC.json

SPEC holds {"argv": [main.py's arguments], "out_dir": DIR, "attempts": [{"kill_in":
NAME or null, "args": [more arguments], "argv": [arguments instead of ARGV]}, ...]}.
Every attempt is `main.py ARGV ARGS` run through main.py's own __main__ in a child
forked from this process
(tests/forked.py): the modules are imported once, while each attempt starts JAX
afresh as a command run again would. With "kill_in", the child SIGKILLs itself
as it is about to train a run in the search's directory NAME (a stage's, or
'confirm') while that directory already holds a finished run: the stage is
half done. Each attempt's stdout and stderr go to DIR/attempt_<k>.out and .err.
Prints one JSON line: per attempt, its exit status, its seconds and the
result.json files of the search (path: st_mtime_ns) when it ended.
"""

import functools
import glob
import json
import os
import runpy
import signal
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests import forked  # pylint: disable=g-import-not-at-top,wrong-import-position

MAIN = os.path.join(REPO, 'main.py')
# Hang guard, not a time limit: an attempt still running after this long is killed.
HANG_GUARD_SECONDS = 900


def _workdir(argv: list[str]) -> str:
  return next(a.partition('=')[2] for a in argv if a.startswith('--workdir='))


def _kill_in(directory: str) -> None:
  """Makes this process SIGKILL itself at the start of a run in `directory` that
  already holds a finished run."""
  from train.run import loop  # pylint: disable=g-import-not-at-top
  train_and_evaluate = loop.train_and_evaluate

  def killing(config, workdir, *args, **kwargs):
    finished = glob.glob(os.path.join(directory, '*', 'seed_*', 'result.json')) + glob.glob(
        os.path.join(directory, 'seed_*', 'result.json'))
    if os.path.commonpath([workdir, directory]) == directory and finished:
      os.kill(os.getpid(), signal.SIGKILL)
    return train_and_evaluate(config, workdir, *args, **kwargs)

  loop.train_and_evaluate = killing


def _attempt(argv: list[str], attempt: dict, out: str) -> int:
  """The child: main.py with the attempt's arguments; returns its exit status."""
  for fd, path in ((1, f'{out}.out'), (2, f'{out}.err')):
    os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666), fd)
  if attempt.get('kill_in'):
    _kill_in(os.path.join(_workdir(argv), attempt['kill_in']))
  os.chdir(REPO)
  try:
    sys.argv = [MAIN, *attempt.get('argv', argv), *attempt.get('args', [])]
    runpy.run_path(MAIN, run_name='__main__')
  except SystemExit as e:
    return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
  return 0


def _results(workdir: str) -> dict[str, int]:
  return {os.path.relpath(path, workdir): os.stat(path).st_mtime_ns
          for path in glob.glob(os.path.join(workdir, '**', 'result.json'), recursive=True)}


def main(spec_path: str) -> None:
  with open(spec_path) as f:
    spec = json.load(f)
  # What the attempts would each import again: main.py's modules, the search's
  # and the run's (TensorFlow among them). None starts a JAX backend here.
  runpy.run_path(MAIN, run_name='staged_driver_preload')
  from train.cli import exits, jobs, runners  # pylint: disable=g-import-not-at-top,unused-import
  from train.experiments import staged  # pylint: disable=g-import-not-at-top,unused-import
  from train.run import loop  # pylint: disable=g-import-not-at-top,unused-import
  outcomes = []
  for k, attempt in enumerate(spec['attempts']):
    start = time.perf_counter()
    pid = forked.fork(functools.partial(_attempt, spec['argv'], attempt,
                                        os.path.join(spec['out_dir'], f'attempt_{k}')))
    [ended] = forked.wait([pid], HANG_GUARD_SECONDS)
    outcomes.append({'status': ended.status, 'hung': ended.hung,
                     'seconds': time.perf_counter() - start,
                     'results': _results(_workdir(spec['argv']))})
  print(json.dumps(outcomes))


if __name__ == '__main__':
  main(sys.argv[1])
