"""The command line's flags: one parser for every kind of job.

  python main.py [--config=FILE[:VARIANT]] [--config.KEY=VALUE ...] [--workdir=DIR]
                 [--num_seeds=N | --compare=FILE,FILE,... | --num_trials=N | --search
                  | --robustness=KEY=VALUE,... --num_seeds=N
                  | --scaling=tuned|untuned]
  python main.py bench [--config=FILE] [--modes=synthetic,input,train] ...
  python main.py worker --workdir=DIR     # runs the seeds of a study's plan
  python main.py report --workdir=DIR     # writes a study's report from what finished
  python main.py profile --workdir=DIR --studies=WORKLOAD:OPTIMIZER=STUDY,...
                                          # performance profiles of finished studies

A bare `python main.py` is the embedded comparison (`MAIN_JOB_ARGS`). Every
mistake on the command line ends in one line on stderr and exit status 2.
"""

import enum
import os
import sys
from typing import Sequence

from absl import flags
from ml_collections import config_flags

from train.bench import modes
from train.cli import config_files
from train.common import errors
from train.common import files
from train.run import distributed

FLAGS = flags.FLAGS


class JobKind(enum.StrEnum):
  """What a command runs: a subcommand (bench, worker, report, profile), or for
  training what its flags ask for (a run, a study, a comparison, a search, a
  staged search: a config file's get_search(), a robustness comparison: the
  config on its base workload and on workload variants, or a batch-size scaling
  study: its get_scaling())."""
  RUN = 'run'
  STUDY = 'study'
  COMPARISON = 'comparison'
  SEARCH = 'search'
  STAGED_SEARCH = 'staged_search'
  ROBUSTNESS = 'robustness'
  SCALING = 'scaling'
  BENCH = 'bench'
  WORKER = 'worker'
  REPORT = 'report'
  PROFILE = 'profile'


SUBCOMMANDS = (JobKind.BENCH, JobKind.WORKER, JobKind.REPORT, JobKind.PROFILE)
INLINE, LOCAL, SLURM = 'inline', 'local', 'slurm'
# The default --config: the embedded LARS run for training, ResNet-50 at 224 px
# (the MLPerf recipe's model) for the benchmark.
DEFAULT_CONFIG = os.path.join(files.REPO_ROOT, 'configs', 'embedded_lars.py')
BENCH_DEFAULT_CONFIG = os.path.join(files.REPO_ROOT, 'configs', 'default.py')
# What a bare `python main.py` runs: the embedded comparison of the README.
MAIN_JOB_ARGS = ('--compare=configs/embedded_lars.py,configs/embedded_nesterov.py',
                 '--num_seeds=5')
# Flags that only one kind of command reads: given to the other, they are refused.
TRAIN_ONLY = ('workdir', 'num_seeds', 'compare', 'num_trials', 'search', 'robustness',
              'scaling', 'compilation_cache_dir')
LAUNCH = ('launcher', 'num_workers', 'nowait', 'slurm_partition', 'slurm_nodes',
          'slurm_tasks_per_node', 'slurm_gpus_per_node', 'slurm_cpus_per_task',
          'slurm_time', 'slurm_account', 'slurm_option')
# What `main.py worker` and `main.py report` read: the rest comes from the plan.
STUDY_DIR_FLAGS = ('workdir', 'compilation_cache_dir')
# Upper limits of the counts a user gives (docs/configs.md, "Sizes"). The paper's
# protocol runs 50-100 seeds a config and the search of its Table 9 251 trials;
# each limit leaves room for several times that. Every planned run carries its
# whole config in plan.json (about 2 KB) and in memory while the plan is made:
# 10,000 runs is some 20 MB of plan and half a minute of planning.
MAX_SEEDS = 1_000
MAX_TRIALS = 1_000
MAX_PLANNED_RUNS = 10_000
# tf.data starts a thread per --input_threads: beyond the cores of the largest
# hosts (a few hundred) more threads only add switching, and 10**11 was refused
# by tf.data with a traceback.
MAX_INPUT_THREADS = 1024
BENCH_ONLY = ('modes', 'per_device_batch_size', 'warmup_steps', 'steps', 'repetitions',
              'peak_tflops', 'input_threads', 'profile_dir')
# What `main.py profile` reads, beside --workdir (where it writes).
PROFILE_ONLY = ('studies', 'profile_time')


def _define_train_flags() -> None:
  flags.DEFINE_string('workdir', None,
                      'Directory for the results; default: a new folder under runs/. '
                      'WORKDIR/log.txt gets every log record (INFO and up); the console '
                      'shows warnings and a progress line, or with --verbosity=0 the '
                      'INFO records too.')
  flags.DEFINE_integer('num_seeds', 1, 'Run a study: seeds config.seed to '
                       'config.seed + num_seeds - 1, each in WORKDIR/seed_<s>/; at most '
                       f'{MAX_SEEDS:,}.', lower_bound=1)
  flags.DEFINE_list('compare', [], 'Compare these config files (FILE.py[:VARIANT], '
                    'FILE.py:* for all its variants) side by side, each a study of '
                    'num_seeds seeds; --config.KEY=VALUE overrides apply to each.')
  flags.DEFINE_string('compilation_cache_dir', None, 'Persistent cache of compiled '
                      'programs, shared by later commands; default: '
                      '$JAX_COMPILATION_CACHE_DIR, else $XDG_CACHE_HOME (or ~/.cache)'
                      '/large-batch-harness/jax; empty turns it off.')
  flags.DEFINE_integer('num_trials', 0, 'Quasi-random search over the search space of '
                       'the --config file (its get_search_space()), num_seeds seeds '
                       f'per trial; at most {MAX_TRIALS:,} trials, and {MAX_PLANNED_RUNS:,} '
                       'runs in all.', lower_bound=0)
  flags.DEFINE_bool('search', False, 'Run the --config file\'s get_search() as one command: '
                    'its stages in order, each a search in WORKDIR/stage_<n>_<name>/, then '
                    'the best point of the last over its confirm_seeds seeds in '
                    'WORKDIR/confirm/; re-running the same command resumes it.')
  flags.DEFINE_list('robustness', [], 'Run the --config file as tuned (WORKDIR/base/) and '
                    'unchanged on each workload variant of this list (WORKDIR/KEY_VALUE/), '
                    'num_seeds seeds each, and report the drop from the base: '
                    'activation=relu|silu|gelu or last_bn_scale=NUMBER, separated by '
                    'commas, e.g. --robustness=activation=silu,last_bn_scale=8.')
  flags.DEFINE_enum('scaling', None, ['tuned', 'untuned'], 'Run the --config file\'s '
                    'get_scaling(), a batch-size scaling study, as one command: at each of '
                    'its batch sizes (WORKDIR/batch_<B>/), tuned: its staged search ranked by '
                    'the median steps to target, then the best point over its seeds; untuned: '
                    'its seeds at the rate lr.batch_scaling gives; then the curve and its '
                    'critical batch size. Re-running the same command resumes it.')


def _define_launch_flags() -> None:
  flags.DEFINE_enum('launcher', INLINE, [INLINE, LOCAL, SLURM],
                    'How the seeds of a study, comparison or search run: inline (in this '
                    'process), local (--num_workers worker processes on this machine, '
                    'GPUs split between them) or slurm (a Slurm job array of workers, '
                    'through submitit).')
  flags.DEFINE_integer('num_workers', None, 'Workers for --launcher=local or slurm; '
                       'default: local, one per GPU (one on a CPU); slurm, one per run '
                       'left to do.', lower_bound=1)
  flags.DEFINE_bool('nowait', False, 'With --launcher=local or slurm, return once the '
                    'workers are started; the last worker writes the report, and '
                    '`main.py report --workdir=DIR` says where the study stands.')
  flags.DEFINE_string('slurm_partition', None, 'slurm: the partition (sbatch --partition).')
  flags.DEFINE_integer('slurm_nodes', 1, 'slurm: nodes per worker; each seed is one JAX '
                       'run over all of them.', lower_bound=1)
  flags.DEFINE_integer('slurm_tasks_per_node', None, 'slurm: JAX processes per node; '
                       'default: one per GPU (--slurm_gpus_per_node), or 1.', lower_bound=1)
  flags.DEFINE_integer('slurm_gpus_per_node', 0, 'slurm: GPUs per node (sbatch '
                       '--gpus-per-node).', lower_bound=0)
  flags.DEFINE_integer('slurm_cpus_per_task', None, 'slurm: CPUs per JAX process (sbatch '
                       '--cpus-per-task); default: the cluster\'s.', lower_bound=1)
  flags.DEFINE_integer('slurm_time', 24 * 60, 'slurm: minutes per worker job before Slurm '
                       'stops it; a worker stopped at its limit saves, is requeued and '
                       'resumes.', lower_bound=1)
  flags.DEFINE_string('slurm_account', None, 'slurm: the account to charge (sbatch '
                      '--account).')
  flags.DEFINE_multi_string('slurm_option', [], 'slurm: any other sbatch option as '
                            'KEY=VALUE (e.g. --slurm_option=qos=high '
                            '--slurm_option=constraint=h100); repeat for several.')


def _define_bench_flags() -> None:
  flags.DEFINE_list('modes', [modes.SYNTHETIC], f'bench: any of {", ".join(modes.MODES)}.')
  flags.DEFINE_integer('per_device_batch_size', 128, 'bench: images per device and step.',
                       lower_bound=1)
  flags.DEFINE_integer('warmup_steps', 3, 'bench: untimed steps before the windows.',
                       lower_bound=0)
  flags.DEFINE_integer('steps', 10, 'bench: steps per timed window.', lower_bound=1)
  flags.DEFINE_integer('repetitions', 5, 'bench: timed windows.', lower_bound=1)
  flags.DEFINE_float('peak_tflops', None, 'bench: peak TFLOP/s per device for MFU; '
                     'default: the datasheet of a known accelerator, a measured matmul '
                     'on a CPU.', lower_bound=0.0)
  flags.DEFINE_integer('input_threads', None, "bench: tf.data's thread pool in the input "
                       f'and train modes; default: all cores; at most {MAX_INPUT_THREADS}.',
                       lower_bound=1, upper_bound=MAX_INPUT_THREADS)
  flags.DEFINE_string('profile_dir', None, 'bench: also write a profiler trace of one '
                      'window of synthetic steps here.')


def _define_profile_flags() -> None:
  flags.DEFINE_list('studies', [], 'profile: where each workload\'s times come from, '
                    'separated by commas: WORKLOAD:OPTIMIZER=DIR (one finished study) or '
                    'WORKLOAD=DIR (a finished comparison, each config an optimizer).')
  flags.DEFINE_enum('profile_time', 'steps', ['steps', 'epochs', 'seconds'],
                    'profile: the time to target compared, each study\'s median over '
                    'its seeds.')


def _show_in_help() -> None:
  """`python main.py --help` lists the key flags of the main module: make ours its."""
  ours = ('config', *TRAIN_ONLY, *LAUNCH, *BENCH_ONLY, *PROFILE_ONLY,
          *distributed.FLAG_NAMES)
  for name in ours:
    FLAGS.register_key_flag_for_module(sys.argv[0], FLAGS[name])


def command(argv: Sequence[str]) -> JobKind | None:
  """The subcommand (bench, worker, report, profile), or None for training: the
  first argument, if it is one."""
  return JobKind(argv[1]) if len(argv) > 1 and argv[1] in SUBCOMMANDS else None


def _flag_owner(name: str) -> str:
  """The command that reads the flag `name`, in words."""
  if name in BENCH_ONLY:
    return 'main.py bench'
  if name in PROFILE_ONLY:
    return 'main.py profile'
  return 'training (main.py without bench)'


def _refuse_foreign_flags(subcommand: JobKind | None) -> None:
  if subcommand == JobKind.PROFILE:
    foreign = ('config', *TRAIN_ONLY, *LAUNCH, *BENCH_ONLY)
    given = [name for name in foreign if name != 'workdir' and FLAGS[name].present]
    if given:
      errors.fail(f'--{given[0]} is not a flag of main.py profile, which reads finished '
                  'studies; give --workdir, --studies and --profile_time')
    if not FLAGS.workdir:
      errors.fail('main.py profile needs --workdir=DIR, where it writes report.md, '
                  'profile.json and performance_profile.png')
    return
  if subcommand in (JobKind.WORKER, JobKind.REPORT):
    foreign = ('config', *TRAIN_ONLY, *LAUNCH, *BENCH_ONLY, *PROFILE_ONLY)
    given = [name for name in foreign if name not in STUDY_DIR_FLAGS and FLAGS[name].present]
    if given:
      errors.fail(f'--{given[0]} is not a flag of main.py {subcommand}: the plan in '
                  '--workdir says what to run; give only --workdir (and '
                  '--compilation_cache_dir)')
    if not FLAGS.workdir:
      errors.fail(f'main.py {subcommand} needs --workdir=DIR, the directory of a study, '
                  'comparison or search')
    return
  foreign = ((*BENCH_ONLY, *PROFILE_ONLY) if subcommand is None
             else (*TRAIN_ONLY, *LAUNCH, *PROFILE_ONLY))
  given = [name for name in foreign if FLAGS[name].present]
  if given:
    errors.fail(f'--{given[0]} is a flag of {_flag_owner(given[0])}; drop it, or see '
                'python main.py --help')


def parse_flags(argv: Sequence[str]) -> list[str]:
  """Defines and parses every flag; each error is one line and exit status 2.

  ml_collections reads `--config.KEY=VALUE` overrides out of the argv it is
  given at definition time, so the config flag is defined here, inside the same
  guard, with the default config of the subcommand.

  Returns:
    The positional arguments, the program name first (absl's contract).
  """
  argv = list(argv) if len(argv) > 1 else [*argv, *MAIN_JOB_ARGS]
  subcommand = command(argv)
  default = BENCH_DEFAULT_CONFIG if subcommand == JobKind.BENCH else DEFAULT_CONFIG
  program = f'main.py {subcommand}' if subcommand else 'main.py'
  # The config file first, through the loader that turns everything it can do
  # wrong into one line: ml_collections' own load lets a `sys.exit()` in it end
  # the command silently and logs warnings of its own.
  problem = config_files.config_file_problem(
      config_files.parse_spec(config_files.config_arg(argv, default)))
  if problem:
    errors.fail(problem)
  try:
    config_files.allow_none_overrides()
    config_flags.DEFINE_config_file(
        'config', default, 'Experiment config file (configs/*.py[:variant]).',
        lock_config=True, sys_argv=argv)
    _define_train_flags()
    _define_launch_flags()
    _define_bench_flags()
    _define_profile_flags()
    distributed.define_flags()
    _show_in_help()
    remaining = FLAGS(argv)
    # ml_collections defers a config file's load error until the config is read.
    list(FLAGS.config.keys())
    config_files.check_keys(FLAGS.config, str(config_spec(subcommand)))
  except Exception as e:  # pylint: disable=broad-except
    errors.fail(config_files.flag_error_message(e, argv, FLAGS, default, program=program))
  _refuse_foreign_flags(subcommand)
  _check_compare_list()
  return remaining


def _check_compare_list() -> None:
  """absl reads `--compare=,` as two empty names, which would name the checkout."""
  if not FLAGS['compare'].present:
    return
  given = ','.join(FLAGS.compare)
  if not FLAGS.compare:
    errors.fail('--compare= names no config file; give two or more, separated by commas, '
                f'e.g. {MAIN_JOB_ARGS[0]}')
  if not all(entry.strip() for entry in FLAGS.compare):
    errors.fail(f'--compare={given}: an entry of the list is empty; give config files '
                f'separated by single commas, e.g. {MAIN_JOB_ARGS[0]}')


def config_spec(subcommand: JobKind | None = None) -> config_files.ConfigSpec:
  """The --config flag's file and variant, as given (or the subcommand's default)."""
  default = BENCH_DEFAULT_CONFIG if subcommand == JobKind.BENCH else DEFAULT_CONFIG
  value = FLAGS['config'].serialize().partition('=')[2] if FLAGS['config'].present else ''
  return config_files.parse_spec(value or default)


def command_line_overrides() -> dict:
  """The --config.KEY=VALUE flags as given, in ml_collections' own record of them.

  Taken from what the command line said, never from a diff against a config
  file, so an override equal to some file's value still reaches every config.
  """
  return dict(FLAGS['config'].override_values)
