"""Small helpers every layer of the harness shares: one-line errors, atomic
file writes, ConfigDict paths, the console's progress line, and claims on run
directories.
"""
