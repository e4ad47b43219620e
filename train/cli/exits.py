"""How a command ends: what went wrong in one line, a failing process that
leaves its group at once, and a stop signal's exit status.

main.py runs every job inside `leaving_the_group_on_failure` and
`reported_errors`. Bad input found late (any `errors.BadInput`: a config, a
checkpoint, a study directory, a full or read-only disk; and the input
pipeline's DataError) ends in one line and exit status 2; a stop signal in
128 + its number, the training steps having saved first (train/run/loop.py);
a failing process of a multi-process run exits at once, so that the others
do not wait for it for an hour.
"""

import contextlib
import logging as std_logging
import os
import signal
import sys
from typing import Callable, Iterator

import jax

from input_pipeline import errors as data_errors
from train.cli import jobs
from train.cli import logs
from train.cli import workdir as workdir_lib
from train.common import claims
from train.common import errors
from train.common import files
from train.common import stops
from train.run import distributed


# What a running job may raise that the user can act on: each names its remedy.
# DataError is defined without TensorFlow (input_pipeline/errors.py), so naming
# it here keeps TensorFlow out of `main.py bench`'s synthetic mode.
_BAD_INPUT = (errors.BadInput, data_errors.DataError)


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
def reported_errors(job: jobs.Job) -> Iterator[None]:
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
    if isinstance(e, stops.SavedAndStopped):
      print(f'{stops.how(e.signal_number)}: {e}; run the same command again to resume',
            file=sys.stderr)
      _exit_now(job, stops.status(e.signal_number))
    if stops.received() is not None:
      # What a swallowed stop signal left behind (an extension module it
      # interrupted fails to import): the stop is the news, not this.
      _stopped_without_saving(job, existed, stops.received())
    refused = _filesystem_error(e, job.workdir)
    if refused is None and not isinstance(e, _BAD_INPUT):
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


def _clean_up_after_failure(job: jobs.Job, existed: bool) -> None:
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


def _stopped_without_saving(job: jobs.Job, existed: bool, signum: int, note: str = '') -> None:
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


def _exit_now(job: jobs.Job, status: int) -> None:
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
