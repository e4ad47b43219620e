"""Trains a ResNet as a config file says, or measures its throughput.

  python main.py          # the embedded comparison: LARS against Nesterov, 5 seeds each
  python main.py --config=configs/embedded_lars.py --workdir=runs/x --config.seed=3
  python main.py --config=configs/embedded_lars.py --num_seeds=8       # a study
  python main.py --num_seeds=5 \\
      --compare=configs/embedded_lars.py,configs/embedded_nesterov.py   # a comparison
  python main.py --config=configs/embedded_search.py --num_trials=16   # a search
  python main.py --config=configs/embedded_nesterov_search.py --search  # a staged search
  python main.py --config=configs/embedded_lars.py --num_seeds=5 \\
      --robustness=activation=silu,last_bn_scale=8   # the config on workload variants
  python main.py bench --config=configs/embedded_lars.py --modes=synthetic,input,train

Bad input (an unknown key, a value out of range, a missing dataset) ends with one
line on stderr and exit status 2 (train/cli/exits.py). A Ctrl-C or SIGTERM at any moment
ends it with one line and 130 or 143, a run saving the step it reached
(train/common/stops.py).

The console shows warnings, one progress line and a line per finished run; every
log record goes to WORKDIR/log.txt (`--verbosity=0` shows them on the console too).
Compiled programs are kept in ~/.cache/large-batch-harness/jax for later commands
(`--compilation_cache_dir`; empty turns the cache off).
"""

import os

from train.common import stops

if __name__ == '__main__':
  # Before the imports, which take seconds: a Ctrl-C or SIGTERM from here on
  # ends the command in one line, and none is lost (train/common/stops.py).
  stops.install()

# TensorFlow serves tf.data only: keep its C++ chatter and its hands off GPUs.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position

from train.cli import flags  # pylint: disable=g-import-not-at-top,wrong-import-position


def main(argv: list[str]) -> None:
  # Imported once the flags are parsed: `--help` and flag errors need no JAX.
  from train.cli import exits  # pylint: disable=g-import-not-at-top
  from train.cli import jobs  # pylint: disable=g-import-not-at-top
  from train.cli import runners  # pylint: disable=g-import-not-at-top
  with exits.leaving_the_group_on_failure():
    job = jobs.job_from_flags(argv)
    # From here a stop signal unwinds: the job may have a step to save.
    with stops.deferred(), stops.reported(), exits.reported_errors(job):
      job = jobs.start(job)
      runners.RUNNERS[job.kind](job)


if __name__ == '__main__':
  app.run(main, flags_parser=flags.parse_flags)
