"""A run's trust_ratios.json: each layer's LARS or LAMB trust ratio at the logged steps.

The run writes it (train/run/record.py's TrustRatioLog); `main.py` draws it. Its
own module, without record's imports (clu, and through it TensorFlow), so that
a command that only reads the file, such as `main.py report`, starts in a
fraction of the time.

    {"steps": [s1, s2, ...], "trust_ratios": {"<layer>": [r1, r2, ...], ...}}
"""

import json
from typing import Any

NAME = 'trust_ratios.json'


def read(path: str) -> dict[str, Any]:
  """The steps and each layer's ratios of the trust_ratios.json at `path`."""
  with open(path) as f:
    return json.load(f)
