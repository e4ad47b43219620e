"""Paths into a ConfigDict: flatten it, set dotted keys, say how two differ, and
rebuild one from its JSON."""

from typing import Any

import ml_collections


def flatten(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """{'a.b': value} for every leaf of `config`."""
  flat = {}
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      flat.update({f'{key}.{k}': v for k, v in flatten(value).items()})
    else:
      flat[key] = value
  return flat


def parent_and_leaf(config: ml_collections.ConfigDict,
                    key: str) -> tuple[ml_collections.ConfigDict, str]:
  """For a dotted key 'a.b.c': the ConfigDict holding it (config.a.b) and 'c'."""
  *parents, leaf = key.split('.')
  node = config
  for part in parents:
    node = node[part]
  return node, leaf


def with_overrides(config: ml_collections.ConfigDict,
                   values: dict[str, Any]) -> ml_collections.ConfigDict:
  """A copy of `config` with the dotted keys of `values` set."""
  config = config.copy_and_resolve_references()
  for key, value in values.items():
    node, leaf = parent_and_leaf(config, key)
    node[leaf] = value
  config.lock()
  return config


def differences(there: dict[str, Any], here: dict[str, Any], limit: int = 3) -> str:
  """'key: A there, B here' for the first `limit` keys on which two configs differ.

  Both are config.json contents (nested dicts); a key only one has counts too.
  """
  flat_there, flat_here = _flatten_json(there), _flatten_json(here)
  missing = '(no such key)'
  keys = [k for k in sorted(set(flat_there) | set(flat_here))
          if flat_there.get(k, missing) != flat_here.get(k, missing)]
  shown = '; '.join(f'{k}: {flat_there.get(k, missing)!r} there, '
                    f'{flat_here.get(k, missing)!r} here' for k in keys[:limit])
  more = f' (and {len(keys) - limit} more keys)' if len(keys) > limit else ''
  return shown + more


def _flatten_json(values: dict[str, Any], prefix: str = '') -> dict[str, Any]:
  flat = {}
  for key, value in values.items():
    if isinstance(value, dict):
      flat.update(_flatten_json(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = value
  return flat


def _tuples(value: Any) -> Any:
  if isinstance(value, dict):
    return {k: _tuples(v) for k, v in value.items()}
  if isinstance(value, list):
    return tuple(_tuples(v) for v in value)
  return value


def from_values(values: dict[str, Any]) -> ml_collections.ConfigDict:
  """The config whose config.json holds `values`, locked like a loaded config.

  JSON arrays come back as tuples: the configs hold no lists, and a tuple is
  what their files write (crop ranges, mean RGB values).
  """
  config = ml_collections.ConfigDict(_tuples(values))
  config.lock()
  return config
