"""Small helpers every layer of the harness shares: one-line errors, atomic
file writes, and ConfigDict paths.
"""
