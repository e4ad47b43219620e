"""The Reality Check's Figure 1 (`python -m train.cli.schedule_figure`): the LARS
and Nesterov B schedules drawn from their config files, checked against a numpy
transcription of the schedule with Table 5's values."""

import numpy as np
import pytest
from PIL import Image

from train.cli import schedule_figure
from train.experiments.reports import optimizer_plots

FIGURE_1 = ['configs/mlperf_lars_32k.py', 'configs/nesterov_b.py']
# Table 5 of the Reality Check: (eta_peak, eta_final, t_warmup, p_warmup, p_decay); T = 2,512.
TABLE_5 = {'mlperf_lars_32k': (29.0, 1e-4, 706, 1.0, 2.0),
           'nesterov_b': (7.05, 6e-6, 706, 2.0, 2.0)}
T = 2_512


def _reference(peak: float, final: float, warmup: int, p_warmup: float, p_decay: float
               ) -> np.ndarray:
  """The polynomial schedule from 0 at every step 0..T, decaying over T - t_warmup + 1
  steps as the code behind the paper does (optim/schedules.py, piecewise_polynomial)."""
  t = np.arange(T + 1, dtype=np.float64)
  warm = peak * (t / warmup) ** p_warmup
  decay = final + (peak - final) * ((T + 1 - t) / (T + 1 - warmup)) ** p_decay
  return np.where(t < warmup, warm, decay)


@pytest.fixture(scope='module')
def curves():
  return schedule_figure.config_curves(FIGURE_1)


def test_curves_are_the_configs_schedules(curves):
  assert [name for name, _, _ in curves] == ['mlperf_lars_32k', 'nesterov_b']
  for name, steps, rates in curves:
    assert steps.tolist() == list(range(T + 1))
    np.testing.assert_allclose(rates, _reference(*TABLE_5[name]), rtol=2e-6, atol=1e-7,
                               err_msg=name)
  lars, nesterov = (rates for _, _, rates in curves)
  # Halfway through the warmup: linear for LARS, quadratic for Nesterov B.
  assert lars[353] == pytest.approx(29.0 / 2, rel=1e-6)
  assert nesterov[353] == pytest.approx(7.05 / 4, rel=1e-6)


def test_figure_draws_the_rates_and_their_shapes(curves):
  figure = optimizer_plots.schedules_figure(curves)
  rates_ax, shape_ax = figure.axes
  for ax, scale in ((rates_ax, lambda r: r), (shape_ax, lambda r: r / r.max())):
    assert len(ax.lines) == len(curves)
    for line, (name, steps, rates) in zip(ax.lines, curves):
      np.testing.assert_array_equal(line.get_xdata(), steps)
      np.testing.assert_allclose(line.get_ydata(), scale(rates), rtol=1e-12)
  labels = [line.get_label() for line in rates_ax.lines]
  assert labels == ['mlperf_lars_32k: peak 29 at step 706', 'nesterov_b: peak 7.05 at step 706']


def test_command_writes_the_png(tmp_path, capsys):
  out = tmp_path / 'figures' / 'figure_1.png'
  assert schedule_figure.main([*FIGURE_1, f'--out={out}']) == 0
  assert capsys.readouterr().out.strip() == str(out)
  with Image.open(out) as image:
    assert image.format == 'PNG' and image.width >= 1000
  # A second command never overwrites the figure the first wrote.
  before = out.read_bytes()
  with pytest.raises(SystemExit) as exit_info:
    schedule_figure.main([*FIGURE_1, f'--out={out}'])
  assert exit_info.value.code == 2
  assert capsys.readouterr().err == (f'error: --out={out} exists; name a new file, or move '
                                     'that one aside first\n')
  assert out.read_bytes() == before


def test_a_bad_config_is_one_line(tmp_path, capsys):
  with pytest.raises(SystemExit) as exit_info:
    schedule_figure.main(['configs/nesterov_b.py:no_such_variant', f'--out={tmp_path}/x.png'])
  assert exit_info.value.code == 2
  err = capsys.readouterr().err
  assert err.startswith("error: configs/nesterov_b.py:no_such_variant: unknown variant "
                        "'no_such_variant' of nesterov_b.py; valid: warmup_power_1")
  assert err.count('\n') == 1
  assert not (tmp_path / 'x.png').exists()


def test_a_step_schedule_is_drawn_step_by_step():
  """Goyal et al.'s recipe (the LAMB paper's Table 3): each step's own rate, the drop
  at epoch 30 (step 2,347.5 at 78.25 steps per epoch) included."""
  [(name, steps, rates)] = schedule_figure.config_curves(
      ['configs/lamb_paper/table3.py:adam_goyal'])
  assert name == 'table3.adam_goyal' and steps[-1] == 7_038
  assert rates[0] == 0.0 and rates[392] == pytest.approx(0.002)
  assert rates[2347] == pytest.approx(0.002) and rates[2348] == pytest.approx(0.0002)
  assert rates[-1] == pytest.approx(0.002 * 0.1**3)
