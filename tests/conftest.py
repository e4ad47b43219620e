"""Test-wide settings, applied before any test module imports JAX, and the
session's shared fixtures."""

import contextlib
import fcntl
import io
import json
import os
import pathlib
import resource
import tempfile
from typing import NamedTuple

import pytest

# The tests check behaviour, not speed: XLA's CPU backend compiles several times
# faster without its optimisation passes, which keeps the suite inside its time
# budget (about a dozen ResNet programs are compiled per config test). Numbers
# stay the same to float32 round-off, well inside the tests' tolerances.
os.environ['XLA_FLAGS'] = ' '.join(
    filter(None, [os.environ.get('XLA_FLAGS'), '--xla_backend_optimization_level=0']))


@pytest.hookimpl(trylast=True)  # After the tmpdir plugin has made the basetemp.
def pytest_configure(config):
  """One persistent compilation cache for the whole run, the user's left alone.

  Many tests start processes that compile the same small programs (main.py
  runs, drivers, workers, each a fresh JAX): through $JAX_COMPILATION_CACHE_DIR,
  which JAX itself and train/cli/compilation_cache.py read, each such program
  compiles once per test run instead of once per process, and no test writes
  into ~/.cache. Loaded programs are the ones XLA built, so results do not
  change (test_resume.py, test_seed_order.py compare runs bit for bit). Set
  here, before any test module imports JAX; the xdist workers inherit it from
  the controller, so all of them share the run's folder, as tiny_build does.
  """
  if os.environ.get('PYTEST_XDIST_WORKER'):
    return
  cache = config._tmp_path_factory.getbasetemp() / 'jax_cache'  # pylint: disable=protected-access
  cache.mkdir(exist_ok=True)
  os.environ['JAX_COMPILATION_CACHE_DIR'] = str(cache)

def pytest_xdist_auto_num_workers(config) -> int:
  """`-n auto`: one xdist worker more than the cores this process may use.

  The suite's tests often leave a core idle: they wait for Slurm to notice a
  lost node, poll for a subprocess's checkpoint, or import and compile on one
  thread. On the 2-core machine, 3 workers kept 1.97 cores busy on average and
  ran the whole suite in 11 min 54 s beside other jobs, where 2 workers had
  taken 14 min 15 s on the quiet machine (2026-12-07, docs/performance.md); on
  the quiet machine, with more tests, 3 workers kept the load at 4-6 (all CPU
  busy) for 12 min 41 s (2026-12-08).
  """
  del config
  return len(os.sched_getaffinity(0)) + 1


_CPU_AT_SETUP = pytest.StashKey[float]()


def _cpu_seconds() -> float:
  """CPU time of this process and of its children that have ended and been waited for."""
  own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
      resource.RUSAGE_CHILDREN)
  return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
  item.stash[_CPU_AT_SETUP] = _cpu_seconds()
  yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
  """Records each test's CPU seconds (setup to teardown) as a junit property.

  The suite's wall time on 2 cores follows its CPU, not its tests' wall times
  (which include waiting, and other tests' work when the cores are shared):
  scripts/suite_times.py sums these per file. Work done outside the test's
  process tree (a Slurm job under slurmd) is not in it.
  """
  if call.when == 'teardown' and _CPU_AT_SETUP in item.stash:
    item.user_properties.append(
        ('cpu_seconds', round(_cpu_seconds() - item.stash[_CPU_AT_SETUP], 2)))
  yield


TINY = 'embedded_shapes/tiny'

# Each test file's seconds in the last measured whole-suite run
# (tests/durations.json, written by scripts/suite_times.py). The longest files
# start first, so that the xdist workers end together: pytest-xdist hands
# out whole files (--dist loadfile) in collection order (--no-loadscope-reorder
# in pyproject.toml; by default it would order them by their number of tests,
# which sends the long files of two or three tests last, where one of them then
# runs alone). A file not measured yet goes last.
with open(os.path.join(os.path.dirname(__file__), 'durations.json')) as _f:
  FILE_SECONDS: dict[str, float] = json.load(_f)['file_seconds']


def pytest_collection_modifyitems(items):
  """Orders the files longest first, as measured; a file's tests keep their order."""
  items.sort(key=lambda item: -FILE_SECONDS.get(item.path.name, 0.0))


def _shared_dir(tmp_path_factory, name: str) -> pathlib.Path:
  """A folder of this test run that every xdist worker sees.

  Under pytest-xdist each worker is its own process with its own basetemp
  (.../pytest-N/popen-gwK); their parent is the run's alone. Without xdist the
  basetemp itself is the run's (its parent is shared by every run of this user).
  """
  base = tmp_path_factory.getbasetemp()
  if os.environ.get('PYTEST_XDIST_WORKER'):
    base = base.parent
  folder = base / name
  folder.mkdir(exist_ok=True)
  return folder


class TinyBuild(NamedTuple):
  data_dir: str  # A tfds data_dir holding embedded_shapes/tiny.
  printed: str  # What datasets.ensure_prepared printed while building it.


@pytest.fixture(scope='session')
def tiny_build(tmp_path_factory) -> TinyBuild:
  """embedded_shapes/tiny, built once per test run (5 to 20 s on 2 cores, by load).

  The first xdist worker to take the lock in the run's shared folder builds; the
  others wait for it, then read. The tests only read the data: one that damages
  it copies it first.
  """
  root = _shared_dir(tmp_path_factory, 'tiny_data')
  data_dir, printed = root / 'tfds', root / 'printed.txt'
  with open(root / 'lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # Released when the file closes.
    # printed.txt is written last, so it exists only after a complete build;
    # after a failed one (cleaned up by ensure_prepared) the next worker retries.
    if not printed.exists():
      # Imported here: it imports TensorFlow, which most test modules do without.
      from input_pipeline import datasets  # pylint: disable=g-import-not-at-top
      stdout = io.StringIO()
      with contextlib.redirect_stdout(stdout):
        datasets.ensure_prepared(TINY, str(data_dir))
      printed.write_text(stdout.getvalue())
  return TinyBuild(str(data_dir), printed.read_text())


@pytest.fixture(scope='session')
def tiny_data_dir(tiny_build) -> str:
  """The tfds data_dir of tiny_build; read it, never write into it."""
  return tiny_build.data_dir


@contextlib.contextmanager
def _slurm_cluster_lock(how: int):
  # One cluster per machine, so one lock per machine, not per pytest run: a
  # second test run on the same machine (another checkout's) must not kill
  # nodes under this one's jobs either.
  with open(pathlib.Path(tempfile.gettempdir()) / 'harness-slurm-cluster.lock', 'a') as lock:
    fcntl.flock(lock, how)  # Released when the file closes.
    yield


@pytest.fixture(autouse=True)
def _slurm_cluster_shared(request):
  """Tests marked `slurm` share the cluster, unless one kills its nodes (`node_faults`).

  The xdist workers run test files side by side; a node killed under another
  test's job would requeue that job and fail a test that was not about it.
  """
  if request.node.get_closest_marker('slurm') is None or 'node_faults' in request.fixturenames:
    yield
    return
  with _slurm_cluster_lock(fcntl.LOCK_SH):
    yield


@pytest.fixture
def node_faults():
  """The Slurm cluster for this test alone: no other test's job runs while it kills nodes."""
  with _slurm_cluster_lock(fcntl.LOCK_EX):
    yield
