"""Test-wide settings, applied before any test module imports JAX."""

import os

# The tests check behaviour, not speed: XLA's CPU backend compiles several times
# faster without its optimisation passes, which keeps the suite inside its time
# budget (about a dozen ResNet programs are compiled per config test). Numbers
# stay the same to float32 round-off, well inside the tests' tolerances.
os.environ['XLA_FLAGS'] = ' '.join(
    filter(None, [os.environ.get('XLA_FLAGS'), '--xla_backend_optimization_level=0']))
