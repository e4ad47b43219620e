"""The embedded rehearsal of a robustness comparison: LARS on AlgoPerf's three variants.

AlgoPerf asks whether a training algorithm survives a small change to its
workload: its ImageNet ResNet-50 comes with SiLU, GELU and the last BN of each
residual block initialised to scale 8 (configs/algoperf_variants.py). This is
that question at laptop scale: `embedded_lars.py`, as calibrated on the base
embedded workload, run unchanged on the same three variants of its ResNet-10
(`--robustness`, train/experiments/workloads.py), 5 seeds each, the seeds of
the embedded comparison, so that the base's 5 runs are embedded_lars.py's own
there (docs/embedded.md) and each variant pairs with the base seed by seed.

Command:
  python main.py --config=configs/embedded_robustness.py \
      --robustness=activation=silu,activation=gelu,last_bn_scale=8 --num_seeds=5 \
      --workdir=runs/embedded_robustness

Budget in steps: embedded_lars.py's, 400 steps at batch 128 (5.1 epochs), 50
warmup, evals every 50, on every workload. 4 workloads of 5 seeds are 20 runs;
at the 18-20 s of a quiet 400-step run on 2 cores, plus a compile per workload,
the whole comparison is sized for at most 10 minutes there; measured on
2026-12-08 on the quiet 2-core machine: 8 min 47 s (docs/robustness.md).

Targets, the base's beside each variant's: every run is judged at embedded_lars.py's
70% (the same bar on every variant; MLPerf has no variants). AlgoPerf's published
ImageNet targets of the same changes, for comparison, lie 1.99 (SiLU), 0.67 (GELU)
and 0.91 (BN scale 8) points under its base's 77.431%; report.md lists them.

Expected: docs/robustness.md's rehearsal (measured by the lead on 2 CPU cores):
each variant's median final accuracy and steps to 70% beside the base's, and
whether the drop is real.
"""

import ml_collections

from configs import embedded_lars


def get_config() -> ml_collections.ConfigDict:
  return embedded_lars.get_config()
