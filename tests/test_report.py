"""Markdown reports and their plots, written from fake runs."""

import os
import re

import numpy as np
import pytest
from PIL import Image

from train.experiments import significance
from train.experiments import statistics
from train.experiments import verdicts
from train.experiments.reports import comparison as comparison_report
from train.experiments.reports import markdown
from train.experiments.reports import plots
from train.experiments.reports import search as search_report
from train.experiments.reports import study as study_report

TARGET = 0.759
# seed -> final eval accuracy; seeds 0, 2 and 4 reach the target.
FINALS = {0: 0.761, 1: 0.755, 2: 0.770, 3: 0.740, 4: 0.765}


def _run(seed: int, final: float | None, status: str = 'success', offset: float = 0.0) -> dict:
  """A result.json dict with 12 evals rising from 0.6 to `final`."""
  evals = []
  for i in range(1, 13):
    accuracy = None if final is None else 0.6 + (final + offset - 0.6) * i / 12
    evals.append({'step': 200 * i, 'epoch': 200 * i / 39.25, 'accuracy': accuracy, 'loss': 1.0,
                  'seconds': 60.0 * i})
  hit = next((e for e in evals if e['accuracy'] is not None and e['accuracy'] >= TARGET), None)
  return {
      'status': status, 'seed': seed, 'target_accuracy': TARGET, 'reached_target': hit is not None,
      'steps_to_target': hit and hit['step'], 'seconds_to_target': hit and hit['seconds'],
      'epochs_to_target': hit and hit['epoch'],
      'final_eval_accuracy': None if final is None else final + offset,
      'final_train_accuracy': None if final is None else final + offset + 0.02,
      'steps_completed': 2400, 'num_train_steps': 2400, 'global_batch_size': 32768,
      'images_per_second': 1e5, 'run_seconds': 800.0,
      'evals': evals if final is not None else [],
  }


def _runs(offset: float = 0.0) -> list[dict]:
  return [_run(seed, final, offset=offset) for seed, final in FINALS.items()]


def _assert_png(path: str) -> None:
  assert os.path.isfile(path), path
  with Image.open(path) as image:
    assert image.format == 'PNG'
    assert image.width >= 600 and image.height >= 400
    colors = image.convert('RGB').getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 50  # Not a blank canvas.


def _assert_links_exist(markdown_path: str, expected: set[str]) -> None:
  text = open(markdown_path).read()
  links = set(re.findall(r'!\[[^\]]*\]\(([^)]+)\)', text))
  assert links == expected
  for link in links:
    _assert_png(os.path.join(os.path.dirname(markdown_path), link))


def test_study_report(tmp_path):
  runs = _runs()
  summary = statistics.summarize(runs)
  schedule = (list(range(0, 2400, 10)), [min(s / 700, 1.0) * 29.0 * (1 - s / 2400)
                                         for s in range(0, 2400, 10)])
  path = study_report.write_study_report(
      str(tmp_path), 'nesterov_b', summary, runs, schedule, 4321.0,
      {'optimizer': 'nesterov', 'global_batch_size': 32768, 'lr.peak': 7.5})

  assert path == str(tmp_path / 'report.md')
  text = open(path).read()
  _assert_links_exist(path, {'final_accuracy.png', 'eval_curves.png', 'learning_rate.png',
                             'time_to_target.png'})
  assert text.startswith('# Study: nesterov_b')
  assert '| optimizer | nesterov |' in text and '| lr.peak | 7.5 |' in text
  assert '| Runs that reached the target (75.90%) | 3 / 5 |' in text
  # Median final accuracy 76.10%, quartiles 75.50% and 76.50% (sorted .74 .755 .761 .765 .77).
  assert '| Final eval accuracy | 76.10% | 75.50% – 76.50% |' in text
  # Seeds 0, 2 and 4 reach the target at the last eval, step 2,400.
  assert '| Steps to target | 2,400 |' in text
  assert '4,321 s' in text and '4,000 s' in text  # Wall time and 5 x 800 s of runs.
  assert '| 1 | 75.50% | no | not reached | not reached | success |' in text
  assert '| 4 | 76.50% | yes | 2,400 | 720 s (12.0 min) | success |' in text
  # The first 5 runs, seeds 1 and 3 unreached: no MLPerf score.
  assert re.search(r"\| MLPerf score [^|]*\| — \|", text)
  # 3 of 5: the exact binomial interval is 14.7% to 94.7%.
  assert '| Fraction that reached it, 95% interval (exact binomial) | 60% (15% – 95%) |' in text
  # Kaplan-Meier: all 5 at risk at step 2,400, 3 reach the target there, 2 are censored.
  assert 'Median time to target, Kaplan-Meier: **2,400 steps (61.15 epochs)**' in text
  assert re.search(r'\| 2,400 \| 61\.1 \| 5 \| 3 \| 2 \| 60% \| \d+% – \d+% \|', text)


def test_study_report_without_schedule_and_with_a_diverged_run(tmp_path):
  runs = _runs()[:4] + [_run(7, None, status='diverged')]
  path = study_report.write_study_report(str(tmp_path), 'lars', statistics.summarize(runs),
                                         runs, None, 100.0, {})
  _assert_links_exist(path, {'final_accuracy.png', 'eval_curves.png', 'time_to_target.png'})
  assert not (tmp_path / 'learning_rate.png').exists()
  text = open(path).read()
  assert '| 7 | — | no | not reached | not reached | diverged |' in text
  assert '| Diverged runs (NaN or infinite loss) | 1 |' in text


def _studies() -> list[tuple[str, dict, list[dict]]]:
  lars, nesterov = _runs(), _runs(offset=-0.01)
  return [('lars', statistics.summarize(lars), lars),
          ('nesterov_config_b', statistics.summarize(nesterov), nesterov)]


def test_comparison_report(tmp_path):
  studies = _studies()
  (tmp_path / 'cmp' / 'lars').mkdir(parents=True)
  (tmp_path / 'cmp' / 'lars' / 'report.md').write_text('# Study: lars\n')
  path = comparison_report.write_comparison_report(str(tmp_path / 'cmp'), studies, 9000.0)
  _assert_links_exist(path, {'comparison.png', 'comparison_curves.png', 'time_to_target.png'})
  text = open(path).read()
  pair = significance.compare_studies([(name, runs) for name, _, runs in studies])[0]
  # The verdict in words, with the numbers of the pairwise comparison.
  assert verdicts.pairwise_verdict(pair) in text
  assert ('**No evidence that the final accuracies of lars and nesterov_config_b differ** '
          f"(Mann-Whitney p = {pair['mann_whitney_p']:.2f})") in text
  low, high = pair['difference_in_median_final_accuracy_ci95']
  assert f'is {100 * low:+.1f} to {100 * high:+.1f} points' in text
  assert (f"about {pair['seeds_per_config_for_80_percent_power']} seeds per config would "
          'detect a difference of this size (+1.0 points)') in text
  assert 'lars reached the target in 3 of 5 runs, nesterov_config_b in 1 of 5' in text
  assert '| lars − nesterov_config_b | +1.0 |' in text
  # The study that has a report of its own links to it.
  assert '| [lars](lars/report.md) | 3 / 5 | 76.10% | 78.10% |' in text
  # Offset -1%: only seed 2 (.76) reaches .759.
  assert '| nesterov_config_b | 1 / 5 | 75.10% | 77.10% | — | — | — |' in text
  # The Kaplan-Meier median in the last column: 3 of 5 reach the target at step 2,400.
  assert '| [lars](lars/report.md) | 3 / 5 | 76.10% | 78.10% | 2,400 | 720 | — | 2,400 |' in text


def test_comparison_figure_is_figure_4(tmp_path):
  """Each config's box holds its seeds' final accuracies, the target is a line, and a
  run without an accuracy is counted in the label, not drawn."""
  studies = _studies()
  diverged = _runs()[:4] + [_run(7, None, status='diverged')]
  studies.append(('virtual_bn_256', statistics.summarize(diverged), diverged))
  ax = plots.comparison_figure(studies).axes[0]
  points = [sorted(np.round(collection.get_offsets()[:, 1], 6)) for collection in ax.collections]
  expected = [sorted(round(100 * run['final_eval_accuracy'], 6) for run in runs
                     if run['final_eval_accuracy'] is not None) for _, _, runs in studies]
  assert points == expected
  # The boxes sit at 1, 2, 3, in the order of the studies: the points of each one's seeds.
  for position, collection in enumerate(ax.collections, start=1):
    assert np.all(np.abs(collection.get_offsets()[:, 0] - position) < 0.2)
  targets = [line for line in ax.lines if line.get_label().startswith('target')]
  assert [line.get_label() for line in targets] == ['target 75.90%']
  assert list(targets[0].get_ydata()) == pytest.approx([75.9, 75.9])
  assert [label.get_text() for label in ax.get_xticklabels()] == [
      'lars\n(5 runs)', 'nesterov_config_b\n(5 runs)',
      'virtual_bn_256\n(4 of 5 runs; 1 without an accuracy)']
  medians = [text.get_text() for text in ax.texts]
  assert medians == ['median\n76.10%', 'median\n75.10%', 'median\n75.80%']
  path = comparison_report.write_comparison_report(str(tmp_path), studies, 1.0)
  assert '![Final eval accuracy of each configuration, box plots' in open(path).read()
  _assert_png(str(tmp_path / 'comparison.png'))


def test_comparison_table_is_fixed_width():
  table = comparison_report.comparison_table(_studies())
  lines = table.splitlines()
  assert len(lines) == 4  # Header, rule, one line per config.
  assert len({len(line) for line in lines}) == 1
  assert lines[2].startswith('lars ') and '3 / 5' in lines[2] and '76.10%' in lines[2]
  assert lines[3].startswith('nesterov_config_b') and '1 / 5' in lines[3]
  assert 'Median final test accuracy' in lines[0] and 'MLPerf score' in lines[0]


def test_search_report_ranks_trials(tmp_path):
  trials = []
  for trial, (peak, power, optimizer, offset) in enumerate(
      [(1.0, 1, 'lars', -0.02), (30.0, 2, 'nesterov', 0.01), (5.0, 1, 'nesterov', 0.0),
       (12.0, 2, 'lars', None)]):
    summary = statistics.summarize(_runs(offset or 0.0))
    if offset is None:
      summary['median_final_accuracy'] = None
    trials.append({'trial': trial, 'summary': summary,
                   'params': {'lr.peak': peak, 'lr.warmup_power': power, 'optimizer': optimizer}})
  axes = ['lr.peak', 'lr.warmup_power', 'optimizer']
  path = search_report.write_search_report(str(tmp_path), axes, trials, 60.0)
  assert path == str(tmp_path / 'report.md')
  _assert_links_exist(path, {'search_axes.png'})
  rows = [line for line in open(path).read().splitlines() if re.match(r'\| \d+ \| \d+ \|', line)]
  assert [row.split(' | ')[1] for row in rows] == ['1', '2', '0', '3']
  # Offset +1%: seed 3 (.75) misses; steps 2,400, 2,200, 2,200, 2,400 and inf.
  assert rows[0] == '| 1 | 1 | 30 | 2 | nesterov | 77.10% | 76.50% – 77.50% | 4 / 5 | 2,400 |'
  assert rows[-1].startswith('| 4 | 3 | 12 | 2 | lars | — |')
  assert 'Best: trial 1' in open(path).read()


@pytest.mark.parametrize('pair, expected', [
    ((None, None), '—'), ((1400.0, None), '1,400 – ∞'),
    ((2000.0, 2200.5), '2,000 – 2,200.5')])
def test_number_range(pair, expected):
  assert markdown.number_range(pair) == expected


def _pair(**changes) -> dict:
  pair = {
      'a': 'lars', 'b': 'nesterov', 'num_runs': [5, 5],
      'difference_in_median_final_accuracy': -0.026,
      'difference_in_median_final_accuracy_ci95': [-0.081, 0.042],
      'mann_whitney_p': 0.41, 'wilcoxon_p': None, 'paired_seeds': None,
      'reached_target': [[3, 5], [5, 5]], 'fisher_exact_p': 0.44, 'logrank_p': 0.13,
      'logrank_time_unit': 'epochs', 'seeds_per_config_for_80_percent_power': 60,
      'power_by_seeds_per_config': {}, 'reasons': {'wilcoxon_p': 'the configs were not run '
                                                   'with the same seeds'},
  }
  pair.update(changes)
  for key in significance.P_VALUE_KEYS:
    pair.setdefault(f'{key}_holm', pair[key])
  return pair


def test_pairwise_verdict_in_words():
  text = verdicts.pairwise_verdict(_pair())
  assert text.startswith('**No evidence that the final accuracies of lars and nesterov differ** '
                         '(Mann-Whitney p = 0.41); the 95% interval of the difference in median '
                         'final accuracy (lars − nesterov) is -8.1 to +4.2 points; about 60 seeds '
                         'per config would detect a difference of this size (-2.6 points)')
  assert 'No paired test (the configs were not run with the same seeds).' in text
  assert 'no evidence that the hit rates differ (Fisher exact p = 0.44)' in text
  assert 'no evidence that the times to target differ' in text and 'p = 0.13' in text

  significant = verdicts.pairwise_verdict(_pair(
      mann_whitney_p=0.0004, wilcoxon_p=0.03, paired_seeds=[0, 1, 2, 3, 4], reasons={},
      seeds_per_config_for_80_percent_power=None))
  assert ('**The final accuracies of lars and nesterov differ** (Mann-Whitney p < 0.001): '
          "nesterov's median is 2.6 points above lars's") in significant
  assert 'Wilcoxon signed-rank p = 0.03' in significant and 'seeds 0–4' in significant

  more = verdicts.pairwise_verdict(_pair(
      seeds_per_config_for_80_percent_power=None,
      reasons={'seeds_per_config_for_80_percent_power': 'more than 200 (power 0.31 at 200)'}))
  assert 'more than 200 seeds per config would be needed' in more

  adjusted = verdicts.pairwise_verdict(_pair(mann_whitney_p=0.02, mann_whitney_p_holm=0.06),
                                       adjusted=True)
  assert 'No evidence' in adjusted and 'p = 0.06' in adjusted and 'Holm' in adjusted

  undefined = verdicts.pairwise_verdict(_pair(
      mann_whitney_p=None, difference_in_median_final_accuracy=None,
      difference_in_median_final_accuracy_ci95=[None, None], logrank_p=None,
      seeds_per_config_for_80_percent_power=None,
      reasons={'mann_whitney_p': 'a config has no runs', 'logrank_p': 'no run reached it'}))
  assert 'cannot be compared (a config has no runs)' in undefined
  assert 'the times to target cannot be compared (no run reached it)' in undefined


def test_comparison_report_of_three_configs_adjusts_p_values(tmp_path):
  studies = _studies() + [('third', statistics.summarize(_runs(0.005)), _runs(0.005))]
  text = open(comparison_report.write_comparison_report(str(tmp_path), studies, 1.0)).read()
  assert text.count('(p-values adjusted for the comparisons of every pair, Holm.)') == 3
  assert 'Mann-Whitney p (Holm-adjusted)' in text
