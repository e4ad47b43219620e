"""The command line: flags and config files, one-line errors, workdir checks
and the console.
"""
