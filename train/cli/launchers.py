"""How the workers of a study start: local processes or a Slurm job array.

Each worker is `python main.py worker --workdir=DIR`, which claims runs of the
study's plan until none is left (train/experiments/worker.py). The study
directory is the only thing they share: `--launcher=local` starts K of them on
this machine, each with its own GPUs; `--launcher=slurm` submits a job array
of K through submitit, each array task a worker of `--slurm_nodes` nodes (one
JAX process per task, found through Slurm's variables). The submitting command
then waits with a progress line and writes the report, or returns at once.

Under Slurm, submitit asks for Slurm's warning signal (SIGUSR2, 90 s before a
time limit or a preemption). The worker then saves its seed's checkpoint and
lets go of its claim; submitit requeues the array task, which resumes the seed
from that checkpoint. `scancel` (SIGTERM) also saves, but nothing is requeued.
"""

import contextlib
import ctypes
import ctypes.util
import dataclasses
import io
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from typing import Callable, Sequence

from train.common import console
from train.common import errors
from train.common import files
from train.common import stops
from train.experiments import states

# The submitting command looks at the study directory this often while it waits.
POLL_SECONDS = 2.0
# Seconds a Slurm worker has to save its checkpoint after the warning signal.
SAVE_SECONDS = 80.0
# Slurm sends SIGUSR2 this many seconds before a time limit or a preemption.
SIGNAL_DELAY_SECONDS = 90
# Requeues submitit allows a worker after time limits. submitit counts any
# warning late in a job as a time limit (preemptions too), and a worker may run
# many seeds, each over many jobs' time: the default (3) would strand them.
MAX_REQUEUES = 1000
# Options the harness sets, refused in --slurm_option: each with the flag that
# sets it, or None for those it sets on its own (the array, Slurm's warning
# signal, submitit's log files, the job's name).
_OWN_SBATCH_OPTIONS = {'partition': 'slurm_partition', 'nodes': 'slurm_nodes',
                       'ntasks_per_node': 'slurm_tasks_per_node',
                       'gpus_per_node': 'slurm_gpus_per_node',
                       'cpus_per_task': 'slurm_cpus_per_task', 'time': 'slurm_time',
                       'account': 'slurm_account', 'array': None, 'signal': None,
                       'output': None, 'error': None, 'job_name': None}
# sbatch's options (Slurm 22.05's `sbatch --help`), with '_' for '-' as submitit
# spells them: sbatch also takes a single-letter short option, and any
# unambiguous prefix of a long one, but submitit writes every key as
# `#SBATCH --KEY=VALUE`, where `--N=4` is refused; and an abbreviation would slip
# past the check of the harness's own options (`partitio`). Such keys are
# refused with the long name to give. A key outside this list (a newer sbatch's
# option) goes to sbatch as it is.
_SBATCH_SHORT_OPTIONS = {
    'a': 'array', 'A': 'account', 'b': 'begin', 'B': 'extra_node_info', 'c': 'cpus_per_task',
    'C': 'constraint', 'd': 'dependency', 'D': 'chdir', 'e': 'error', 'F': 'nodefile',
    'G': 'gpus', 'H': 'hold', 'i': 'input', 'J': 'job_name', 'k': 'no_kill',
    'L': 'licenses', 'm': 'distribution', 'M': 'clusters', 'n': 'ntasks', 'N': 'nodes',
    'o': 'output', 'O': 'overcommit', 'p': 'partition', 'q': 'qos', 'Q': 'quiet',
    's': 'oversubscribe', 'S': 'core_spec', 't': 'time', 'v': 'verbose', 'w': 'nodelist',
    'W': 'wait', 'x': 'exclude'}
_SBATCH_LONG_OPTIONS = frozenset({
    *_SBATCH_SHORT_OPTIONS.values(), 'bb', 'bbf', 'cluster_constraint', 'comment',
    'container', 'contiguous', 'cores_per_socket', 'cpu_freq', 'cpus_per_gpu', 'deadline',
    'delay_boot', 'exclusive', 'export', 'export_file', 'get_user_env', 'gid', 'gpu_bind',
    'gpu_freq', 'gpus_per_node', 'gpus_per_socket', 'gpus_per_task', 'gres', 'gres_flags',
    'ignore_pbs', 'mail_type', 'mail_user', 'mcs_label', 'mem', 'mem_per_cpu',
    'mem_per_gpu', 'mincpus', 'nice', 'no_requeue', 'ntasks_per_core', 'ntasks_per_node',
    'ntasks_per_socket', 'parsable', 'power', 'priority', 'profile', 'propagate',
    'reboot', 'requeue', 'reservation', 'signal', 'sockets_per_node', 'spread_job',
    'switches', 'thread_spec', 'threads_per_core', 'time_min', 'tmp', 'uid',
    'use_min_nodes', 'wckey', 'wrap'})


class LaunchError(errors.BadInput, ValueError):
  """The launcher's settings cannot start the workers; the message says why."""


@dataclasses.dataclass(frozen=True)
class LaunchOptions:
  """How a study's workers start, and whether the command waits for them."""
  launcher: str = 'inline'  # inline, local or slurm (flags.INLINE, LOCAL, SLURM).
  num_workers: int | None = None
  wait: bool = True
  slurm: 'SlurmOptions | None' = None


@dataclasses.dataclass(frozen=True)
class SlurmOptions:
  """The sbatch settings of each worker (one array task)."""
  partition: str | None = None
  nodes: int = 1
  tasks_per_node: int = 1
  gpus_per_node: int = 0
  cpus_per_task: int | None = None
  time_minutes: int = 24 * 60
  account: str | None = None
  extra: tuple[tuple[str, str], ...] = ()  # Other sbatch options, (key, value).

  @property
  def processes(self) -> int:
    return self.nodes * self.tasks_per_node


def check_partition(partition: str | None) -> None:
  """Raises LaunchError unless Slurm has each partition of --slurm_partition (a
  comma-separated list, as sbatch takes): `sinfo -a` lists them. Without sinfo,
  or when it fails, sbatch judges them."""
  if not partition or shutil.which('sinfo') is None:
    return
  try:
    answer = subprocess.run(['sinfo', '-a', '-h', '-o', '%R'], capture_output=True,
                            text=True, timeout=60, check=False)
  except (OSError, subprocess.TimeoutExpired):
    return
  known = sorted(set(answer.stdout.split()))
  if answer.returncode != 0 or not known:
    return
  for name in partition.split(','):
    if name not in known:
      raise LaunchError(f'--slurm_partition={partition}: Slurm has no partition {name} '
                        f'(sinfo lists {", ".join(known)}); give one of those')


def check_time_limit(options: SlurmOptions, every_seconds: dict[str, float]) -> None:
  """Raises LaunchError when a worker's job (--slurm_time) is shorter than the
  checkpoint interval in seconds of a config (`every_seconds`, by name): no job
  would live to a checkpoint by time, and a node lost would take all of its
  job's work. (An interval in steps cannot be timed before the run.)"""
  limit = options.time_minutes * 60
  for name, seconds in every_seconds.items():
    if seconds and limit < seconds:
      raise LaunchError(
          f'--slurm_time={options.time_minutes} ({limit} s) is shorter than '
          f'checkpoint.every_seconds={seconds:g} of {name}: no worker\'s job would live to '
          'its first checkpoint by time, and a node lost would take the whole job\'s work '
          f'with it; give --slurm_time={math.ceil(seconds / 60)} or more, or a smaller '
          '--config.checkpoint.every_seconds')


def _long_sbatch_option(key: str) -> str | None:
  """The long option that sbatch reads `key` as, when `key` is a short option or an
  abbreviation of exactly one; None when it is a long option itself, or unknown."""
  if key in _SBATCH_LONG_OPTIONS:
    return None
  if len(key) == 1:
    return _SBATCH_SHORT_OPTIONS.get(key)
  completions = [name for name in _SBATCH_LONG_OPTIONS if name.startswith(key)]
  return completions[0] if len(completions) == 1 else None


def parse_sbatch_options(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
  """--slurm_option's KEY=VALUE entries, as submitit's additional_parameters keys."""
  parsed = []
  for text in values:
    key, equals, value = text.partition('=')
    key = key.strip().lstrip('-').replace('-', '_')
    if not equals or not key:
      raise LaunchError(f'--slurm_option={text} is not KEY=VALUE (e.g. qos=high)')
    long_key = _long_sbatch_option(key)
    stands_for = f'{key} stands for sbatch\'s --{long_key.replace("_", "-")}; ' if long_key else ''
    if (long_key or key) in _OWN_SBATCH_OPTIONS:
      flag = _OWN_SBATCH_OPTIONS[long_key or key]
      how = f'(from its --slurm_* flags); use --{flag}' if flag else 'itself; drop this option'
      raise LaunchError(f'--slurm_option={text}: {stands_for}the harness sets '
                        f'{long_key or key} {how}')
    if long_key:
      raise LaunchError(f'--slurm_option={text}: {stands_for}give the long name: '
                        f'--slurm_option={long_key}={value}')
    parsed.append((key, value))
  return tuple(parsed)


def worker_command(workdir: str, compilation_cache_dir: str | None) -> list[str]:
  """`python main.py worker` for `workdir`, with this Python and the same cache."""
  command = [sys.executable, os.path.join(files.REPO_ROOT, 'main.py'), 'worker',
             f'--workdir={workdir}']
  if compilation_cache_dir is not None:
    command.append(f'--compilation_cache_dir={compilation_cache_dir}')
  return command


# --- local workers -------------------------------------------------------------------


def local_gpus(environ: dict[str, str] | None = None) -> list[str]:
  """This machine's GPUs as CUDA_VISIBLE_DEVICES names them, without starting CUDA:
  from that variable if set, else from `nvidia-smi -L`; [] without GPUs."""
  environ = os.environ if environ is None else environ
  if 'CUDA_VISIBLE_DEVICES' in environ:
    return [d for d in environ['CUDA_VISIBLE_DEVICES'].split(',') if d.strip()]
  if shutil.which('nvidia-smi') is None:
    return []
  listing = subprocess.run(['nvidia-smi', '-L'], capture_output=True, text=True,
                           timeout=60, check=False)
  return [str(i) for i, line in enumerate(listing.stdout.splitlines())
          if line.startswith('GPU ')]


def split_gpus(gpus: Sequence[str], num_workers: int) -> list[str | None]:
  """Each worker's CUDA_VISIBLE_DEVICES: an equal, contiguous share of `gpus`, or
  None for every worker on a machine without GPUs."""
  if not gpus:
    return [None] * num_workers
  if len(gpus) % num_workers:
    raise LaunchError(f'--num_workers={num_workers} does not divide the {len(gpus)} GPUs '
                      f'of this machine; give a divisor of {len(gpus)}')
  share = len(gpus) // num_workers
  return [','.join(gpus[k * share:(k + 1) * share]) for k in range(num_workers)]


def start_local(workdir: str, num_workers: int, compilation_cache_dir: str | None,
                gpus: Sequence[str], detach: bool,
                count: int | None = None) -> list[subprocess.Popen]:
  """Starts worker processes, the GPUs split between `num_workers`; each writes to
  DIR/workers/local_<k>.log.

  `count`: start only the first `count` of them (each with its share of the
  GPUs, as if all were started); default: all. `detach`: the workers go on when
  this command ends (their own session).
  """
  log_dir = os.path.join(workdir, 'workers')
  os.makedirs(log_dir, exist_ok=True)
  processes = []
  shares = split_gpus(gpus, num_workers)[:num_workers if count is None else count]
  for k, devices in enumerate(shares):
    environ = dict(os.environ)
    if devices is not None:
      environ['CUDA_VISIBLE_DEVICES'] = devices
    with open(os.path.join(log_dir, f'local_{k}.log'), 'ab') as log:
      processes.append(subprocess.Popen(
          worker_command(workdir, compilation_cache_dir), stdin=subprocess.DEVNULL,
          stdout=log, stderr=subprocess.STDOUT, env=environ,
          start_new_session=detach))
  return processes


# --- Slurm workers ---------------------------------------------------------------------


class SlurmWorker:
  """One array task: runs `main.py worker` and, at Slurm's warning, has it save.

  submitit pickles this object and calls it on the node (in every task of the
  job). At SIGUSR2, submitit calls `checkpoint` in the task of global rank 0:
  the worker process gets the signal too, saves its seed and exits; then
  submitit requeues the task with the object `checkpoint` returns.
  """

  def __init__(self, command: Sequence[str], save_seconds: float = SAVE_SECONDS):
    self.command = list(command)
    self.save_seconds = save_seconds
    self._process: subprocess.Popen | None = None

  def __getstate__(self) -> dict:
    return {'command': self.command, 'save_seconds': self.save_seconds, '_process': None}

  def __call__(self) -> int:
    # The worker must not outlive this task's process: Slurm without cgroups
    # loses track of a child whose parent died, and it would train on unseen.
    self._process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL,
                                     preexec_fn=_terminate_with_parent)
    # Polled, not wait()ed: wait() holds a lock through its blocking waitpid,
    # and `checkpoint`, which runs inside a signal handler in this same thread,
    # could then never wait for the worker to save.
    while (code := self._process.poll()) is None:
      time.sleep(0.5)
    if code != 0:
      raise RuntimeError(f'{" ".join(self.command)} exited with status {code}; its last '
                         'lines are above, its log in the study directory')
    return code

  def checkpoint(self, *args, **kwargs):
    """Lets the worker save (it got SIGUSR2 too; sent again in case), then asks
    submitit to requeue this task with a fresh worker."""
    del args, kwargs
    import submitit  # pylint: disable=g-import-not-at-top
    process = self._process
    if process is not None and process.poll() is None:
      process.send_signal(signal.SIGUSR2)
      try:
        process.wait(timeout=self.save_seconds)
      except subprocess.TimeoutExpired:
        print(f'the worker did not save within {self.save_seconds:.0f} s; requeued anyway, '
              'it resumes from its last checkpoint', file=sys.stderr)
    return submitit.helpers.DelayedSubmission(SlurmWorker(self.command, self.save_seconds))


def _terminate_with_parent() -> None:
  """In a child, before it runs: SIGTERM (save and stop) when its parent dies."""
  libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6', use_errno=True)
  libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1  # From <sys/prctl.h>.


def slurm_executor(workdir: str, options: SlurmOptions, num_workers: int):
  """A submitit executor for a job array of `num_workers` workers, its files in
  DIR/workers/slurm/."""
  import submitit  # pylint: disable=g-import-not-at-top
  if shutil.which('sbatch') is None:
    raise LaunchError('--launcher=slurm needs Slurm: sbatch is not on this machine\'s '
                      'PATH; run from a Slurm login node, or use --launcher=local')
  executor = submitit.SlurmExecutor(folder=os.path.join(workdir, 'workers', 'slurm', '%j'),
                                    max_num_timeout=MAX_REQUEUES)
  parameters = dict(
      nodes=options.nodes, ntasks_per_node=options.tasks_per_node,
      time=options.time_minutes, array_parallelism=num_workers,
      job_name=f'harness-{os.path.basename(workdir.rstrip(os.sep))}',
      signal_delay_s=SIGNAL_DELAY_SECONDS,
      # The node imports the harness from this checkout.
      setup=[f'export PYTHONPATH={files.REPO_ROOT}${{PYTHONPATH:+:$PYTHONPATH}}'],
      additional_parameters=dict(options.extra))
  if options.partition:
    parameters['partition'] = options.partition
  if options.gpus_per_node:
    parameters['gpus_per_node'] = options.gpus_per_node
  if options.cpus_per_task:
    parameters['cpus_per_task'] = options.cpus_per_task
  if options.account:
    parameters['account'] = options.account
  executor.update_parameters(**parameters)
  return executor


def submit_slurm(workdir: str, options: SlurmOptions, num_workers: int,
                 compilation_cache_dir: str | None) -> list:
  """Submits the job array; returns submitit's jobs (one per array task).

  sbatch refusing the array (an option it does not know, a controller that does
  not answer) is a LaunchError whose line says what sbatch said; the plan was
  written before, so the same command, or `main.py worker`, goes on from it.
  """
  import submitit  # pylint: disable=g-import-not-at-top
  executor = slurm_executor(workdir, options, num_workers)
  command = worker_command(workdir, compilation_cache_dir)
  said = io.StringIO()
  pickles = os.path.join(workdir, 'workers', 'slurm')
  before = set(os.listdir(pickles)) if os.path.isdir(pickles) else set()
  try:
    # submitit prints sbatch's stderr before it raises; the line below says it once.
    with contextlib.redirect_stderr(said), executor.batch():
      jobs = [executor.submit(SlurmWorker(command)) for _ in range(num_workers)]
  except (submitit.core.utils.FailedJobError, submitit.core.utils.FailedSubmissionError,
          OSError, subprocess.SubprocessError) as e:
    # submitit pickled each worker for the array that sbatch did not take.
    for name in set(os.listdir(pickles)) - before if os.path.isdir(pickles) else ():
      if name.endswith('.pkl'):
        os.remove(os.path.join(pickles, name))
    raise LaunchError(
        f'sbatch did not take the job array of {num_workers} workers '
        f'({_sbatch_said(str(e) or said.getvalue())}); the plan in {workdir} is kept: '
        'once what sbatch names is fixed (a --slurm_option, the cluster), run the same '
        'command again, or start workers on that plan with python main.py worker '
        f'--workdir={workdir}') from None
  return jobs


def _sbatch_said(text: str) -> str:
  """sbatch's error in one line, without its advice to run `sbatch --help`."""
  lines = [line.strip() for line in text.splitlines()
           if line.strip() and 'sbatch --help' not in line]
  return ' '.join(lines) or 'it gave no reason'


def slurm_jobs_queued(job_ids: Sequence[str]) -> bool:
  """Whether any of the jobs is still in Slurm's queue (pending, running, requeued).

  squeue, not sacct: it needs no accounting database. An squeue that fails
  counts as queued, so that a passing hiccup does not end the wait.
  """
  if not job_ids:
    return False
  try:
    answer = subprocess.run(['squeue', '-h', '-o', '%i', '-j', ','.join(job_ids)],
                            capture_output=True, text=True, timeout=60, check=False)
  except (OSError, subprocess.TimeoutExpired):
    return True
  if answer.returncode != 0:
    return 'Invalid job id' not in answer.stderr
  return bool(answer.stdout.strip())


# Slurm's reason for a job it could not start on its node: among others, an
# output file it cannot open there (submitit's are in the study directory).
_LAUNCH_FAILURE = 'JobLaunchFailure'
_SCONTROL_FIELD = re.compile(r'(\w+)=(\S*)')


def slurm_launch_failures(job_ids: Sequence[str], workdir: str) -> str | None:
  """Why Slurm could not start workers of the array, in one line naming their
  nodes, or None. `scontrol` knows an ended job for MinJobAge (5 minutes by
  default); a job it no longer knows says nothing."""
  array = sorted({job_id.partition('_')[0] for job_id in job_ids})
  try:
    answer = subprocess.run(['scontrol', '-o', 'show', 'job', ','.join(array)],
                            capture_output=True, text=True, timeout=60, check=False)
  except (OSError, subprocess.TimeoutExpired):
    return None
  failed = []
  for line in answer.stdout.splitlines():
    fields = dict(_SCONTROL_FIELD.findall(line))
    if fields.get('Reason') == _LAUNCH_FAILURE:
      failed.append((f'{fields.get("ArrayJobId", fields.get("JobId"))}_'
                     f'{fields.get("ArrayTaskId", "0")}', fields.get('NodeList', '?')))
  if not failed:
    return None
  nodes = sorted({node for _, node in failed})
  logs = os.path.join(workdir, 'workers', 'slurm')
  return (f'Slurm could not start {len(failed)} worker(s) ({failed[0][0]} on {failed[0][1]}'
          f'{", ..." if len(failed) > 1 else ""}: {_LAUNCH_FAILURE}): each worker\'s log '
          f'goes to {logs}, and {", ".join(nodes)} cannot open it: such a node does not see '
          f'the study directory {workdir}, or sees it at another path; mount the shared '
          f'filesystem at the same path on every node (or leave those nodes out: '
          f'--slurm_option=exclude={",".join(nodes)}), then run the same command again; '
          f'the plan in {workdir} is kept')


# --- waiting for the workers -------------------------------------------------------------


def wait_for_workers(count_states: Callable[[], dict[states.RunState, int]],
                     workers_alive: Callable[[], bool],
                     progress: console.Progress,
                     poll_seconds: float = POLL_SECONDS,
                     when_stopped: Callable[[], str] = lambda: ''
                     ) -> dict[states.RunState, int]:
  """Shows the runs done, running, pending and failed until none is running or
  pending, or no worker is left; returns the last counts.

  A stop signal (Ctrl-C) ends the wait with stops.Stopped, whose line then says
  what `when_stopped` did with the workers (stop_local_workers, slurm_workers_go_on).
  """
  try:
    while True:
      counts = count_states()
      progress.note(describe_counts(counts))
      if not counts[states.RunState.RUNNING] and not counts[states.RunState.PENDING]:
        return counts
      if not workers_alive():
        return count_states()
      time.sleep(poll_seconds)
  except KeyboardInterrupt as e:
    raise stops.Stopped(getattr(e, 'signal_number', signal.SIGINT), when_stopped()) from None


def _report_hint(workdir: str) -> str:
  return f'python main.py report --workdir={workdir} says where the runs stand'


def stop_local_workers(processes: Sequence[subprocess.Popen], workdir: str) -> str:
  """SIGTERM to the local workers still running: each saves its run and stops
  (a terminal's Ctrl-C reached them already; SIGTERM, unlike a second SIGINT,
  never makes one stop without saving). Returns what was done, for the line."""
  alive = [p for p in processes if p.poll() is None]
  for process in alive:
    process.send_signal(signal.SIGTERM)
  pids = ', '.join(str(p.pid) for p in alive) or 'none left'
  return (f'while waiting; sent SIGTERM to its local workers (pids {pids}): each saves '
          f'its run and stops; {_report_hint(workdir)}')


def slurm_workers_go_on(started: str, workdir: str) -> str:
  return (f'while waiting; {started} goes on (scancel stops it, each worker saving its '
          f'run); {_report_hint(workdir)}')


def describe_counts(counts: dict[states.RunState, int]) -> str:
  """'runs 3/8 done, 1 running, 3 pending, 1 failed': each state in its own word."""
  others = (states.RunState.RUNNING, states.RunState.PENDING, states.RunState.FAILED)
  return (f'runs {counts[states.RunState.DONE]}/{sum(counts.values())} done, '
          + ', '.join(f'{counts[state]} {state}' for state in others))
