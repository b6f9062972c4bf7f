"""`dataset.name=image_folder`: a user's images in torchvision's ImageFolder layout.

    DIR/train/<class>/*.{jpg,jpeg,png,bmp,gif,webp}
    DIR/val/<class>/*   (or DIR/test/<class>/*)

Class names are the train sub-folders, sorted (label i is the i-th name, as
torchvision numbers them). Images are decoded with PIL when read, in grain's
worker processes when `dataset.worker_count > 0`: grey if every sampled image
is grey, RGB otherwise. Training: random-resized crop at `dataset.resolution`
and a flip when `dataset.flip`; evaluation: resize the shorter side to
resolution / 0.875 and centre-crop (the ImageNet recipe at any resolution).
Without `dataset.resolution`, the median shorter side of the sampled train
images is used. The per-channel mean/std comes from up to 512 train images.
"""
from __future__ import annotations

import functools
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from gp_jax.data import augment
from gp_jax.data.info import DatasetInfo, mean_std
from gp_jax.data.splits import holdout_order, SourceSplit, Splits, user_path
from gp_jax.data.splits import path_error as _fail
from gp_jax.runtime.errors import UserError

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
TEST_DIRS = ("val", "test")
SAMPLE = 512           # images decoded for mean/std, mode and resolution
VERIFY_ALL_BELOW = 50_000  # folders up to this size have every file checked up front


def _list_split(root: str, split: str, classes=None):
  """(files, labels, class names) under root/split/<class>/."""
  base = os.path.join(root, split)
  found = sorted(d.name for d in os.scandir(base) if d.is_dir())
  if classes is None:
    classes = found
    if not classes:
      raise _fail(root, f"{split}/ has no class folders; expected {split}/<class>/<image>")
  else:
    extra = sorted(set(found) - set(classes))
    if extra:
      raise _fail(root, f"{split}/ has class folder(s) {extra[:5]} that train/ lacks; the "
                        "network cannot learn them: remove them or add training images")
  files, labels = [], []
  for label, name in enumerate(classes):
    directory = os.path.join(base, name)
    if not os.path.isdir(directory):
      continue  # a class with no test images
    names = sorted(f for f in os.listdir(directory) if f.lower().endswith(EXTENSIONS))
    if not names and split == "train":
      raise _fail(root, f"class folder train/{name}/ has no images ({', '.join(EXTENSIONS)})")
    files.extend(os.path.join(directory, f) for f in names)
    labels.extend([label] * len(names))
  if not files:
    raise _fail(root, f"{split}/ holds no images")
  return files, np.asarray(labels, np.int32), tuple(classes)


def _decode(path: str, grey: bool) -> np.ndarray:
  try:
    with Image.open(path) as img:
      img = img.convert("L" if grey else "RGB")
      image = np.asarray(img, np.uint8)
  except (UnidentifiedImageError, OSError, ValueError) as e:
    raise UserError(f"cannot read image {path} ({type(e).__name__}); delete or replace "
                    "the file") from None
  return image[..., None] if grey else image


class FileSource:
  """Random-access records {image uint8 HWC, label} decoded from image files."""

  def __init__(self, files, labels, grey: bool):
    self.files, self.labels, self.grey = list(files), np.asarray(labels), grey

  def __len__(self):
    return len(self.files)

  def __getitem__(self, i):
    return {"image": _decode(self.files[i], self.grey), "label": self.labels[i]}


def _verify(files) -> None:
  for path in files:
    try:
      with Image.open(path) as img:
        img.verify()
    except Exception as e:  # pylint: disable=broad-except  # PIL raises many kinds
      raise UserError(f"cannot read image {path} ({type(e).__name__}); delete or replace "
                      "the file") from None


@functools.lru_cache(maxsize=2)
def _scan(root: str, stamps: tuple) -> dict:
  del stamps
  if not os.path.isdir(os.path.join(root, "train")):
    raise _fail(root, "no train/ folder; expected train/<class>/<image> and "
                      "val/<class>/<image> (torchvision ImageFolder layout)")
  test_dir = next((d for d in TEST_DIRS if os.path.isdir(os.path.join(root, d))), None)
  if test_dir is None:
    raise _fail(root, "no val/ or test/ folder next to train/")
  train_files, train_labels, classes = _list_split(root, "train")
  test_files, test_labels, _ = _list_split(root, test_dir, classes)
  everything = train_files + test_files
  if len(everything) <= VERIFY_ALL_BELOW:
    _verify(everything)
  # A fixed sample (every k-th train image) fixes the mode, resolution and mean/std.
  pick = np.linspace(0, len(train_files) - 1, min(SAMPLE, len(train_files))).astype(int)
  modes, shorter = [], []
  for i in pick:
    try:
      with Image.open(train_files[i]) as img:
        modes.append(img.mode)
        shorter.append(min(img.size))
    except Exception as e:  # pylint: disable=broad-except
      raise UserError(f"cannot read image {train_files[i]} ({type(e).__name__}); delete or "
                      "replace the file") from None
  grey = all(m in ("L", "1", "I;16", "I", "LA") for m in modes)
  resolution = int(np.median(shorter))
  sample = [augment.resize_center_crop({"image": _decode(train_files[i], grey), "label": 0},
                                       size=resolution, crop_fraction=1.0)["image"]
            for i in pick]
  return {"train": (train_files, train_labels), "test": (test_files, test_labels),
          "classes": classes, "grey": grey, "resolution": resolution,
          "norm": mean_std(np.stack(sample)), "test_dir": test_dir}


def scan(dataset_config) -> dict:
  root = user_path(dataset_config, "DIR (with DIR/train/<class>/ and DIR/val/<class>/)")
  if not os.path.isdir(root):
    raise _fail(root, "no such folder")
  # Every split and class folder with its mtime: adding or removing a class or image,
  # or renaming a split, refreshes the scan. Not only the newest mtime: the clock
  # that stamps them is coarse (milliseconds), so a rename right after a change
  # can leave the newest one as it was (a val/ renamed away went unseen).
  stamps = [(root, os.stat(root).st_mtime_ns)]
  for split in ("train",) + TEST_DIRS:
    base = os.path.join(root, split)
    if os.path.isdir(base):
      stamps.append((base, os.stat(base).st_mtime_ns))
      stamps.extend((d.path, d.stat().st_mtime_ns) for d in os.scandir(base) if d.is_dir())
  return _scan(root, tuple(stamps))


def info(dataset_config) -> DatasetInfo:
  s = scan(dataset_config)
  return DatasetInfo(num_classes=len(s["classes"]), channels=1 if s["grey"] else 3,
                     resolution=s["resolution"], train_examples=len(s["train"][0]),
                     input_norm=s["norm"], class_names=s["classes"])


def transforms(resolution: int, flip: bool):
  return (functools.partial(augment.random_resized_crop_flip, size=resolution, flip=flip),
          functools.partial(augment.resize_center_crop, size=resolution))


def load_splits(dataset_config, resolution: int) -> Splits:
  s = scan(dataset_config)
  files, labels = s["train"]
  holdout_size = int(dataset_config.holdout_size)
  if not 0 < holdout_size < len(files):
    raise UserError(f"dataset.holdout_size ({holdout_size}) must be in (0, {len(files)}): "
                    f"{dataset_config.get('path')}/train has {len(files)} images")
  held, train = holdout_order(len(files), holdout_size)
  train_fn, eval_fn = transforms(resolution, bool(dataset_config.get("flip", True)))
  train_source = FileSource(files, labels, s["grey"])
  test_source = FileSource(*s["test"], s["grey"])
  return Splits(train=SourceSplit(train_source, train, train_fn, eval_fn),
                holdout=SourceSplit(train_source, held, train_fn, eval_fn),
                test=SourceSplit(test_source, np.arange(len(test_source)), train_fn, eval_fn))
