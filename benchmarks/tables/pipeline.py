"""Table 6: input pipeline throughput (decode + augmentation) on synthetic
JPEGs at ImageNet shapes."""
from __future__ import annotations

import io
import os
import statistics
import time

import numpy as np

from gp_jax.data import loader, tfds_source
from gp_jax.data import splits as splits_lib


class SyntheticJpegs:
  """A random-access source of JPEG-encoded random images, decoded on read
  (as `tfds.data_source` decodes ImageNet): {'image': uint8 HWC, 'label'}."""

  def __init__(self, count: int, seed: int = 0):
    from PIL import Image
    rng = np.random.default_rng(seed)
    self._jpegs = []
    for _ in range(count):
      h, w = rng.integers(300, 500, size=2)  # ImageNet's typical sizes
      # Smooth random images compress like photos, not like noise.
      small = rng.integers(0, 255, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
      image = Image.fromarray(small).resize((int(w), int(h)), Image.BICUBIC)
      buf = io.BytesIO()
      image.save(buf, format="JPEG", quality=90)
      self._jpegs.append(buf.getvalue())

  def __len__(self):
    return len(self._jpegs)

  def __getitem__(self, index):
    from PIL import Image
    image = np.asarray(Image.open(io.BytesIO(self._jpegs[index])).convert("RGB"))
    return {"image": image, "label": index % 1000}


def _median_rate(make_iterator, images_per_item: int, items: int, repeats: int) -> float:
  rates = []
  for _ in range(repeats):
    it = make_iterator()
    next(it)  # warm-up: workers started, first batch decoded
    t0 = time.perf_counter()
    for _ in range(items):
      next(it)
    rates.append(items * images_per_item / (time.perf_counter() - t0))
  return statistics.median(rates)


def bench_pipeline(quick: bool) -> dict:
  """Decode + augment throughput per process, inline and with grain workers."""
  resolution, batch = 224, 32
  source = SyntheticJpegs(256)
  train_fn, eval_fn = tfds_source.transforms("imagenet2012", resolution, lighting=0.1)
  split = splits_lib.SourceSplit(source, np.arange(len(source)), train_fn, eval_fn)
  ds = loader.train_batches(split, batch, seed=0)
  batches, repeats = (4, 1) if quick else (12, 3)
  decode_only = _median_rate(lambda: (source[i % len(source)] for i in range(10 ** 9)),
                             1, batches * batch, repeats)
  workers = min(4, os.cpu_count() or 1)
  out = {"resolution": resolution, "batch": batch, "cpu_count": os.cpu_count(),
         "decode_only_images_per_s": decode_only}
  out["inline_images_per_s"] = _median_rate(lambda: loader.iterate(ds, 0, 0), batch, batches,
                                              repeats)
  out[f"workers_{workers}_images_per_s"] = _median_rate(
      lambda: loader.iterate(ds, 0, workers), batch, batches, repeats)
  out["workers"] = workers
  out["augment_cost_ratio"] = decode_only / out["inline_images_per_s"]
  out["worker_speedup"] = out[f"workers_{workers}_images_per_s"] / out["inline_images_per_s"]
  return out


def table_pipeline(r: dict) -> str:
  w = r["workers"]
  return "\n".join([
      "| pipeline (per process, synthetic ImageNet-size JPEGs) | images/s |",
      "|---|---|",
      f"| JPEG decode only | {r['decode_only_images_per_s']:.0f} |",
      f"| decode + random-resized crop {r['resolution']} + flip + lighting, inline "
      f"| {r['inline_images_per_s']:.0f} |",
      f"| the same in {w} grain worker processes | {r[f'workers_{w}_images_per_s']:.0f} |",
      "",
      f"Augmentation costs {r['augment_cost_ratio']:.2f}x the decode alone; {w} workers give "
      f"{r['worker_speedup']:.2f}x the inline rate on {r['cpu_count']} cores.",
  ])
