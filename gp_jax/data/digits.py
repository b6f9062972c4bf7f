"""scikit-learn's bundled 8x8 digits (1,797 images, offline), upsampled: the embedded default."""
from __future__ import annotations

import functools
import importlib.util
import os

import numpy as np

from gp_jax.data.splits import ArraySplit, Splits
from gp_jax.runtime.errors import UserError

SPLIT_SEED = 20191122  # the digits split is fixed, independent of the experiment seed


def _resize_bilinear(images: np.ndarray, size: int) -> np.ndarray:
  """(N, h, w) -> (N, size, size) bilinear, align-corners=False, in numpy."""
  n, h, w = images.shape
  del n

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


def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
  """(images (1797, 8, 8) with values 0..16, labels) of scikit-learn's bundled digits.

  Read with numpy from the file scikit-learn ships: importing scikit-learn to load
  it costs most of a second of every run's start, and the test suite starts runs
  dozens of times. Where that file is not, scikit-learn loads it.
  """
  found = importlib.util.find_spec("sklearn")  # finds the package without importing it
  for root in (found.submodule_search_locations or []) if found else []:
    path = os.path.join(root, "datasets", "data", "digits.csv.gz")
    if os.path.exists(path):
      data = np.loadtxt(path, delimiter=",")
      return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)
  from sklearn.datasets import load_digits as sk_load_digits  # pylint: disable=import-outside-toplevel
  raw = sk_load_digits()
  return raw.images, raw.target


@functools.lru_cache(maxsize=4)
def load_digits(resolution: int = 32, holdout_size: int = 300,
                test_fraction: float = 0.2) -> Splits:
  """Normalised float images at `resolution`; augmentation: shifts, never flips.

  The split is fixed: 360 test images, `holdout_size` held-out search images,
  the rest train.
  """
  raw_images, raw_labels = _raw_digits()  # bundled, offline
  images = raw_images.astype(np.float32) / 16.0  # values 0..16 -> [0, 1]
  images = _resize_bilinear(images, resolution)
  images = ((images - 0.5) / 0.5)[..., None].astype(np.float32)
  labels = raw_labels.astype(np.int32)
  order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
  n_test = int(round(test_fraction * len(labels)))
  test, rest = order[:n_test], order[n_test:]
  if not 0 < holdout_size < len(rest) // 2:
    raise UserError(f"dataset.holdout_size must be in (0, {len(rest) // 2}) for digits, "
                    f"got {holdout_size}")
  holdout, train = rest[:holdout_size], rest[holdout_size:]
  pick = lambda idx: ArraySplit(images[idx], labels[idx])  # pylint: disable=unnecessary-lambda-assignment
  return Splits(train=pick(train), holdout=pick(holdout), test=pick(test))


def load_splits(dataset_config, resolution: int) -> Splits:
  return load_digits(resolution, int(dataset_config.get("holdout_size", 300)))
