"""Sampling channel configurations from the keep-ratio grid, inside jit."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gp_jax.net import channels, costs
from gp_jax.net.spec import ArchSpec


def make_sampler(spec: ArchSpec, *, grid, fixed, divisor: int,
                 macs_range=None, tries: int = 16, cost: costs.Cost | None = None):
  """A jittable `sample(key) -> (num_groups,) int32 widths`.

  Each free group draws a keep-ratio uniformly from `grid`; fixed groups stay
  full. With `macs_range=(low, high)` (fractions of the full network's cost:
  `cost`, MACs by default), `tries` candidates are drawn and the first inside
  the range is kept (the closest one if none is): rejection sampling with
  static shapes.
  """
  grid = jnp.asarray(np.asarray(grid), jnp.float32)
  fixed = np.asarray(fixed)
  cost = cost or costs.macs_cost(spec)

  def draw(key):
    idx = jax.random.randint(key, (spec.num_groups,), 0, grid.shape[0])
    return channels.widths_from_keep_ratios(spec, grid[idx], divisor=divisor,
                                            fixed=fixed)

  if macs_range is None:
    return draw
  low, high = float(macs_range[0]), float(macs_range[1])

  def sample(key):
    candidates = jax.vmap(draw)(jax.random.split(key, tries))
    ratio = jax.vmap(cost.ratio)(candidates)
    distance = jnp.maximum(low - ratio, 0.0) + jnp.maximum(ratio - high, 0.0)
    return candidates[jnp.argmin(distance)]  # first in range (distance 0) wins

  return sample
