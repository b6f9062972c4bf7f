"""`dataset.name=npz`: a user's arrays in one `.npz` file, as Keras and many tutorials save them.

    x_train (N, H, W) or (N, H, W, C) uint8, y_train (N,) integer labels 0..K-1,
    x_test, y_test likewise; optionally class_names (K,) strings.

Classes, channels and resolution are read from the arrays; the per-channel
mean/std from the train split (recomputed when the file is read: seconds for
70,000 small images). Training: zero-pad by resolution/8, random crop, and a
horizontal flip when `dataset.flip`; evaluation: the image (resized to
`dataset.resolution` if that differs from the stored size).
"""
from __future__ import annotations

import functools
import os
import zipfile

import numpy as np

from gp_jax.data import augment
from gp_jax.data.info import DatasetInfo, mean_std
from gp_jax.data.splits import ArraySplit, holdout_order, Splits, user_path
from gp_jax.data.splits import path_error as _fail
from gp_jax.runtime.errors import UserError

ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def _images(path, name, x) -> np.ndarray:
  if x.dtype != np.uint8 or x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] not in (1, 3)):
    raise _fail(path, f"{name} must be uint8 images (N, H, W) or (N, H, W, C) with C 1 or 3, "
                      f"got {x.dtype} {x.shape}; convert with x.astype('uint8') (0..255)")
  return x[..., None] if x.ndim == 3 else x


def _labels(path, name, y, count) -> np.ndarray:
  if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
    raise _fail(path, f"{name} must be 1-d integer class indices, got {y.dtype} {y.shape}"
                      " (one-hot labels: y.argmax(1))")
  if len(y) != count:
    raise _fail(path, f"{name} has {len(y)} labels for {count} images")
  return y.astype(np.int32)


@functools.lru_cache(maxsize=2)
def _read(path: str, mtime: float, size: int) -> dict:
  """The checked arrays of `path` (cached per file version: mtime and size)."""
  del mtime, size
  try:
    with np.load(path, allow_pickle=False) as f:
      missing = [k for k in ARRAYS if k not in f.files]
      if missing:
        raise _fail(path, f"missing array(s) {', '.join(missing)} (has: "
                          f"{', '.join(f.files) or 'none'}); save with "
                          "np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)")
      arrays = {k: f[k] for k in ARRAYS}
      names = f["class_names"] if "class_names" in f.files else None
  except UserError:
    raise
  except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
    raise _fail(path, f"not a readable .npz file ({type(e).__name__}); save it with "
                      "numpy.savez") from None
  x_train = _images(path, "x_train", arrays["x_train"])
  x_test = _images(path, "x_test", arrays["x_test"])
  if x_train.shape[1:] != x_test.shape[1:]:
    raise _fail(path, f"x_train images are {x_train.shape[1:]} but x_test images "
                      f"{x_test.shape[1:]}; store both at one size")
  y_train = _labels(path, "y_train", arrays["y_train"], len(x_train))
  y_test = _labels(path, "y_test", arrays["y_test"], len(x_test))
  if len(y_train) == 0 or len(y_test) == 0:
    raise _fail(path, "x_train and x_test must each hold at least one image")
  classes = np.unique(y_train)
  num_classes = int(classes.max()) + 1
  if classes.min() < 0 or len(classes) != num_classes:
    absent = sorted(set(range(num_classes)) - set(classes.tolist()))
    raise _fail(path, f"y_train labels must be 0..K-1 with every class present; "
                      f"{'negative labels' if classes.min() < 0 else f'missing {absent[:5]}'}"
                      "; renumber the classes")
  extra = sorted(set(np.unique(y_test).tolist()) - set(classes.tolist()))
  if extra:
    raise _fail(path, f"y_test has class(es) {extra[:5]} that y_train lacks; the network "
                      "cannot learn them: drop them or add training images")
  if names is not None:
    names = tuple(str(n) for n in np.asarray(names).reshape(-1))
    if len(names) != num_classes:
      raise _fail(path, f"class_names has {len(names)} names for {num_classes} classes")
  return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test,
          "class_names": names, "norm": mean_std(x_train)}


def read(dataset_config) -> dict:
  """The arrays of `dataset.path`, checked; a one-line UserError for anything wrong."""
  path = user_path(dataset_config, "FILE.npz (arrays x_train, y_train, x_test, y_test)")
  if not os.path.isfile(path):
    hint = (" (fetch it once with: make fashion-mnist)"
            if os.path.basename(path) == "fashion_mnist.npz" else "")
    raise _fail(path, f"no such file{hint}")
  stat = os.stat(path)
  return _read(path, stat.st_mtime, stat.st_size)


def info(dataset_config) -> DatasetInfo:
  arrays = read(dataset_config)
  x = arrays["x_train"]
  resolution = x.shape[1] if x.shape[1] == x.shape[2] else 0
  if not resolution and not dataset_config.get("resolution", 0):
    raise _fail(user_path(dataset_config, "FILE.npz"),
                f"images are {x.shape[1]}x{x.shape[2]}, not square; set "
                "dataset.resolution to the square size to resize them to")
  return DatasetInfo(num_classes=int(arrays["y_train"].max()) + 1, channels=int(x.shape[-1]),
                     resolution=resolution, train_examples=len(x),
                     input_norm=arrays["norm"], class_names=arrays["class_names"])


def transforms(resolution: int, flip: bool):
  """(train_fn, eval_fn) for small images at `resolution`."""
  pad = max(1, resolution // 8)  # 4 at 32 (CIFAR's recipe), 3 at 28
  return (functools.partial(augment.pad_crop_flip, size=resolution, pad=pad, flip=flip),
          functools.partial(augment.resize_only, size=resolution))


def load_splits(dataset_config, resolution: int) -> Splits:
  arrays = read(dataset_config)
  holdout_size = int(dataset_config.holdout_size)
  n = len(arrays["y_train"])
  if not 0 < holdout_size < n:
    raise UserError(f"dataset.holdout_size ({holdout_size}) must be in (0, {n}): the "
                    f"train split of {dataset_config.get('path')} has {n} images")
  held, train = holdout_order(n, holdout_size)
  train_fn, eval_fn = transforms(resolution, bool(dataset_config.get("flip", True)))

  def split(x, y, idx):
    return ArraySplit(x[idx], y[idx], train_fn=train_fn, eval_fn=eval_fn)

  x, y = arrays["x_train"], arrays["y_train"]
  return Splits(train=split(x, y, train), holdout=split(x, y, held),
                test=split(arrays["x_test"], arrays["y_test"],
                           np.arange(len(arrays["y_test"]))))
