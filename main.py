"""Trains a ResNet as a config file says and writes the run's results.

  python main.py                                   # the embedded default
  python main.py --config=configs/default.py --workdir=runs/x --config.seed=3

Bad input (an unknown key, a value out of range, a missing dataset) ends with one
line on stderr and exit status 2.
"""

import os
import sys

# TensorFlow serves tf.data only: keep its C++ chatter and its hands off GPUs.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import datetime  # pylint: disable=g-import-not-at-top,wrong-import-position
import json  # pylint: disable=g-import-not-at-top,wrong-import-position
import logging as std_logging  # pylint: disable=g-import-not-at-top,wrong-import-position

import jax
from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from train import validation

_REPO_ROOT = os.path.dirname(os.path.abspath(__file__))
_DEFAULT_CONFIG = os.path.join(_REPO_ROOT, 'configs', 'default.py')
USAGE_ERROR = 2

FLAGS = flags.FLAGS


def _fail(message: str) -> None:
  print(f'error: {message}', file=sys.stderr)
  sys.exit(USAGE_ERROR)


def _one_line(text: str) -> str:
  return ' '.join(str(text).split())


def _flag_error_message(error: Exception, argv: list[str]) -> str:
  """One line for a flag that cannot be parsed, a config that cannot be loaded."""
  if isinstance(error, (KeyError, AttributeError)):
    # ml_collections reports an unknown override key as a bare (quoted) key.
    key = _one_line(error).strip('"\'')
    overrides = [a for a in argv if a.startswith('--config.') and key in a]
    where = f' in {overrides[0]}' if overrides else ''
    return (f'unknown config key {key!r}{where}; the keys are those of the config '
            'file (all defined in configs/default.py)')
  text = str(error)
  if 'Traceback (most recent call last)' in text:
    # A config file whose get_config() raised: its last line names the error.
    last = [line for line in text.splitlines() if line.strip()][-1].strip()
    return f'cannot load the config file: {last}'
  if isinstance(error, flags.Error):
    return _one_line(error)
  # Loading the config file runs it: a missing file, a syntax error or a failing
  # get_config() surfaces as the error of that code.
  return f'cannot load the config file: {type(error).__name__}: {_one_line(error)}'


def parse_flags(argv: list[str]) -> list[str]:
  """Defines and parses the flags; every error is one line and exit status 2.

  ml_collections reads `--config.KEY=VALUE` overrides out of sys.argv as soon as
  the config flag is defined, so the definition sits inside the same guard.
  """
  try:
    config_flags.DEFINE_config_file(
        'config', _DEFAULT_CONFIG, 'Experiment config file (configs/*.py[:variant]).',
        lock_config=True)
    flags.DEFINE_string('workdir', None,
                        'Directory for the results; default: a new folder under runs/.')
    remaining = FLAGS(argv)
    # ml_collections defers a config file's load error until the config is read.
    list(FLAGS.config.keys())
    return remaining
  except Exception as e:  # pylint: disable=broad-except
    _fail(_flag_error_message(e, argv))
  raise AssertionError('unreachable')


def default_workdir() -> str:
  config_path = config_flags.get_config_filename(FLAGS['config'])
  name = os.path.splitext(os.path.basename(config_path))[0]
  stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
  return os.path.join(_REPO_ROOT, 'runs', f'{name}-{stamp}')


def check_workdir(workdir: str, config_json: str) -> None:
  """Refuses a workdir that holds a finished run or another config's run."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    _fail(f'--workdir={workdir} is a file; give a directory')
  if os.path.exists(os.path.join(workdir, 'result.json')):
    _fail(f'--workdir={workdir} already holds a finished run (result.json); '
          'choose a new --workdir')
  existing = os.path.join(workdir, 'config.json')
  if os.path.exists(existing):
    with open(existing) as f:
      if json.load(f) != json.loads(config_json):
        _fail(f'--workdir={workdir} holds a run of another config ({existing}); '
              'choose a new --workdir')
  parent = os.path.dirname(os.path.abspath(workdir))
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if not os.access(parent, os.W_OK):
    _fail(f'--workdir={workdir} cannot be created: {parent} is not writable')


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    _fail(f'unexpected arguments {argv[1:]}; pass settings as --config.KEY=VALUE')
  config = FLAGS.config
  # jax logs at INFO that it found no TPU library; keep stderr for what matters.
  std_logging.getLogger('jax._src.xla_bridge').setLevel(std_logging.WARNING)
  try:
    validation.validate_config(config, num_devices=jax.device_count())
  except validation.ConfigError as e:
    _fail(str(e))
  workdir = os.path.abspath(FLAGS.workdir or default_workdir())
  check_workdir(workdir, config.to_json())

  # Imported after validation: the loop pulls in TensorFlow, tfds and clu.
  from train import loop  # pylint: disable=g-import-not-at-top
  logging.info('JAX %s on %d %s device(s); results in %s', jax.__version__,
               jax.device_count(), jax.devices()[0].platform, workdir)
  result = loop.train_and_evaluate(config, workdir)
  reached = (f'reached {config.target_accuracy:.1%} at step {result["steps_to_target"]} '
             f'after {result["seconds_to_target"]:.1f}s' if result['reached_target']
             else f'did not reach {config.target_accuracy:.1%}')
  print(f'{result["status"]}: {reached}; final eval accuracy '
        f'{result["final_eval_accuracy"]:.4f}; results in {workdir}')


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
