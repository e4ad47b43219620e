"""A study's plan, its report from what finished, and the launchers' pieces, without
training: plans are written and read back, results are made up."""

import glob
import json
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
# Imported before any test runs: submitit configures logging as it is imported
# (logging.config.dictConfig), which closes the handlers pytest has set up by then.
import submitit  # pylint: disable=unused-import

from configs import embedded_lars
from configs import embedded_nesterov
from configs import embedded_search
from tests import test_report
from train.cli import launchers
from train.common import claims
from train.common import config_dicts
from train.common import console
from train.common import files
from train.experiments import plan as plan_lib
from train.experiments import states as states_lib
from train.experiments import study
from train.experiments import worker as worker_lib
from train.run import loop


def _comparison_plan(directory: str, num_seeds: int = 3) -> plan_lib.Plan:
  configs = {'embedded_lars': embedded_lars.get_config(),
             'embedded_nesterov': embedded_nesterov.get_config()}
  return study.plan_comparison(configs, directory, num_seeds, overrides={'lr.peak': 2.0})


def test_a_plan_reads_back_as_written(tmp_path):
  directory = str(tmp_path / 'study')
  written = _comparison_plan(directory)
  read = plan_lib.read_plan(directory)
  assert [(r.entry, r.seed) for r in read.runs] == [
      ('embedded_lars', 0), ('embedded_nesterov', 0), ('embedded_lars', 1),
      ('embedded_nesterov', 1), ('embedded_lars', 2), ('embedded_nesterov', 2)]
  for run_read, run_written in zip(read.runs, written.runs):
    assert run_read == run_written
    # The resolved config rebuilds exactly, tuples included.
    rebuilt = run_read.config_dict()
    assert rebuilt.to_json() == json.dumps(run_read.config) or \
        json.loads(rebuilt.to_json()) == run_read.config
    assert isinstance(rebuilt.input.crop_area_range, tuple) and rebuilt.seed == run_read.seed
  assert read.overrides == {'lr.peak': 2.0}
  with open(os.path.join(directory, plan_lib.PLAN_FILE)) as f:
    on_disk = json.load(f)
  # Paths relative to the study: hosts may mount the shared directory elsewhere.
  assert on_disk['runs'][1]['run_dir'] == os.path.join('embedded_nesterov', 'seed_0')


def test_a_moved_study_directory_keeps_its_plan(tmp_path):
  _comparison_plan(str(tmp_path / 'here'))
  os.rename(tmp_path / 'here', tmp_path / 'there')
  moved = plan_lib.read_plan(str(tmp_path / 'there'))
  assert moved.runs[0].run_dir == str(tmp_path / 'there' / 'embedded_lars' / 'seed_0')


def test_replanning_keeps_the_creation_time_and_grows_the_seeds(tmp_path):
  directory = str(tmp_path / 'study')
  first = _comparison_plan(directory, num_seeds=2)
  second = _comparison_plan(directory, num_seeds=4)
  assert second.created == first.created and len(second.runs) == 8
  other = embedded_lars.get_config()
  other.lr.peak = 5.0
  with pytest.raises(plan_lib.StudyDirError, match='holds another study'):
    study.plan_comparison({'embedded_lars': other,
                           'embedded_nesterov': embedded_nesterov.get_config()},
                          directory, 2, overrides={'lr.peak': 2.0})


def test_a_missing_or_damaged_plan_is_one_clear_error(tmp_path):
  with pytest.raises(plan_lib.StudyDirError, match='holds no study plan'):
    plan_lib.read_plan(str(tmp_path))
  (tmp_path / plan_lib.PLAN_FILE).write_text('{"kind": ')
  with pytest.raises(plan_lib.StudyDirError, match='cannot be read.*restore it, or start the study afresh'):
    plan_lib.read_plan(str(tmp_path))
  (tmp_path / plan_lib.PLAN_FILE).write_text('{"kind": "study"}')
  with pytest.raises(plan_lib.StudyDirError, match='is not a study plan'):
    plan_lib.read_plan(str(tmp_path))


def _edit_plan(directory: str, edit) -> None:
  path = os.path.join(directory, plan_lib.PLAN_FILE)
  with open(path) as f:
    values = json.load(f)
  edit(values)
  with open(path, 'w') as f:
    json.dump(values, f)


def _paths_of(plan: plan_lib.Plan) -> list[str]:
  """Every path a worker or a report of `plan` writes in or under."""
  return ([e.directory for e in plan.entries] +
          [p for r in plan.runs for p in (r.run_dir, r.claim_dir, os.path.dirname(r.claim_dir))])


@pytest.mark.parametrize('kind', ['study', 'comparison'])
def test_no_path_in_a_plan_leads_outside_the_study(tmp_path, kind):
  directory = str(tmp_path / 'study')
  outside = str(tmp_path / 'outside')
  os.makedirs(outside)
  if kind == 'study':
    study.plan_study(embedded_lars.get_config(), 'embedded_lars', directory, 2)
  else:
    _comparison_plan(directory, num_seeds=2)
  with open(os.path.join(directory, plan_lib.PLAN_FILE)) as f:
    pristine = json.load(f)
  real = os.path.realpath(directory)
  for path in _paths_of(plan_lib.read_plan(directory)):
    assert os.path.realpath(path).startswith(real + os.sep) or os.path.realpath(path) == real
  entry = pristine['entries'][0]['directory']
  hostile = [outside, '..', '../outside', '.', '', 'seed_1', 'seed_1/seed_0',
             'seed_0/../../outside', 'claims', 'plan.json', 'workers', 'mlperf',
             os.path.join(directory, entry, 'seed_0', 'x'), os.path.join(entry, 'claims')]
  for value in hostile:
    for field in (('runs', 0, 'run_dir'), ('entries', 0, 'directory'), ('runs', 1, 'run_dir')):
      def edit(values, field=field, value=value):
        values[field[0]][field[1]][field[2]] = value
      _edit_plan(directory, edit)
      if os.path.normpath(os.path.join(directory, value)) == os.path.normpath(
          os.path.join(directory, pristine[field[0]][field[1]][field[2]])):
        plan_lib.read_plan(directory)  # The same path, written another way.
      else:
        with pytest.raises(plan_lib.StudyDirError, match=r'leads to|cannot name'):
          plan_lib.read_plan(directory)
      _edit_plan(directory, lambda values: values.update(pristine))
  # Links (and a file) where the study keeps its own folders.
  run = plan_lib.read_plan(directory).runs[0]
  for path in (run.run_dir, os.path.dirname(run.claim_dir), run.claim_dir,
               os.path.join(run.claim_dir, claims.CLAIM_DIR),
               *([] if kind == 'study' else [os.path.dirname(run.run_dir)])):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    for make in (lambda p: os.symlink(outside, p), lambda p: os.symlink(p, p),
                 lambda p: open(p, 'w').close()):
      if os.path.isdir(path) and not os.path.islink(path):
        os.rename(path, path + '.aside')
      make(path)
      with pytest.raises(plan_lib.StudyDirError, match='where the study keeps a folder'):
        plan_lib.read_plan(directory)
      os.remove(path)
      if os.path.exists(path + '.aside'):
        os.rename(path + '.aside', path)
  assert os.listdir(outside) == []


@pytest.mark.parametrize('name', ['embedded_nesterov/mlperf', 'embedded_lars/mlperf', 'workers',
                                  'log.txt'])
def test_the_report_and_the_logs_follow_no_link_out_of_the_study(tmp_path, name):
  # The report replaces DIR/<entry>/mlperf/<org> (rmtree): through a link it
  # would delete a folder outside; workers append to DIR/workers and log.txt.
  directory = str(tmp_path / 'study')
  _comparison_plan(directory, num_seeds=1)
  outside = tmp_path / 'outside'
  (outside / 'mine').mkdir(parents=True)
  os.symlink(outside, os.path.join(directory, name))
  with pytest.raises(plan_lib.StudyDirError, match=f'{name} is a symbolic link'):
    study.write_report(directory)
  assert os.listdir(outside) == ['mine']


def test_a_link_made_after_the_plan_was_read_stops_the_worker(tmp_path):
  directory = str(tmp_path / 'study')
  study.plan_study(embedded_lars.get_config(), 'embedded_lars', directory, 1)
  worker = worker_lib.Worker(directory)
  os.makedirs(tmp_path / 'outside')
  os.symlink(tmp_path / 'outside', os.path.join(directory, 'claims'))
  with pytest.raises(plan_lib.StudyDirError, match='claims is a symbolic link'):
    worker.run()
  assert os.listdir(tmp_path / 'outside') == []


def test_a_plan_config_must_have_the_keys_of_the_default(tmp_path):
  directory = str(tmp_path / 'study')
  study.plan_study(embedded_lars.get_config(), 'embedded_lars', directory, 1)
  _edit_plan(directory, lambda v: v['runs'][0]['config']['lr'].update(old_key=1))
  with pytest.raises(plan_lib.StudyDirError, match=r"runs\[0\]\.config sets config key "
                     r"'lr\.old_key', which configs/default\.py no longer defines"):
    plan_lib.read_plan(directory)
  _edit_plan(directory, lambda v: v['runs'][0]['config']['lr'].pop('old_key'))
  _edit_plan(directory, lambda v: v['runs'][0]['config'].pop('seed'))
  with pytest.raises(plan_lib.StudyDirError, match="lacks config key 'seed'"):
    plan_lib.read_plan(directory)


def test_a_rerun_with_fewer_seeds_keeps_the_seeds_planned_before(tmp_path, caplog):
  directory = str(tmp_path / 'study')
  _comparison_plan(directory, num_seeds=3)
  fewer = _comparison_plan(directory, num_seeds=1)
  assert fewer.num_seeds == 3 and len(fewer.runs) == 6
  assert plan_lib.read_plan(directory).num_seeds == 3
  assert 'already plans 3 seeds; --num_seeds=1 keeps them all' in caplog.text


def test_a_study_being_planned_by_another_command_is_not_a_stranger(tmp_path, monkeypatch):
  # Two commands started on one new study at once: the second saw the first's
  # files and refused the directory as "not empty and holds no study" (seen once
  # in test_workers' two-commands test).
  directory = str(tmp_path / 'study')
  spec = {'kind': 'study', 'configs': {'x': {'seed': 0}}}
  os.makedirs(directory)
  (tmp_path / 'study' / 'log.txt').write_text('')
  # The other command's spec, half-written under atomic_path's temporary name.
  (tmp_path / 'study' / 'study_spec.json.4242-0123abcd.tmp').write_text('{"ki')
  plan_lib.check_study_dir(directory, spec)
  # The other command's spec, plan and config.json land just after the listing.
  listdir = os.listdir

  def listed_then_planned(path):
    names = listdir(path)
    for name in (plan_lib.SPEC_FILE, plan_lib.PLAN_FILE, 'config.json'):
      files.write_json(os.path.join(path, name), spec)
    return names
  monkeypatch.setattr(plan_lib.os, 'listdir', listed_then_planned)
  plan_lib.check_study_dir(directory, spec)
  monkeypatch.setattr(plan_lib.os, 'listdir', listdir)
  # What no planning command leaves is still a stranger's.
  for name in ('plan.json', 'mine.txt.4242-0123abcd.tmp', 'notes.txt'):
    other = tmp_path / name.replace('.', '_')
    other.mkdir()
    (other / name).write_text('{}')
    with pytest.raises(plan_lib.StudyDirError, match='is not empty and holds no study'):
      plan_lib.check_study_dir(str(other), spec)


def test_a_search_rerun_with_fewer_trials_keeps_the_trials_planned_before(tmp_path, caplog):
  directory = str(tmp_path / 'search')
  config = embedded_search.get_config()
  space = list(embedded_search.get_search_space())
  three = study.plan_search(config, 'embedded_search', space, directory, 3, 1, num_devices=1)
  fewer = study.plan_search(config, 'embedded_search', space, directory, 2, 1, num_devices=1)
  assert [e.name for e in fewer.entries] == ['trial_0', 'trial_1', 'trial_2']
  assert fewer.search == three.search and len(fewer.runs) == 3
  assert len(plan_lib.read_plan(directory).entries) == 3
  assert 'already plans 3 trials; --num_trials=2 keeps them all' in caplog.text
  # The first trials of a smaller search are the earlier ones: nothing is re-drawn.
  assert ([plan_lib.config_values(e.config) for e in fewer.entries]
          == [plan_lib.config_values(e.config) for e in three.entries])


def _one_run_study_with_a_garbage_claim(directory: str) -> tuple[plan_lib.Plan, str]:
  """A one-run study whose run's claim record (returned) is not JSON."""
  plan = study.plan_study(embedded_lars.get_config(), 'embedded_lars', directory, 1)
  record = os.path.join(plan.runs[0].claim_dir, claims.CLAIM_DIR, '0.json')
  os.makedirs(os.path.dirname(record))
  with open(record, 'w') as f:
    f.write('garbage')
  return plan, record


def test_a_damaged_claim_record_reads_as_held_by_an_unknown_process(tmp_path):
  # It made the report fail with AttributeError ('NoneType' has no 'describe').
  plan, _ = _one_run_study_with_a_garbage_claim(str(tmp_path / 'study'))
  (state,) = study.run_states(plan, 'embedded_lars').unfinished
  assert state['state'] == states_lib.RunState.RUNNING
  assert state['detail'] == 'an unknown process (record claim/0.json cannot be read)'


def test_a_worker_takes_over_a_damaged_claim_dated_in_the_future(tmp_path):
  # Dated 2100, it made the inline command wait for ever ("waiting for 1 runs
  # that other workers hold"); docs/cluster.md's rule judges it gone.
  directory = str(tmp_path / 'study')
  plan, record = _one_run_study_with_a_garbage_claim(directory)
  os.utime(record, (4102444800.0, 4102444800.0))
  worker = worker_lib.Worker(directory, wait_for_others=True)
  run, claim = worker._next()  # pylint: disable=protected-access
  try:
    assert run == plan.runs[0] and claim.holder.generation == 1
    assert 'in the future' in claim.holder.took_over
  finally:
    claim.release()


def _finish(run: plan_lib.PlannedRun, final: float) -> None:
  os.makedirs(run.run_dir, exist_ok=True)
  files.write_json(os.path.join(run.run_dir, 'config.json'), run.config)
  result = test_report._run(run.seed, final)  # pylint: disable=protected-access
  result.update(init_seconds=1.0, target_accuracy=run.config['target_accuracy'])
  files.write_json(run.result_path, result)


def test_the_report_counts_finished_runs_and_says_where_the_others_stand(tmp_path):
  directory = str(tmp_path / 'study')
  plan = _comparison_plan(directory)
  lars = plan.runs_of('embedded_lars')
  nesterov = plan.runs_of('embedded_nesterov')
  _finish(lars[0], 0.7)
  _finish(nesterov[0], 0.72)
  _finish(nesterov[1], 0.74)
  os.makedirs(lars[1].run_dir)
  files.write_json(lars[1].failure_path, {'error': 'DataError: the shard is damaged'})
  held = claims.try_acquire(lars[2].claim_dir)  # This process: a live holder.
  try:
    assert states_lib.count_states(plan) == {'done': 3, 'running': 1, 'pending': 1,
                                             'failed': 1}
    studies = study.write_report(directory)
  finally:
    held.release()
  assert [s['num_runs'] for s in studies] == [1, 2]
  states = {(u['run'], u['state']) for s in studies for u in s['unfinished']}
  assert states == {('embedded_lars seed 1', 'failed'), ('embedded_lars seed 2', 'running'),
                    ('embedded_nesterov seed 2', 'pending')}
  text = (tmp_path / 'study' / 'report.md').read_text()
  assert '## Runs not finished' in text
  assert '3 planned runs have no result yet (1 running, 1 pending, 1 failed)' in text
  assert 'DataError: the shard is damaged' in text and f'pid {os.getpid()}' in text
  with open(os.path.join(directory, 'comparison.json')) as f:
    assert json.load(f)['pairwise'][0]['num_runs'] == [1, 2]
  # Moving failures aside lets workers try those runs again.
  assert plan_lib.clear_failures(plan) == ['embedded_lars seed 1']
  assert os.path.exists(lars[1].failure_path + '.1')
  assert states_lib.count_states(plan)['failed'] == 0


def test_a_finished_run_of_another_config_is_refused(tmp_path):
  plan = _comparison_plan(str(tmp_path / 'study'), num_seeds=1)
  run = plan.runs[0]
  _finish(run, 0.7)
  other = dict(run.config, label_smoothing=0.0)
  files.write_json(os.path.join(run.run_dir, 'config.json'), other)
  with pytest.raises(plan_lib.StudyDirError, match='holds a run of another config'):
    worker_lib.read_result(run)


# Launchers.

def _worker_whose_runs_fail(directory: str, monkeypatch) -> worker_lib.Worker:
  _comparison_plan(directory, num_seeds=1)

  def fail(config, workdir, *args, **kwargs):
    raise RuntimeError(f'no data for {os.path.basename(workdir)}')

  monkeypatch.setattr(loop, 'train_and_evaluate', fail)
  return worker_lib.Worker(directory)


def test_a_worker_skips_a_run_that_fails_and_goes_on(tmp_path, monkeypatch):
  worker = _worker_whose_runs_fail(str(tmp_path), monkeypatch)
  done = worker.run()
  assert len(done.failed) == 2 and not done.ran  # Both configs' seed 0.
  for run in worker.plan.runs:
    with open(run.failure_path) as f:
      failure = json.load(f)
    assert failure['error'] == 'RuntimeError: no data for seed_0'
    assert failure['process'] is None
    assert claims.status(run.claim_dir).state == claims.RELEASED


def test_a_worker_of_several_processes_stops_at_a_failed_run(tmp_path, monkeypatch):
  """The other processes may be inside a collective: no going on to the next run."""
  worker = _worker_whose_runs_fail(str(tmp_path), monkeypatch)
  monkeypatch.setattr(worker_lib.distributed, 'joined_group', lambda: True)
  monkeypatch.setattr(worker_lib.distributed, 'process_label', lambda: 'process 0 of 2')
  with pytest.raises(RuntimeError, match='no data for seed_0'):
    worker.run()
  first, second = worker.plan.runs
  with open(first.failure_path) as f:
    assert json.load(f)['process'] == 'process 0 of 2'
  assert claims.status(first.claim_dir).state == claims.RELEASED
  assert not os.path.exists(second.failure_path)  # Never started.


def test_the_first_failing_process_of_a_run_names_the_cause(tmp_path, monkeypatch):
  """Process 1 failed first; process 0's later error (its collective lost a
  peer) must not replace process 1's failure.json."""
  _comparison_plan(str(tmp_path), num_seeds=1)

  def fail_after_process_1(config, workdir, *args, **kwargs):
    os.makedirs(workdir, exist_ok=True)
    files.write_json(os.path.join(workdir, plan_lib.FAILURE_FILE),
                     {'error': 'DataError: the shard is damaged', 'process': 'process 1 of 2'})
    raise RuntimeError('Gloo all-reduce failed: Connection closed by peer')

  monkeypatch.setattr(loop, 'train_and_evaluate', fail_after_process_1)
  monkeypatch.setattr(worker_lib.distributed, 'joined_group', lambda: True)
  monkeypatch.setattr(worker_lib.distributed, 'process_label', lambda: 'process 0 of 2')
  worker = worker_lib.Worker(str(tmp_path))
  with pytest.raises(RuntimeError, match='Gloo'):
    worker.run()
  with open(worker.plan.runs[0].failure_path) as f:
    assert json.load(f)['error'] == 'DataError: the shard is damaged'


def test_gpus_are_split_evenly_between_local_workers():
  assert launchers.split_gpus([str(i) for i in range(8)], 4) == ['0,1', '2,3', '4,5', '6,7']
  assert launchers.split_gpus([], 3) == [None, None, None]
  with pytest.raises(launchers.LaunchError, match='does not divide the 8 GPUs'):
    launchers.split_gpus([str(i) for i in range(8)], 3)
  assert launchers.local_gpus({'CUDA_VISIBLE_DEVICES': '2,3'}) == ['2', '3']
  assert launchers.local_gpus({'CUDA_VISIBLE_DEVICES': ''}) == []


def test_sbatch_options_pass_through_unless_the_harness_sets_them():
  assert launchers.parse_sbatch_options(['qos=high', '--constraint=h100', 'mem-per-cpu=4G']) \
      == (('qos', 'high'), ('constraint', 'h100'), ('mem_per_cpu', '4G'))
  with pytest.raises(launchers.LaunchError, match='is not KEY=VALUE'):
    launchers.parse_sbatch_options(['exclusive'])
  with pytest.raises(launchers.LaunchError, match='the harness sets nodes'):
    launchers.parse_sbatch_options(['nodes=2'])


@pytest.mark.parametrize('option, says', [
    ('N=4', "N stands for sbatch's --nodes; the harness sets nodes (from its --slurm_* "
            'flags); use --slurm_nodes'),
    ('t=60', "t stands for sbatch's --time; the harness sets time"),
    ('partitio=gpu', "partitio stands for sbatch's --partition; the harness sets partition"),
    ('o=log.txt', 'the harness sets output itself; drop this option'),
    ('q=high', "q stands for sbatch's --qos; give the long name: --slurm_option=qos=high"),
    ('gpus-per-n=1', "the harness sets gpus_per_node (from its --slurm_* flags)"),
])
def test_short_and_abbreviated_sbatch_keys_are_refused_with_the_long_name(option, says):
  with pytest.raises(launchers.LaunchError) as e:
    launchers.parse_sbatch_options([option])
  assert says in str(e.value)


def test_an_ambiguous_or_unknown_sbatch_key_goes_to_sbatch_as_given():
  # mem-per abbreviates both --mem-per-cpu and --mem-per-gpu; sbatch refuses it
  # itself, and that refusal is one line too (the test below).
  assert launchers.parse_sbatch_options(['mem-per=4G', 'newer-option=1']) == (
      ('mem_per', '4G'), ('newer_option', '1'))


def _fake_sbatch(directory, said: str) -> str:
  """A directory holding an sbatch that refuses every job with `said`."""
  bin_dir = os.path.join(directory, 'bin')
  os.makedirs(bin_dir)
  path = os.path.join(bin_dir, 'sbatch')
  with open(path, 'w') as f:
    f.write(f'#!/bin/sh\necho "{said}" >&2\necho \'Try "sbatch --help" for more '
            'information\' >&2\nexit 1\n')
  os.chmod(path, 0o755)
  return bin_dir


def test_a_job_array_sbatch_refuses_is_one_error_that_keeps_the_study(monkeypatch, tmp_path,
                                                                      capsys):
  said = 'sbatch: error: Batch job submission failed: Unable to contact slurm controller'
  monkeypatch.setenv('PATH', f'{_fake_sbatch(tmp_path, said)}{os.pathsep}{os.environ["PATH"]}')
  workdir = tmp_path / 'study'
  (workdir / 'plan.json').parent.mkdir()
  (workdir / 'plan.json').write_text('{}')
  with pytest.raises(launchers.LaunchError) as e:
    launchers.submit_slurm(str(workdir), launchers.SlurmOptions(), 2, None)
  assert f'({said}); the plan in {workdir} is kept' in str(e.value)
  assert 'sbatch --help' not in str(e.value)
  assert capsys.readouterr().err == ''  # submitit's own print of sbatch's stderr is kept out.
  assert (workdir / 'plan.json').read_text() == '{}'
  assert not list((workdir / 'workers' / 'slurm').glob('*.pkl'))  # The array's pickles.


def _one_run_study(directory: str) -> plan_lib.Plan:
  return study.plan_study(embedded_lars.get_config(), 'embedded_lars', directory, 1)


@pytest.mark.parametrize('gpus, num_workers, started', [
    ('', 1000, ['']),  # A CPU machine (none visible): one worker for the one run.
    ('0,1,2,3', 4, ['0']),  # Its share of the GPUs, as validation assumed.
    ('0,1,2,3', None, ['0']),  # Default: one per GPU, still one per run left.
])
def test_no_more_local_workers_start_than_runs_are_left(monkeypatch, tmp_path, gpus,
                                                        num_workers, started):
  from train.cli import flags as cli_flags  # pylint: disable=g-import-not-at-top
  from train.cli import jobs  # pylint: disable=g-import-not-at-top
  from train.cli import runners  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / 'study')
  plan = _one_run_study(workdir)
  monkeypatch.setenv('CUDA_VISIBLE_DEVICES', gpus)
  # Each "worker" says which GPUs it was given, then ends.
  monkeypatch.setattr(launchers, 'worker_command', lambda *args: [
      sys.executable, '-c', 'import os; print(os.environ.get("CUDA_VISIBLE_DEVICES"))'])
  job = jobs.Job(cli_flags.JobKind.STUDY, 'embedded_lars', {}, workdir,
                 launch=launchers.LaunchOptions('local', num_workers))
  launched = runners._start_workers(job, plan)  # pylint: disable=protected-access
  said = launched.what
  while launched.alive():
    time.sleep(0.1)
  logs = sorted(glob.glob(os.path.join(workdir, 'workers', 'local_*.log')))
  assert [open(log).read().strip() for log in logs] == started
  assert said.startswith(f'{len(started)} local workers')
  assert ('one per run left to do' in said) == ((num_workers or len(gpus.split(','))) > 1)


def test_slurm_needs_sbatch(monkeypatch, tmp_path):
  monkeypatch.setenv('PATH', str(tmp_path))
  with pytest.raises(launchers.LaunchError, match='sbatch is not on this machine'):
    launchers.slurm_executor(str(tmp_path), launchers.SlurmOptions(), 2)


_SAVER = '''
import signal, sys, time
def stop(signum, frame):
  open(sys.argv[1], 'w').write('saved')
  sys.exit(128 + signum)
signal.signal(signal.SIGUSR2, stop)
print('ready', flush=True)
time.sleep(600)
'''


def test_a_slurm_worker_lets_its_worker_save_before_the_requeue(tmp_path):
  """submitit calls `checkpoint` from its SIGUSR2 handler: the worker process gets
  the signal, saves, and the object to requeue is a fresh worker of the same
  command, which pickles without the process."""
  saved = tmp_path / 'saved'
  command = [sys.executable, '-c', _SAVER, str(saved)]
  worker = launchers.SlurmWorker(command, save_seconds=300)
  worker._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # pylint: disable=protected-access
  assert worker._process.stdout.readline() == 'ready\n'  # pylint: disable=protected-access
  requeued = worker.checkpoint()
  assert saved.read_text() == 'saved'
  assert worker._process.returncode == 128 + signal.SIGUSR2  # pylint: disable=protected-access
  again = pickle.loads(pickle.dumps(requeued.function))
  assert again.command == command and again._process is None  # pylint: disable=protected-access


def test_the_wait_shows_counts_until_no_run_is_left():
  counts = iter([{'done': 0, 'running': 2, 'pending': 2, 'failed': 0},
                 {'done': 2, 'running': 2, 'pending': 0, 'failed': 0},
                 {'done': 4, 'running': 0, 'pending': 0, 'failed': 0}])
  stream = _Stream()
  last = launchers.wait_for_workers(lambda: next(counts), lambda: True,
                                    console.Progress(4, stream), poll_seconds=0)
  assert last['done'] == 4
  assert stream.text.splitlines() == [
      'runs 0/4 done, 2 running, 2 pending, 0 failed',
      'runs 2/4 done, 2 running, 0 pending, 0 failed',
      'runs 4/4 done, 0 running, 0 pending, 0 failed']


def test_the_wait_ends_when_the_workers_are_gone():
  stuck = {'done': 1, 'running': 0, 'pending': 3, 'failed': 0}
  last = launchers.wait_for_workers(lambda: stuck, lambda: False,
                                    console.Progress(4, _Stream()), poll_seconds=0)
  assert last == stuck


class _Stream:
  """A console that is not a terminal, keeping what was written."""

  def __init__(self):
    self.text = ''

  def write(self, text: str) -> None:
    self.text += text

  def flush(self) -> None:
    pass

  def isatty(self) -> bool:
    return False


def test_config_values_round_trip_through_json():
  config = config_dicts.with_overrides(embedded_lars.get_config(), {'seed': 3})
  rebuilt = config_dicts.from_values(json.loads(config.to_json()))
  assert rebuilt.to_json() == config.to_json()
  assert isinstance(rebuilt.input.mean_rgb, tuple) and rebuilt.is_locked
