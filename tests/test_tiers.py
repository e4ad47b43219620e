"""Guards of the two tiers (pyproject.toml's `slow` marker).

`pytest` (CI) must run every test file, and `pytest -m "not slow"` (everyday
work) must still run some tests of each, except the files listed below whose
every test needs one long run.
"""

import pathlib

import pytest

TESTS = pathlib.Path(__file__).resolve().parent

# Files without a fast test: each of their tests reads the results of one
# expensive fixture (several training runs), so any test of them costs it all.
ONLY_SLOW: dict[str, str] = {
    'test_bf16.py': 'trains in float32 and in bfloat16',
    'test_end_to_end.py': 'each test is a training run',
    'test_resume.py': 'trains, kills and resumes in several scenarios',
    'test_seed_order.py': 'four runs, two of them of two JAX processes',
    'test_sharding.py': 'trains on 1, 2, 4 and 8 devices',
    'test_slurm_cluster.py': 'each test submits jobs to Slurm',
    'test_slurm_nodes.py': 'each test runs processes on the nodes of a multi-node cluster',
    'test_slurm_studies.py': 'each test trains tiny runs through Slurm',
    'test_stop_signals.py': 'each test is a main.py process stopped by a signal',
    'test_workers.py': 'each test trains tiny runs in worker processes',
}


def _runs_the_whole_folder(config: pytest.Config) -> bool:
  """Whether this run collected all of tests/, with no file or name filtered out."""
  paths = {(config.invocation_params.dir / arg.split('::')[0]).resolve()
           for arg in config.args}
  return (paths <= {TESTS, TESTS.parent} and not config.option.keyword
          and not config.getoption('deselect') and not config.getoption('ignore')
          and not config.getoption('ignore_glob') and not config.getoption('lf', False))


def test_every_test_file_is_collected_and_has_fast_tests(request):
  config = request.config
  tier = config.option.markexpr
  if tier not in ('', 'not slow') or not _runs_the_whole_folder(config):
    pytest.skip('guards the whole suite and the fast tier only')
  # Under pytest-xdist each worker collects (and deselects) every test.
  collected = {item.path.name for item in request.session.items}
  missing = {path.name for path in TESTS.glob('test_*.py')} - collected
  if tier == 'not slow':
    missing -= set(ONLY_SLOW)
  assert not missing, f'no test collected from {sorted(missing)} with -m {tier!r}'


def test_only_slow_files_exist():
  assert all((TESTS / name).is_file() for name in ONLY_SLOW), sorted(ONLY_SLOW)
