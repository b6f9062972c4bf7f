"""The split types every dataset kind returns (a leaf module: it imports no loader).

A split is random-access: `raw(i)` is example i as stored (decoded, not
augmented), `split[i]` is it preprocessed for evaluation, `train_fn(record, rng)`
augments a raw record for training. `Splits` holds train / the held-out search
split carved from train / test, plus what the model side needs (`info`).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

from gp_jax.data import augment

import numpy as np

from gp_jax.runtime.errors import UserError

# The held-out search sample is fixed per dataset, not per experiment, so every
# seed and method of a study scores candidates on the same images.
HOLDOUT_SEED = 20191122


def _identity(record):
  return record


def _shift(record, rng):
  return augment.random_shift(record, rng, pad=4)


@dataclasses.dataclass(frozen=True, eq=False)
class ArraySplit:
  """In-memory images (N, H, W, C) and int32 labels; `eval_fn` preprocesses one record."""
  images: np.ndarray
  labels: np.ndarray
  train_fn: Callable = _shift
  eval_fn: Callable = _identity

  def __len__(self):
    return len(self.labels)

  def raw(self, index):
    return {"image": self.images[index], "label": self.labels[index]}

  def __getitem__(self, index):
    return self.eval_fn(self.raw(index))

  def subset(self, indices) -> "ArraySplit":
    return dataclasses.replace(self, images=self.images[indices], labels=self.labels[indices])


@dataclasses.dataclass(frozen=True, eq=False)
class SourceSplit:
  """Examples `indices` of a random-access source (tfds ArrayRecord, image files).

  `raw(i)` reads (and decodes) one record; `train_fn(record, rng)` augments it
  for training, `eval_fn(record)` preprocesses it deterministically.
  """
  source: Any
  indices: np.ndarray
  train_fn: Callable
  eval_fn: Callable

  def __len__(self):
    return len(self.indices)

  def raw(self, index):
    record = self.source[int(self.indices[index])]
    return {"image": record["image"], "label": record["label"]}

  def __getitem__(self, index):
    return self.eval_fn(self.raw(index))

  def subset(self, indices) -> "SourceSplit":
    return dataclasses.replace(self, indices=self.indices[indices])


@dataclasses.dataclass(frozen=True, eq=False)
class Splits:
  train: Any    # ArraySplit | SourceSplit
  holdout: Any  # the search's reward split, carved from train
  test: Any


def holdout_order(num_train: int, holdout_size: int) -> tuple[np.ndarray, np.ndarray]:
  """(held-out indices, train indices) of a train set: a fixed random sample.

  The held-out indices stay in random order, so its first k examples (the
  search's `eval_examples`) are a random sample too, whatever order the
  train set is stored in.
  """
  order = np.random.default_rng(HOLDOUT_SEED).permutation(num_train)
  return order[:holdout_size], np.sort(order[holdout_size:])




def path_error(path: str, what: str) -> UserError:
  """The one-line error about a user's dataset file or folder."""
  return UserError(f"dataset.path {path}: {what}")


def user_path(dataset_config, needs: str) -> str:
  """The absolute `dataset.path` of a user's dataset (`~` expanded); an error saying
  what the kind `needs` when it is empty."""
  raw = dataset_config.get("path", "")
  if not raw:
    raise UserError(f"dataset.name={dataset_config.get('name')} needs dataset.path={needs}")
  return os.path.abspath(os.path.expanduser(str(raw)))
