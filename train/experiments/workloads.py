"""The workload variants of a robustness comparison: `main.py --robustness=KEY=VALUE,...`.

A robustness comparison runs a config tuned on its base workload, unchanged, on
variants of that workload, as AlgoPerf's held-out variants test whether a
training algorithm survives a small change to the model
(configs/algoperf_variants.py). A variant changes one workload key of the
model; everything else, the optimizer's hyperparameters and the target
included, stays the base config's:

  activation=relu|silu|gelu   model.activation (AlgoPerf's imagenet_resnet_silu
                              and imagenet_resnet_gelu)
  last_bn_scale=NUMBER        model.last_bn_scale, the initial scale of the last
                              BN of each residual branch (AlgoPerf's
                              imagenet_resnet_large_bn_init is 8)

A variant is named KEY_VALUE (`activation_silu`, `last_bn_scale_8`), the base
`base`; each is a folder of the robustness study. Its runs log to MLPerf's open
division: a changed model is AlgoPerf's workload, not MLPerf's benchmark (the
closed rules take ReLU only). Every mistake is a `RobustnessInputError`, one
line that names it and the fix.
"""

import dataclasses
import math
from collections.abc import Sequence

import ml_collections

from configs import algoperf_variants
from train.common import config_dicts
from train.common import errors

BASE = 'base'
# The workload keys a variant may change: its name on the command line -> the config key.
WORKLOAD_KEYS = {'activation': 'model.activation', 'last_bn_scale': 'model.last_bn_scale'}
EXAMPLE = '--robustness=activation=silu,activation=gelu,last_bn_scale=8'
_FORM = 'activation=relu|silu|gelu or last_bn_scale=NUMBER'


class RobustnessInputError(errors.BadInput, ValueError):
  """--robustness names something a robustness comparison cannot run."""


@dataclasses.dataclass(frozen=True)
class Variant:
  """One workload variant: one workload key set to another value."""
  key: str  # A key of WORKLOAD_KEYS.
  value: str | float

  @property
  def config_key(self) -> str:
    return WORKLOAD_KEYS[self.key]

  @property
  def name(self) -> str:
    """The variant's folder and label, e.g. activation_silu or last_bn_scale_8."""
    return f'{self.key}_{value_text(self.value)}'

  def describe(self) -> str:
    return f'{self.config_key} = {value_text(self.value)}'


def value_text(value: str | float) -> str:
  return f'{value:g}' if isinstance(value, float) else str(value)


def _parse_value(key: str, text: str, entry: str) -> str | float:
  if key == 'activation':
    return text
  try:
    value = float(text)
  except ValueError:
    value = math.nan
  if not math.isfinite(value):
    raise RobustnessInputError(f'--robustness entry {entry!r}: {text!r} is not a finite '
                               'number; give e.g. last_bn_scale=8')
  return value


def parse_variant(entry: str) -> Variant:
  """KEY=VALUE, KEY one of WORKLOAD_KEYS."""
  key, equals, text = (part.strip() for part in entry.partition('='))
  if not equals or not key or not text:
    raise RobustnessInputError(f'--robustness entry {entry!r} is not KEY=VALUE; give '
                               f'{_FORM}, e.g. {EXAMPLE}')
  if key not in WORKLOAD_KEYS:
    raise RobustnessInputError(f'--robustness entry {entry!r}: {key} is not a workload key; '
                               f'give {_FORM} (the optimizer and the rest stay the --config '
                               'file\'s)')
  return Variant(key, _parse_value(key, text, entry))


def parse_variants(entries: Sequence[str],
                   base: ml_collections.ConfigDict) -> tuple[Variant, ...]:
  """The --robustness list, each variant a change of `base`, none twice."""
  if not entries:
    raise RobustnessInputError(f'--robustness= names no variant; give one or more of {_FORM}, '
                               f'separated by commas, e.g. {EXAMPLE}')
  if not all(entry.strip() for entry in entries):
    raise RobustnessInputError(f'--robustness={",".join(entries)}: an entry of the list is '
                               f'empty; give variants separated by single commas, e.g. {EXAMPLE}')
  variants = [parse_variant(entry) for entry in entries]
  flat = config_dicts.flatten(base)
  for entry, variant in zip(entries, variants):
    if flat[variant.config_key] == variant.value:
      raise RobustnessInputError(
          f'--robustness entry {entry!r} is the base config\'s own {variant.config_key}; a '
          'variant must change the workload: give another value')
  names = [variant.name for variant in variants]
  twice = sorted({name for name in names if names.count(name) > 1})
  if twice:
    raise RobustnessInputError(f'--robustness names the variant {twice[0]} twice; give each '
                               'variant once')
  return tuple(variants)


def variant_config(base: ml_collections.ConfigDict,
                   variant: Variant) -> ml_collections.ConfigDict:
  """`base` with the variant's one change, logged to MLPerf's open division."""
  return config_dicts.with_overrides(base, {variant.config_key: variant.value,
                                            'mlperf.submission_division': 'open'})


def workload_configs(base: ml_collections.ConfigDict, variants: Sequence[Variant]
                     ) -> dict[str, ml_collections.ConfigDict]:
  """{'base': base, variant name: its config, ...}, the base first."""
  return {BASE: base, **{v.name: variant_config(base, v) for v in variants}}


def _model(config: ml_collections.ConfigDict) -> tuple[str, float]:
  return config.model.activation, float(config.model.last_bn_scale)


def algoperf_workload(config: ml_collections.ConfigDict) -> str | None:
  """The AlgoPerf variant (configs/algoperf_variants.py: '' for its base, 'silu',
  'gelu', 'bn_scale_8') whose model options the config's are, or None."""
  for name in ('', *algoperf_variants.VARIANTS):
    if _model(algoperf_variants.get_config(name)) == _model(config):
      return name
  return None


def changes(base: ml_collections.ConfigDict, config: ml_collections.ConfigDict) -> dict:
  """The workload keys on which `config` differs from `base`: {config key: value}."""
  flat_base, flat = config_dicts.flatten(base), config_dicts.flatten(config)
  return {key: flat[key] for key in WORKLOAD_KEYS.values() if flat[key] != flat_base[key]}
