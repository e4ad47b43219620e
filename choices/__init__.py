"""The one check of a name against the names it may be: a look-up that fails early.

Every layer names things a config chooses (a model dtype, an optimizer, a
schedule, a dataset, a resize method), and each says the same when the choice
is unknown: 'unknown KIND VALUE; valid: A, B, C'. The check lives in this leaf,
which imports nothing of the project, because models/, optim/ and
input_pipeline/ may not import one another nor train/ (pyproject.toml's
contracts); each of them, and train/, imports it.
"""

from typing import Any, Callable, Collection


def check_choice(kind: str, value: Any, valid: Collection[Any], *,
                 show: Callable[[Any], str] = repr, label: str = 'valid') -> None:
  """Raises 'unknown KIND VALUE; LABEL: A, B' (a ValueError) unless `value` is in
  `valid`. The valid values are listed in `valid`'s order, each as `show` writes
  it: repr by default, str for bare names."""
  if value not in valid:
    raise ValueError(f'unknown {kind} {value!r}; {label}: {", ".join(map(show, valid))}')
