"""One training run: the loop, the pure steps, the compiled programs,
checkpoints, the budget in steps and epochs, config validation, multi-host
set-up, and the MLPerf timing log the loop writes as it runs.

Nothing here knows of studies, reports, submissions or the command line.
"""
