"""The trust ratio of each tensor at the last update, kept in the optimizer's state.

The LAMB paper's Figures 9-14 plot LAMB's trust ratio layer by layer at several
iterations. To show them without a host sync at every step, lars and the LAMB
family (built with `record_trust_ratios=True`) keep each tensor's ratio of
their last update in their state, as a `Recorded` around their own state: the
run reads it only at the steps it logs (`layer_trust_ratios`). Built without,
their state is the one they always had, and so is the compiled step.
"""

import re
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class Recorded(NamedTuple):
  """An optimizer's state with the trust ratio of each tensor at its last update."""
  inner: Any
  trust_ratios: optax.Params  # A float scalar per parameter tensor.


def init(inner_state: Any, params: optax.Params) -> Recorded:
  """`inner_state` with ratios of 1 (no update yet), in each parameter's dtype."""
  return Recorded(inner=inner_state,
                  trust_ratios=jax.tree.map(lambda p: jnp.ones([], p.dtype), params))


def inner(state: Recorded) -> Any:
  return state.inner


def unzip(pairs: Any, params: optax.Params) -> tuple[Any, Any]:
  """A tree of (update, ratio) pairs, laid out as `params`, as two trees."""
  treedef = jax.tree.structure(params)
  flat = treedef.flatten_up_to(pairs)  # Also for a group without any tensor.
  return (treedef.unflatten([pair[0] for pair in flat]),
          treedef.unflatten([pair[1] for pair in flat]))


def layer_name(path: tuple) -> str:
  """'stage1_block1/conv1/kernel' for the parameter at a tree path of dict keys."""
  return '/'.join(str(getattr(key, 'key', key)) for key in path)


def _natural_key(name: str) -> list:
  """Orders 'block2' before 'block10': digits compare as numbers."""
  return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', name)]


def layer_trust_ratios(opt_state: Any) -> dict[str, jax.Array]:
  """Each recorded tensor's trust ratio of the last update, by its layer name.

  Looks through the whole optimizer state (the parameter groups of
  optim/optimizers.py are masked states of a multi_transform), so that a group
  without a trust ratio (heavy ball on BN and biases) is simply absent. The
  names come in their natural order (digits compared as numbers). The values
  stay on the device: fetching them is the caller's one sync.
  """
  found: dict[str, jax.Array] = {}
  for node in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, Recorded)):
    if isinstance(node, Recorded):
      for path, ratio in jax.tree_util.tree_flatten_with_path(node.trust_ratios)[0]:
        found[layer_name(path)] = ratio
  return {name: found[name] for name in sorted(found, key=_natural_key)}
