"""The reports of studies, comparisons and searches: one module per kind of report.

  study.py       one config over many seeds: report.md and its plots
  comparison.py  several configs side by side, with the verdict on each pair
  search.py      the trials of a search, ranked
  profile.py     several optimizers across several workloads: AlgoPerf's profiles
  robustness.py  a config on its base workload and on variants: the drop from the base
  staged.py      a staged search: each stage's trials, the chosen point, its confirmation
  sections.py    sections more than one kind shows: the runs not finished, the time
  plots.py       the figures of studies, comparisons and searches (matplotlib,
                 without pyplot's global state)
  optimizer_plots.py  an optimizer's own figures: schedules, trust ratios, profiles
  figure_style.py     the look every figure shares, and how one is written
  markdown.py    numbers as text, and tables

A new kind of report is a new module beside these. Reports read finished
results only (result.json and study.json dicts, `statistics` summaries): they
import no plan, worker, run or MLPerf code, nor JAX or TensorFlow, so a report
can be written on a machine without an accelerator or a display.
"""
