"""Muon (optax.contrib.muon) on the conv kernels, on the embedded data.

Muon orthogonalises the momentum of each conv kernel, reshaped to the matrix
(kh * kw * c_in, c_out), by Newton-Schulz iterations; optax's muon runs AdamW
(in Nesterov's form) beside it on the head's kernel, and biases and BN
parameters take AdamW as well (`optimizer.bn_bias_name`), as Muon's authors keep the non-matrix
parameters on AdamW (optim/muon.py). `momentum` is Muon's beta (0.95, optax's
and the authors' default, Nesterov form); b1, b2 and eps are AdamW's. The
orthogonalised updates are scaled to an RMS of 0.2 (`muon_consistent_rms`), so
the two share one rate and one decoupled weight decay (on kernels only).
Everything else is `embedded_nesterov.py`'s, the decay ending at 0.

Command:
  python main.py --config=configs/embedded_muon.py --num_seeds=5
  python main.py --config=configs/embedded_muon.py --num_trials=8 --num_seeds=2

Budget in steps: the same as embedded_lars.py (400 steps at batch 128).

Expected: see docs/configs.md's "Today's optimizers" (measured on 2 CPU cores).
"""

import ml_collections

from configs import embedded_nesterov
from configs import search_space


def get_config() -> ml_collections.ConfigDict:
  config = embedded_nesterov.get_config()
  config.optimizer.name = 'muon'
  config.optimizer.bn_bias_name = 'adamw'
  config.optimizer.momentum = 0.95
  config.optimizer.l2 = 0.0
  config.optimizer.weight_decay = 0.1
  config.lr.peak = 0.1
  config.lr.final = 0.0
  return config


def get_search_space() -> list[search_space.Axis]:
  return [
      search_space.Range('lr.peak', 1e-3, 1.0, scale='log'),
      search_space.Range('optimizer.momentum', 1e-2, 0.5, scale='log', one_minus=True),
      search_space.Range('optimizer.weight_decay', 1e-3, 1.0, scale='log'),
  ]
