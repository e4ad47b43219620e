"""What the Nesterov tuning journey's tables share (Reality Check, Appendix D.4).

Not a config file: `configs/nesterov_search_table9.py` and the `table*.py` files
here build on it. Each table sets a budget, a virtual batch size, a schedule
shape and what its lambda means; the functions below give each of those once.

lambda. The tables call it weight decay (on every variable in Tables 9-10, on
the weights only in Tables 11-19) and then L2 (Tables 20-23). In the code behind
them, init2winit, Nesterov's "weight decay" is flax.optim.Momentum's
(`grad += weight_decay * param`, before the momentum; init2winit's later optax
`sgd` keeps that order "the same as how the Flax optimizers handle weight
decay"), and its L2 is 0.5 * l2_decay_factor * ||w||^2 in the loss over
kernels (rank >= 2): both add lambda * w to the gradient. Every meaning is
therefore `optimizer.l2`; what changes from table to table is only whether
biases and BN parameters get it (`optimizer.l2_on_bn_bias`).

Schedules. Tables 9-11 decay linearly from eta_0 to eta_0 * decay_factor over
t_decay steps, then hold (init2winit's `polynomial_schedule` with power 1:
'linear' with `lr.decay_steps` = t_decay). Tables 12-19 warm up linearly for 500
steps, then decay quadratically; their t_decay is init2winit's
`mlperf_polynomial_schedule` `decay_end`, which freezes the curve where it is at
t_decay ('piecewise_polynomial_factor' with `lr.hold_from_step`). Tables 20-23
tune that schedule's own hyperparameters with no t_decay ('piecewise_polynomial').

Trials. Every table's search is one quasi-random stage that counts its trials
as the paper's Appendix D.3 says its budgets do: trials that did not diverge.
"""

from typing import Sequence

import ml_collections

from configs import default
from configs import search_space

# MLPerf v0.6's "72 epochs" (its submission's budget), "68 epochs" and v0.7's
# "64 epochs" at batch 32,768, in steps as the tables print them.
STEPS_72_EPOCHS = 2_815
STEPS_68_EPOCHS = 2_658
STEPS_64_EPOCHS = 2_512

# The warmup of Tables 12-19 (Table 12 also ran 250 and 977).
WARMUP_STEPS = 500.0

# What Tables 16-18 fix, "the best hyperparameters from Table 15" (the peak is
# the one Tables 17 and 18 fix, after Table 16's sweep). The configs of Tables
# 12-19 start from them.
BEST_OF_TABLE_15 = {'peak': 4.118, 'decay_factor': 8.144e-5, 't_decay': 2250.0,
                    'one_minus_mu': 0.02397, 'lambda': 0.009992, 'tau': 0.07786}

# Configuration B (Table 5), where the configs of Tables 9-11 start: the point
# the journey ended at, inside every range of those tables.
CONFIGURATION_B = {'peak': 7.05, 'one_minus_mu': 0.02397, 'lambda': 5.8e-5, 'tau': 0.15}


def nesterov(num_train_steps: int, virtual_batch_size: int) -> ml_collections.ConfigDict:
  """Nesterov momentum on every parameter, for `num_train_steps` at batch 32,768.

  Each trial runs its whole budget (no stop at the target), so that every trial
  is ranked by its final accuracy.
  """
  config = default.get_config()
  config.num_train_steps = num_train_steps
  config.model.virtual_batch_size = virtual_batch_size
  config.optimizer.name = 'nesterov'
  config.optimizer.bn_bias_name = 'same'
  config.stop_at_target = False
  # The MLPerf closed division allows LARS and plain SGD momentum only.
  config.mlperf.submission_division = 'open'
  return config


def linear_decay_config(num_train_steps: int, *, decay_every_variable: bool,
                        decay_factor: float, t_decay: float | None = None
                        ) -> ml_collections.ConfigDict:
  """Tables 9-11: virtual batch 128, linear decay, at Configuration B's values."""
  config = nesterov(num_train_steps, virtual_batch_size=128)
  start = CONFIGURATION_B
  config.optimizer.momentum = 1 - start['one_minus_mu']
  config.label_smoothing = start['tau']
  regularize = decay_on_every_variable if decay_every_variable else decay_on_weights
  regularize(config, start['lambda'])
  linear_decay(config, peak=start['peak'], decay_factor=decay_factor, t_decay=t_decay)
  return config


def quadratic_hold_config(num_train_steps: int, virtual_batch_size: int,
                          warmup_steps: float = WARMUP_STEPS
                          ) -> ml_collections.ConfigDict:
  """Tables 12-19: warmup, quadratic decay held from t_decay, lambda on the weights.

  At the values Tables 16-18 fix (`BEST_OF_TABLE_15`); the BN hyperparameters
  stay at the MLPerf recipe's rho 0.9 and epsilon 1e-5.
  """
  config = nesterov(num_train_steps, virtual_batch_size)
  start = BEST_OF_TABLE_15
  config.optimizer.momentum = 1 - start['one_minus_mu']
  config.label_smoothing = start['tau']
  decay_on_weights(config, start['lambda'])
  warmup_quadratic_hold(config, peak=start['peak'], decay_factor=start['decay_factor'],
                        t_decay=start['t_decay'], warmup_steps=warmup_steps)
  return config


def decay_on_every_variable(config: ml_collections.ConfigDict, strength: float) -> None:
  """lambda on kernels, biases and BN parameters alike (Tables 9-10)."""
  config.optimizer.l2 = strength
  config.optimizer.l2_on_bn_bias = True


def decay_on_weights(config: ml_collections.ConfigDict, strength: float) -> None:
  """lambda on kernels only, none on biases and BN parameters (Tables 11-23)."""
  config.optimizer.l2 = strength
  config.optimizer.l2_on_bn_bias = False


def linear_decay(config: ml_collections.ConfigDict, *, peak: float, decay_factor: float,
                 t_decay: float | None = None) -> None:
  """From peak down to peak * decay_factor at t_decay (None: the budget's end), no warmup."""
  config.lr.schedule = 'linear'
  config.lr.peak = peak
  config.lr.decay_factor = decay_factor
  config.lr.warmup_steps = 0.0
  config.lr.decay_steps = t_decay


def warmup_quadratic_hold(config: ml_collections.ConfigDict, *, peak: float,
                          decay_factor: float, t_decay: float,
                          warmup_steps: float = WARMUP_STEPS) -> None:
  """Linear warmup from 0, quadratic decay towards peak * decay_factor, held from t_decay."""
  config.lr.schedule = 'piecewise_polynomial_factor'
  config.lr.init = 0.0
  config.lr.peak = peak
  config.lr.decay_factor = decay_factor
  config.lr.warmup_steps = warmup_steps
  config.lr.warmup_power = 1.0
  config.lr.decay_power = 2.0
  config.lr.hold_from_step = t_decay


def table_9_space() -> list[search_space.Axis]:
  """The space of Tables 9 and 10 (Table 10 is "same as Table 9")."""
  return [
      search_space.Range('lr.peak', 1e-3, 50.0, scale='log'),
      search_space.Choice('lr.decay_factor', (1e-4, 1e-3, 1e-2, 1e-1)),
      search_space.Range('optimizer.momentum', 1e-3, 1.0, scale='log', one_minus=True),
      search_space.Range('optimizer.l2', 1e-5, 1e-1, scale='log'),
      search_space.Range('label_smoothing', 1e-2, 0.2, scale='linear'),
  ]


def one_stage(space: Sequence[search_space.Axis], num_trials: int) -> search_space.Search:
  """A quasi-random search of `num_trials` feasible trials, one seed each."""
  stage = search_space.Stage('search', tuple(space), num_trials=num_trials)
  return search_space.Search(stages=(stage,), confirm_seeds=0)


def sweep(space: Sequence[search_space.Choice], seeds_per_trial: int = 1
          ) -> search_space.Search:
  """Every point of the product of `space`'s values, each for `seeds_per_trial` seeds."""
  stage = search_space.Stage('sweep', tuple(space), mode='grid',
                             seeds_per_trial=seeds_per_trial)
  return search_space.Search(stages=(stage,), confirm_seeds=0)


def decade_grid(multiples: Sequence[float], exponents: Sequence[int], last: float
                ) -> tuple[float, ...]:
  """{m * 10^a for m in multiples, a in exponents} + {last}, sorted, as decimals.

  Each value is parsed from its decimal text ('0.5e-3'), so that 3 * 10^-3 is
  the float nearest 0.003 and a value two decades share (0.5e-2 = 5e-3) is one.
  """
  values = {float(f'{m}e{a}') for a in exponents for m in multiples} | {last}
  return tuple(sorted(values))
