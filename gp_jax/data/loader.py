"""Input pipelines: batches of a split (see `splits`, `datasets`) fed by grain.

Every dataset kind yields the same three splits. The *held-out* split is carved
from the training set and never used to train the PruningNet: the search scores
candidates on it, and the test split is touched only by the final evaluation.
In-memory arrays (`ArraySplit`: digits, npz) and random-access sources
(`SourceSplit`: tfds ArrayRecord, image files) are augmented per image
(`augment`), in grain worker processes when `dataset.worker_count > 0`.

Training batches come from a grain `MapDataset` indexed by step: batch `s` is a
pure function of (seed, s), so a resumed run sees exactly the data an
uninterrupted one would (`iterate(dataset, start)` starts at batch `start`).
Each JAX process reads and augments only its slice of each global batch.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Iterator

import grain
import numpy as np
from absl import flags

from gp_jax.data.splits import ArraySplit
from gp_jax.runtime.errors import UserError


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


def recalibration_images(split, batch_size: int, batches: int, seed: int) -> np.ndarray:
  """The first `batches` un-augmented training batches of `batch_size` as one array
  of images: what BatchNorm statistics are recalibrated on."""
  return stacked_batches(train_batches(split, batch_size, seed=seed, augment=False), 0,
                         batches)["image"]


def iterate(dataset: grain.MapDataset, start: int, worker_count: int = 0) -> Iterator:
  """Batches `start`, `start + 1`, ... of `dataset`, decoded in `worker_count`
  grain worker processes (0: in this process)."""
  if worker_count <= 0:
    return (dataset[s] for s in itertools.count(start))
  return _prefetch(dataset[start:], worker_count)


def _prefetch(dataset: grain.MapDataset, worker_count: int) -> Iterator:
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
