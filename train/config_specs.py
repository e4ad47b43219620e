"""Config files named on the command line: `path/to/file.py[:variant]`.

A study can compare several config files; `--config.KEY=VALUE` overrides, which
ml_collections applies to the `--config` flag only, are carried over to each of
them as the difference between the flag's config and its file's own.
"""

import dataclasses
import importlib.util
import os
from types import ModuleType
from typing import Any

import ml_collections

ALL_VARIANTS = '*'


@dataclasses.dataclass(frozen=True)
class ConfigSpec:
  path: str
  variant: str = ''

  @property
  def name(self) -> str:
    """A directory-safe name: the file's stem, then the variant."""
    stem = os.path.splitext(os.path.basename(self.path))[0]
    return f'{stem}.{self.variant}' if self.variant else stem

  def __str__(self) -> str:
    return f'{self.path}:{self.variant}' if self.variant else self.path


def parse_spec(text: str) -> ConfigSpec:
  path, _, variant = text.partition(':')
  return ConfigSpec(path=path, variant=variant)


def load_module(path: str) -> ModuleType:
  """Imports a config file by path; raises ValueError when it cannot."""
  if not os.path.isfile(path):
    raise ValueError(f'config file {path} does not exist')
  name = 'config_file_' + os.path.splitext(os.path.basename(path))[0]
  module_spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'cannot load config file {path}: {type(e).__name__}: {e}') from None
  return module


def expand(spec: ConfigSpec) -> list[ConfigSpec]:
  """`file.py:*` is the file's base config and every variant in its VARIANTS."""
  if spec.variant != ALL_VARIANTS:
    return [spec]
  variants = getattr(load_module(spec.path), 'VARIANTS', {})
  return [ConfigSpec(spec.path)] + [ConfigSpec(spec.path, v) for v in sorted(variants)]


def load_config(spec: ConfigSpec) -> ml_collections.ConfigDict:
  """The config of `spec`, locked like the --config flag's."""
  module = load_module(spec.path)
  try:
    config = module.get_config(spec.variant) if spec.variant else module.get_config()
  except (ValueError, TypeError) as e:
    raise ValueError(f'{spec}: {e}') from None
  config.lock()
  return config


def flatten(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """{'a.b': value} for every leaf of `config`."""
  flat = {}
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      flat.update({f'{key}.{k}': v for k, v in flatten(value).items()})
    else:
      flat[key] = value
  return flat


def overrides(base: ml_collections.ConfigDict,
              changed: ml_collections.ConfigDict) -> dict[str, Any]:
  """The keys whose values differ between `base` and `changed`, with changed's values."""
  base_flat, changed_flat = flatten(base), flatten(changed)
  return {k: v for k, v in changed_flat.items() if base_flat.get(k) != v}


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
