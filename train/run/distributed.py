"""Runs that span several processes: JAX's own distributed runtime, no pmap.

Every process runs the same program over one global `Mesh`; `jax.jit` inserts
the collectives. Each process reads its own shard of the input
(`process_index` of `process_count`) and only process 0 writes metrics and logs
at INFO level. A checkpoint of a sharded state needs every process to write its
shards.

  # On each host (or each process of one host), before anything touches JAX:
  python main.py --coordinator_address=host0:1234 --num_processes=2 --process_id=0 ...
  python main.py --coordinator_address=host0:1234 --num_processes=2 --process_id=1 ...

Under Slurm (several tasks) and on Cloud TPU VMs JAX finds the processes by
itself, so the flags are not needed there. On CPUs the processes exchange data
through gloo over TCP (loopback when they share a host).
"""

import itertools
import os
from typing import Mapping

from absl import flags
from absl import logging

# The Slurm variables that JAX's own Slurm detection reads (jax._src.clusters).
_SLURM_VARIABLES = ('SLURM_JOB_ID', 'SLURM_STEP_NODELIST', 'SLURM_NTASKS',
                    'SLURM_PROCID', 'SLURM_LOCALID')
SLURM, CLOUD_TPU = 'slurm', 'cloud_tpu'


class DistributedError(ValueError):
  """Flags that cannot start a multi-process run."""


# The flags `define_flags` defines.
FLAG_NAMES = ('coordinator_address', 'num_processes', 'process_id')


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """The three flags of an explicit multi-process run (all or none)."""
  flags.DEFINE_string(
      'coordinator_address', None, 'host:port of process 0, which every process of a '
      'multi-process run connects to; not needed under Slurm or on Cloud TPU.',
      flag_values=flag_values)
  flags.DEFINE_integer('num_processes', None, 'Processes in the run (with '
                       '--coordinator_address).', lower_bound=1, flag_values=flag_values)
  flags.DEFINE_integer('process_id', None, 'This process, 0 to num_processes - 1 (with '
                       '--coordinator_address).', lower_bound=0, flag_values=flag_values)


def detect_cluster(environ: Mapping[str, str] = os.environ) -> str | None:
  """The cluster that JAX can set up by itself, or None.

  Slurm counts only with several tasks: a single-task job is a plain local run.
  A Cloud TPU VM is recognised as JAX recognises it (libtpu and the VM's
  metadata); a TPU VM of one host then initialises as a one-process run.
  """
  if all(v in environ for v in _SLURM_VARIABLES) and int(environ['SLURM_NTASKS']) > 1:
    return SLURM
  try:
    from jax._src import cloud_tpu_init  # pylint: disable=g-import-not-at-top
  except ImportError:  # A JAX without the module: no TPU detection.
    return None
  return CLOUD_TPU if cloud_tpu_init.running_in_cloud_tpu_vm else None


def check_flags(coordinator_address: str | None, num_processes: int | None,
                process_id: int | None) -> bool:
  """True for an explicit multi-process run; raises DistributedError for half a one."""
  given = [coordinator_address is not None, num_processes is not None,
           process_id is not None]
  if not any(given):
    return False
  if not all(given):
    raise DistributedError(
        '--coordinator_address, --num_processes and --process_id go together; '
        'give all three or none')
  if process_id >= num_processes:
    raise DistributedError(f'--process_id={process_id} is not below '
                           f'--num_processes={num_processes}')
  host, _, port = coordinator_address.rpartition(':')
  if not host or not port.isdigit():
    raise DistributedError(f'--coordinator_address={coordinator_address!r} is not '
                           'host:port')
  return True


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> bool:
  """Joins the processes of a multi-process run; returns whether it is one.

  Call it before any JAX computation (even `jax.devices()`): the backend is
  created once, with or without the other processes. Without the three
  arguments it initialises only where `detect_cluster` finds a cluster, so a
  plain run on one machine stays a one-process run.
  """
  explicit = check_flags(coordinator_address, num_processes, process_id)
  if not explicit and detect_cluster() is None:
    return False
  # Imported here: `main.py --help` defines this module's flags without JAX.
  import jax  # pylint: disable=g-import-not-at-top
  # CPU devices of several processes talk through gloo; GPUs and TPUs use their
  # own interconnect and ignore this setting.
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  if explicit:
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
  else:
    jax.distributed.initialize()
  if jax.process_index() != 0:
    # One console, not one per process: the others say only what goes wrong.
    logging.set_verbosity(logging.WARNING)
  logging.info('process %d of %d, %d of %d devices local', jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())
  return True


def initialize_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> bool:
  """`initialize` with the flags of `define_flags`."""
  return initialize(flag_values.coordinator_address, flag_values.num_processes,
                    flag_values.process_id)


# Barrier ids must differ between uses; every process counts its uses alike.
_barrier_uses = itertools.count()
# How long a process waits for the others at `wait_for_all_processes`.
BARRIER_TIMEOUT_SECONDS = 3600


def wait_for_all_processes(name: str) -> None:
  """Waits until every process of the run reaches this point; no-op in one process.

  JAX's CPU collectives (gloo) set up their context at the first collective
  between processes and give up when a process is 30 s late there, which a busy
  host or a slower import easily is. Processes first meet here instead, at the
  coordination service's barrier, which waits up to BARRIER_TIMEOUT_SECONDS.
  """
  client = _coordination_client()
  if client is None:
    return
  client.wait_at_barrier(f'{name}:{next(_barrier_uses)}',
                         timeout_in_ms=BARRIER_TIMEOUT_SECONDS * 1000)


def _coordination_client():
  """JAX's client of the coordination service, or None in a one-process run."""
  import jax  # pylint: disable=g-import-not-at-top
  if jax.process_count() == 1:
    return None
  from jax._src import distributed as jax_distributed  # pylint: disable=g-import-not-at-top
  return jax_distributed.global_state.client


def share_from_main(name: str, text: str) -> str:
  """Process 0's `text`, in every process: process 0 decides (which seed to run
  next, say) and the others follow. Returns `text` in a one-process run.

  Through the coordination service's key-value store, not a collective, so a
  process may wait for process 0 as long as BARRIER_TIMEOUT_SECONDS (process 0
  may be finishing a run's report, or waiting for a claim). Every process must
  call it with the same `name` in the same order; the others' `text` is ignored.
  """
  client = _coordination_client()
  if client is None:
    return text
  key = f'share:{name}:{next(_share_uses)}'
  if is_main_process():
    client.key_value_set(key, text)
    return text
  return client.blocking_key_value_get(key, BARRIER_TIMEOUT_SECONDS * 1000)


_share_uses = itertools.count()


def joined_group() -> bool:
  """Whether this process is one of a multi-process run (`initialize` joined it
  to the others); starts no JAX backend, so it may be asked at any point."""
  from jax._src import distributed as jax_distributed  # pylint: disable=g-import-not-at-top
  return jax_distributed.global_state.client is not None


def process_label() -> str:
  """'process I of N' of a multi-process run; '' in a one-process run."""
  if not joined_group():
    return ''
  import jax  # pylint: disable=g-import-not-at-top
  return f'process {jax.process_index()} of {jax.process_count()}'


def is_main_process() -> bool:
  """Process 0: the one that writes metrics, reports and the console."""
  import jax  # pylint: disable=g-import-not-at-top
  return jax.process_index() == 0
