"""Input pipelines: splits (train / held-out search split / test) fed by grain.

Every dataset yields the same three splits. The *held-out* split is carved from
the training set and never used to train the PruningNet: the search scores
candidates on it, and the test split is touched only by the final evaluation.
`digits` lives in memory (`ArraySplit`); CIFAR-10 and ImageNet are read from
tfds ArrayRecord files (`SourceSplit`, see `tfds_data`) and augmented per image
(`augment`), in grain worker processes when `dataset.worker_count > 0`.

Training batches come from a grain `MapDataset` indexed by step: batch `s` is a
pure function of (seed, s), so a resumed run sees exactly the data an
uninterrupted one would (`iterate(dataset, start)` starts at batch `start`).
Each JAX process reads and augments only its slice of each global batch.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import Any, Callable, Iterator

import grain
import numpy as np

from gp_jax import augment
from gp_jax.errors import UserError


def _identity(record):
  return record


@dataclasses.dataclass(frozen=True, eq=False)
class ArraySplit:
  """In-memory images (N, H, W, C), already normalised float32, and int32 labels."""
  images: np.ndarray
  labels: np.ndarray
  train_fn: Callable = functools.partial(augment.random_shift, pad=4)
  eval_fn: Callable = _identity

  def __len__(self):
    return len(self.labels)

  def raw(self, index):
    return {"image": self.images[index], "label": self.labels[index]}

  def __getitem__(self, index):
    return self.raw(index)

  def subset(self, indices) -> "ArraySplit":
    return dataclasses.replace(self, images=self.images[indices], labels=self.labels[indices])


@dataclasses.dataclass(frozen=True, eq=False)
class SourceSplit:
  """Examples `indices` of a random-access source (a tfds ArrayRecord data source).

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


class _Raw:
  """grain source over a split's raw (undecoded-augmentation) records."""

  def __init__(self, split):
    self._split = split

  def __len__(self):
    return len(self._split)

  def __getitem__(self, index):
    return self._split.raw(index)


class _EvalRecords:
  """grain source: the split's preprocessed records padded to `total`, with a mask."""

  def __init__(self, split, total: int):
    self._split, self._total = split, total

  def __len__(self):
    return self._total

  def __getitem__(self, index):
    n = len(self._split)
    record = dict(self._split[min(index, n - 1)])
    record["mask"] = np.float32(index < n)
    return record


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
  pick = lambda idx: ArraySplit(images[idx], labels[idx])  # pylint: disable=unnecessary-lambda-assignment
  return Splits(train=pick(train), holdout=pick(holdout), test=pick(test))


def check_available(dataset_config) -> None:
  """A one-line UserError (with the command that prepares it) if the dataset is missing."""
  if dataset_config.name != "digits":
    from gp_jax import tfds_data
    tfds_data.check_available(dataset_config)


def load_splits(dataset_config, resolution: int) -> Splits:
  """The splits of `dataset_config.name`."""
  name = dataset_config.name
  if name == "digits":
    return load_digits(resolution, dataset_config.get("holdout_size", 300))
  from gp_jax import tfds_data
  return tfds_data.load_splits(dataset_config, resolution)


class _ProcessSlice:
  """grain source: process `index`'s part of each global batch of an infinite dataset.

  Element `i` is element `j` of global batch `step` (`step, j = divmod(i, b)`,
  b = the per-process batch): the processes' slices concatenated are exactly the
  global batch one process would make, so results do not depend on the
  number of processes, and each process reads and augments only its slice.
  """

  def __init__(self, dataset, global_batch: int, count: int, index: int):
    self._dataset, self._global, self._index = dataset, global_batch, index
    self._local = global_batch // count

  def __len__(self):
    return len(self._dataset)

  def __getitem__(self, i):
    step, j = divmod(i, self._local)
    return self._dataset[step * self._global + self._index * self._local + j]


def train_batches(split, batch_size: int, *, seed: int, augment: bool = True,
                  process_index: int = 0, process_count: int = 1) -> grain.MapDataset:
  """Infinite shuffled batches; `dataset[step]` is batch `step`, a function of (seed, step).

  `batch_size` is the global batch: each of `process_count` processes makes its
  slice of `batch_size // process_count` examples (process `process_index`'s
  part of the global batch; see `_ProcessSlice`). `augment=False` gives eval
  preprocessing (for BatchNorm recalibration).
  """
  if batch_size % process_count:
    raise UserError(f"batch size {batch_size} is not divisible by the {process_count} "
                    "processes")
  if batch_size > len(split):
    raise UserError(f"batch size {batch_size} exceeds the {len(split)} training examples")
  ds = grain.MapDataset.source(_Raw(split)).shuffle(seed=seed).repeat()
  ds = ds.random_map(split.train_fn, seed=seed + 1) if augment else ds.map(split.eval_fn)
  if process_count > 1:
    ds = grain.MapDataset.source(_ProcessSlice(ds, batch_size, process_count, process_index))
  return ds.batch(batch_size // process_count, drop_remainder=True)


def iterate(dataset: grain.MapDataset, start: int, worker_count: int = 0) -> Iterator:
  """Batches `start`, `start + 1`, ... of `dataset`, decoded in `worker_count`
  grain worker processes (0: in this process)."""
  if worker_count <= 0:
    return (dataset[s] for s in itertools.count(start))
  return _prefetch(dataset[start:], worker_count)


def _prefetch(dataset: grain.MapDataset, worker_count: int) -> Iterator:
  from absl import flags
  if not flags.FLAGS.is_parsed():  # grain reads its absl flags (e.g. under pytest)
    flags.FLAGS.mark_as_parsed()
  return iter(dataset.to_iter_dataset().mp_prefetch(
      grain.MultiprocessingOptions(num_workers=worker_count)))


def eval_batches(split, batch_size: int, worker_count: int = 0):
  """The whole split in order, in fixed-size batches; padding has mask 0."""
  total = -(-len(split) // batch_size) * batch_size
  ds = grain.MapDataset.source(_EvalRecords(split, total)).batch(batch_size)
  if worker_count <= 0:
    return (ds[i] for i in range(len(ds)))
  return _prefetch(ds, worker_count)


def stacked_batches(dataset: grain.MapDataset, first: int, count: int) -> dict:
  """`count` consecutive batches from index `first`, concatenated into one."""
  batches = [dataset[first + i] for i in range(count)]
  return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def concat(a, b):
  """Two splits of the same data as one (retraining on train + held-out)."""
  if isinstance(a, ArraySplit):
    return dataclasses.replace(a, images=np.concatenate([a.images, b.images]),
                               labels=np.concatenate([a.labels, b.labels]))
  return dataclasses.replace(a, indices=np.concatenate([a.indices, b.indices]))


def head(split, count: int):
  """The first `count` examples (all if `count` is 0 or more than there are)."""
  if not count or count >= len(split):
    return split
  return split.subset(np.arange(count))
