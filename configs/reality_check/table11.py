"""Nado et al., Appendix D.4, Table 11: lambda off biases and BN, t_decay searched.

Nesterov momentum, 2,658 steps, virtual batch 128. The rate decays linearly for
t_decay steps from eta_0 to eta_0 * eta_decay_factor, then stays there
(init2winit's `polynomial_schedule`, power 1: 'linear' with `lr.decay_steps` =
t_decay). lambda, "weight decay, which is now not applied to the bias and batch
normalization variables", is added to the kernels' gradient (`optimizer.l2`; see
configs/nesterov_search_table9.py for why not decoupled).

Table 11 (50 trials), as printed:
  eta_0              [1e-1, 20]             log
  eta_decay_factor   {1e-5, 1e-4, 1e-3}     discrete
  t_decay            [2392, 2.658]          linear   read as [2392, 2658]
  1 - mu             [1e-3, 1]              log
  lambda             [1e-5, 2e-1]           log
  tau                [1e-2, 0.2]            linear

t_decay's printed upper end, 2.658, is below its lower end; it is the budget,
2,658, with its thousands comma printed as a decimal point (2392 is 0.9 of it).

get_config() starts from Configuration B's eta_0, mu, lambda and tau, decay
factor 1e-3 and t_decay = 2,658 (the whole budget).

Command (needs ImageNet prepared in data_dir and accelerators for batch 32,768):
  python main.py --config=configs/reality_check/table11.py --search --workdir=runs/table11

Budget in steps: T = 2,658, no warmup, linear decay over t_decay steps.

Expected (paper): none reported.
"""

import ml_collections

from configs import search_space
from configs.reality_check import nesterov_journey

NUM_TRIALS = 50


def get_config() -> ml_collections.ConfigDict:
  steps = nesterov_journey.STEPS_68_EPOCHS
  return nesterov_journey.linear_decay_config(
      steps, decay_every_variable=False, decay_factor=1e-3, t_decay=float(steps))


def get_search() -> search_space.Search:
  return nesterov_journey.one_stage([
      search_space.Range('lr.peak', 1e-1, 20.0, scale='log'),
      search_space.Choice('lr.decay_factor', (1e-5, 1e-4, 1e-3)),
      search_space.Range('lr.decay_steps', 2392.0, 2658.0, scale='linear'),
      search_space.Range('optimizer.momentum', 1e-3, 1.0, scale='log', one_minus=True),
      search_space.Range('optimizer.l2', 1e-5, 2e-1, scale='log'),
      search_space.Range('label_smoothing', 1e-2, 0.2, scale='linear'),
  ], NUM_TRIALS)
