"""The modes of `main.py bench`, apart from the benchmark so that the command
line's flags (and `--help`) can name them without importing JAX."""

SYNTHETIC, INPUT, TRAIN = 'synthetic', 'input', 'train'
MODES = (SYNTHETIC, INPUT, TRAIN)
