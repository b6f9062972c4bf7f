"""Wall-clock latency of a jitted call on this process's default device."""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np


def median_ms(call, runs: int, warmup: int = 3) -> float:
  """Median milliseconds of `call()` (blocked until ready) over `runs`, after warm-up."""
  for _ in range(warmup):
    jax.block_until_ready(call())
  times = []
  for _ in range(runs):
    t0 = time.perf_counter()
    jax.block_until_ready(call())
    times.append((time.perf_counter() - t0) * 1e3)
  return float(np.median(times))


def measure_latency_ms(call, image_shape, batch: int, runs: int,
                       dtype=np.float32) -> float:
  """Median wall-clock milliseconds of `call(images)` on a batch of zeros, after warm-up."""
  images = jnp.zeros((batch, *image_shape), dtype)
  return median_ms(lambda: call(images), runs)
