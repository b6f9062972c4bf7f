"""Wall-clock latency of a jitted call on this process's default device, and the
name of the CPU it ran on (every quoted time names its machine)."""
from __future__ import annotations

import platform
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
  """Median wall-clock milliseconds of `call(images)` on a batch of zeros, after warm-up.

  `call` takes a (batch, *image_shape) array of `dtype` and returns something to
  block on; `runs` timed calls follow the warm-up."""
  images = jnp.zeros((batch, *image_shape), dtype)
  return median_ms(lambda: call(images), runs)


def host_cpu() -> str:
  """The host CPU's model name (times measured on different CPU models do not compare)."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()
