"""`--compare` applies what the command line said to every compared config.

Each case parses a real command line with main.py's own flag parsing (train/cli), in a
fresh process (absl's flags are defined once per process), and reads back the
configs the comparison would run.
"""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_COMPARE = '--compare=configs/embedded_lars.py,configs/embedded_nesterov.py'
_READ_BACK = '''
import json, sys
from train.cli import flags, jobs
from train.common import config_dicts
argv = flags.parse_flags(['main.py', *sys.argv[1:]])
job = jobs.job_from_flags(argv)
print(json.dumps({'kind': job.kind, 'overrides': job.overrides,
                  'configs': {n: config_dicts.flatten(c) for n, c in job.configs.items()}},
                 default=list))
'''


def _compared(*flags: str) -> dict:
  proc = subprocess.run([sys.executable, '-c', _READ_BACK, _COMPARE, *flags], cwd=REPO,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # A main.py each (about 7 s); the next test is the fast tier's.
@pytest.mark.parametrize('flag,key,value', [
    # Equal to the value in configs/embedded_lars.py, the --config flag's default
    # file: a diff against that file would drop it, and Nesterov would keep 0.5.
    ('--config.lr.peak=10.0', 'lr.peak', 10.0),
    # Equal to one compared file's value (embedded_nesterov's L2), not the other's.
    ('--config.optimizer.l2=5e-4', 'optimizer.l2', 5e-4),
    # A dotted key in a nested section.
    ('--config.model.virtual_batch_size=32', 'model.virtual_batch_size', 32),
])
def test_override_reaches_every_compared_config(flag, key, value):
  got = _compared(flag)
  assert got['kind'] == 'comparison' and got['overrides'] == {key: value}
  assert set(got['configs']) == {'embedded_lars', 'embedded_nesterov'}
  for name, config in got['configs'].items():
    assert config[key] == value, name
  # The files' own differences stay.
  assert got['configs']['embedded_nesterov']['optimizer.name'] == 'nesterov'


def test_several_overrides_are_all_kept():
  got = _compared('--config.lr.peak=10.0', '--config.global_batch_size=128',
                  '--config.model.width=4')
  assert got['overrides'] == {'lr.peak': 10.0, 'global_batch_size': 128, 'model.width': 4}
  for config in got['configs'].values():
    assert (config['lr.peak'], config['global_batch_size'], config['model.width']) == (
        10.0, 128, 4)


def test_comparison_report_states_the_overrides(tmp_path):
  from train.experiments import statistics  # pylint: disable=g-import-not-at-top
  from train.experiments.reports import comparison  # pylint: disable=g-import-not-at-top
  runs = [{'seed': 0, 'status': 'success', 'final_eval_accuracy': 0.7, 'reached_target': False,
           'target_accuracy': 0.75, 'evals': [], 'run_seconds': 1.0}]
  studies = [(name, statistics.summarize(runs), runs) for name in ('a', 'b')]
  text = open(comparison.write_comparison_report(
      str(tmp_path / 'with'), studies, 1.0,
      overrides={'lr.peak': 10.0, 'model.width': 4})).read()
  section = text.partition('## Command-line overrides')[2]
  assert '`--config.lr.peak=10`' in section and '`--config.model.width=4`' in section
  text = open(comparison.write_comparison_report(str(tmp_path / 'without'), studies, 1.0)).read()
  assert 'No `--config.KEY=VALUE` overrides' in text
