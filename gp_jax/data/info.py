"""What the model side needs to know about a dataset (a leaf module: no data is read here).

Built-in datasets have static facts (`BUILTIN`); a user's dataset (`npz`,
`image_folder`) has facts read from its files by its loader.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  num_classes: int
  channels: int
  resolution: int  # default input resolution fed to the network
  train_examples: int  # the train split, before the held-out search split is carved
  # ((mean per channel), (std per channel)) in [0, 1] units for uint8 images,
  # applied on the device; None: the pipeline yields normalised floats (digits).
  input_norm: Optional[tuple] = None
  class_names: Optional[tuple] = None  # label i's name, when the data names it

  def as_record(self) -> dict:
    """JSON-ready facts, stored in network.json so evaluation needs no recomputation."""
    return {"num_classes": self.num_classes, "channels": self.channels,
            "input_norm": None if self.input_norm is None else [list(x) for x in
                                                                self.input_norm],
            "class_names": None if self.class_names is None else list(self.class_names)}


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")

BUILTIN = {
    # scikit-learn's bundled 8x8 digits, upsampled to 32x32: works offline.
    "digits": DatasetInfo(num_classes=10, channels=1, resolution=32,
                          train_examples=1797 - 360,
                          class_names=tuple(str(i) for i in range(10))),
    "cifar10": DatasetInfo(num_classes=10, channels=3, resolution=32, train_examples=50_000,
                           input_norm=((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
                           class_names=CIFAR10_CLASSES),
    "imagenet2012": DatasetInfo(num_classes=1000, channels=3, resolution=224,
                                train_examples=1_281_167,
                                input_norm=((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))),
}


def mean_std(images) -> tuple:
  """Per-channel ((mean...), (std...)) in [0, 1] units of uint8 images (N, H, W, C)."""
  x = np.asarray(images)
  c = x.shape[-1]
  flat = x.reshape(-1, c)
  # Chunked sums in float64: exact enough and no float copy of the whole set.
  total = np.zeros(c)
  squares = np.zeros(c)
  step = 1 << 20
  for i in range(0, len(flat), step):
    part = flat[i:i + step].astype(np.float64) / 255.0
    total += part.sum(0)
    squares += (part ** 2).sum(0)
  n = max(len(flat), 1)
  mean = total / n
  std = np.sqrt(np.maximum(squares / n - mean ** 2, 0.0))
  std = np.where(std < 1e-3, 1.0, std)  # a constant channel: leave it unscaled
  return tuple(round(float(m), 6) for m in mean), tuple(round(float(s), 6) for s in std)
