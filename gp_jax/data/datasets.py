"""The registry of dataset kinds: each gives the same three splits and the facts the model needs.

    digits        scikit-learn's bundled digits (offline; the default)
    cifar10       tfds ArrayRecord (prepared once with `tfds build`)
    imagenet2012  tfds ArrayRecord
    npz           a user's arrays: dataset.path=FILE.npz (npz.py)
    image_folder  a user's images: dataset.path=DIR (folder.py)

`info(dataset)` gives the facts (classes, channels, resolution, mean/std,
class names): static for built-in kinds, read from the files for a user's;
`load_splits(dataset, resolution)` the train / held-out search / test splits;
`check_available(dataset)` a one-line UserError, saying what to do, when the
data is missing or malformed. `dataset` is the config's `dataset` section (a
ConfigDict, or the dict a network.json stores).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from gp_jax.data import digits, folder, npz
from gp_jax.data.info import BUILTIN, DatasetInfo
from gp_jax.data.splits import Splits
from gp_jax.runtime.errors import unknown_name, UserError


def _tfds_load(dataset, resolution):
  from gp_jax.data import tfds_source  # tensorflow_datasets imports in seconds: only when used
  return tfds_source.load_splits(dataset, resolution)


def _tfds_check(dataset):
  from gp_jax.data import tfds_source
  tfds_source.check_available(dataset)


@dataclasses.dataclass(frozen=True)
class DatasetKind:
  info: Callable[..., DatasetInfo]   # dataset config -> facts
  load: Callable[..., Splits]        # (dataset config, resolution) -> splits
  check: Callable[..., None]         # dataset config -> None, or a UserError
  takes_path: bool                   # read from dataset.path (a user's data)


def _static(name):
  return lambda dataset: BUILTIN[name]


KINDS = {
    "digits": DatasetKind(_static("digits"), digits.load_splits, lambda d: None, False),
    "cifar10": DatasetKind(_static("cifar10"), _tfds_load, _tfds_check, False),
    "imagenet2012": DatasetKind(_static("imagenet2012"), _tfds_load, _tfds_check, False),
    "npz": DatasetKind(npz.info, npz.load_splits, npz.info, True),
    "image_folder": DatasetKind(folder.info, folder.load_splits, folder.info,
                 True),
}


def kind(dataset) -> DatasetKind:
  name = dataset.get("name")
  if name not in KINDS:
    raise unknown_name("dataset", name, KINDS)
  k = KINDS[name]
  if k.takes_path and not dataset.get("path", ""):
    raise UserError(f"dataset.name={name} needs dataset.path (see docs/own_data.md)")
  if not k.takes_path and dataset.get("path", ""):
    raise UserError(f"dataset.path is only for dataset.name=npz or image_folder; "
                    f"{name} is built in: drop dataset.path")
  return k


def info(dataset) -> DatasetInfo:
  return kind(dataset).info(dataset)


def load_splits(dataset, resolution: int) -> Splits:
  return kind(dataset).load(dataset, resolution)


def check_available(dataset) -> None:
  kind(dataset).check(dataset)
