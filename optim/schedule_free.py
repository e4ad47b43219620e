"""Where a Schedule-Free optimizer's model is evaluated: its averaged point x.

Schedule-Free (Defazio et al., 2024; `optax.contrib.schedule_free`) keeps three
sequences: z, the base optimizer's iterates; x, their weighted running average;
and y = b1 * x + (1 - b1) * z, where the gradients are taken. optax hands the
harness y as the parameters, and keeps z in the optimizer state. The authors
evaluate at x, which `optax.contrib.schedule_free_eval_params` recovers as
(y - (1 - b1) * z) / b1: evaluating at y instead would measure a point that
the method never means to return.

The harness's optimizer is one transformation per parameter group
(optim/optimizers.py, `optax.multi_transform`), so either group, both or
neither may be Schedule-Free. `evaluation_params` finds out from the state's
structure, which is fixed when the step is traced: for an optimizer without
Schedule-Free it returns the parameters themselves, and the compiled eval is
the same program as before.

The BatchNorm moving averages stay those gathered while training, at y, as the
authors' own AlgoPerf submission leaves them; their README suggests recomputing
them at x before each eval, which the harness does not do (docs/configs.md).
"""

from typing import Any

import jax
import optax
from optax import contrib


def _is_masked(node: Any) -> bool:
  return isinstance(node, optax.MaskedNode)


def _group_averaged(state: contrib.ScheduleFreeState, params: optax.Params
                    ) -> optax.Params:
  """x for the leaves of one group's Schedule-Free state; the others as they are.

  The group's z holds a MaskedNode where a parameter belongs to another group:
  optax's schedule_free_eval_params gets the parameters masked the same way.
  """
  masked = jax.tree.map(lambda z, y: z if _is_masked(z) else y, state.z, params,
                        is_leaf=_is_masked)
  averaged = contrib.schedule_free_eval_params(state, masked)
  return jax.tree.map(lambda x, y: y if _is_masked(x) else x, averaged, params,
                      is_leaf=_is_masked)


def evaluation_params(opt_state: Any, params: optax.Params) -> optax.Params:
  """The parameters to evaluate: x where a group's optimizer is Schedule-Free.

  `opt_state` is the state of optim.create_optimizer's transformation (one
  masked state per group); anything else is returned unchanged with `params`.
  """
  groups = getattr(opt_state, 'inner_states', None)
  if not isinstance(groups, dict):
    return params
  for group_state in groups.values():
    inner = getattr(group_state, 'inner_state', None)
    if isinstance(inner, contrib.ScheduleFreeState):
      params = _group_averaged(inner, params)
  return params

