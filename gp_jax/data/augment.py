"""Per-image preprocessing on the host, run inside grain (in its worker processes
when `dataset.worker_count > 0`). Images stay uint8 (HWC) for a cheap transfer;
mean/std normalisation happens on the device (`models.ConvNet.input_norm`).

Train functions take `(record, rng)`, eval functions `(record)`; both return
`{"image", "label"}`.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

# AlexNet-style PCA lighting noise on ImageNet RGB (as MetaPruning's `Lighting`).
_EIGVAL = np.array([0.2175, 0.0188, 0.0045], np.float32)
_EIGVEC = np.array([[-0.5675, 0.7192, 0.4009],
                    [-0.5808, -0.0045, -0.8140],
                    [-0.5836, -0.6948, 0.4203]], np.float32)


def _out(image, label):
  return {"image": np.ascontiguousarray(image), "label": np.int32(label)}


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
  if image.ndim == 3 and image.shape[-1] == 1:  # PIL's grey mode is 2-d
    return _resize(image[..., 0], width, height)[..., None]
  return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def random_shift(record, rng: np.random.Generator, *, pad: int):
  """Pad by `pad` pixels (edge values) and crop back at a random offset (digits)."""
  image = record["image"]
  h, w = image.shape[:2]
  padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
  dy, dx = rng.integers(0, 2 * pad + 1, size=2)
  return _out(padded[dy:dy + h, dx:dx + w], record["label"])


def pad_crop_flip(record, rng: np.random.Generator, *, size: int, pad: int = 4,
                  flip: bool = True):
  """Small images (CIFAR, npz): resize to `size` if needed, zero-pad, random crop,
  random horizontal flip unless `flip=False` (digits, text: a mirror changes the class)."""
  image = np.asarray(record["image"], np.uint8)
  if image.shape[:2] != (size, size):
    image = _resize(image, size, size)
  padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
  dy, dx = rng.integers(0, 2 * pad + 1, size=2)
  image = padded[dy:dy + size, dx:dx + size]
  if flip and rng.random() < 0.5:
    image = image[:, ::-1]
  return _out(image, record["label"])


def resize_only(record, *, size: int):
  """CIFAR eval: the image at `size`."""
  image = np.asarray(record["image"], np.uint8)
  if image.shape[:2] != (size, size):
    image = _resize(image, size, size)
  return _out(image, record["label"])


def random_resized_crop_flip(record, rng: np.random.Generator, *, size: int,
                             scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                             lighting: float = 0.0, flip: bool = True):
  """ImageNet / image folders: Inception-style random-resized crop, flip (unless
  `flip=False`), optional lighting."""
  image = np.asarray(record["image"], np.uint8)
  h, w = image.shape[:2]
  area = h * w
  for _ in range(10):
    target = area * rng.uniform(*scale)
    aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
    cw, ch = int(round(np.sqrt(target * aspect))), int(round(np.sqrt(target / aspect)))
    if 0 < cw <= w and 0 < ch <= h:
      y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
      break
  else:  # fall back to a centre crop at the clamped aspect ratio
    in_ratio = w / h
    if in_ratio < ratio[0]:
      cw, ch = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
      cw, ch = int(round(h * ratio[1])), h
    else:
      cw, ch = w, h
    y, x = (h - ch) // 2, (w - cw) // 2
  image = _resize(image[y:y + ch, x:x + cw], size, size)
  if flip and rng.random() < 0.5:
    image = image[:, ::-1]
  if lighting > 0:
    alpha = rng.normal(0.0, lighting, 3).astype(np.float32)
    rgb = _EIGVEC @ (alpha * _EIGVAL) * 255.0
    image = np.clip(image.astype(np.float32) + rgb, 0, 255).astype(np.uint8)
  return _out(image, record["label"])


def resize_center_crop(record, *, size: int, crop_fraction: float = 224 / 256):
  """ImageNet eval: shorter side to size / crop_fraction (256 for 224), centre crop."""
  image = np.asarray(record["image"], np.uint8)
  h, w = image.shape[:2]
  short = int(round(size / crop_fraction))
  if h < w:
    nh, nw = short, max(short, int(round(w * short / h)))
  else:
    nh, nw = max(short, int(round(h * short / w))), short
  image = _resize(image, nw, nh)
  y, x = (nh - size) // 2, (nw - size) // 2
  return _out(image[y:y + size, x:x + size], record["label"])
