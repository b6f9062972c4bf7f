"""What every benchmark table shares: running one measurement in its own
subprocess (so its peak RSS is its own), the configs it measures, timing and peak
memory."""
from __future__ import annotations

import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np


RESULT = "BENCH_RESULT "  # the prefix of the stdout line that carries a worker's result
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def peak_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def in_subprocess(worker: str, timeout: int = 1800, env=None, **params) -> dict:
  """Runs WORKERS[worker](**params) in a fresh python (with extra `env`); its JSON result."""
  proc = subprocess.run(
      [sys.executable, "-m", "benchmarks.bench", f"--worker={worker}",
       f"--params={json.dumps(params)}"], cwd=ROOT, capture_output=True, text=True,
      timeout=timeout, env={**os.environ, **(env or {})})
  for line in proc.stdout.splitlines():
    if line.startswith(RESULT):
      return json.loads(line[len(RESULT):])
  raise RuntimeError(f"bench worker {worker} {params} failed: {proc.stderr[-3000:]}")


def load_config(name: str, arg=None):
  path = os.path.join(ROOT, "configs", f"{name}.py")
  spec = importlib.util.spec_from_file_location(f"bench_config_{name}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def bench_setup(config_name: str, arg, resolution: int):
  from gp_jax.config.build import spec_from_config
  config = load_config(config_name, arg)
  config.dataset.resolution = resolution
  return config, spec_from_config(config)


def random_batch(spec, batch: int, seed: int = 0):
  rng = np.random.default_rng(seed)
  shape = (batch, spec.resolution, spec.resolution, spec.in_channels)
  images = rng.integers(0, 256, shape, dtype=np.uint8) if spec.in_channels == 3 else \
      rng.normal(size=shape).astype(np.float32)
  return {"image": images, "label": rng.integers(0, spec.num_classes, batch).astype(np.int32)}


def timed(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def matmul_flops_per_s(n: int = 2048, runs: int = 10) -> float:
  import jax
  import jax.numpy as jnp
  x = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda a: a @ a)
  jax.block_until_ready(f(x))
  return 2 * n ** 3 / timed(lambda: jax.block_until_ready(f(x)), runs)


def device_peak_mb():
  """Peak memory of jax's first device in MiB (None where the backend does not say)."""
  import jax
  stats = jax.devices()[0].memory_stats() or {}
  peak = stats.get("peak_bytes_in_use")
  return None if peak is None else peak / 2 ** 20


def sample_population(config, spec, count: int, seed: int = 0) -> np.ndarray:
  from gp_jax.net import channels
  from gp_jax.config.build import fixed_groups_from_config
  grid = channels.keep_ratio_grid(config.channels.grid_levels, config.channels.grid_low,
                                  config.channels.grid_high)
  rng = np.random.default_rng(seed)
  return np.stack([channels.widths_from_keep_ratios(
      spec, rng.choice(grid, spec.num_groups), divisor=config.channels.divisor,
      fixed=fixed_groups_from_config(config, spec)) for _ in range(count)])


def mean_macs_ratio(spec, widths) -> float:
  """Mean MACs of the configurations the reference timed, over the full network's:
  it computes only their channels, gp_jax's masked programs compute all of them."""
  from gp_jax.net import costs
  return float(np.mean([costs.macs_ratio(spec, w) for w in widths]))


def have_torch() -> bool:
  return importlib.util.find_spec("torch") is not None
