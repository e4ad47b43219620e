"""The order of the training examples (input_pipeline/order.py): fixed by the seed
and the step alone, whatever the number of processes."""

import time

import numpy as np
import pytest

from input_pipeline import order

N, B = 1000, 64


def _global_batch(seed: int, step: int, process_count: int) -> np.ndarray:
  """Global batch `step` as `process_count` processes read it, each its slice."""
  per_process = [order.process_slice(order.TrainOrder(seed, N, B).batch(step)[0], p,
                                     process_count) for p in range(process_count)]
  return np.concatenate(per_process)


def test_global_batches_are_the_same_on_1_2_and_4_processes():
  for step in (0, 1, 15, 16, 17, 1234):  # Batches 15 and 31 straddle epochs.
    ids = _global_batch(7, step, 1)
    assert len(ids) == B
    for process_count in (2, 4):
      np.testing.assert_array_equal(_global_batch(7, step, process_count), ids)
    np.testing.assert_array_equal(order.global_batch_indices(7, step, B, N), ids)


def test_two_seeds_give_other_batches():
  assert not np.array_equal(_global_batch(0, 0, 1), _global_batch(1, 0, 1))
  assert not np.array_equal(order.epoch_permutation(0, 3, N), order.epoch_permutation(1, 3, N))
  assert order.augment_seed(0) != order.augment_seed(1)


def test_each_epoch_is_a_new_permutation_of_every_example():
  train_order = order.TrainOrder(3, N, B)
  batches = [train_order.batch(step) for step in range(3 * N // B + 1)]
  ids = np.concatenate([b[0] for b in batches])
  epochs = np.concatenate([b[1] for b in batches])
  # Position k of the stream is in epoch k // N: batches straddle epochs, and
  # an epoch is N examples exactly, as train/run/budget.py counts it.
  np.testing.assert_array_equal(epochs, np.arange(len(ids)) // N)
  for epoch in range(3):
    in_epoch = ids[epoch * N:(epoch + 1) * N]
    np.testing.assert_array_equal(np.sort(in_epoch), np.arange(N))
    np.testing.assert_array_equal(in_epoch, order.epoch_permutation(3, epoch, N))
  assert not np.array_equal(ids[:N], ids[N:2 * N])


def test_a_batch_larger_than_the_split_spans_several_epochs():
  ids, epochs = order.TrainOrder(0, 10, 25).batch(1)  # Positions 25 to 49.
  np.testing.assert_array_equal(epochs, np.arange(25, 50) // 10)
  for epoch, part in [(2, slice(5, 10)), (3, slice(0, 10)), (4, slice(0, 10))]:
    np.testing.assert_array_equal(ids[epochs == epoch],
                                  order.epoch_permutation(0, epoch, 10)[part])


def test_a_batch_costs_the_same_at_any_step():
  # Resuming computes the batch of its step directly: a step 10^7 epochs into
  # ImageNet costs what the first does (one permutation of 1.28M ids).
  def seconds(step: int) -> float:
    start = time.perf_counter()
    order.TrainOrder(0, 1_281_167, 32_768).batch(step)
    return time.perf_counter() - start
  early = min(seconds(1) for _ in range(3))
  late = min(seconds(400_000_000) for _ in range(3))
  assert late < 3 * early + 0.05, (early, late)


def test_process_slice_and_eval_range():
  values = np.arange(12)
  assert order.process_slice(values, 1, 3).tolist() == [4, 5, 6, 7]
  with pytest.raises(ValueError, match='does not split over 5'):
    order.process_slice(values, 0, 5)
  with pytest.raises(ValueError, match='not in'):
    order.process_slice(values, 3, 3)
  shares = [order.eval_range(200, p, 3) for p in range(3)]
  assert [len(s) for s in shares] == [67, 67, 66]
  assert [i for s in shares for i in s] == list(range(200))


def test_bad_sizes_are_refused():
  with pytest.raises(ValueError, match='global_batch=0'):
    order.TrainOrder(0, N, 0)
  with pytest.raises(ValueError, match='step=-1'):
    order.TrainOrder(0, N, B).batch(-1)
