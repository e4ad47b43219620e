"""The function that runs each kind of job (`RUNNERS`), once train/cli/jobs.py
has built it: a run, a study, comparison, search or robustness comparison
(inline, or through launchers.py's workers), a staged search and a batch-size
scaling study (each of their plans so), a worker, a report, a benchmark, a
performance profile.

The run's loop imports TensorFlow (the input pipeline), tfds and clu; the
studies and the workers import it only when they train (worker.py), so that a
report or a command that only plans and submits starts without them. These
modules are imported inside the runners that need them,
never at the top, so that `main.py bench --modes=synthetic` imports none of
them (tests/test_bench.py checks it); and under logs.native_stderr_to_log, as
their imports write to the native stderr. The report's module (matplotlib)
likewise waits until a runner prints a study's table.
"""

import dataclasses
import os
import socket
import sys
import types
from typing import Callable

import jax
from absl import logging

from train.bench import throughput
from train.cli import flags as cli_flags
from train.cli import jobs
from train.cli import launchers
from train.cli import logs
from train.common import console
from train.experiments import plan as plan_lib
from train.experiments import states
from train.run import distributed
from train.run import trust_ratio_file


def run_one(job: jobs.Job) -> None:
  with logs.native_stderr_to_log():
    from train.run import loop  # pylint: disable=g-import-not-at-top
  with console.Progress(1, enabled=distributed.is_main_process()) as progress:
    progress.start_run(f'{job.name} seed {job.config.seed}')
    result = loop.train_and_evaluate(job.config, job.workdir, progress=progress,
                                     claim=job.claim)
  if not distributed.is_main_process():
    return
  target = job.config.target_accuracy
  reached = (f'reached {target:.1%} at step {result["steps_to_target"]} '
             f'after {result["seconds_to_target"]:.1f}s' if result['reached_target']
             else f'did not reach {target:.1%}')
  print(f'{result["status"]}: {reached}; final eval accuracy '
        f'{result["final_eval_accuracy"]:.4f}; results in {job.workdir}')
  plot_trust_ratios(job.workdir, job.name)


def plot_trust_ratios(run_dir: str, name: str) -> str | None:
  """RUN_DIR/trust_ratios.png from the run's trust_ratios.json, when it logged
  trust ratios (`trust_ratio_log_steps`); returns its path, or None.

  Drawn here, above the run and the reports alike: the run writes the numbers
  (train/run/trust_ratio_file.py) and may not import the reports' plotting,
  which may not read the run's modules. A single run draws it when it ends; `main.py report`
  draws it for each run of a study.
  """
  path = os.path.join(run_dir, trust_ratio_file.NAME)
  if not os.path.exists(path):
    return None
  with logs.native_stderr_to_log():  # The figure's module imports matplotlib.
    from train.experiments.reports import optimizer_plots  # pylint: disable=g-import-not-at-top
  logged = trust_ratio_file.read(path)
  figure = os.path.join(run_dir, 'trust_ratios.png')
  optimizer_plots.trust_ratios(figure, name, logged['steps'], logged['trust_ratios'])
  return figure


def _study_module() -> types.ModuleType:
  """train.experiments.study, whose imports (TensorFlow's among them) log to the file."""
  with logs.native_stderr_to_log():
    from train.experiments import study  # pylint: disable=g-import-not-at-top
  return study


def _plan(job: jobs.Job) -> plan_lib.Plan:
  """Writes the job's plan into its workdir; returns it."""
  study = _study_module()
  if job.kind == cli_flags.JobKind.STUDY:
    return study.plan_study(job.config, job.name, job.workdir, job.num_seeds)
  if job.kind in (cli_flags.JobKind.COMPARISON, cli_flags.JobKind.ROBUSTNESS):
    kind = (plan_lib.PlanKind.ROBUSTNESS if job.kind == cli_flags.JobKind.ROBUSTNESS
            else plan_lib.PlanKind.COMPARISON)
    return study.plan_comparison(job.configs, job.workdir, job.num_seeds,
                                 overrides=job.overrides, name=job.name, kind=kind)
  return study.plan_search(job.config, job.name, list(job.search_space), job.workdir,
                           job.num_trials, job.num_seeds,
                           num_devices=jobs.run_devices(job.launch).count)


def _print_outcome(plan: plan_lib.Plan, studies: list[dict]) -> None:
  """The comparison table (a search's best trial, a robustness comparison's drops)
  and where the report is."""
  if not distributed.is_main_process():
    return
  if plan.kind == plan_lib.PlanKind.ROBUSTNESS:
    from train.experiments import robustness  # pylint: disable=g-import-not-at-top
    print(robustness.drop_table(plan.directory, studies))
  elif plan.kind == plan_lib.PlanKind.SEARCH:
    trials = _study_module().search_trials(plan.directory)
    best = max(trials, key=lambda t: t['summary']['median_final_accuracy'] or -1.0)
    print(f'best of {len(trials)} trials: trial_{best["trial"]} {best["params"]}, '
          f'median final accuracy {best["summary"]["median_final_accuracy"]}')
  else:
    from train.experiments.reports import comparison  # pylint: disable=g-import-not-at-top
    print(comparison.comparison_table([(s['name'], s, s['runs']) for s in studies]))
  print(f'report: {os.path.join(plan.directory, "report.md")}')


def run_studies(job: jobs.Job) -> None:
  """A study, comparison or search: its plan, its workers, and its report."""
  plan = _plan(job)
  if job.launch.launcher == cli_flags.INLINE:
    studies = _study_module().work_inline(plan)
  else:
    studies = _launch(job, plan)
    if studies is None:
      return
  _print_outcome(plan, studies)


def _worker_counts(job: jobs.Job, plan: plan_lib.Plan, gpus: list[str]) -> tuple[int, int]:
  """(The workers the GPUs are split between, the workers to start).

  The split is --num_workers (default: one per GPU locally, which validation
  assumed for each run's devices); no more are started than runs are left to
  do, as a worker without a run would only start and end (a thousand of them,
  for --num_workers=1000 on a one-run plan, a thousand processes).
  """
  left = max(1, states.count_states(plan)[states.RunState.PENDING])
  split = job.launch.num_workers
  if not split:
    split = max(1, len(gpus)) if job.launch.launcher == cli_flags.LOCAL else left
  return split, min(split, left)


@dataclasses.dataclass(frozen=True)
class _Started:
  """Workers started: what, in words; whether any is still alive (or queued);
  what a stopped wait does with them, in words; and why some could not start
  (a line), once they are gone."""
  what: str
  alive: Callable[[], bool]
  when_stopped: Callable[[], str]
  not_started: Callable[[], str | None] = lambda: None


def _start_workers(job: jobs.Job, plan: plan_lib.Plan) -> _Started:
  """Starts the launcher's workers."""
  gpus = launchers.local_gpus() if job.launch.launcher == cli_flags.LOCAL else []
  split, num_workers = _worker_counts(job, plan, gpus)
  capped = (f' (of --num_workers={split}: one per run left to do)'
            if num_workers < split else '')
  if job.launch.launcher == cli_flags.LOCAL:
    processes = launchers.start_local(plan.directory, split, job.compilation_cache_dir,
                                      gpus, detach=not job.launch.wait, count=num_workers)
    pids = ', '.join(str(p.pid) for p in processes)
    return _Started(f'{num_workers} local workers (pids {pids}){capped}',
                    lambda: any(p.poll() is None for p in processes),
                    lambda: launchers.stop_local_workers(processes, plan.directory))
  slurm_jobs = launchers.submit_slurm(plan.directory, job.launch.slurm, num_workers,
                                      job.compilation_cache_dir)
  ids = [j.job_id for j in slurm_jobs]
  started = (f'a Slurm job array of {num_workers} workers (job {ids[0].partition("_")[0]})'
             f'{capped}')
  return _Started(started, lambda: launchers.slurm_jobs_queued(ids),
                  lambda: launchers.slurm_workers_go_on(started, plan.directory),
                  lambda: launchers.slurm_launch_failures(ids, plan.directory))


def _launch(job: jobs.Job, plan: plan_lib.Plan) -> list[dict] | None:
  """Starts the workers on `plan` (in its directory: a staged search's stage, or
  the job's workdir); unless --nowait, waits for them and writes the report.
  Returns the studies, or None when the command does not wait.

  Raises:
    launchers.LaunchError: workers could not start (a node that does not see the
      study directory) and runs are left.
  """
  started = _start_workers(job, plan)
  print(f'started {started.what}; their logs are in '
        f'{os.path.join(plan.directory, "workers")}', file=sys.stderr)
  if not job.launch.wait:
    print(f'not waiting (--nowait): python main.py report --workdir={plan.directory} says '
          'where the runs stand; the last worker writes the report', file=sys.stderr)
    return None
  with console.Progress(len(plan.runs), enabled=True) as progress:
    counts = launchers.wait_for_workers(
        lambda: states.count_states(plan), started.alive, progress,
        when_stopped=started.when_stopped)
  studies = _study_module().write_report(plan.directory)
  if not _plan_over(counts):
    why = started.not_started()
    if why is not None:
      raise launchers.LaunchError(why)
  _check_finished(plan.directory, counts)
  return studies


def _check_finished(directory: str, counts: dict[states.RunState, int]) -> None:
  """Says what is left when the workers ended before the plan did."""
  failed = counts[states.RunState.FAILED]
  if failed or not _plan_over(counts):
    print(f'{launchers.describe_counts(counts)}: see {os.path.join(directory, "report.md")}'
          f' ("Runs not finished"); re-run the same command to run '
          f'{"the failed and the left runs" if failed else "the left runs"}',
          file=sys.stderr)


def _plan_over(counts: dict[states.RunState, int]) -> bool:
  """No run is running or pending: each is done or failed."""
  return not counts[states.RunState.RUNNING] and not counts[states.RunState.PENDING]


def run_worker(job: jobs.Job) -> None:
  """`main.py worker`: claims and runs the plan's runs until none is left; the
  worker that finds the plan complete writes the report."""
  study = _study_module()
  from train.experiments import worker  # pylint: disable=g-import-not-at-top
  plan = plan_lib.read_plan(job.workdir)
  logging.info('worker on %s (pid %d, slurm job %s): process %d of %d, %d of %d devices '
               'local', socket.gethostname(), os.getpid(), os.environ.get('SLURM_JOB_ID'),
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count())
  with console.Progress(len(plan.runs), enabled=distributed.is_main_process()) as progress:
    done = worker.Worker(job.workdir, progress).run()
  if not distributed.is_main_process():
    return
  counts = states.count_states(plan)
  if _plan_over(counts):
    study.write_report(job.workdir)
  print(f'worker: ran {len(done.ran)} runs ({len(done.failed)} failed); the study has '
        f'{launchers.describe_counts(counts)}', file=sys.stderr)
  if done.failed:
    sys.exit(1)


def _staged_module() -> types.ModuleType:
  with logs.native_stderr_to_log():
    from train.experiments import staged  # pylint: disable=g-import-not-at-top
  return staged


def _stage_work(job: jobs.Job) -> Callable[[plan_lib.Plan], bool]:
  """How a staged search runs each stage's plan: in this process, or through the
  launcher's workers; whether every run of the plan is then done."""
  def work(plan: plan_lib.Plan) -> bool:
    if job.launch.launcher == cli_flags.INLINE:
      _study_module().work_inline(plan)
    elif _launch(job, plan) is None:  # --nowait: the workers go on without this command.
      return False
    counts = states.count_states(plan)
    return counts[states.RunState.DONE] == len(plan.runs)
  return work


def run_staged_search(job: jobs.Job) -> None:
  """--search: the config file's stages in order, then the chosen point's confirmation."""
  summary = _staged_module().run_staged(job.config, job.name, job.search, job.workdir,
                                        _stage_work(job),
                                        num_devices=jobs.run_devices(job.launch).count)
  _print_staged(job.workdir, summary)


def _print_staged(directory: str, summary: dict) -> None:
  """The chosen point and its confirmation, or what is left to run."""
  from train.experiments.reports import markdown  # pylint: disable=g-import-not-at-top
  from train.experiments.reports import staged  # pylint: disable=g-import-not-at-top
  chosen, confirmation = summary['chosen'], summary['confirmation']
  if chosen is not None:
    print(f"chosen: stage {chosen['stage']} trial_{chosen['trial']} {chosen['params']}, "
          f"{staged.metric_words(summary['metric'])} "
          f"{staged.metric_text(summary['metric'], chosen['metric'])}")
  if confirmation is not None and confirmation['summary'] is not None:
    result = confirmation['summary']
    print(f"confirmed over {result['num_runs']} seeds: median final accuracy "
          f"{markdown.percent(result['median_final_accuracy'])} (quartiles "
          f"{markdown.percent_range(result['final_accuracy_quartiles'])}), reached the target "
          f"{markdown.reached(result)}")
  if not summary['complete']:
    print(f'the staged search is not finished: re-run the same command to go on (after its '
          f'workers end, with --nowait); {os.path.join(directory, "report.md")} says where '
          'it stands', file=sys.stderr)
  print(f'report: {os.path.join(directory, "report.md")}')


def _scaling_module() -> types.ModuleType:
  with logs.native_stderr_to_log():
    from train.experiments import scaling  # pylint: disable=g-import-not-at-top
  return scaling


def run_scaling(job: jobs.Job) -> None:
  """--scaling: the config file's batch sizes in order, each tuned or not, then
  the curve and its critical batch size."""
  summary = _scaling_module().run_scaling(job.config, job.name, job.scaling, job.scaling_mode,
                                          job.workdir, _stage_work(job),
                                          num_devices=jobs.run_devices(job.launch).count)
  _print_scaling(job.workdir, summary)


def _print_scaling(directory: str, summary: dict) -> None:
  """The curve as a table, the critical batch size, or what is left to run."""
  from train.experiments.reports import scaling as scaling_report  # pylint: disable=g-import-not-at-top
  print(scaling_report.text_table(summary))
  print(scaling_report.critical_line(summary))
  if not summary['complete']:
    print(f'the scaling study is not finished: re-run the same command to go on (after its '
          f'workers end, with --nowait); {os.path.join(directory, "report.md")} says where '
          'it stands', file=sys.stderr)
  print(f'report: {os.path.join(directory, "report.md")}')


def run_report(job: jobs.Job) -> None:
  """`main.py report`: the study's JSON summaries and report.md from what finished."""
  if plan_lib.spec_kind(job.workdir) == plan_lib.SCALING_KIND:
    _print_scaling(job.workdir, _scaling_module().write_report(job.workdir))
    return
  staged = _staged_module()
  if staged.stages.is_staged_dir(job.workdir):
    _print_staged(job.workdir, staged.write_report(job.workdir))
    return
  plan = plan_lib.read_plan(job.workdir)
  counts = states.count_states(plan)
  studies = _study_module().write_report(job.workdir)
  for run in plan.runs:
    plot_trust_ratios(run.run_dir, run.label)
  _print_outcome(plan, studies)
  print(launchers.describe_counts(counts))


def run_profile(job: jobs.Job) -> None:
  """`main.py profile`: the performance profile of finished studies, its scores
  on the console and report.md, profile.json and performance_profile.png."""
  with logs.native_stderr_to_log():  # The report's module imports matplotlib.
    from train.experiments.reports import profile as profile_report  # pylint: disable=g-import-not-at-top
  profile = profile_report.profile_of(job.profile)
  path = profile_report.write_profile_report(job.workdir, job.profile, profile)
  print(profile_report.score_table(profile))
  print(f'report: {path}')


def run_bench(job: jobs.Job) -> None:
  options = job.bench
  table = throughput.run(job.config, options.modes, options.windows,
                         peak_tflops=options.peak_tflops, input_threads=options.input_threads,
                         profile_dir=options.profile_dir)
  if distributed.is_main_process():
    print(table, flush=True)


RUNNERS: dict[cli_flags.JobKind, Callable[[jobs.Job], None]] = {
    cli_flags.JobKind.RUN: run_one,
    cli_flags.JobKind.STUDY: run_studies,
    cli_flags.JobKind.COMPARISON: run_studies,
    cli_flags.JobKind.SEARCH: run_studies,
    cli_flags.JobKind.STAGED_SEARCH: run_staged_search,
    cli_flags.JobKind.ROBUSTNESS: run_studies,
    cli_flags.JobKind.SCALING: run_scaling,
    cli_flags.JobKind.BENCH: run_bench,
    cli_flags.JobKind.WORKER: run_worker,
    cli_flags.JobKind.REPORT: run_report,
    cli_flags.JobKind.PROFILE: run_profile,
}
