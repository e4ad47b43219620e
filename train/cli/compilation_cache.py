"""JAX's persistent compilation cache: compiled programs kept across processes.

A study compiles each config's programs once per process (`programs.StepCache`);
this cache keeps them across processes too, so that the next command (a
resumed study, another study of the same config) loads them instead of
compiling: on the embedded configs, on 2 busy CPU cores, a first seed's
compile took 58 s (LARS) and 40 s (Nesterov) cold, 5.8 s and 2.5 s warm. The
programs are the ones XLA would build, so results do not change (the same
per-seed accuracies either way).

The directory, in order: --compilation_cache_dir (empty turns the cache off),
$JAX_COMPILATION_CACHE_DIR, $XDG_CACHE_HOME/large-batch-harness/jax, or
~/.cache/large-batch-harness/jax. `main.py bench` measures compilation and
uses no cache.
"""

import os
from typing import Mapping

import jax
from absl import logging


def default_dir(environ: Mapping[str, str] = os.environ) -> str:
  """$JAX_COMPILATION_CACHE_DIR, else the user's cache directory."""
  if environ.get('JAX_COMPILATION_CACHE_DIR'):
    return environ['JAX_COMPILATION_CACHE_DIR']
  base = environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'large-batch-harness', 'jax')


def configure(directory: str | None) -> str | None:
  """Turns the cache on in `directory` (None: `default_dir()`) or off (''); returns
  the directory in use, or None. Call before the first compilation."""
  directory = default_dir() if directory is None else directory
  if directory:
    directory = os.path.abspath(os.path.expanduser(directory))
    try:
      os.makedirs(directory, exist_ok=True)
    except OSError as e:
      logging.warning('no compilation cache: %s cannot be created (%s); '
                      'set --compilation_cache_dir', directory, e.strerror)
      directory = ''
  if not directory:
    jax.config.update('jax_enable_compilation_cache', False)
    jax.config.update('jax_compilation_cache_dir', None)
    logging.info('the persistent compilation cache is off')
    return None
  jax.config.update('jax_enable_compilation_cache', True)
  jax.config.update('jax_compilation_cache_dir', directory)
  # JAX caches only programs that took a second or more to compile: the CPU
  # runs' small programs (the warm-up's, the eval's) are worth keeping too.
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  logging.info('persistent compilation cache: %s', directory)
  return directory
