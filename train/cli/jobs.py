"""The jobs of the command line: what the flags ask for, checked, and one function
that runs each kind.

`job_from_flags` turns the parsed flags into a `Job` (every config validated,
the workdir checked) before anything heavy is imported; `RUNNERS` maps each kind
of job to the function that runs it, and `reported_errors` turns what can go
wrong while it runs into one line and an exit status. TensorFlow, tfds and clu
are imported only inside the runners that build an input pipeline.
"""

import contextlib
import dataclasses
import logging as std_logging
import os
import signal
import sys
from typing import Any, Callable, Iterator

import jax
import ml_collections

from train.bench import throughput
from train.cli import config_files
from train.cli import compilation_cache
from train.cli import flags as cli_flags
from train.cli import logs
from train.cli import workdir as workdir_lib
from train.common import config_dicts
from train.common import console
from train.common import errors
from train.common import files
from train.mlperf import rules
from train.run import distributed
from train.run import memory
from train.run import validation

FLAGS = cli_flags.FLAGS
RUN, STUDY, COMPARISON, SEARCH, BENCH = 'run', 'study', 'comparison', 'search', 'bench'


@dataclasses.dataclass(frozen=True)
class BenchOptions:
  """What `main.py bench` measures, beyond its config."""
  modes: tuple[str, ...]
  windows: throughput.Windows
  peak_tflops: float | None
  input_threads: int | None
  profile_dir: str | None


@dataclasses.dataclass(frozen=True)
class Job:
  """One command: its kind, its configs (validated) and where it writes."""
  kind: str
  name: str
  configs: dict[str, ml_collections.ConfigDict]
  workdir: str | None = None
  num_seeds: int = 1
  num_trials: int = 0
  search_space: tuple[Any, ...] = ()
  overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
  bench: BenchOptions | None = None
  compilation_cache_dir: str | None = None  # None: the default; '': none.

  @property
  def config(self) -> ml_collections.ConfigDict:
    """The config of a job that has one (a run, a study, a search, a benchmark)."""
    (config,) = self.configs.values()
    return config


# --- from flags to a job ----------------------------------------------------------


def _validate(config: ml_collections.ConfigDict, name: str = '', *,
              check_data: bool = True) -> None:
  try:
    rules.validate_run_config(config, num_devices=jax.device_count(), check_data=check_data,
                              device_memory=memory.device_memory())
  except validation.ConfigError as e:
    errors.fail(f'{name}: {e}' if name else str(e))


def _compare_path(text: str) -> str:
  """A --compare entry as a path: relative to the repository if not found here."""
  path = text.partition(':')[0]
  return text if os.path.exists(path) else os.path.join(files.REPO_ROOT, text)


def _compared_configs(overrides: dict[str, Any]) -> dict[str, ml_collections.ConfigDict]:
  """The configs of --compare, each with the command line's overrides applied."""
  if FLAGS['config'].present:
    errors.fail('give either --config or --compare: --compare names every config it runs')
  try:
    specs = [spec for text in FLAGS.compare
             for spec in config_files.expand(config_files.parse_spec(_compare_path(text)))]
    configs = {spec.name: config_dicts.with_overrides(config_files.load_config(spec), overrides)
               for spec in specs}
  except (ValueError, KeyError, AttributeError, TypeError) as e:
    errors.fail(f'--compare: {errors.one_line(e)}')
  if len(configs) < 2:
    errors.fail(f'--compare={",".join(FLAGS.compare)} names {len(configs)} config; '
                'a comparison needs at least 2')
  for name, config in configs.items():
    _validate(config, name)
  return configs


def _search_space(spec: config_files.ConfigSpec, config: ml_collections.ConfigDict) -> tuple:
  try:
    module = config_files.load_module(spec.path)
  except ValueError as e:
    errors.fail(str(e))
  if not hasattr(module, 'get_search_space'):
    errors.fail(f'--num_trials needs a search space: {spec.path} has no get_search_space(); '
                'see configs/nesterov_search_table9.py')
  from train.experiments import search  # pylint: disable=g-import-not-at-top
  space = tuple(module.get_search_space())
  try:
    search.check_space(space, config)
  except ValueError as e:
    errors.fail(f'{spec.path}: {e}')
  return space


def _bench_job() -> Job:
  modes = tuple(FLAGS.modes)
  unknown = [m for m in modes if m not in throughput.MODES]
  if unknown or not modes:
    errors.fail(f'--modes={",".join(modes)}: want one or more of '
                f'{", ".join(throughput.MODES)}')
  config = throughput.bench_config(FLAGS.config, FLAGS.per_device_batch_size,
                                   jax.device_count())
  try:  # A benchmark is no submission: the run's checks only, not MLPerf's.
    validation.validate_config(
        config, num_devices=jax.device_count(),
        check_data=throughput.INPUT in modes or throughput.TRAIN in modes,
        device_memory=memory.device_memory())
  except validation.ConfigError as e:
    errors.fail(str(e))
  options = BenchOptions(modes, throughput.Windows(FLAGS.warmup_steps, FLAGS.steps,
                                                   FLAGS.repetitions),
                         FLAGS.peak_tflops, FLAGS.input_threads, FLAGS.profile_dir)
  return Job(BENCH, cli_flags.config_spec(cli_flags.BENCH).name, {'bench': config},
             bench=options)


def _training_job() -> Job:
  if FLAGS.compare and FLAGS.num_trials:
    errors.fail('--compare and --num_trials do not combine; search one config at a time')
  spec = cli_flags.config_spec()
  overrides = cli_flags.command_line_overrides()
  if FLAGS.compare:
    configs = _compared_configs(overrides)
    is_main_job = FLAGS.compare == cli_flags.MAIN_JOB_ARGS[0].partition('=')[2].split(',')
    kind, name, space = COMPARISON, 'embedded_comparison' if is_main_job else 'comparison', ()
  else:
    configs, name = {spec.name: FLAGS.config}, spec.name
    _validate(FLAGS.config)
    space = _search_space(spec, FLAGS.config) if FLAGS.num_trials else ()
    kind = SEARCH if FLAGS.num_trials else STUDY if FLAGS['num_seeds'].present else RUN
  workdir = os.path.abspath(FLAGS.workdir or workdir_lib.default_workdir(name))
  workdir_lib.check_location(workdir)
  if kind == RUN:
    workdir_lib.check_single_run(workdir, FLAGS.config.to_json())
  return Job(kind, name, configs, workdir, FLAGS.num_seeds, FLAGS.num_trials, space,
             overrides, compilation_cache_dir=FLAGS.compilation_cache_dir)


def job_from_flags(argv: list[str]) -> Job:
  """The job that the parsed flags describe; a problem ends the command in one line."""
  subcommand = cli_flags.command(argv)
  positional = argv[2:] if subcommand else argv[1:]
  if positional:
    errors.fail(f'unexpected arguments {positional}; pass settings as --config.KEY=VALUE')
  # jax logs at INFO that it found no TPU library; keep stderr for what matters.
  std_logging.getLogger('jax._src.xla_bridge').setLevel(std_logging.WARNING)
  try:  # Before anything asks JAX for its devices.
    distributed.initialize_from_flags(FLAGS)
  except distributed.DistributedError as e:
    errors.fail(str(e))
  return _bench_job() if subcommand == cli_flags.BENCH else _training_job()


# --- running a job ----------------------------------------------------------------


def start(job: Job) -> None:
  """The job's logs (WORKDIR/log.txt, a quiet console) and, for training, the
  persistent compilation cache: before anything compiles."""
  logs.set_up(job.workdir if distributed.is_main_process() else None)
  if job.kind != BENCH:  # The benchmark measures compilation itself.
    compilation_cache.configure(job.compilation_cache_dir)


# Errors a running job may raise that the user can act on, by module: a module
# that was never imported cannot have raised one, and importing it here would
# pull TensorFlow into `main.py bench`'s synthetic mode.
_LATE_BAD_INPUT = (('train.experiments.study', 'StudyDirError'),
                   ('train.run.checkpoint', 'CheckpointError'),
                   ('input_pipeline.datasets', 'DataError'))


def _late_bad_input() -> tuple[type[BaseException], ...]:
  found = [getattr(sys.modules[module], name) for module, name in _LATE_BAD_INPUT
           if module in sys.modules]
  return (validation.ConfigError, files.FileWriteError, *found)


@contextlib.contextmanager
def reported_errors(job: Job) -> Iterator[None]:
  """Ends the command in one line for what can go wrong once a job runs.

  Bad input found late (a dataset, a checkpoint, a study directory, a full
  disk) exits with status 2; SIGTERM and SIGINT during training save the step
  and exit with 128 + the signal's number, as schedulers and shells expect.
  """
  existed = bool(job.workdir) and os.path.exists(job.workdir)
  try:
    yield
  except Exception as e:  # pylint: disable=broad-except
    loop = sys.modules.get('train.run.loop')
    if loop is not None and isinstance(e, loop.Preempted):
      how = 'interrupted' if e.signal_number == signal.SIGINT else 'preempted'
      print(f'{how}: {e}; run the same command again to resume', file=sys.stderr)
      sys.exit(128 + e.signal_number)
    if not isinstance(e, _late_bad_input()):
      raise
    logs.close()
    if job.workdir:
      workdir_lib.remove_if_left_empty(job.workdir, existed, logs.LOG_FILE)
    errors.fail(str(e))
  except KeyboardInterrupt:  # Outside the training steps, which save first.
    print('interrupted: stopped by SIGINT without saving (checkpoints written before '
          'are kept); run the same command again to resume', file=sys.stderr)
    sys.exit(128 + signal.SIGINT)


def _print_studies(job: Job, studies: list[dict]) -> None:
  from train.experiments import report  # pylint: disable=g-import-not-at-top
  if distributed.is_main_process():
    print(report.comparison_table([(s['name'], s, s['runs']) for s in studies]))
    print(f'report: {os.path.join(job.workdir, "report.md")}')


def run_one(job: Job) -> None:
  with logs.native_stderr_to_log():
    from train.run import loop  # pylint: disable=g-import-not-at-top
  with console.Progress(1, enabled=distributed.is_main_process()) as progress:
    progress.start_run(f'{job.name} seed {job.config.seed}')
    result = loop.train_and_evaluate(job.config, job.workdir, progress=progress)
  if not distributed.is_main_process():
    return
  target = job.config.target_accuracy
  reached = (f'reached {target:.1%} at step {result["steps_to_target"]} '
             f'after {result["seconds_to_target"]:.1f}s' if result['reached_target']
             else f'did not reach {target:.1%}')
  print(f'{result["status"]}: {reached}; final eval accuracy '
        f'{result["final_eval_accuracy"]:.4f}; results in {job.workdir}')


def _study_module():
  """train.experiments.study, whose imports (TensorFlow's among them) log to the file."""
  with logs.native_stderr_to_log():
    from train.experiments import study  # pylint: disable=g-import-not-at-top
  return study


def run_study(job: Job) -> None:
  study = _study_module()
  _print_studies(job, [study.run_study(job.config, job.name, job.workdir, job.num_seeds)])


def run_comparison(job: Job) -> None:
  study = _study_module()
  _print_studies(job, study.run_comparison(job.configs, job.workdir, job.num_seeds,
                                           overrides=job.overrides))


def run_search(job: Job) -> None:
  study = _study_module()
  trials = study.run_search(job.config, job.name, list(job.search_space), job.workdir,
                            job.num_trials, job.num_seeds)
  if not distributed.is_main_process():
    return
  best = max(trials, key=lambda t: t['summary']['median_final_accuracy'] or -1.0)
  print(f'best of {len(trials)} trials: trial_{best["trial"]} {best["params"]}, '
        f'median final accuracy {best["summary"]["median_final_accuracy"]}')
  print(f'report: {os.path.join(job.workdir, "report.md")}')


def run_bench(job: Job) -> None:
  options = job.bench
  table = throughput.run(job.config, options.modes, options.windows,
                         peak_tflops=options.peak_tflops, input_threads=options.input_threads,
                         profile_dir=options.profile_dir)
  if distributed.is_main_process():
    print(table, flush=True)


RUNNERS: dict[str, Callable[[Job], None]] = {
    RUN: run_one, STUDY: run_study, COMPARISON: run_comparison, SEARCH: run_search,
    BENCH: run_bench,
}
