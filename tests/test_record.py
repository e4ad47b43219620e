"""The run's record (train/run/record.py): the history a checkpoint holds, and the
hyperparameters each run writes for TensorBoard's HParams view."""

import glob
import os

import ml_collections
import pytest
from clu import metric_writers
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.plugins.hparams import plugin_data_pb2

from configs import embedded_lars
from train.run import record


def hparams_written(workdir: str) -> dict[str, bool | float | str]:
  """The hyperparameters in WORKDIR's TensorBoard event files, as the HParams view
  reads them (numbers come back as floats)."""
  found = {}
  for path in glob.glob(os.path.join(workdir, 'events.out.tfevents.*')):
    for event in event_file_loader.EventFileLoader(path).Load():
      for value in event.summary.value:
        if value.metadata.plugin_data.plugin_name != 'hparams':
          continue
        data = plugin_data_pb2.HParamsPluginData.FromString(
            value.metadata.plugin_data.content)
        if data.HasField('session_start_info'):
          found.update({key: getattr(v, v.WhichOneof('kind'))
                        for key, v in data.session_start_info.hparams.items()})
  return found


def scalar_tags_written(workdir: str) -> set[str]:
  """The tags of the summaries in WORKDIR's TensorBoard event files."""
  return {value.tag for path in glob.glob(os.path.join(workdir, 'events.out.tfevents.*'))
          for event in event_file_loader.EventFileLoader(path).Load()
          for value in event.summary.value}


def test_hparams_are_the_flattened_config_in_scalars_and_strings():
  config = ml_collections.ConfigDict({
      'seed': 3, 'dataset': 'x', 'stop_at_target': True,
      'lr': {'peak': 0.5, 'schedule': {'power': 2}},
      'input': {'mean_rgb': [1.0, 2.0, 3.0]}, 'checkpoint': {'every_seconds': None}})
  assert record.hparams(config) == {
      'seed': 3, 'dataset': 'x', 'stop_at_target': True, 'lr.peak': 0.5,
      'lr.schedule.power': 2, 'input.mean_rgb': '[1.0, 2.0, 3.0]',
      'checkpoint.every_seconds': ''}


def test_every_key_of_a_real_config_is_written_and_read_back(tmp_path):
  config = embedded_lars.get_config()
  writer = metric_writers.AsyncWriter(metric_writers.SummaryWriter(str(tmp_path)))
  record.write_hparams(config, writer)
  writer.close()
  expected = record.hparams(config)
  assert all(isinstance(v, (bool, int, float, str)) for v in expected.values())
  written = hparams_written(str(tmp_path))
  assert written == {k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                     for k, v in expected.items()}
  assert written['seed'] == config.seed
  assert written['global_batch_size'] == config.global_batch_size


def test_history_reads_a_checkpoint_written_before_it_was_renamed():
  """Checkpoints hold the history as the JSON item 'progress' with these keys: one
  saved by the loop's earlier `Progress` reads back whole."""
  saved = {
      'run_start_wall': 100.0, 'step': 6,
      'evals': [{'step': 6, 'epoch': 0.75, 'accuracy': 0.1, 'loss': 2.3, 'seconds': 4.0}],
      'eval_seconds': 1.5, 'reached_index': None, 'in_block': False,
      'block_start_epoch': 0.75, 'mlperf_log_bytes': 1234, 'num_resumes': 1,
      'resumed_from_steps': [3], 'seconds_lost': 2.0,
      'last_train_metrics': {'loss': 2.2, 'accuracy': 0.1}, 'saved_wall': 110.0,
      'run_seconds': 0.0, 'diverged': False}
  history = record.History.from_json(saved)
  assert history.evals[0] == record.EvalRecord(6, 0.75, 0.1, 2.3, 4.0)
  assert history.to_json() == saved
  assert history.status == 'aborted' and history.reached is None


def test_a_resume_is_counted_with_the_time_lost_since_the_save():
  history = record.History(run_start_wall=0.0, step=4, saved_wall=0.0)
  history.resumed()
  assert history.num_resumes == 1 and history.resumed_from_steps == [4]
  assert history.seconds_lost > 0


class _Refused(Exception):
  """What a claim fence that found the claim taken over raises (in a test)."""


def _fence_that_refuses_after(writes: int) -> tuple[list[str], object]:
  """A before_write that lets `writes` writes through, then raises _Refused."""
  calls = []

  def fence() -> None:
    calls.append('fence')
    if len(calls) > writes:
      raise _Refused()

  return calls, fence


def test_a_fenced_metric_writer_checks_before_every_write(tmp_path):
  calls, fence = _fence_that_refuses_after(1)
  writer = record.FencedWriter(metric_writers.SummaryWriter(str(tmp_path)), fence)
  writer.write_scalars(1, {'loss': 1.0})
  with pytest.raises(_Refused):
    writer.write_scalars(2, {'loss': 2.0})
  with pytest.raises(_Refused):
    writer.flush()
  assert len(calls) == 3


def test_a_fenced_mlperf_log_writes_no_line_once_the_fence_refuses(tmp_path):
  from train.run import mllog  # pylint: disable=g-import-not-at-top
  path = str(tmp_path / 'mlperf.log')
  calls, fence = _fence_that_refuses_after(2)
  logger = mllog.MlperfLogger(path, before_write=fence)
  logger.start('init_start')
  logger.end('init_stop')
  with pytest.raises(_Refused):
    logger.event('run_start')
  logger.close()
  with open(path) as f:
    lines = f.read().splitlines()
  assert len(lines) == 2 and 'init_stop' in lines[-1] and len(calls) == 3
