"""The jobs of the command line: what the flags ask for, checked, and one function
that runs each kind.

`job_from_flags` turns the parsed flags into a `Job` (every config validated,
the workdir checked) before anything heavy is imported; `reported_errors` turns
what can go wrong while it runs into one line and an exit status.
train/cli/runners.py runs each kind of job. TensorFlow, tfds and clu
are imported only inside the runners that build an input pipeline.
"""

import contextlib
import dataclasses
import logging as std_logging
import os
import signal
import socket
import sys
from typing import Any, Callable, Iterator

import jax
import ml_collections

from train.bench import throughput
from train.cli import config_files
from train.cli import compilation_cache
from train.cli import flags as cli_flags
from train.cli import launchers
from train.cli import logs
from train.cli import workdir as workdir_lib
from train.common import claims
from train.common import config_dicts
from train.common import errors
from train.common import files
from train.common import stops
from train.experiments import plan as plan_lib
from train.mlperf import rules
from train.run import distributed
from train.run import memory
from train.run import validation

FLAGS = cli_flags.FLAGS


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
  kind: cli_flags.JobKind
  name: str
  configs: dict[str, ml_collections.ConfigDict]
  workdir: str | None = None
  num_seeds: int = 1
  num_trials: int = 0
  search_space: tuple[Any, ...] = ()
  overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
  bench: BenchOptions | None = None
  compilation_cache_dir: str | None = None  # None: the default; '': none.
  launch: launchers.LaunchOptions = launchers.LaunchOptions()
  # A single run's hold on its workdir, taken before anything is written there,
  # and whether this command created the workdir (to take it back on a failure).
  claim: claims.Claim | None = None
  created_workdir: bool = False

  @property
  def config(self) -> ml_collections.ConfigDict:
    """The config of a job that has one (a run, a study, a search, a benchmark)."""
    (config,) = self.configs.values()
    return config


# --- from flags to a job ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Devices:
  """The devices each run will have: its count, and each one's memory if known."""
  count: int
  memory: int | None


def _validate(config: ml_collections.ConfigDict, devices: Devices, name: str = '', *,
              check_data: bool = True) -> None:
  try:
    rules.validate_run_config(config, num_devices=devices.count, check_data=check_data,
                              device_memory=devices.memory)
  except validation.ConfigError as e:
    errors.fail(f'{name}: {e}' if name else str(e))


def run_devices(launch: launchers.LaunchOptions) -> Devices:
  """The devices of each run: this process's (inline), a local worker's share of
  this machine's GPUs, or a Slurm worker's nodes'. Workers elsewhere, not this
  process, use the GPUs: a command that launches them keeps JAX on the CPU."""
  if launch.launcher == cli_flags.INLINE:
    return Devices(jax.device_count(), memory.device_memory())
  jax.config.update('jax_platforms', 'cpu')
  if launch.launcher == cli_flags.LOCAL:
    gpus = launchers.local_gpus()
    if gpus:
      return Devices(len(gpus) // (launch.num_workers or len(gpus)), None)
    return Devices(jax.device_count(), memory.device_memory())
  slurm = launch.slurm
  per_process = 1 if slurm.gpus_per_node else jax.local_device_count()
  return Devices(slurm.processes * per_process, None)


def _launch_options(kind: cli_flags.JobKind) -> launchers.LaunchOptions:
  """--launcher and its flags, checked against the job's kind."""
  launcher = FLAGS.launcher
  given = [name for name in cli_flags.LAUNCH[1:] if FLAGS[name].present]
  if launcher == cli_flags.INLINE:
    if given:
      errors.fail(f'--{given[0]} needs --launcher=slurm' if given[0].startswith('slurm_')
                  else f'--{given[0]} needs --launcher=local or --launcher=slurm')
    return launchers.LaunchOptions()
  if kind == cli_flags.JobKind.RUN:
    errors.fail(f'--launcher={launcher} runs the seeds of a study, comparison or search; '
                'add --num_seeds=1 to run one seed as a study')
  slurm_flags = [name for name in given if name.startswith('slurm_')]
  if launcher == cli_flags.LOCAL and slurm_flags:
    errors.fail(f'--{slurm_flags[0]} needs --launcher=slurm')
  slurm = None
  if launcher == cli_flags.SLURM:
    try:
      extra = launchers.parse_sbatch_options(FLAGS.slurm_option)
    except launchers.LaunchError as e:
      errors.fail(str(e))
    slurm = launchers.SlurmOptions(
        FLAGS.slurm_partition, FLAGS.slurm_nodes,
        FLAGS.slurm_tasks_per_node or FLAGS.slurm_gpus_per_node or 1,
        FLAGS.slurm_gpus_per_node, FLAGS.slurm_cpus_per_task, FLAGS.slurm_time,
        FLAGS.slurm_account, extra)
  if launcher == cli_flags.LOCAL and FLAGS.num_workers:
    try:
      launchers.split_gpus(launchers.local_gpus(), FLAGS.num_workers)
    except launchers.LaunchError as e:
      errors.fail(str(e))
  return launchers.LaunchOptions(launcher, FLAGS.num_workers, not FLAGS.nowait, slurm)


def _compare_path(text: str) -> str:
  """A --compare entry as a path: relative to the repository if not found here."""
  path = text.partition(':')[0]
  return text if os.path.exists(path) else os.path.join(files.REPO_ROOT, text)


def _compared_configs(overrides: dict[str, Any],
                      devices: Devices) -> dict[str, ml_collections.ConfigDict]:
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
    _validate(config, devices, name)
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
        device_memory=memory.device_memory(), with_eval=False)  # It compiles no eval step.
  except validation.ConfigError as e:
    errors.fail(str(e))
  options = BenchOptions(modes, throughput.Windows(FLAGS.warmup_steps, FLAGS.steps,
                                                   FLAGS.repetitions),
                         FLAGS.peak_tflops, FLAGS.input_threads, FLAGS.profile_dir)
  return Job(cli_flags.JobKind.BENCH, cli_flags.config_spec(cli_flags.JobKind.BENCH).name,
             {'bench': config}, bench=options)


def _training_kind() -> cli_flags.JobKind:
  if FLAGS.compare:
    return cli_flags.JobKind.COMPARISON
  if FLAGS.num_trials:
    return cli_flags.JobKind.SEARCH
  return cli_flags.JobKind.STUDY if FLAGS['num_seeds'].present else cli_flags.JobKind.RUN


def _check_counts() -> None:
  """--num_seeds and --num_trials within their limits (train/cli/flags.py says why)."""
  if FLAGS.num_seeds > cli_flags.MAX_SEEDS:
    errors.fail(f'--num_seeds={FLAGS.num_seeds} is more than the {cli_flags.MAX_SEEDS:,} '
                'seeds a study may have (the paper\'s protocol runs 50-100); run more as a '
                'second study that starts at another --config.seed')
  if FLAGS.num_trials > cli_flags.MAX_TRIALS:
    errors.fail(f'--num_trials={FLAGS.num_trials} is more than the '
                f'{cli_flags.MAX_TRIALS:,} trials a search may have (the search of the '
                'paper\'s Table 9 has 251); run more as a second search with another '
                '--config.seed, which draws other trials')


def _check_plan_size(configs: dict[str, ml_collections.ConfigDict]) -> None:
  """The runs of a study, comparison or search fit in one plan, and their seeds
  stay in the seed's range."""
  entries, what = ((FLAGS.num_trials, f'--num_trials={FLAGS.num_trials}') if FLAGS.num_trials
                   else (len(configs), f'{len(configs)} configs'))
  runs = entries * FLAGS.num_seeds
  if runs > cli_flags.MAX_PLANNED_RUNS:
    errors.fail(f'{what} times --num_seeds={FLAGS.num_seeds} is {runs:,} runs, more than '
                f'the {cli_flags.MAX_PLANNED_RUNS:,} one plan may hold (each run\'s '
                'config is written into its plan.json); lower one of them, or split the '
                'runs over several commands')
  for name, config in configs.items():
    last = config.seed + FLAGS.num_seeds - 1
    if last > validation.MAX_SEED:
      errors.fail(f'--num_seeds={FLAGS.num_seeds} from seed={config.seed} ({name}) runs '
                  f'seeds up to {last}, past the largest seed {validation.MAX_SEED} '
                  '(jax.random.key keeps 32 bits of it); lower config.seed or --num_seeds')


def _training_job() -> Job:
  if FLAGS.compare and FLAGS.num_trials:
    errors.fail('--compare and --num_trials do not combine; search one config at a time')
  _check_counts()
  spec = cli_flags.config_spec()
  overrides = cli_flags.command_line_overrides()
  kind = _training_kind()
  launch = _launch_options(kind)
  devices = run_devices(launch)
  if FLAGS.compare:
    configs = _compared_configs(overrides, devices)
    is_main_job = FLAGS.compare == cli_flags.MAIN_JOB_ARGS[0].partition('=')[2].split(',')
    name, space = 'embedded_comparison' if is_main_job else 'comparison', ()
  else:
    configs, name = {spec.name: FLAGS.config}, spec.name
    _validate(FLAGS.config, devices)
    space = _search_space(spec, FLAGS.config) if FLAGS.num_trials else ()
  if kind != cli_flags.JobKind.RUN:
    _check_plan_size(configs)
  workdir = os.path.abspath(FLAGS.workdir or workdir_lib.default_workdir(name))
  workdir_lib.check_location(workdir)
  claim, created = None, not os.path.exists(workdir)
  if kind == cli_flags.JobKind.RUN:
    workdir_lib.check_single_run(workdir, FLAGS.config.to_json())
    claim = _hold_workdir(workdir, created)
  return Job(kind, name, configs, workdir, FLAGS.num_seeds, FLAGS.num_trials, space,
             overrides, compilation_cache_dir=FLAGS.compilation_cache_dir, launch=launch,
             claim=claim, created_workdir=created)


def _hold_workdir(workdir: str, created: bool) -> claims.Claim | None:
  """The single run's claim on its workdir (process 0's); a live holder is refused.
  A claim that cannot be written (a full disk) leaves no workdir it created."""
  if not distributed.is_main_process():
    return None
  try:
    return claims.acquire(workdir, what=f'--workdir={workdir}')
  except claims.ClaimHeld as e:
    errors.fail(str(e))
  except OSError as e:
    workdir_lib.remove_if_left_empty(workdir, not created, (claims.CLAIM_DIR,))
    errors.fail(f'cannot write the claim on --workdir={workdir} ({type(e).__name__}: '
                f'{e.strerror or e}); {files.remedy(e, workdir)}, then re-run the same command')


def _study_dir_job(kind: cli_flags.JobKind) -> Job:
  """`main.py worker` and `main.py report`: the plan in --workdir says the rest."""
  workdir = os.path.abspath(FLAGS.workdir)
  if os.path.isfile(workdir):
    errors.fail(f'--workdir={workdir} is a file, not a directory; give the directory of a '
                'study, comparison or search started with python main.py')
  if not os.path.isdir(workdir):
    errors.fail(f'--workdir={workdir} does not exist; give the directory of a study, '
                'comparison or search started with python main.py')
  try:  # The whole plan, checked before any log file is set up in the directory.
    plan_lib.read_plan(workdir)
  except plan_lib.StudyDirError as e:
    errors.fail(str(e))
  if not os.access(workdir, os.W_OK | os.X_OK):  # Also a read-only mount (EROFS).
    errors.fail(f'--workdir={workdir} is not writable, and main.py {kind} writes its files '
                'there; make it writable, or copy the study to a directory you can write to')
  return Job(kind, os.path.basename(workdir), {}, workdir,
             compilation_cache_dir=FLAGS.compilation_cache_dir)


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
  if subcommand == cli_flags.JobKind.BENCH:
    return _bench_job()
  if subcommand in (cli_flags.JobKind.WORKER, cli_flags.JobKind.REPORT):
    return _study_dir_job(subcommand)
  return _training_job()


# --- running a job ----------------------------------------------------------------


def start(job: Job) -> Job:
  """The job's logs (WORKDIR/log.txt, a quiet console) and, for training, the
  persistent compilation cache: before anything compiles. Returns the job with
  the cache's directory resolved ('' for none), which workers it starts share.

  A worker logs to its own file, DIR/workers/<host>.<pid>.log: workers on
  several hosts do not share one file on a network filesystem.
  """
  if job.kind == cli_flags.JobKind.WORKER:
    logs.set_up(os.path.join(job.workdir, plan_lib.WORKERS_DIR),
                f'{socket.gethostname()}.{os.getpid()}.log')
  else:
    logs.set_up(job.workdir if distributed.is_main_process() else None)
  # The benchmark measures compilation itself.
  if job.kind in (cli_flags.JobKind.BENCH, cli_flags.JobKind.REPORT):
    return job
  directory = compilation_cache.configure(job.compilation_cache_dir)
  return dataclasses.replace(job, compilation_cache_dir=directory or '')


# Errors a running job may raise that the user can act on, by module: a module
# that was never imported cannot have raised one, and importing it here would
# pull TensorFlow into `main.py bench`'s synthetic mode.
_LATE_BAD_INPUT = (('train.experiments.plan', 'StudyDirError'),
                   ('train.cli.launchers', 'LaunchError'),
                   ('train.run.checkpoint', 'CheckpointError'),
                   ('input_pipeline.datasets', 'DataError'))


def _late_bad_input() -> tuple[type[BaseException], ...]:
  found = [getattr(sys.modules[module], name) for module, name in _LATE_BAD_INPUT
           if module in sys.modules]
  return (validation.ConfigError, files.FileWriteError, *found)


def _filesystem_error(error: BaseException, workdir: str | None) -> files.FileWriteError | None:
  """A write the filesystem refused (full, read-only, a name too long), as the
  one-line error that names its remedy; None for any other error. A failed
  write(2) names no file: the job's workdir then says where."""
  if not isinstance(error, OSError) or error.errno not in files.FILESYSTEM_ERRNOS:
    return None
  if isinstance(error.filename, str):
    return files.write_error(error.filename, error)
  return files.write_error(workdir or os.getcwd(), error, directory=True)


def _quietly(what: str, close: Callable[[], None]) -> None:
  """Runs `close` after a failure: its own error (the same full disk, say) goes
  to the log file, never over the line that says what went wrong."""
  try:
    close()
  except Exception as e:  # pylint: disable=broad-except
    std_logging.getLogger(__name__).info('%s failed after the error: %s', what,
                                            errors.one_line(e))


@contextlib.contextmanager
def reported_errors(job: Job) -> Iterator[None]:
  """Ends the command in one line for what can go wrong once a job runs.

  Bad input found late (a dataset, a checkpoint, a study directory, a full
  disk or a read-only one) exits with status 2; SIGTERM, SIGINT and SIGUSR2
  (Slurm's warning) during training save the step and exit with 128 + the
  signal's number, as schedulers and shells expect. A single run lets go of its
  workdir's claim.
  """
  existed = (bool(job.workdir) and os.path.exists(job.workdir)
             and not job.created_workdir)
  try:
    yield
  except Exception as e:  # pylint: disable=broad-except
    loop = sys.modules.get('train.run.loop')
    if loop is not None and isinstance(e, loop.Preempted):
      print(f'{stops.how(e.signal_number)}: {e}; run the same command again to resume',
            file=sys.stderr)
      _exit_now(job, stops.status(e.signal_number))
    if stops.received() is not None:
      # What a swallowed stop signal left behind (an extension module it
      # interrupted fails to import): the stop is the news, not this.
      _stopped_without_saving(job, existed, stops.received())
    refused = _filesystem_error(e, job.workdir)
    if refused is None and not isinstance(e, _late_bad_input()):
      raise
    _clean_up_after_failure(job, existed)
    _fail_after_clean_up(refused or e)
  except KeyboardInterrupt as e:  # Outside the training steps, which save first.
    _stopped_without_saving(job, existed, getattr(e, 'signal_number', signal.SIGINT),
                            getattr(e, 'note', ''))
  else:
    if stops.received() is not None:  # It came as the job ended: the job is done.
      signum = stops.received()
      print(f'{stops.how(signum)}: {stops.name(signum)} came as the command ended; '
            'what it reported above is complete', file=sys.stderr)
      _exit_now(job, stops.status(signum))
  finally:
    if job.claim is not None:
      _quietly('releasing the claim', job.claim.release)


def _clean_up_after_failure(job: Job, existed: bool) -> None:
  """Lets go of the job's workdir, and removes it if this command made it and
  left nothing in it but its log and claim."""
  if job.claim is not None:
    _quietly('releasing the claim', job.claim.release)
  _quietly('closing the log', logs.close)
  if job.workdir:
    _quietly('removing the empty workdir', lambda: workdir_lib.remove_if_left_empty(
        job.workdir, existed, (logs.LOG_FILE, claims.CLAIM_DIR)))


def _fail_after_clean_up(error: BaseException) -> None:
  """The one error line and exit status 2, once the job has cleaned up."""
  if 'tensorflow' not in sys.modules:
    errors.fail(str(error))
  # An input pipeline may still be reading in tf.data's threads, which the
  # interpreter's shutdown finalizes: a native warning after the one line
  # ('Error occurred when finalizing GeneratorDataset iterator'), or a hang
  # (seen after a checkpoint failed on a full disk). Nothing is left to clean
  # up that the shutdown would.
  print(f'error: {errors.one_line(error)}', file=sys.stderr)
  _flush_and_exit(errors.USAGE_ERROR)


def _stopped_without_saving(job: Job, existed: bool, signum: int, note: str = '') -> None:
  """One line and 128 + `signum` for a stop outside the training steps (a dataset
  build, compilation), where there is no step to save; `note` says what became
  of the work instead (a submitter's workers)."""
  _clean_up_after_failure(job, existed)
  what = note or 'without saving (checkpoints written before are kept)'
  print(f'{stops.how(signum)}: stopped by {stops.name(signum)} {what}; run the same '
        'command again to resume', file=sys.stderr)
  # Not _exit_now: the other processes of a group did not stop with this one, and
  # would keep it at JAX's shutdown barrier.
  _flush_and_exit(stops.status(signum))


@contextlib.contextmanager
def leaving_the_group_on_failure() -> Iterator[None]:
  """Ends a failing process of a multi-process run at once, without JAX's exit
  handler; anything else passes through.

  That handler waits at the coordination service's shutdown barrier for every
  process (5 minutes), while the other processes wait for this one at a barrier
  or inside a collective (an hour, or for ever): measured, a bad --data_dir on
  process 0 of 2 kept both processes alive 322 s before they aborted. Exiting
  at once ends the others too: at once when this is process 0 (it serves the
  coordination service) or when they are in a collective with this one, else
  when the service misses this one's heartbeats (100 s). Their scheduler
  (Slurm, a study's worker) then sees the run fail within minutes.
  """
  try:
    yield
  except SystemExit as e:  # A one-line error, already printed, or a stop.
    if distributed.joined_group() and e.code not in (0, None):
      _flush_and_exit(e.code if isinstance(e.code, int) else 1)
    raise
  except Exception as e:  # pylint: disable=broad-except
    if not distributed.joined_group():
      raise
    where = distributed.process_label()
    # The traceback, on the console and in the log file.
    std_logging.getLogger(__name__).error('%s failed', where, exc_info=e)
    print(f'error: {where} failed: {errors.one_line(f"{type(e).__name__}: {e}")}; it '
          'exits without waiting for the other processes, which then stop too',
          file=sys.stderr)
    _flush_and_exit(1)


def _flush_and_exit(status: int) -> None:
  logs.close()
  std_logging.shutdown()
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(status)  # pylint: disable=protected-access


def _exit_now(job: Job, status: int) -> None:
  """Exits at once, once the log is flushed and the claim let go. A stopped run's
  checkpoint is on disk, but its input pipeline may still be reading in tf.data's
  threads, and the interpreter's shutdown can hang on them (seen under Slurm,
  until the job was killed): nothing is left to clean up that the shutdown would."""
  if job.claim is not None:
    job.claim.release()
  if distributed.joined_group():
    # Every process stopped at the same agreed step and meets here; process 0,
    # which serves the coordination service, must not leave before the others
    # are done with it (they would abort: "another task died").
    jax.distributed.shutdown()
  _flush_and_exit(status)
