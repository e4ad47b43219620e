"""A run of several processes: a failure in one ends them all, and the flags
that join them are checked. That two processes train like one process of as
many devices is tests/test_seed_order.py's (the whole loop, on the embedded data).
"""

import socket
import sys

import pytest

from tests import study_runs
from train.cli import exits
from train.run import distributed



def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


@pytest.mark.slow  # Starts two main.py processes (about 5 s each).
def test_a_process_that_fails_at_its_input_ends_the_whole_run(tiny_data_dir, tmp_path):
  """Process 0 of 2 gets a data_dir that is a file. Through JAX's exit handler
  both processes stayed alive 322 s (its shutdown barrier) and aborted;
  now process 0 ends with its one-line error and takes process 1 with it."""
  not_a_dir = tmp_path / 'notes.txt'
  not_a_dir.write_text('mine\n')
  address = f'localhost:{_free_port()}'
  outputs = []
  processes = []
  for process_id, data_dir in enumerate((str(not_a_dir), tiny_data_dir)):
    log = str(tmp_path / f'process_{process_id}.log')
    outputs.append(log)
    processes.append(study_runs.main(
        ['--config=configs/embedded_lars.py', f'--workdir={tmp_path / "run"}',
         f'--coordinator_address={address}', '--num_processes=2',
         f'--process_id={process_id}',
         *study_runs.flags(data_dir, model__virtual_batch_size=32)], log))
  first, second = (study_runs.wait(p, log) for p, log in zip(processes, outputs))
  assert processes[0].returncode == 2, first[-3000:]
  assert first.strip().splitlines()[-1] == (
      f"error: config error: data_dir='{not_a_dir}' is not allowed; allowed: a writable "
      f'directory to build embedded_shapes/tiny in ({not_a_dir} is not a directory)')
  # Process 1 was told that the coordination service (process 0's) went away.
  assert processes[1].returncode != 0, second[-3000:]
  assert not_a_dir.read_text() == 'mine\n'


class _Exited(Exception):
  pass


def test_an_unexpected_error_in_one_process_exits_without_the_shutdown_barrier(
    monkeypatch, capsys):
  statuses = []

  def fake_exit(status):
    statuses.append(status)
    raise _Exited

  monkeypatch.setattr(distributed, 'joined_group', lambda: True)
  monkeypatch.setattr(distributed, 'process_label', lambda: 'process 1 of 2')
  monkeypatch.setattr(exits, '_flush_and_exit', fake_exit)
  with pytest.raises(_Exited):
    with exits.leaving_the_group_on_failure():
      raise RuntimeError('the shard\nis damaged')
  with pytest.raises(_Exited):
    with exits.leaving_the_group_on_failure():
      sys.exit(2)  # A one-line error, already printed.
  assert statuses == [1, 2]
  assert capsys.readouterr().err.strip().splitlines()[-1] == (
      'error: process 1 of 2 failed: RuntimeError: the shard is damaged; it exits '
      'without waiting for the other processes, which then stop too')
  # A process of no group exits as Python does (JAX's exit handler is then a no-op).
  monkeypatch.setattr(distributed, 'joined_group', lambda: False)
  with pytest.raises(RuntimeError):
    with exits.leaving_the_group_on_failure():
      raise RuntimeError('boom')
  with pytest.raises(SystemExit):
    with exits.leaving_the_group_on_failure():
      sys.exit(2)
  assert statuses == [1, 2]


@pytest.mark.parametrize('address, processes, process_id, message', [
    ('localhost:1234', None, 0, 'go together'),
    ('localhost:1234', 2, 2, 'not below'),
    ('localhost', 2, 0, 'host:port'),
])
def test_incomplete_process_flags_are_refused(address, processes, process_id, message):
  with pytest.raises(distributed.DistributedError, match=message):
    distributed.check_flags(address, processes, process_id)


def test_no_flags_and_no_cluster_is_one_process():
  assert not distributed.check_flags(None, None, None)
  slurm = {'SLURM_JOB_ID': '1', 'SLURM_STEP_NODELIST': 'n1', 'SLURM_PROCID': '0',
           'SLURM_LOCALID': '0'}
  assert distributed.detect_cluster({**slurm, 'SLURM_NTASKS': '4'}) == distributed.SLURM
  assert distributed.detect_cluster({**slurm, 'SLURM_NTASKS': '1'}) is None
  assert distributed.detect_cluster({}) is None
