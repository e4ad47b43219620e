"""Trains a ResNet as a config file says and writes the results: one run or a study.

  python main.py          # the embedded comparison: LARS against Nesterov, 5 seeds each
  python main.py --config=configs/embedded_lars.py --workdir=runs/x --config.seed=3
  python main.py --config=configs/embedded_lars.py --num_seeds=8       # a study
  python main.py --compare=configs/embedded_lars.py,configs/embedded_nesterov.py \
      --num_seeds=5                                                    # a comparison
  python main.py --config=configs/embedded_search.py --num_trials=16   # a search
  python main.py bench --config=configs/embedded_lars.py --modes=synthetic,input,train
                                                # throughput (train/bench.py)

Bad input (an unknown key, a value out of range, a missing dataset) ends with one
line on stderr and exit status 2.
"""

import os
import signal
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
from train import distributed
from train import memory
from train import validation

_REPO_ROOT = os.path.dirname(os.path.abspath(__file__))
_DEFAULT_CONFIG = os.path.join(_REPO_ROOT, 'configs', 'embedded_lars.py')
# What a bare `python main.py` runs: the embedded comparison of the README.
MAIN_JOB_ARGS = ['--compare=configs/embedded_lars.py,configs/embedded_nesterov.py',
                 '--num_seeds=5']
USAGE_ERROR = 2
# What schedulers and shells expect of a job a signal stopped: 128 + its number.
PREEMPTED_EXIT = 128 + signal.SIGTERM
INTERRUPTED_EXIT = 128 + signal.SIGINT

FLAGS = flags.FLAGS


def _fail(message: str) -> None:
  print(f'error: {message}', file=sys.stderr)
  sys.exit(USAGE_ERROR)


def _one_line(text: str) -> str:
  return ' '.join(str(text).split())


def parse_flags(argv: list[str]) -> list[str]:
  """Defines and parses the flags; every error is one line and exit status 2.

  ml_collections reads `--config.KEY=VALUE` overrides out of sys.argv as soon as
  the config flag is defined, so the definition sits inside the same guard.
  """
  if len(argv) == 1:
    argv = argv + MAIN_JOB_ARGS
  try:
    config_specs.allow_none_overrides()
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
    distributed.define_flags()
    remaining = FLAGS(argv)
    # ml_collections defers a config file's load error until the config is read.
    list(FLAGS.config.keys())
    config_specs.check_keys(FLAGS.config, str(_config_spec()))
    return remaining
  except Exception as e:  # pylint: disable=broad-except
    _fail(config_specs.flag_error_message(e, argv, FLAGS, _DEFAULT_CONFIG))
  raise AssertionError('unreachable')


def default_workdir(name: str) -> str:
  stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
  return os.path.join(_REPO_ROOT, 'runs', f'{name}-{stamp}')


def check_workdir_location(workdir: str) -> None:
  """Refuses a workdir that is a file, or that cannot be created or written to."""
  nearest = workdir  # The workdir, or the folder it would be created in.
  while not os.path.exists(nearest):
    nearest = os.path.dirname(nearest)
  where = (f'--workdir={workdir}' if nearest == workdir
           else f'--workdir={workdir} cannot be created: {nearest}')
  if not os.path.isdir(nearest):
    _fail(f'{where} is a file; give a directory')
  if not os.access(nearest, os.W_OK | os.X_OK):
    _fail(f'{where} is not writable; choose a --workdir you can write to')


def check_workdir(workdir: str, config_json: str) -> None:
  """Refuses a workdir that holds a finished run or another config's run."""
  if os.path.exists(os.path.join(workdir, 'result.json')):
    _fail(f'--workdir={workdir} already holds a finished run (result.json); '
          'choose a new --workdir')
  existing = os.path.join(workdir, 'config.json')
  if os.path.exists(existing):
    try:
      with open(existing) as f:
        there = json.load(f)
    except (OSError, ValueError) as e:
      _fail(f'--workdir={workdir} holds a config.json that cannot be read '
            f'({type(e).__name__}); choose a new --workdir')
    here = json.loads(config_json)
    if there != here:
      _fail(f'--workdir={workdir} holds a run of another config ({existing}): '
            f'{config_specs.differences(there, here)}; choose a new --workdir')


def _validate(config, name: str = '') -> None:
  try:
    validation.validate_config(config, num_devices=jax.device_count(),
                               device_memory=memory.device_memory())
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


def _remove_if_left_empty(workdir: str, existed: bool) -> None:
  """Takes back a workdir this command created when a failure left it empty."""
  if not existed and os.path.isdir(workdir) and not os.listdir(workdir):
    os.rmdir(workdir)


def main(argv: list[str]) -> None:
  """Ctrl-C outside the training steps (which save first: train/loop.py) ends here."""
  try:
    _main(argv)
  except KeyboardInterrupt:
    print('interrupted: stopped by SIGINT without saving (checkpoints written before '
          'are kept); run the same command again to resume', file=sys.stderr)
    sys.exit(INTERRUPTED_EXIT)


def _main(argv: list[str]) -> None:
  if len(argv) > 1:
    _fail(f'unexpected arguments {argv[1:]}; pass settings as --config.KEY=VALUE')
  # jax logs at INFO that it found no TPU library; keep stderr for what matters.
  std_logging.getLogger('jax._src.xla_bridge').setLevel(std_logging.WARNING)
  try:  # Before anything asks JAX for its devices.
    distributed.initialize_from_flags(FLAGS)
  except distributed.DistributedError as e:
    _fail(str(e))
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
  check_workdir_location(workdir)
  if not is_study:
    check_workdir(workdir, config.to_json())
  workdir_existed = os.path.exists(workdir)

  # Imported after validation: the loop pulls in TensorFlow, tfds and clu.
  from input_pipeline import datasets  # pylint: disable=g-import-not-at-top
  from train import checkpoint  # pylint: disable=g-import-not-at-top
  from train import loop  # pylint: disable=g-import-not-at-top
  from train import report  # pylint: disable=g-import-not-at-top
  from train import study  # pylint: disable=g-import-not-at-top
  logging.info('JAX %s on %d %s device(s); results in %s', jax.__version__,
               jax.device_count(), jax.devices()[0].platform, workdir)
  try:
    if not is_study:
      result = loop.train_and_evaluate(config, workdir)
      if jax.process_index() == 0:
        _print_result(result, config.target_accuracy, workdir)
      return
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
  except (study.StudyDirError, validation.ConfigError, checkpoint.CheckpointError,
          loop.RunFilesError, datasets.DataError) as e:
    _remove_if_left_empty(workdir, workdir_existed)
    _fail(str(e))
  except loop.Preempted as e:
    how = 'interrupted' if e.signal_number == signal.SIGINT else 'preempted'
    print(f'{how}: {e}; run the same command again to resume', file=sys.stderr)
    sys.exit(128 + e.signal_number)
  if jax.process_index() != 0:
    return
  print(report.comparison_table([(s['name'], s, s['runs']) for s in studies]))
  print(f'report: {os.path.join(workdir, "report.md")}')


if __name__ == '__main__':
  if sys.argv[1:2] == ['bench']:
    # The throughput benchmark (train/bench.py) has flags of its own, and its
    # synthetic mode must run without TensorFlow: it never reaches the trainer.
    from train import bench  # pylint: disable=g-import-not-at-top
    sys.exit(bench.main(sys.argv[2:]))
  app.run(main, flags_parser=parse_flags)
