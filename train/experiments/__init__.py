"""Experiments over many runs: studies over seeds, comparisons of configs,
quasi-random searches, their statistics and reports.
"""
