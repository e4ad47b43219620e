"""The jobs of the command line: what the flags ask for, checked, and one function
that runs each kind.

`job_from_flags` turns the parsed flags into a `Job` (every config validated,
the workdir checked) before anything heavy is imported, and `start` sets up its
logs. train/cli/runners.py runs each kind of job; train/cli/exits.py turns what
can go wrong while it runs into one line and an exit status. TensorFlow, tfds
and clu are imported only inside the runners that build an input pipeline.
"""

import dataclasses
import logging as std_logging
import os
import socket
from typing import Any

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
from train.experiments import plan as plan_lib
from train.experiments import profile_studies
from train.experiments import workloads
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
  search: Any = None  # A staged search's configs.search_space.Search.
  # A scaling study's configs.search_space.Scaling, and its mode (tuned, untuned).
  scaling: Any = None
  scaling_mode: str | None = None
  overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
  bench: BenchOptions | None = None
  compilation_cache_dir: str | None = None  # None: the default; '': none.
  launch: launchers.LaunchOptions = launchers.LaunchOptions()
  # A single run's hold on its workdir, taken before anything is written there,
  # and whether this command created the workdir (to take it back on a failure).
  claim: claims.Claim | None = None
  created_workdir: bool = False
  # `main.py profile`: the finished studies it reads, already checked.
  profile: profile_studies.ProfileStudies | None = None

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


def _check_search_flags() -> None:
  """--search runs what the config file's get_search() says: no flag that says it too."""
  if not FLAGS.search:
    return
  if FLAGS.compare:
    errors.fail('--search and --compare do not combine: a staged search runs one config '
                "file's get_search(); give it as --config")
  if FLAGS.num_trials:
    errors.fail("--search and --num_trials do not combine: the config file's get_search() "
                "gives each stage's trials; drop --num_trials")
  if FLAGS['num_seeds'].present:
    errors.fail("--search and --num_seeds do not combine: each stage's seeds_per_trial and "
                "the search's confirm_seeds give the seeds; drop --num_seeds")


def _check_scaling_flags(overrides: dict[str, Any]) -> None:
  """--scaling runs what the config file's get_scaling() says: no flag that says it too."""
  if not FLAGS.scaling:
    return
  for name, what in (('compare', "a scaling study runs one config file's get_scaling(); "
                      'give it as --config'),
                     ('search', "get_scaling()'s stages are the search run at each batch "
                      'size; drop --search'),
                     ('num_trials', "get_scaling()'s stages give each batch size's trials; "
                      'drop --num_trials'),
                     ('num_seeds', "get_scaling()'s seeds give each batch size's seeds; drop "
                      '--num_seeds')):
    if FLAGS[name].present:
      errors.fail(f'--scaling and --{name} do not combine: {what}')
  if 'global_batch_size' in overrides:
    errors.fail('--config.global_batch_size does not combine with --scaling: get_scaling()\'s '
                'batch_sizes set the batch; drop the override')


def _call_config_function(spec: config_files.ConfigSpec, function: str, needs: str,
                          example: str) -> Any:
  """What the config file's `function` (get_search, get_scaling) returns; one line
  if the file has none or it raises."""
  try:
    module = config_files.load_module(spec.path)
  except ValueError as e:
    errors.fail(str(e))
  if not hasattr(module, function):
    errors.fail(f'{needs}: {spec.path} has no {function}(); see {example}')
  try:
    return getattr(module, function)()
  except Exception as e:  # pylint: disable=broad-except
    errors.fail(f'{spec.path}: {function}() raised {type(e).__name__}: {errors.one_line(e)}')


def _scaling_study(spec: config_files.ConfigSpec, config: ml_collections.ConfigDict,
                   launch: launchers.LaunchOptions, devices: Devices) -> Any:
  """The config file's get_scaling(), checked, with every batch size's config
  validated and its search's plans within the limits."""
  study = _call_config_function(spec, 'get_scaling', '--scaling needs a scaling study',
                                 'configs/embedded_scaling.py')
  from train.experiments import scaling_spec  # pylint: disable=g-import-not-at-top
  try:
    scaling_spec.check_scaling(study, config, FLAGS.scaling)
  except scaling_spec.ScalingError as e:
    errors.fail(f'{spec.path}: get_scaling(): {e}')
  if launch.launcher == cli_flags.INLINE and jax.process_count() > 1:
    errors.fail('--scaling plans each batch size after the one before, in one process; for '
                'runs over several hosts give --launcher=slurm')
  for index, size in enumerate(study.batch_sizes):
    _validate(scaling_spec.batch_config(config, study, index), devices,
              f'{spec.path}: get_scaling(): batch size {size}')
  if FLAGS.scaling == 'tuned':  # A staged search at each batch size, its seeds among them.
    _check_search_size(spec, study.search, config)
  else:
    _check_untuned_seeds(spec, study.seeds, config.seed)
  return study


def _check_untuned_seeds(spec: config_files.ConfigSpec, seeds: int, first: int) -> None:
  """An untuned batch size's study within the seed limits."""
  if seeds > cli_flags.MAX_SEEDS:
    errors.fail(f'{spec.path}: seeds={seeds} is more than the {cli_flags.MAX_SEEDS:,} seeds '
                'a study may have; lower it')
  if first + seeds - 1 > validation.MAX_SEED:
    errors.fail(f'{spec.path}: the study runs seeds up to {first + seeds - 1} from '
                f'seed={first}, past the largest seed {validation.MAX_SEED}; lower config.seed')


def _staged_search(spec: config_files.ConfigSpec, config: ml_collections.ConfigDict,
                   launch: launchers.LaunchOptions) -> Any:
  """The config file's get_search(), checked, with its plans within the limits."""
  search = _call_config_function(spec, 'get_search', '--search needs a staged search',
                                  'configs/embedded_nesterov_search.py')
  from train.experiments import stages  # pylint: disable=g-import-not-at-top
  try:
    stages.check_search(search, config)
  except stages.SearchError as e:
    errors.fail(f'{spec.path}: get_search(): {e}')
  if launch.launcher == cli_flags.INLINE and jax.process_count() > 1:
    errors.fail('--search plans each stage from the results of the one before, in one '
                'process; for runs over several hosts give --launcher=slurm')
  _check_search_size(spec, search, config)
  return search


def _check_search_size(spec: config_files.ConfigSpec, search: Any,
                       config: ml_collections.ConfigDict) -> None:
  """A staged search's plans within the limits, and its seeds in the seed's range."""
  from train.experiments import stages  # pylint: disable=g-import-not-at-top
  for index, stage in enumerate(search.stages):
    _check_stage_size(f'stage {index + 1} ({stage.name!r})', stages.max_draws(stage),
                      stage.seeds_per_trial)
  if search.confirm_seeds > cli_flags.MAX_SEEDS:
    errors.fail(f'{spec.path}: confirm_seeds={search.confirm_seeds} is more than the '
                f'{cli_flags.MAX_SEEDS:,} seeds a study may have; lower it')
  last = stages.first_confirm_seed(search, config.seed) + search.confirm_seeds - 1
  if last > validation.MAX_SEED:
    errors.fail(f'{spec.path}: the search runs seeds up to {last} from seed={config.seed}, '
                f'past the largest seed {validation.MAX_SEED}; lower config.seed')


def _check_stage_size(where: str, max_draws: int, seeds_per_trial: int) -> None:
  if max_draws > cli_flags.MAX_TRIALS:
    errors.fail(f'{where} may draw {max_draws:,} trials, more than the '
                f'{cli_flags.MAX_TRIALS:,} a search may have; lower its max_draws or num_trials')
  if max_draws * seeds_per_trial > cli_flags.MAX_PLANNED_RUNS:
    errors.fail(f'{where} may run {max_draws:,} trials of {seeds_per_trial} seeds, more '
                f'than the {cli_flags.MAX_PLANNED_RUNS:,} runs one plan may hold; lower its '
                'max_draws or seeds_per_trial')


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


def _check_robustness_flags() -> None:
  """--robustness runs one --config on its workload variants: no flag that runs
  something else."""
  if not FLAGS['robustness'].present:
    return
  others = [('--compare', FLAGS.compare, 'a robustness comparison runs one --config on '
             'its variants; to compare several optimizers\' robustness, run one per config '
             'and give their studies to main.py profile'),
            ('--search', FLAGS.search, 'tune on the base workload first (--search), then '
             'run the chosen point with --robustness'),
            ('--num_trials', FLAGS.num_trials, 'search on the base workload first, then run '
             'the chosen trial\'s config with --robustness'),
            ('--scaling', FLAGS.scaling, 'a scaling study runs the base workload at several '
             'batch sizes; run the variants at one batch size with --robustness')]
  for flag, given, remedy in others:
    if given:
      errors.fail(f'--robustness and {flag} do not combine: {remedy}')


def _robustness_configs(devices: Devices) -> dict[str, ml_collections.ConfigDict]:
  """The --config file as tuned, then each variant of --robustness, validated."""
  try:
    variants = workloads.parse_variants(FLAGS.robustness, FLAGS.config)
  except workloads.RobustnessInputError as e:
    errors.fail(str(e))
  configs = workloads.workload_configs(FLAGS.config, variants)
  for name, config in configs.items():
    _validate(config, devices, name)
  return configs


def _training_kind() -> cli_flags.JobKind:
  if FLAGS['robustness'].present:
    return cli_flags.JobKind.ROBUSTNESS
  if FLAGS.compare:
    return cli_flags.JobKind.COMPARISON
  if FLAGS.scaling:
    return cli_flags.JobKind.SCALING
  if FLAGS.search:
    return cli_flags.JobKind.STAGED_SEARCH
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
  _check_robustness_flags()
  _check_scaling_flags(cli_flags.command_line_overrides())
  _check_search_flags()
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
  elif FLAGS['robustness'].present:
    configs, name, space = _robustness_configs(devices), spec.name, ()
  else:
    configs, name = {spec.name: FLAGS.config}, spec.name
    _validate(FLAGS.config, devices)
    space = _search_space(spec, FLAGS.config) if FLAGS.num_trials else ()
  staged = _staged_search(spec, FLAGS.config, launch) if FLAGS.search else None
  study = _scaling_study(spec, FLAGS.config, launch, devices) if FLAGS.scaling else None
  if kind not in (cli_flags.JobKind.RUN, cli_flags.JobKind.STAGED_SEARCH,
                  cli_flags.JobKind.SCALING):
    _check_plan_size(configs)
  if launch.slurm is not None:
    _check_slurm_launch(launch.slurm, configs)
  default = f'{name}_robustness' if kind == cli_flags.JobKind.ROBUSTNESS else name
  workdir = os.path.abspath(FLAGS.workdir or workdir_lib.default_workdir(default))
  workdir_lib.check_location(workdir)
  workdir_lib.check_clock(workdir)
  claim, created = None, not os.path.exists(workdir)
  if kind == cli_flags.JobKind.RUN:
    workdir_lib.check_single_run(workdir, FLAGS.config.to_json())
    claim = _hold_workdir(workdir, created)
  return Job(kind, name, configs, workdir, FLAGS.num_seeds, FLAGS.num_trials, space,
             search=staged, scaling=study, scaling_mode=FLAGS.scaling, overrides=overrides,
             compilation_cache_dir=FLAGS.compilation_cache_dir, launch=launch,
             claim=claim, created_workdir=created)


def _check_slurm_launch(slurm: launchers.SlurmOptions,
                        configs: dict[str, ml_collections.ConfigDict]) -> None:
  """A partition Slurm has, and jobs that live to a checkpoint: before any plan."""
  try:
    launchers.check_partition(slurm.partition)
    launchers.check_time_limit(slurm, {name: config.checkpoint.every_seconds or 0.0
                                       for name, config in configs.items()})
  except launchers.LaunchError as e:
    errors.fail(str(e))


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
                f'{e.strerror or e}); {files.remedy(e.errno, workdir)}, then re-run the same command')


def _study_dir_job(kind: cli_flags.JobKind) -> Job:
  """`main.py worker` and `main.py report`: the plan in --workdir says the rest."""
  workdir = os.path.abspath(FLAGS.workdir)
  if os.path.isfile(workdir):
    errors.fail(f'--workdir={workdir} is a file, not a directory; give the directory of a '
                'study, comparison or search started with python main.py')
  if not os.path.isdir(workdir):
    errors.fail(f'--workdir={workdir} does not exist; give the directory of a study, '
                'comparison or search started with python main.py')
  from train.experiments import stages  # pylint: disable=g-import-not-at-top
  if plan_lib.spec_kind(workdir) == plan_lib.SCALING_KIND:
    if kind == cli_flags.JobKind.WORKER:
      planned = sorted(d for d in os.listdir(workdir) if d.startswith('batch_'))
      example = os.path.join(workdir, planned[-1] if planned else 'batch_<B>')
      errors.fail(f'--workdir={workdir} holds a batch-size scaling study, whose batch sizes '
                  f'its own command plans one after another; start workers on a batch size\'s '
                  f'plan (its stage or confirm/ folder, e.g. under {example}), or re-run the '
                  "study's command")
  elif stages.is_staged_dir(workdir):
    if kind == cli_flags.JobKind.WORKER:
      planned = sorted(d for d in os.listdir(workdir) if d.startswith('stage_'))
      example = os.path.join(workdir, planned[-1] if planned else 'stage_1_<name>')
      errors.fail(f'--workdir={workdir} holds a staged search, whose stages its own command '
                  f'plans one after another; start workers on a stage (--workdir={example}), '
                  'or re-run the search\'s command')
  else:
    try:  # The whole plan, checked before any log file is set up in the directory.
      plan_lib.read_plan(workdir)
    except plan_lib.StudyDirError as e:
      errors.fail(str(e))
  if not os.access(workdir, os.W_OK | os.X_OK):  # Also a read-only mount (EROFS).
    errors.fail(f'--workdir={workdir} is not writable, and main.py {kind} writes its files '
                'there; make it writable, or copy the study to a directory you can write to')
  if kind == cli_flags.JobKind.WORKER:
    workdir_lib.check_clock(workdir)
  return Job(kind, os.path.basename(workdir), {}, workdir,
             compilation_cache_dir=FLAGS.compilation_cache_dir)


# What `main.py profile` writes: a --workdir holding anything else is refused.
PROFILE_OUTPUTS = frozenset({'report.md', 'profile.json', 'performance_profile.png',
                             logs.LOG_FILE})


def _profile_job() -> Job:
  """`main.py profile`: the studies of --studies, read and checked, and a --workdir
  that is new or holds an earlier profile (whose files it writes again)."""
  try:
    studies = profile_studies.read_studies(FLAGS.studies, FLAGS.profile_time)
  except profile_studies.ProfileInputError as e:
    errors.fail(str(e))
  workdir = os.path.abspath(FLAGS.workdir)
  workdir_lib.check_location(workdir)
  if os.path.isdir(workdir):
    others = sorted(set(os.listdir(workdir)) - PROFILE_OUTPUTS)
    if others:
      errors.fail(f'--workdir={workdir} holds other files ({", ".join(others[:3])}); '
                  'main.py profile writes report.md, profile.json and '
                  'performance_profile.png: give a new directory, or an earlier profile\'s')
  return Job(cli_flags.JobKind.PROFILE, 'performance_profile', {}, workdir, profile=studies)


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
  if subcommand == cli_flags.JobKind.PROFILE:
    return _profile_job()
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
  # The benchmark measures compilation itself; a report or a profile compiles nothing.
  if job.kind in (cli_flags.JobKind.BENCH, cli_flags.JobKind.REPORT,
                  cli_flags.JobKind.PROFILE):
    return job
  directory = compilation_cache.configure(job.compilation_cache_dir)
  return dataclasses.replace(job, compilation_cache_dir=directory or '')
