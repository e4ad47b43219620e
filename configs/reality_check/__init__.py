"""The searches of the Reality Check's Appendix D (Nado et al.), as config files.

`table8_*.py`: Table 8's two-stage searches behind Table 4, one file per pairing
of optimizers. `table9.py` to `table23.py`: the Nesterov tuning journey of
Appendix D.4 (Table 9 itself is configs/nesterov_search_table9.py). The modules
without `table` in their name hold what the files share; they are not configs.
"""
