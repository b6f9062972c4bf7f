"""Generated user datasets for the tests: 3 classes of synthetic shapes, as npz and as PNGs."""
import os

import numpy as np
from PIL import Image

CLASS_NAMES = ("bar", "disk", "square")  # sorted, as ImageFolder numbers them


def shapes(count_per_class: int, size: int = 16, channels: int = 1, seed: int = 0):
  """(images uint8 (N, size, size[, 3]), labels) of bars, disks and squares, class-sorted."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:size, :size]
  images, labels = [], []
  for label in range(3):
    for _ in range(count_per_class):
      cy, cx = rng.integers(size // 4, 3 * size // 4, 2)
      r = rng.integers(size // 6, size // 3)
      if label == 0:
        mask = np.abs(yy - cy) <= max(1, r // 3)
      elif label == 1:
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
      else:
        mask = (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r)
      img = np.clip(mask * 200 + rng.normal(30, 20, (size, size)), 0, 255).astype(np.uint8)
      if channels == 3:
        img = np.stack([img, img[::-1], np.roll(img, 3, axis=1)], -1)
      images.append(img)
      labels.append(label)
  return np.stack(images), np.asarray(labels, np.int64)


def write_npz(path, train_per_class=40, test_per_class=8, **kw):
  x_train, y_train = shapes(train_per_class, seed=1, **kw)
  x_test, y_test = shapes(test_per_class, seed=2, **kw)
  np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
  return str(path)


def write_folder(root, train_per_class=40, test_per_class=8, test_dir="val", **kw):
  """The same images as `write_npz`, as PNG files in the ImageFolder layout."""
  for split, seed, count in (("train", 1, train_per_class), (test_dir, 2, test_per_class)):
    x, y = shapes(count, seed=seed, **kw)
    for i, (img, label) in enumerate(zip(x, y)):
      directory = os.path.join(root, split, CLASS_NAMES[label])
      os.makedirs(directory, exist_ok=True)
      # zero-padded names keep the files in the arrays' order when sorted
      Image.fromarray(img).save(os.path.join(directory, f"{i:05d}.png"))
  return str(root)
