"""The grids of the LAMB paper's Appendix H.1, which tuned Table 3's AdaGrad, Adam
and AdamW at batch 16K (each point one 90-epoch run), as grid searches.

Each grid_*.py file's get_search() is one stage in mode 'grid': every point of
the product of its Choice axes, one seed each, as the paper ran them, and no
confirming seeds (confirm_seeds=0): the paper printed the single run of each
point, and Table 3 the best of them. Each file's get_config() is its best point,
which the trials override; to see how much of that point was its seed, run it
again over seeds (`--config=FILE --num_seeds=5`; Table 3's best points are also
the variants of table3.py).

The rates are transcribed as printed (0.010 as 0.01). Each file's docstring
gives its table's best point and accuracy; tests/test_lamb_paper.py checks the
grids and the best points against the printed tables.

AdamW's tuning sets are grids of rate and weight decay, either with the
pipeline's L2 0.01 at every point (`optimizer.l2` in get_config(); the files
named `_l2`: Tables 13 to 16, and 21 and 22 with the recipe) or without L2
(Tables 17 to 20, and 23 to 25 with the recipe).
"""

from configs import search_space

# Tables 9 and 10 (AdaGrad, plain and with Goyal et al.'s recipe).
ADAGRAD_RATES = (0.0001, 0.001, 0.002, 0.004, 0.008, 0.01, 0.02, 0.04, 0.08, 0.1, 0.2, 0.4,
                 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 30.0,
                 40.0, 50.0)
# Table 11 (plain Adam).
ADAM_RATES = (0.0001, 0.0002, 0.0004, 0.0006, 0.0008, 0.001, 0.002, 0.004, 0.006, 0.008,
              0.01)
# Table 12 (Adam with the recipe).
ADAM_GOYAL_RATES = (0.0001, 0.0002, 0.0004, 0.0006, 0.0008, 0.001, 0.002, 0.004, 0.006,
                    0.008, 0.01, 0.012, 0.014, 0.016, 0.02, 0.04, 0.06, 0.08, 0.1)
# Tables 13 to 20, 24 and 25 (AdamW).
ADAMW_RATES = (0.0001, 0.0002, 0.0004, 0.0006, 0.0008, 0.001, 0.002, 0.004, 0.006, 0.008,
               0.01, 0.012, 0.014, 0.016, 0.018, 0.02, 0.025, 0.03, 0.04, 0.05)
# Tables 21 to 23 (AdamW with the recipe, all but Tables 24 and 25): the
# first ten of ADAMW_RATES.
ADAMW_GOYAL_SHORT_RATES = ADAMW_RATES[:10]
# Tables 13 to 16 and 17 to 20: one weight decay per table.
ADAMW_WEIGHT_DECAYS = (1e-5, 1e-4, 1e-3, 1e-2)


def grid(name: str, axes: dict[str, tuple[float, ...]]) -> search_space.Search:
  """One grid stage named `name` over `axes` (config key -> values), one seed per point."""
  space = tuple(search_space.Choice(key, values) for key, values in axes.items())
  return search_space.Search(
      stages=(search_space.Stage(name, space, mode='grid', seeds_per_trial=1),),
      confirm_seeds=0)
