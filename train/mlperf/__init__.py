"""MLPerf submissions: the closed-division rules, results folders, system
descriptions and the RCP verdict of a set of runs.
"""
