"""The harness above models, optim and input_pipeline, in layers.

From the top: cli (the command line) > experiments | bench > mlperf > run >
common. A layer imports only the ones below it; pyproject.toml states this as
import-linter contracts, which CI checks with `lint-imports`.
"""
