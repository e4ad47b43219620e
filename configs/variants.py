"""Selecting a named variant of a config file (`--config=configs/x.py:VARIANT`)."""

from typing import Callable, Mapping

import ml_collections

Variant = Callable[[ml_collections.ConfigDict], None]


def apply_variant(config: ml_collections.ConfigDict, variant: str,
                  variants: Mapping[str, Variant], file_name: str) -> ml_collections.ConfigDict:
  """Applies `variants[variant]` to `config` in place ('' is the base config)."""
  if variant == '':
    return config
  if variant not in variants:
    raise ValueError(f'unknown variant {variant!r} of {file_name}; valid: '
                     f'{", ".join(sorted(variants))} (or none)')
  variants[variant](config)
  return config
