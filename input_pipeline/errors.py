"""The input pipeline's errors, importable without TensorFlow.

The command line names DataError among the bad input it reports in one line
(train/cli/exits.py); defining it here lets it do so without importing
TensorFlow, which `main.py bench`'s synthetic mode must never load.
"""


class DataError(RuntimeError):
  """The data cannot be built or read; the one-line message says what to do."""


class DatasetNotPreparedError(DataError):
  """The dataset must be prepared by hand before the harness can read it."""
