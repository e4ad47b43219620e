"""Static facts about the datasets the harness knows, importable without TensorFlow.

The training loop, the model and the benchmark need the number of classes and the
ImageNet epoch size without paying for a TensorFlow import, so they live here rather
than in the tfds builders.
"""

import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  num_classes: int
  num_train_examples: int
  num_eval_examples: int
  eval_split: str


# Values of config.input.cache_eval (input_pipeline/pipeline.py decides by
# them): here, so that the config's validation needs no TensorFlow.
CACHE_EVAL_MODES = ('auto', 'always', 'never')

IMAGENET2012 = 'imagenet2012'
EMBEDDED_SHAPES = 'embedded_shapes'
EMBEDDED_SHAPES_TINY = 'embedded_shapes/tiny'

_DATASETS = {
    IMAGENET2012: DatasetInfo(
        num_classes=1000, num_train_examples=1_281_167,
        num_eval_examples=50_000, eval_split='validation'),
    EMBEDDED_SHAPES: DatasetInfo(
        num_classes=10, num_train_examples=10_000,
        num_eval_examples=1_000, eval_split='validation'),
    EMBEDDED_SHAPES_TINY: DatasetInfo(
        num_classes=10, num_train_examples=512,
        num_eval_examples=200, eval_split='validation'),
}


def dataset_names() -> list[str]:
  return sorted(_DATASETS)


def get_dataset_info(name: str) -> DatasetInfo:
  """Returns the facts for dataset `name`; raises ValueError naming the valid ones."""
  if name not in _DATASETS:
    raise ValueError(
        f'unknown dataset {name!r}; known datasets: {", ".join(dataset_names())}')
  return _DATASETS[name]


def looks_prepared(dataset: str, data_dir: str) -> bool:
  """Whether some version of `dataset` was built in `data_dir`, seen without TensorFlow.

  tfds builds into an `incomplete.*` folder and renames it to the version when
  done, so a version folder with its dataset_info.json is a finished build. A
  cheap first look for errors that must come before TensorFlow's import chatter;
  datasets.is_prepared is the exact check.
  """
  root = os.path.join(os.path.expanduser(data_dir), dataset)
  return os.path.isdir(root) and any(
      os.path.isfile(os.path.join(root, version, 'dataset_info.json'))
      for version in os.listdir(root))


def prepare_command(dataset: str, data_dir: str) -> str:
  """The command that prepares `dataset` in `data_dir`."""
  del dataset  # ImageNet is the only dataset that needs preparing by hand.
  return (f'python -m input_pipeline.prepare_imagenet --data_dir={data_dir} '
          '--manual_dir=DIR_WITH_ILSVRC2012_TARS')

# The file format of every dataset the harness builds: ArrayRecord, which tfds
# reads by example id (input_pipeline/pipeline.py).
FILE_FORMAT = 'array_record'


# Written next to prepared ImageNet: the images left out because they do not
# decode (input_pipeline/imagenet_builder.py), {'count': n, 'images': [...]}.
SKIPPED_IMAGES_FILE = 'skipped_images.json'
