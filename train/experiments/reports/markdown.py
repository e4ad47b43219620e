"""Numbers as a reader of a report wants them, and tables: markdown and fixed-width text."""

import math
from collections.abc import Sequence

MISSING = '—'
NOT_REACHED = 'not reached'
# The open bound of a range of times to the target.
INFINITE = '∞'


def finite(value: float | int | None) -> bool:
  return value is not None and math.isfinite(value)


def percent(value: float | None) -> str:
  return f'{100 * value:.2f}%' if finite(value) else MISSING


def percent_range(pair: Sequence[float | None]) -> str:
  low, high = pair
  if not finite(low) and not finite(high):
    return MISSING
  return f'{percent(low)} – {percent(high)}'


def number(value: float | int | None, missing: str = MISSING) -> str:
  """A count or a median of counts: no decimals when whole, else one."""
  if not finite(value):
    return missing
  return f'{value:,.0f}' if float(value).is_integer() else f'{value:,.1f}'


def number_range(pair: Sequence[float | None], unit: str = '') -> str:
  """A range of counts or times to the target; a missing bound is never reached."""
  low, high = pair
  if not finite(low) and not finite(high):
    return MISSING

  def bound(value: float | None) -> str:
    return f'{number(value)}{unit}' if finite(value) else INFINITE
  return f'{bound(low)} – {bound(high)}'


def seconds(value: float | None, missing: str = MISSING) -> str:
  """Seconds, with minutes or hours alongside once they read better."""
  if not finite(value):
    return missing
  if value < 60:
    return f'{value:.1f} s'
  if value < 3600:
    return f'{value:,.0f} s ({value / 60:.1f} min)'
  return f'{value:,.0f} s ({value / 3600:.2f} h)'


def config_value(value: object) -> str:
  """A config or search-space value."""
  if isinstance(value, float):
    return f'{value:.6g}'
  return str(value)


def override_flags(overrides: dict) -> str:
  """Command-line overrides as the flags that set them, each in backticks."""
  return ' '.join(f'`--config.{key}={config_value(value)}`' for key, value in overrides.items())


def reached(summary: dict) -> str:
  """'reached / runs' of a `statistics.summarize` summary."""
  return f"{summary['num_reached_target']} / {summary['num_runs']}"


def link(text: str, target: str) -> str:
  return f'[{text}]({target})'


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
  def line(cells: Sequence[str]) -> str:
    return '| ' + ' | '.join(str(c).replace('|', '\\|') for c in cells) + ' |'
  return '\n'.join([line(header), line(['---'] * len(header))] + [line(r) for r in rows])


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
  """Fixed-width columns: the first left-aligned, the others right-aligned."""
  widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

  def line(cells: Sequence[str]) -> str:
    return '  '.join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                     for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
  return '\n'.join([line(header), '  '.join('-' * w for w in widths)] + [line(r) for r in rows])
