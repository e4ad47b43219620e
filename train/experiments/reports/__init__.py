"""The reports of studies, comparisons and searches: one module per kind of report.

  study.py       one config over many seeds: report.md and its plots
  comparison.py  several configs side by side, with the verdict on each pair
  search.py      the trials of a search, ranked
  staged.py      a staged search: each stage's trials, the chosen point, its confirmation
  sections.py    sections more than one kind shows: the runs not finished, the time
  plots.py       every figure (matplotlib, without pyplot's global state)
  markdown.py    numbers as text, and tables

A new kind of report is a new module beside these. Reports read finished
results only (result.json and study.json dicts, `statistics` summaries): they
import no plan, worker, run or MLPerf code, nor JAX or TensorFlow, so a report
can be written on a machine without an accelerator or a display.
"""
