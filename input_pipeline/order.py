"""The order of the training examples: a function of the seed and the step alone.

The training stream is one sequence of example positions, k = 0, 1, 2, ...:
position k is example `permutation(seed, epoch)[k % N]` of epoch k // N, where N
is the size of the train split and each epoch has a permutation of its own.
Global batch t holds positions t*B to (t+1)*B - 1, in that order. So a batch
may straddle two epochs (nothing is dropped, nothing repeated), and an epoch is
exactly N examples, as MLPerf counts it (`train/run/budget.py`: epoch = step *
B / N).

Nothing here depends on the number of processes or devices: process p of P
takes the contiguous slice p of every global batch (`process_slice`), which is
exactly the rows its devices hold in the data-parallel mesh, so every device
sees the same examples, and every virtual-BN group the same group, on 1 or 8
hosts. The position of the stream is the step, so a resumed run (on any number
of processes) starts at its step at once: only the current epoch's permutation
is drawn, whatever the step.

Pure numpy: no TensorFlow, so the tests and the loop can reason about the order
without reading any data.
"""

import numpy as np

# SeedSequence spawn keys keep the order and the augmentation streams of one
# seed independent of each other.
_ORDER_KEY = 0
_AUGMENT_KEY = 1


def epoch_permutation(seed: int, epoch: int, num_examples: int) -> np.ndarray:
  """The example ids of `epoch`, in their order: a permutation of num_examples."""
  sequence = np.random.SeedSequence([seed, epoch], spawn_key=(_ORDER_KEY,))
  return np.random.default_rng(sequence).permutation(num_examples)


def augment_seed(seed: int) -> int:
  """The seed of the augmentations; each example's is keyed by it, its id and
  its epoch (input_pipeline/pipeline.py)."""
  sequence = np.random.SeedSequence([seed], spawn_key=(_AUGMENT_KEY,))
  return int(sequence.generate_state(1, dtype=np.uint32)[0])


class TrainOrder:
  """The global batches of one seed over a train split of `num_examples`.

  Keeps the permutations of the last epochs it was asked about, so reading the
  batches in sequence draws each permutation once (ImageNet's 1.28M ids: about
  20 ms per epoch).
  """

  def __init__(self, seed: int, num_examples: int, global_batch: int):
    for name, value in [('num_examples', num_examples), ('global_batch', global_batch)]:
      if value <= 0:
        raise ValueError(f'{name}={value} must be > 0')
    self.seed, self.num_examples, self.global_batch = seed, num_examples, global_batch
    self._permutations: dict[int, np.ndarray] = {}

  def _permutation(self, epoch: int) -> np.ndarray:
    if epoch not in self._permutations:
      if len(self._permutations) >= 2:  # A batch spans at most ceil(B / N) + 1 epochs.
        self._permutations.pop(min(self._permutations))
      self._permutations[epoch] = epoch_permutation(self.seed, epoch, self.num_examples)
    return self._permutations[epoch]

  def batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
    """(example ids, epochs) of global batch `step`, each int64 (global_batch,)."""
    if step < 0:
      raise ValueError(f'step={step} must be >= 0')
    positions = np.arange(step * self.global_batch, (step + 1) * self.global_batch,
                          dtype=np.int64)
    epochs = positions // self.num_examples
    ids = np.empty_like(positions)
    for epoch in np.unique(epochs):
      in_epoch = epochs == epoch
      ids[in_epoch] = self._permutation(int(epoch))[positions[in_epoch] % self.num_examples]
    return ids, epochs


def global_batch_indices(seed: int, step: int, global_batch: int,
                         num_examples: int) -> np.ndarray:
  """The example ids of global batch `step` of `seed`, in order."""
  return TrainOrder(seed, num_examples, global_batch).batch(step)[0]


def process_slice(values: np.ndarray, process_index: int, process_count: int) -> np.ndarray:
  """Process `process_index`'s contiguous share of a global batch (its first axis)."""
  if not 0 <= process_index < process_count:
    raise ValueError(f'process_index={process_index} is not in [0, {process_count})')
  if len(values) % process_count:
    raise ValueError(f'a batch of {len(values)} does not split over {process_count} '
                     'processes')
  size = len(values) // process_count
  return values[process_index * size:(process_index + 1) * size]


def eval_range(num_examples: int, process_index: int, process_count: int) -> range:
  """Process `process_index`'s contiguous share of the eval split's ids: every id
  on exactly one process, the first shares one larger where it does not divide."""
  if not 0 <= process_index < process_count:
    raise ValueError(f'process_index={process_index} is not in [0, {process_count})')
  bounds = [-(-num_examples * p // process_count) for p in range(process_count + 1)]
  return range(bounds[process_index], bounds[process_index + 1])
