"""Config files named on the command line: `path/to/file.py[:variant]`.

A comparison names several config files; the `--config.KEY=VALUE` overrides,
which ml_collections applies to the `--config` flag only, reach each of them as
the command line gave them (the flag's `override_values`; train/cli/flags.py).

Each problem with a config file or an override is one line that names the file
or key and what to do, for main.py to print.
"""

import ast
import dataclasses
import difflib
import importlib.util
import inspect
import os
from types import ModuleType
from typing import Any

import ml_collections
from absl import flags
from ml_collections import config_flags

from train.common import config_dicts
from train.common import errors
from train.common import stops

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


# What a config file's code may raise that must not end the command its own way:
# SystemExit (a `sys.exit()` in the file would end it silently, with the file's
# status) and KeyboardInterrupt (a real Ctrl-C is handled by train/common/stops.py
# before it raises anything here, so one raised here is the file's own).
_FILE_FAILURES = (Exception, SystemExit, KeyboardInterrupt)


def _failure(error: BaseException) -> str:
  """What a config file's code raised, in words: 'RuntimeError: why'."""
  if isinstance(error, SystemExit):
    return f'it called sys.exit({error.code!r}); a config file only defines get_config()'
  text = errors.one_line(error)
  return f'{type(error).__name__}: {text}' if text else type(error).__name__


def _reraise_a_real_stop(error: BaseException) -> None:
  if isinstance(error, KeyboardInterrupt) and stops.received() is not None:
    raise error


def load_module(path: str) -> ModuleType:
  """Imports a config file by path; raises ValueError when it cannot."""
  if os.path.isdir(path):
    raise ValueError(f'config file {path} is a directory; give the path of a .py '
                     'config file, e.g. configs/embedded_lars.py')
  if not os.path.isfile(path):
    raise ValueError(f'config file {path} does not exist; give the path of a .py '
                     'config file, e.g. configs/embedded_lars.py')
  if not os.access(path, os.R_OK):
    raise ValueError(f'config file {path} cannot be read (permission denied); '
                     'make it readable')
  name = 'config_file_' + os.path.splitext(os.path.basename(path))[0]
  module_spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
  except _FILE_FAILURES as e:  # pylint: disable=broad-except
    _reraise_a_real_stop(e)
    raise ValueError(f'cannot load config file {path}: {_failure(e)}') from None
  return module


def expand(spec: ConfigSpec) -> list[ConfigSpec]:
  """`file.py:*` is the file's base config and every variant in its VARIANTS."""
  if spec.variant != ALL_VARIANTS:
    return [spec]
  variants = getattr(load_module(spec.path), 'VARIANTS', {})
  return [ConfigSpec(spec.path)] + [ConfigSpec(spec.path, v) for v in sorted(variants)]


def load_config(spec: ConfigSpec) -> ml_collections.ConfigDict:
  """The config of `spec`, locked like the --config flag's; ValueError when it cannot."""
  module = load_module(spec.path)
  get_config = getattr(module, 'get_config', None)
  if not callable(get_config):
    raise ValueError(f'config file {spec.path} has no get_config(); a config file '
                     'defines get_config() returning its ConfigDict (see configs/default.py)')
  if spec.variant and not inspect.signature(get_config).parameters:
    raise ValueError(f'config file {spec.path} has no variants; drop ":{spec.variant}"')
  try:
    config = get_config(spec.variant) if spec.variant else get_config()
  except ValueError as e:  # The variants' own messages (configs/variants.py).
    raise ValueError(f'{spec}: {errors.one_line(e)}') from None
  except _FILE_FAILURES as e:  # pylint: disable=broad-except
    _reraise_a_real_stop(e)
    raise ValueError(f'{spec}: get_config() failed: {_failure(e)}') from None
  if config is None:
    raise ValueError(f'{spec}: get_config() returned None; end it with `return config`, '
                     'the ConfigDict it built from configs/default.py\'s get_config()')
  if not isinstance(config, ml_collections.ConfigDict):
    raise ValueError(f'{spec}: get_config() returned {type(config).__name__}, '
                     'not a ConfigDict; start from configs/default.py\'s get_config()')
  check_keys(config, str(spec))
  config.lock()
  return config


class ConfigKeysError(ValueError):
  """A config's keys are not those of configs/default.py; the message says which."""


def _sections(config: ml_collections.ConfigDict, prefix: str = '') -> list[str]:
  """The dotted names of every ConfigDict inside `config`, outermost first."""
  names = []
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      names += [prefix + key, *_sections(value, f'{prefix}{key}.')]
  return names


def check_keys(config: ml_collections.ConfigDict, source: str) -> None:
  """Raises ConfigKeysError unless `config` has exactly the keys of configs/default.py.

  A config file that adds a key (a misspelt `config.lr.my_typo_peak`) would
  otherwise train with the default of the key it meant; one that lacks a key or
  sets a section to None would fail deep inside the run.
  """
  from configs import default  # pylint: disable=g-import-not-at-top
  reference = default.get_config()
  for section in _sections(reference):
    try:
      node, leaf = config_dicts.parent_and_leaf(config, section)
      value = node[leaf]
    except (KeyError, AttributeError, TypeError):
      continue  # Named as a missing key below.
    if not isinstance(value, ml_collections.ConfigDict):
      raise ConfigKeysError(
          f'{source} sets the section {section!r} to {value!r}; keep it a ConfigDict and '
          f'set its keys (config.{section}.KEY = ...), as configs/default.py does')
  known, given = config_dicts.flatten(reference), config_dicts.flatten(config)
  unknown = [k for k in given if k not in known]
  if unknown:
    close = difflib.get_close_matches(unknown[0], list(known), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ''
    raise ConfigKeysError(
        f'{source} sets unknown config key {unknown[0]!r}; {hint}every key is defined in '
        'configs/default.py, and a config file cannot add one')
  missing = [k for k in known if k not in given]
  if missing:
    raise ConfigKeysError(
        f'{source} lacks the config key {missing[0]!r}; start from configs/default.py\'s '
        'get_config(), which defines every key, and override what differs')


def config_file_problem(spec: ConfigSpec) -> str | None:
  """What stops `spec` from giving a config, in one line; None when nothing does.

  ml_collections reports a config file's own errors inside its own messages,
  several lines long; loading the file again names them plainly.
  """
  try:
    load_config(spec)
  except ValueError as e:
    return str(e)
  return None


# --- --config.KEY=VALUE overrides ---------------------------------------------


class _NoneOr(flags.ArgumentParser):
  """Reads 'None' as None, anything else as `parser` does.

  ml_collections parses an override by the type of the key's value, so a number
  key could not be set to None ("could not convert string to float: 'None'"),
  though None is what several keys use for "not in epochs" (eval_every_epochs,
  num_epochs, lr.warmup_epochs, lr.decay_steps). Validation then says which keys
  allow it.
  """

  def __init__(self, parser: flags.ArgumentParser, type_name: str):
    super().__init__()
    self._parser = parser
    self._type_name = type_name

  def parse(self, argument: Any) -> Any:
    if isinstance(argument, str) and argument.strip() in ('None', 'none'):
      return None
    return self._parser.parse(argument)

  def flag_type(self) -> str:
    return self._type_name


class _Literal(flags.ArgumentParser):
  """For a key that is None in its config file, which has no type left to parse by.

  A Python literal (None, a number, True, a tuple), else the string itself.
  """

  def parse(self, argument: Any) -> Any:
    if not isinstance(argument, str):
      return argument
    try:
      return ast.literal_eval(argument)
    except (ValueError, SyntaxError):
      return argument

  def flag_type(self) -> str:
    return 'None or a literal'


# What each override parser's flag_type() takes, in words. None is left unsaid:
# few keys allow it, and validation names them.
_EXPECTED = {'int': 'an integer', 'float': 'a number', 'bool': 'True or False',
             'int or None': 'an integer', 'float or None': 'a number'}


def allow_none_overrides() -> None:
  """Lets --config.KEY=None set a number key, or a key that is None in its file.

  Call before the config flag is parsed. It replaces ml_collections' parsers
  for int and float (and adds one for None) through its public registry.
  """
  config_flags.register_flag_parser_for_type(
      int, _NoneOr(flags.IntegerParser(), 'int or None'))
  config_flags.register_flag_parser_for_type(
      float, _NoneOr(flags.FloatParser(), 'float or None'))
  config_flags.register_flag_parser_for_type(type(None), _Literal())


def bad_override_message(key: str, value: str, flag_type: str) -> str | None:
  """One line for --config.KEY=VALUE whose value does not parse; None if unknown type."""
  expected = _EXPECTED.get(flag_type)
  if expected is None:
    return None
  return f'--config.{key}={value}: {key} takes {expected}, not {value!r}'


def unknown_key_message(config: ml_collections.ConfigDict, argv: list[str]) -> str | None:
  """One line for the first --config.KEY override whose key `config` lacks."""
  keys = list(config_dicts.flatten(config))
  for arg in argv:
    if not arg.startswith(('--config.', '--noconfig.')):
      continue
    key = arg.partition('=')[0].partition('.')[2]
    try:
      parent, leaf = config_dicts.parent_and_leaf(config, key)
      known = leaf in parent
    except (KeyError, AttributeError, TypeError):
      known = False
    if not known:
      close = difflib.get_close_matches(key, keys, n=1)
      hint = f"did you mean '{close[0]}'? " if close else ''
      return (f'unknown config key {key!r} in {arg}; {hint}every key is defined in '
              'configs/default.py, and a config file cannot add one')
  return None


# --- one line for a command line that does not parse ----------------------------


def config_arg(argv: list[str], default: str) -> str:
  """The value of --config on the command line (the last one), or `default`."""
  value = default
  for arg, following in zip(argv, argv[1:] + ['']):
    if arg in ('--config', '-config'):
      value = following
    elif arg.startswith(('--config=', '-config=')):
      value = arg.partition('=')[2]
  return value


def flag_error_message(error: Exception, argv: list[str], flag_values: flags.FlagValues,
                       default_config: str, program: str = 'main.py') -> str:
  """One line for a flag that cannot be parsed, a config that cannot be loaded.

  Shared by `main.py` and `main.py bench`, so that a mistake reads the same in
  both. `argv` is the command line with the program name first.
  """
  # First the config file itself: ml_collections buries its errors (missing,
  # unreadable, a syntax error, get_config() failing) in messages of its own.
  problem = config_file_problem(parse_spec(config_arg(argv, default_config)))
  if problem:
    return problem
  if isinstance(error, ConfigKeysError):
    return str(error)
  if isinstance(error, (KeyError, AttributeError)):
    spec = parse_spec(config_arg(argv, default_config))
    message = unknown_key_message(load_config(spec), argv)
    return message or f'unknown config key {errors.one_line(error)}'
  if isinstance(error, flags.IllegalFlagValueError):
    # absl: 'flag --NAME=VALUE: why'; a config key's why is a failed conversion.
    name, _, value = errors.one_line(error).partition(': ')[0].removeprefix('flag --').partition('=')
    if name.startswith('config.') and name in flag_values:
      message = bad_override_message(
          name.removeprefix('config.'), value, flag_values[name].parser.flag_type())
      if message:
        return message
  if isinstance(error, flags.UnrecognizedFlagError):
    return f'{errors.one_line(error)}; python {program} --help lists the flags'
  if type(error).__name__ == 'FlagOrderError':  # Not exported by ml_collections.
    return f'{errors.one_line(error)}; give --config=FILE before its --config.KEY=VALUE overrides'
  if isinstance(error, flags.Error):
    return errors.one_line(error)
  return f'cannot load the config file: {type(error).__name__}: {errors.one_line(error)}'
