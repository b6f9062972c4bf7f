"""CIFAR-10 and ImageNet splits from tfds ArrayRecord files (`tfds.data_source`).

No TensorFlow is needed to train: `tfds.data_source` reads the ArrayRecord
files prepared once with `tfds build` and decodes each image when it is read,
which happens in grain's worker processes when `dataset.worker_count > 0`.

The held-out search split is a seeded random sample of `dataset.holdout_size`
training examples (ImageNet: 50,000 = 50 per class on average, as
MetaPruning's held-out set; CIFAR-10: 5,000); the PruningNet never trains on it.
The test split is ImageNet's `validation` / CIFAR-10's `test`.
"""
from __future__ import annotations

import functools

import numpy as np
from absl import logging

from gp_jax.data import augment
from gp_jax.data.splits import HOLDOUT_SEED, SourceSplit, Splits
from gp_jax.runtime.errors import UserError

# tfds name -> (train split, test split)
SPLITS = {"cifar10": ("train", "test"), "imagenet2012": ("train", "validation")}


def prepare_command(name: str, data_dir: str) -> str:
  """The one-time command that writes the ArrayRecord files."""
  where = f" --data_dir={data_dir}" if data_dir else ""
  manual = ""
  if name == "imagenet2012":
    manual = (f" --manual_dir={data_dir or '~/tensorflow_datasets'}/downloads/manual"
              " (with ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar in it)")
  return f"tfds build {name} --file_format=array_record{where}{manual}"


def _source(name: str, split: str, data_dir: str):
  import tensorflow_datasets as tfds  # heavy (seconds): only when a tfds dataset is read
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.ERROR)  # tfds warns about each folder it probes
  try:
    return tfds.data_source(name, split=split, data_dir=data_dir or None, download=False)
  except Exception as e:  # pylint: disable=broad-except  # not built, wrong format, ...
    reason = " ".join(str(e).split())[:160]
    raise UserError(f"dataset {name} ({split}) is not ready ({type(e).__name__}: {reason}); "
                    f"prepare it once with: {prepare_command(name, data_dir)} "
                    "(building needs tensorflow installed; training does not)") from None
  finally:
    logging.set_verbosity(verbosity)


def check_available(dataset_config) -> None:
  name, data_dir = dataset_config.name, dataset_config.get("data_dir", "")
  for split in SPLITS[name]:
    _source(name, split, data_dir)


def transforms(name: str, resolution: int, lighting: float, flip: bool = True):
  """(train_fn, eval_fn) for the dataset at `resolution`."""
  if name == "cifar10":
    return (functools.partial(augment.pad_crop_flip, size=resolution, flip=flip),
            functools.partial(augment.resize_only, size=resolution))
  return (functools.partial(augment.random_resized_crop_flip, size=resolution,
                            lighting=lighting, flip=flip),
          functools.partial(augment.resize_center_crop, size=resolution))


def load_splits(dataset_config, resolution: int) -> Splits:
  name, data_dir = dataset_config.name, dataset_config.get("data_dir", "")
  train_name, test_name = SPLITS[name]
  train_source = _source(name, train_name, data_dir)
  test_source = _source(name, test_name, data_dir)
  n, holdout = len(train_source), int(dataset_config.holdout_size)
  if not 0 < holdout < n // 2:
    raise UserError(f"dataset.holdout_size ({holdout}) must be below half of the {n} "
                    f"{name} training examples found")
  order = np.random.default_rng(HOLDOUT_SEED).permutation(n)
  train_fn, eval_fn = transforms(name, resolution, float(dataset_config.get("lighting", 0.0)),
                                 bool(dataset_config.get("flip", True)))
  split = lambda source, idx: SourceSplit(source, np.sort(idx), train_fn, eval_fn)  # pylint: disable=unnecessary-lambda-assignment
  return Splits(train=split(train_source, order[holdout:]),
                holdout=split(train_source, order[:holdout]),
                test=split(test_source, np.arange(len(test_source))))
