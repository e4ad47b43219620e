"""Small helpers every layer of the harness shares: one-line errors, atomic
file writes, ConfigDict paths, and the console's progress line.
"""
