"""Input pipelines: splits (train / held-out search split / test) fed by grain.

Every dataset yields the same three splits. The *held-out* split is carved from
the training set and never used to train the PruningNet: the search scores
candidates on it, and the test split is touched only by the final evaluation.

Training batches come from a grain `MapDataset` indexed by step: batch `s` is a
pure function of (seed, s), so a resumed run sees exactly the data an
uninterrupted one would.
"""
from __future__ import annotations

import dataclasses
import functools

import grain
import numpy as np

from gp_jax.errors import UserError, unknown_name


@dataclasses.dataclass(frozen=True, eq=False)
class ArraySplit:
  """Images (N, H, W, C) float32, already normalised, and int32 labels."""
  images: np.ndarray
  labels: np.ndarray

  def __len__(self):
    return len(self.labels)


@dataclasses.dataclass(frozen=True, eq=False)
class Splits:
  train: ArraySplit
  holdout: ArraySplit   # the search's reward split, carved from train
  test: ArraySplit


class _Records:
  """Random-access source of {'image', 'label'} records over an ArraySplit."""

  def __init__(self, split: ArraySplit):
    self._split = split

  def __len__(self):
    return len(self._split)

  def __getitem__(self, index):
    return {"image": self._split.images[index], "label": self._split.labels[index]}


def _resize_bilinear(images: np.ndarray, size: int) -> np.ndarray:
  """(N, h, w) -> (N, size, size) bilinear, align-corners=False, in numpy."""
  n, h, w = images.shape

  def coords(src, dst):
    x = (np.arange(dst) + 0.5) * src / dst - 0.5
    x = np.clip(x, 0, src - 1)
    lo = np.floor(x).astype(int)
    hi = np.minimum(lo + 1, src - 1)
    return lo, hi, (x - lo).astype(np.float32)

  y0, y1, fy = coords(h, size)
  x0, x1, fx = coords(w, size)
  top = images[:, y0][:, :, x0] * (1 - fx) + images[:, y0][:, :, x1] * fx
  bottom = images[:, y1][:, :, x0] * (1 - fx) + images[:, y1][:, :, x1] * fx
  return top * (1 - fy)[None, :, None] + bottom * fy[None, :, None]


@functools.lru_cache(maxsize=4)
def load_digits(resolution: int = 32, holdout_size: int = 300,
                test_fraction: float = 0.2) -> Splits:
  """scikit-learn's bundled 8x8 digits (1,797 images, offline), upsampled.

  The split is fixed (its own seed, independent of the experiment seed):
  360 test images, `holdout_size` held-out search images, the rest train.
  """
  from sklearn.datasets import load_digits as sk_load_digits  # bundled, offline
  raw = sk_load_digits()
  images = raw.images.astype(np.float32) / 16.0  # values 0..16 -> [0, 1]
  images = _resize_bilinear(images, resolution)
  images = ((images - 0.5) / 0.5)[..., None].astype(np.float32)
  labels = raw.target.astype(np.int32)
  order = np.random.default_rng(20191122).permutation(len(labels))
  n_test = int(round(test_fraction * len(labels)))
  test, rest = order[:n_test], order[n_test:]
  if not 0 < holdout_size < len(rest) // 2:
    raise UserError(f"dataset.holdout_size must be in (0, {len(rest) // 2}) for digits, "
                    f"got {holdout_size}")
  holdout, train = rest[:holdout_size], rest[holdout_size:]
  pick = lambda idx: ArraySplit(images[idx], labels[idx])
  return Splits(train=pick(train), holdout=pick(holdout), test=pick(test))


def load_splits(dataset_config, resolution: int) -> Splits:
  """The splits of `dataset_config.name`."""
  name = dataset_config.name
  if name == "digits":
    return load_digits(resolution, dataset_config.get("holdout_size", 300))
  raise unknown_name("dataset (for training)", name, ["digits"])


def _random_shift(record, rng: np.random.Generator, pad: int):
  """Pad by `pad` pixels (edge values) and crop back at a random offset."""
  image = record["image"]
  h, w = image.shape[:2]
  padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
  dy, dx = rng.integers(0, 2 * pad + 1, size=2)
  return {"image": padded[dy:dy + h, dx:dx + w], "label": record["label"]}


def train_batches(split: ArraySplit, batch_size: int, *, seed: int,
                  shift: int = 4) -> grain.MapDataset:
  """Infinite shuffled, augmented batches; `dataset[step]` is batch `step`."""
  if batch_size > len(split):
    raise UserError(f"batch size {batch_size} exceeds the {len(split)} training examples")
  ds = grain.MapDataset.source(_Records(split)).shuffle(seed=seed).repeat()
  if shift:
    ds = ds.random_map(functools.partial(_random_shift, pad=shift), seed=seed + 1)
  return ds.batch(batch_size, drop_remainder=True)


def eval_batches(split: ArraySplit, batch_size: int):
  """The whole split in order, in fixed-size batches; padding has mask 0."""
  n = len(split)
  for start in range(0, n, batch_size):
    idx = np.arange(start, start + batch_size)
    mask = idx < n
    idx = np.minimum(idx, n - 1)
    yield {"image": split.images[idx], "label": split.labels[idx],
           "mask": mask.astype(np.float32)}


def stacked_batches(dataset: grain.MapDataset, first: int, count: int) -> dict:
  """`count` consecutive batches from index `first`, concatenated into one."""
  batches = [dataset[first + i] for i in range(count)]
  return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def concat(*splits: ArraySplit) -> ArraySplit:
  return ArraySplit(np.concatenate([s.images for s in splits]),
                    np.concatenate([s.labels for s in splits]))
