"""The throughput benchmark: its table, its modes, its errors, and no TensorFlow.

Tiny models and few steps: the tests check what is measured and printed, not the
speed.
"""

import os
import subprocess
import sys

import ml_collections
import pytest

from train.bench import throughput

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_ARGS = ['--config=configs/embedded_lars.py', '--config.image_size=8',
             '--config.model.width=4', '--config.model.virtual_batch_size=8',
             '--per_device_batch_size=16', '--warmup_steps=1', '--steps=2',
             '--repetitions=2']
# Run as `python main.py bench ...` by a Python in which importing TensorFlow,
# tfds or clu fails, as it would where they are not installed.
WITHOUT_TENSORFLOW = """
import runpy, sys
for name in ('tensorflow', 'tensorflow_datasets', 'clu'):
  sys.modules[name] = None
sys.argv = ['main.py', 'bench', *sys.argv[1:]]
runpy.run_path('main.py', run_name='__main__')
"""


def _bench_without_tensorflow(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, '-c', WITHOUT_TENSORFLOW, *args], cwd=REPO,
                        capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow  # Compiles and times train steps (25 s).
def test_synthetic_mode_runs_without_tensorflow_and_prints_a_table():
  # A known peak: measuring the CPU's matmul rate would only add time here.
  result = _bench_without_tensorflow(*TINY_ARGS, '--peak_tflops=0.5')
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.splitlines()
  assert lines[0].startswith('ResNet-10 v1.5 width 4, small stem')
  assert '8 px, float32; batch 16 (16 per device) on 1 x' in lines[0]
  assert any(line.startswith('model FLOPs per image: ') for line in lines)
  assert 'peak: 0.5 TFLOP/s (--peak_tflops=0.5 per device)' in lines
  rows = [line.split(' | ') for line in lines if line.startswith('| train step')
          or line.startswith('| model forward+backward')]
  assert len(rows) == 2
  for row in rows:
    images_per_second = float(row[1].replace(',', ''))
    low, high = (float(x.replace(',', '')) for x in row[2].split('-'))
    assert 0 < low <= images_per_second <= high
    assert row[-1].rstrip(' |').endswith('%')  # MFU.
  assert '2 windows of 2 steps each' in lines


def test_bad_input_is_one_line_and_exit_status_2():
  result = _bench_without_tensorflow('--modes=synthetic,speed')
  assert result.returncode == 2
  assert result.stdout == ''
  assert result.stderr.count('\n') == 1
  assert result.stderr.startswith('error: --modes=synthetic,speed: want one or more of '
                                  'synthetic, input, train')


def _measurement(kind, images_per_second, flops=None):
  seconds = 10 * 64 / images_per_second
  return throughput.Measurement(kind, kind, 64, 10, (seconds, seconds), (1.0, 1.0), flops)


def test_verdict_says_which_side_bounds_a_run():
  step = _measurement(throughput.STEP, 1000.0, 1e9)
  assert throughput.verdict([step]) is None
  slow_input = throughput.verdict([step, _measurement(throughput.INPUT_ONLY, 500.0)])
  assert slow_input.startswith('verdict: INPUT-BOUND: the input pipeline alone delivers '
                               '0.50x what the step consumes')
  fast_input = throughput.verdict([step, _measurement(throughput.INPUT_ONLY, 3000.0),
                              _measurement(throughput.LOOP, 900.0, 1e9)])
  assert fast_input == ('verdict: compute-bound: the input pipeline alone delivers 3.00x '
                        'what the step consumes; the loop with real input runs at 90% of '
                        'the synthetic step rate')


def test_mfu_is_achieved_model_flops_over_peak():
  step = _measurement(throughput.STEP, 1000.0, 2e9)
  assert step.flops_per_second == pytest.approx(2e12)
  assert step.step_milliseconds == pytest.approx(64.0)
  assert step.cpu_milliseconds == pytest.approx(100.0)
  config = throughput.bench_config(ml_collections.ConfigDict(
      {'global_batch_size': 1, 'image_size': 8, 'mlperf': {'submission_division': 'closed'},
       'model': {'depth': 10, 'version': 'v1.5', 'width': 4, 'stem': 'small',
                 'dtype': 'float32'}}), 64, 1)
  assert config.global_batch_size == 64 and config.mlperf.submission_division == 'open'
  table = throughput.format_table(config, [step], throughput.Peak(8e12, 'test'), {'train': 1.0}, 10)
  row = [line for line in table.splitlines() if line.startswith(f'| {throughput.STEP} |')]
  assert row == ['| step | 1,000.0 | 1,000.0-1,000.0 | 64.0 | 100.0 | 2 | 25.0% |']


@pytest.mark.slow  # Times the input and the train loop (45 s).
def test_input_and_train_modes_on_real_data(tiny_data_dir):
  args = [*TINY_ARGS, '--config.dataset=embedded_shapes/tiny',
          f'--config.data_dir={tiny_data_dir}',
          '--modes=input,train', '--input_threads=1', '--peak_tflops=0.5']
  result = subprocess.run([sys.executable, 'main.py', 'bench', *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.splitlines()
  assert any(line.startswith('| input pipeline alone | ') for line in lines)
  loop_row = next(line for line in lines if line.startswith('| train loop, real input | '))
  assert loop_row.endswith('% |')
  # No synthetic step: the input is compared with what the loop consumes.
  assert lines[-1].startswith('verdict: ')
  assert lines[-1].endswith('x what the loop with real input consumes')
