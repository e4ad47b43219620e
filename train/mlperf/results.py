"""MLPerf submissions of a study: the results folder, the system description and
the RCP verdict (reference convergence points) of its runs.

The folder follows the submission layout of the MLPerf training rules, so the
official package checker and the RCP checker read it as they would a real
submission (see docs/mlperf.md).
"""

import dataclasses
import json
import logging
import os
import platform
import re
import shutil
import uuid
from typing import Any, Sequence

import jax
import ml_collections
from mlperf_logging.mllog import constants

from train.run import mllog

RESULTS_FOLDER = 'mlperf'
# config.mlperf.submission_status -> the system description's "status" (4.0.0+).
_AVAILABILITY = {
    'onprem': 'Available on-premise',
    'cloud': 'Available cloud',
    'research': 'Research, Development, or Internal (RDI)',
    'preview': 'Preview',
}


def _folder_name(name: str) -> str:
  return re.sub(r'[^A-Za-z0-9_.-]+', '_', name).strip('_') or 'unknown'


def system_name(config: ml_collections.ConfigDict) -> str:
  """The system's folder and file name: mlperf.submission_platform, made path-safe."""
  return _folder_name(config.mlperf.submission_platform)


def results_folder(study_dir: str, config: ml_collections.ConfigDict) -> str:
  """The submission ("organization") folder of a study: DIR/mlperf/<org>."""
  return os.path.join(study_dir, RESULTS_FOLDER, _folder_name(config.mlperf.submission_org))


def benchmark_folder(study_dir: str, config: ml_collections.ConfigDict) -> str:
  """DIR/mlperf/<org>/results/<system>/resnet, where the result_<i>.txt files go."""
  return os.path.join(results_folder(study_dir, config), 'results', system_name(config),
                      constants.RESNET)


def _cpu_model() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or 'unknown'


def _memory_gb() -> str:
  try:
    return f'{os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30:.0f} GB'
  except (ValueError, OSError, AttributeError):
    return 'unknown'


def system_description(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """systems/<system>.json: every field the 4.0.0 system description checker requires.

  Values are strings, as in MLPerf's published system descriptions (the
  checker joins some of them into a CSV row).

  Read from the machine that writes it (the runs of a resumed study may have
  run elsewhere); what cannot be read is 'unknown', to be filled in by hand
  before a real submission.
  """
  device = jax.devices()[0]
  on_cpu = device.platform == 'cpu'
  unknown = 'unknown'
  return {
      'submitter': config.mlperf.submission_org,
      'division': config.mlperf.submission_division,
      'status': _AVAILABILITY[config.mlperf.submission_status],
      'system_name': config.mlperf.submission_platform,
      'number_of_nodes': str(jax.process_count()),
      'host_processors_per_node': '1',
      'host_processor_model_name': _cpu_model(),
      'host_processor_core_count': str(os.cpu_count() or 0),
      'host_processor_vcpu_count': str(os.cpu_count() or 0),
      'host_processor_frequency': unknown,
      'host_processor_caches': unknown,
      'host_processor_interconnect': unknown,
      'host_memory_capacity': _memory_gb(),
      'host_storage_type': unknown,
      'host_storage_capacity': unknown,
      'host_networking': unknown,
      'host_networking_topology': unknown,
      'host_memory_configuration': unknown,
      'accelerators_per_node': '0' if on_cpu else str(jax.local_device_count()),
      'accelerator_model_name': 'none' if on_cpu else device.device_kind,
      'accelerator_host_interconnect': unknown,
      'accelerator_frequency': unknown,
      'accelerator_on-chip_memories': unknown,
      'accelerator_memory_configuration': unknown,
      'accelerator_memory_capacity': unknown,
      'accelerator_interconnect': unknown,
      'accelerator_interconnect_topology': unknown,
      'cooling': unknown,
      'hw_notes': '',
      'framework': f'JAX {jax.__version__}',
      'other_software_stack': f'Python {platform.python_version()}',
      'operating_system': platform.platform(),
      'sw_notes': 'Written by the large-batch ResNet harness (train/run/mllog.py).',
  }


def write_results_folder(study_dir: str, config: ml_collections.ConfigDict,
                         run_logs: Sequence[str]) -> str:
  """Writes a study's MLPerf submission tree; returns its organization folder.

  The layout of mlperf_logging's package checker and result summarizer:
    DIR/mlperf/<org>/systems/<system>.json
    DIR/mlperf/<org>/results/<system>/resnet/result_<i>.txt  (run i's mlperf.log)
  An earlier tree of the study is replaced, so it always holds `run_logs`; a
  log that does not exist is left out (result_<i> stays run i's), so that the
  end of a study never fails over it.
  """
  org = results_folder(study_dir, config)
  # Built aside and moved into place: the folder is never seen half-written. The
  # staging folder is this writer's own: two workers may finish a study at once.
  staging = f'{org}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp'
  try:
    _write_tree(staging, os.path.relpath(benchmark_folder(study_dir, config), org), config,
                run_logs)
  except BaseException as e:
    # A full or read-only disk: nothing half-written stays (the error says what to do).
    shutil.rmtree(staging, ignore_errors=True)
    if isinstance(e, OSError) and e.filename is None:
      # A failed write(2) names no file (a full disk): name the folder it was for.
      raise OSError(e.errno, e.strerror, org) from None
    raise
  _move_into_place(staging, org)
  return org


def write_submission(study_dir: str, config: ml_collections.ConfigDict,
                     run_logs: Sequence[str], scored: Sequence[dict]) -> dict[str, Any]:
  """Writes a study's MLPerf results folder; returns study.json's 'mlperf'.

  Args:
    study_dir: the study's directory; the folder goes in DIR/mlperf/<org>.
    config: the study's config (its batch size, its submission's names).
    run_logs: the mlperf.log of each run that makes the score, in order.
    scored: those runs' result.json dicts.

  Returns:
    The division, ruleset, number of scored runs, the results folder relative
    to `study_dir`, and the RCP verdict: the 4.0.0 ResNet RCP of the config's
    batch size against the scored runs' epochs to target. MLPerf's RCPs were
    measured with the closed LARS and SGD recipes on ImageNet, so on other data
    the verdict says only how the epoch counts compare.
  """
  org_folder = write_results_folder(study_dir, config, run_logs)
  verdict = rcp_verdict(config.global_batch_size,
                        [run.get('epochs_to_target') for run in scored])
  return {
      'division': config.mlperf.submission_division,
      'ruleset': mllog.RULESET,
      'num_scored_runs': len(scored),
      'results_folder': os.path.relpath(org_folder, study_dir),
      'rcp': dataclasses.asdict(verdict),
  }


def _write_tree(staging: str, benchmark: str, config: ml_collections.ConfigDict,
                run_logs: Sequence[str]) -> None:
  """The submission tree in `staging`, its logs in `staging`/`benchmark`."""
  results = os.path.join(staging, benchmark)
  os.makedirs(results)
  for i, log in enumerate(run_logs):
    if os.path.exists(log):
      shutil.copyfile(log, os.path.join(results, f'result_{i}.txt'))
    else:
      logging.warning('%s does not exist: result_%d.txt left out of %s', log, i, results)
  systems = os.path.join(staging, 'systems')
  os.makedirs(systems)
  with open(os.path.join(systems, f'{system_name(config)}.json'), 'w') as f:
    json.dump(system_description(config), f, indent=2)
    f.write('\n')


def _move_into_place(staging: str, org: str, attempts: int = 3) -> None:
  """Replaces `org` with `staging`; when another writer's tree keeps landing
  there first (the same runs' logs), that tree stays and `staging` goes."""
  for _ in range(attempts):
    shutil.rmtree(org, ignore_errors=True)
    try:
      os.replace(staging, org)
      return
    except OSError:  # Not empty: another writer moved its tree in between.
      continue
  shutil.rmtree(staging, ignore_errors=True)


# Reference convergence points (RCPs).

@dataclasses.dataclass(frozen=True)
class RcpVerdict:
  """Whether runs' epochs to target pass the 4.0.0 ResNet RCP of their batch size.

  Attributes:
    batch_size: the global batch size.
    source: how the RCP was found, in the RCP checker's words ('RCP found',
      'RCP Interpolation', 'RCP not found but slower convergence on smaller
      batch size', 'Missing RCP', 'Insufficient convergence').
    rcp_mean_epochs: the reference's olympic mean of epochs to converge (None
      where there is no RCP).
    min_epochs: the fewest mean epochs that pass (the RCP mean divided by its
      allowed speed-up, from a one-sided t-test at alpha 0.05).
    mean_epochs: the runs' olympic mean (None without enough converged runs).
    passed: what the RCP checker decides.
    score_normalization: RCP mean / mean epochs when the runs converge faster
      than the RCP mean yet pass: the factor MLPerf multiplies the score by.
  """
  batch_size: int
  source: str
  rcp_mean_epochs: float | None
  min_epochs: float | None
  mean_epochs: float | None
  passed: bool
  score_normalization: float


def _rcp_checker_module():
  """mlperf_logging's RCP checker, imported on first use: it imports scipy.stats,
  over a second of start-up that every `main.py` would pay through validation."""
  from mlperf_logging.rcp_checker import rcp_checker  # pylint: disable=g-import-not-at-top
  return rcp_checker


def _rcp_checker():
  return _rcp_checker_module().RCP_Checker('training', mllog.RULESET, constants.RESNET,
                                           verbose=False)


def rcp_record(batch_size: int, checker=None) -> tuple[dict | None, str]:
  """The pruned 4.0.0 ResNet RCP for `batch_size` and how it was found.

  Mirrors `rcp_checker.check_directory` with rcp_pass='pruned_rcps' (what the
  package checker and the summarizer run): an RCP of that batch size, else a
  linear interpolation of the mean (and stdev) between the nearest pruned RCPs
  below and above, else, below the smallest RCP, the smallest one. `checker`:
  an RCP_Checker to reuse (it reads the RCP files when made).
  """
  checker = checker or _rcp_checker()
  record = checker._find_rcp(batch_size, 'pruned_rcps')  # pylint: disable=protected-access
  if record is not None:
    return record, 'RCP found'
  low = checker._find_top_min_rcp(batch_size, 'pruned_rcps')  # pylint: disable=protected-access
  high = checker._find_bottom_max_rcp(batch_size, 'pruned_rcps')  # pylint: disable=protected-access
  if low is not None and high is not None:
    return checker._create_interp_rcp(batch_size, low, high)[1], 'RCP Interpolation'  # pylint: disable=protected-access
  if high is not None:
    return (checker._find_min_rcp('pruned_rcps'),  # pylint: disable=protected-access
            'RCP not found but slower convergence on smaller batch size')
  return None, f'Missing RCP, please submit RCP with BS = {batch_size}'


def rcp_verdict(batch_size: int, epochs_to_target: Sequence[float | None]) -> RcpVerdict:
  """Would runs at `batch_size` with these epochs to target pass the 4.0.0 RCPs?

  Args:
    batch_size: the global batch size.
    epochs_to_target: per run, the epoch_num of the eval that reached the
      target, None for a run that did not; MLPerf submits 5 runs.
  """
  checker = _rcp_checker()
  record, source = rcp_record(batch_size, checker)
  rcp_mean = None if record is None else float(record['RCP Mean'])
  min_epochs = None if record is None else float(record['Min Epochs'])
  failed = sum(e is None for e in epochs_to_target)
  if failed > 1:  # The checker's "Insufficient convergence".
    return RcpVerdict(batch_size, 'Insufficient convergence', rcp_mean, min_epochs, None,
                      False, 1.0)
  epochs = sorted(1e9 if e is None else round(float(e), 3) for e in epochs_to_target)
  mean = float(sum(epochs[1:-1]) / len(epochs[1:-1])) if len(epochs) > 2 else None
  if record is None or mean is None:
    return RcpVerdict(batch_size, source, rcp_mean, min_epochs, mean, False, 1.0)
  passed, norm = checker._eval_submission_record(record, epochs, '')  # pylint: disable=protected-access
  if source.startswith('RCP not found') and not passed:
    source = f'Missing RCP, please submit RCP with BS = {batch_size}'
  return RcpVerdict(batch_size, source, rcp_mean, min_epochs, mean, bool(passed),
                    float(norm))


def check_rcp_folder(benchmark_dir: str) -> tuple[bool, str]:
  """The package's own RCP check of a results folder's result_*.txt (pruned RCPs)."""
  passed, message, _ = _rcp_checker_module().check_directory(
      benchmark_dir, 'training', mllog.RULESET, False, False, rcp_pass='pruned_rcps')
  return bool(passed), message
