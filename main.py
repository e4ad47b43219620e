"""Trains a ResNet as a config file says and writes the results: one run or a study.

  python main.py          # the embedded comparison: LARS against Nesterov, 5 seeds each
  python main.py --config=configs/embedded_lars.py --workdir=runs/x --config.seed=3
  python main.py --config=configs/embedded_lars.py --num_seeds=8       # a study
  python main.py --compare=configs/embedded_lars.py,configs/embedded_nesterov.py \
      --num_seeds=5                                                    # a comparison
  python main.py --config=configs/embedded_search.py --num_trials=16   # a search

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

from train import config_specs
from train import validation

_REPO_ROOT = os.path.dirname(os.path.abspath(__file__))
_DEFAULT_CONFIG = os.path.join(_REPO_ROOT, 'configs', 'embedded_lars.py')
# What a bare `python main.py` runs: the embedded comparison of the README.
MAIN_JOB_ARGS = ['--compare=configs/embedded_lars.py,configs/embedded_nesterov.py',
                 '--num_seeds=5']
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
  if len(argv) == 1:
    argv = argv + MAIN_JOB_ARGS
  try:
    config_flags.DEFINE_config_file(
        'config', _DEFAULT_CONFIG, 'Experiment config file (configs/*.py[:variant]).',
        lock_config=True)
    flags.DEFINE_string('workdir', None,
                        'Directory for the results; default: a new folder under runs/.')
    flags.DEFINE_integer('num_seeds', 1, 'Run a study: seeds config.seed to '
                         'config.seed + num_seeds - 1, each in WORKDIR/seed_<s>/.',
                         lower_bound=1)
    flags.DEFINE_list('compare', [], 'Compare these config files (FILE.py[:VARIANT], '
                      'FILE.py:* for all its variants) side by side, each a study of '
                      'num_seeds seeds; --config.KEY=VALUE overrides apply to each.')
    flags.DEFINE_integer('num_trials', 0, 'Quasi-random search over the search space of '
                         'the --config file (its get_search_space()), num_seeds seeds '
                         'per trial.', lower_bound=0)
    remaining = FLAGS(argv)
    # ml_collections defers a config file's load error until the config is read.
    list(FLAGS.config.keys())
    return remaining
  except Exception as e:  # pylint: disable=broad-except
    _fail(_flag_error_message(e, argv))
  raise AssertionError('unreachable')


def default_workdir(name: str) -> str:
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


def _validate(config, name: str = '') -> None:
  try:
    validation.validate_config(config, num_devices=jax.device_count())
  except validation.ConfigError as e:
    _fail(f'{name}: {e}' if name else str(e))


def _config_spec() -> config_specs.ConfigSpec:
  """The --config flag's file and variant, as given (or the default)."""
  value = FLAGS['config'].serialize().partition('=')[2] if FLAGS['config'].present else ''
  return config_specs.parse_spec(value or _DEFAULT_CONFIG)


def _compared_configs() -> dict:
  """The configs of --compare, each with the command line's overrides applied."""
  if FLAGS['config'].present:
    _fail('give either --config or --compare: --compare names every config it runs')
  try:
    base = config_specs.load_config(_config_spec())
    changed = config_specs.overrides(base, FLAGS.config)
    specs = [s for text in FLAGS.compare for s in config_specs.expand(
        config_specs.parse_spec(os.path.join(_REPO_ROOT, text)
                                if not os.path.exists(text.partition(':')[0]) else text))]
    configs = {spec.name: config_specs.with_overrides(config_specs.load_config(spec), changed)
               for spec in specs}
  except (ValueError, KeyError, AttributeError, TypeError) as e:
    _fail(f'--compare: {_one_line(e)}')
  if len(configs) < 2:
    _fail(f'--compare={",".join(FLAGS.compare)} names {len(configs)} config; '
          'a comparison needs at least 2')
  for name, config in configs.items():
    _validate(config, name)
  return configs


def _search_space(spec: config_specs.ConfigSpec) -> list:
  try:
    module = config_specs.load_module(spec.path)
  except ValueError as e:
    _fail(str(e))
  if not hasattr(module, 'get_search_space'):
    _fail(f'--num_trials needs a search space: {spec.path} has no get_search_space(); '
          'see configs/nesterov_search_table9.py')
  from train import search  # pylint: disable=g-import-not-at-top
  space = module.get_search_space()
  try:
    search.check_space(space, FLAGS.config)
  except ValueError as e:
    _fail(f'{spec.path}: {e}')
  return space


def _print_result(result: dict, target: float, workdir: str) -> None:
  reached = (f'reached {target:.1%} at step {result["steps_to_target"]} '
             f'after {result["seconds_to_target"]:.1f}s' if result['reached_target']
             else f'did not reach {target:.1%}')
  print(f'{result["status"]}: {reached}; final eval accuracy '
        f'{result["final_eval_accuracy"]:.4f}; results in {workdir}')


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    _fail(f'unexpected arguments {argv[1:]}; pass settings as --config.KEY=VALUE')
  # jax logs at INFO that it found no TPU library; keep stderr for what matters.
  std_logging.getLogger('jax._src.xla_bridge').setLevel(std_logging.WARNING)
  if FLAGS.compare and FLAGS.num_trials:
    _fail('--compare and --num_trials do not combine; search one config at a time')
  spec = _config_spec()
  if FLAGS.compare:
    configs = _compared_configs()
    name = ('embedded_comparison' if FLAGS.compare == MAIN_JOB_ARGS[0].partition('=')[2]
            .split(',') else 'comparison')
  else:
    config = FLAGS.config
    _validate(config)
    space = _search_space(spec) if FLAGS.num_trials else None
    name = spec.name
  workdir = os.path.abspath(FLAGS.workdir or default_workdir(name))
  is_study = FLAGS.compare or FLAGS.num_trials or FLAGS['num_seeds'].present
  if not is_study:
    check_workdir(workdir, config.to_json())

  # Imported after validation: the loop pulls in TensorFlow, tfds and clu.
  from train import loop  # pylint: disable=g-import-not-at-top
  from train import report  # pylint: disable=g-import-not-at-top
  from train import study  # pylint: disable=g-import-not-at-top
  logging.info('JAX %s on %d %s device(s); results in %s', jax.__version__,
               jax.device_count(), jax.devices()[0].platform, workdir)
  if not is_study:
    _print_result(loop.train_and_evaluate(config, workdir), config.target_accuracy, workdir)
    return
  try:
    if FLAGS.compare:
      studies = study.run_comparison(configs, workdir, FLAGS.num_seeds)
    elif FLAGS.num_trials:
      trials = study.run_search(config, name, space, workdir, FLAGS.num_trials,
                                FLAGS.num_seeds)
      best = max(trials, key=lambda t: t['summary']['median_final_accuracy'] or -1.0)
      print(f'best of {len(trials)} trials: trial_{best["trial"]} {best["params"]}, '
            f'median final accuracy {best["summary"]["median_final_accuracy"]}')
      print(f'report: {os.path.join(workdir, "report.md")}')
      return
    else:
      studies = [study.run_study(config, name, workdir, FLAGS.num_seeds)]
  except (study.StudyDirError, validation.ConfigError) as e:
    _fail(str(e))
  print(report.comparison_table([(s['name'], s, s['runs']) for s in studies]))
  print(f'report: {os.path.join(workdir, "report.md")}')


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
