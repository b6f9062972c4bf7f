"""The layer-by-layer pruning environment of the RL search (as in AMC).

An episode visits the prunable channel groups in order; at step t the agent
picks group t's keep-ratio. The *action wall* clips that action so the MACs
target stays reachable: after the episode the configuration's MACs are at most
the target, and not more than `tolerance` below it (up to channel rounding).

Everything here is a pure jittable function of arrays, so E episodes run as
one `vmap`.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from gp_jax import channels, costs
from gp_jax.spec import ArchSpec

NUM_SCALARS = 4  # t/T, MACs of decided layers, MACs still to decide, previous action


@dataclasses.dataclass(frozen=True, eq=False)
class PruningEnv:
  spec: ArchSpec
  fixed: np.ndarray          # (G,) bool
  divisor: int
  target: float              # MACs ratio to stay at or below
  tolerance: float           # ... and at most this far below
  lower_bound: float         # smallest keep-ratio an action may take
  wall_points: int = 181     # resolution of the action wall's search

  @property
  def free_groups(self) -> np.ndarray:
    return np.flatnonzero(~self.fixed).astype(np.int32)

  @property
  def num_steps(self) -> int:
    return len(self.free_groups)

  @property
  def full_macs(self) -> float:
    return float(costs.macs(self.spec))

  def widths(self, keep_ratios):
    return channels.widths_from_keep_ratios(self.spec, keep_ratios, divisor=self.divisor,
                                            fixed=self.fixed)

  def macs_ratio(self, keep_ratios):
    return costs.macs(self.spec, self.widths(keep_ratios)) / self.full_macs

  def _decided_step(self) -> np.ndarray:
    """Per layer: the episode step after which both its channel counts are known."""
    step_of_group = np.full(self.spec.num_groups, -1)
    step_of_group[self.free_groups] = np.arange(self.num_steps)
    return np.array([max(step_of_group[l.out_group],
                         -1 if l.in_group == -1 else step_of_group[l.in_group])
                     for l in self.spec.layers])

  def macs_split(self, keep_ratios, t):
    """(MACs of layers already decided before step t, MACs of the rest at full width)."""
    layer_macs = jnp.stack([jnp.asarray(m, jnp.float32) for m in
                            costs.layer_macs(self.spec, self.widths(keep_ratios))])
    full = np.asarray(costs.layer_macs(self.spec), dtype=np.float32)
    decided = jnp.asarray(self._decided_step()) < t
    return (jnp.sum(jnp.where(decided, layer_macs, 0.0)) / self.full_macs,
            jnp.sum(jnp.where(decided, 0.0, full)) / self.full_macs)

  def scalar_features(self, keep_ratios, t, prev_action):
    decided, rest = self.macs_split(keep_ratios, t)
    return jnp.stack([t / self.num_steps, decided, rest, prev_action]).astype(jnp.float32)

  def action_bounds(self, keep_ratios, t):
    """[low, high] for step t's keep-ratio so the target stays reachable.

    high: the largest ratio whose MACs fit the target with every later group at
    the lower bound; low: the smallest one that still reaches target - tolerance
    with every later group at full width. On a conflict (channel rounding) the
    budget wins.
    """
    group = jnp.asarray(self.free_groups)[t]
    later = jnp.zeros(self.spec.num_groups, bool).at[jnp.asarray(self.free_groups)].set(
        jnp.arange(self.num_steps) > t)
    points = jnp.linspace(self.lower_bound, 1.0, self.wall_points)

    def macs_with(a, rest_value):
      ratios = jnp.where(later, rest_value, keep_ratios).at[group].set(a)
      return self.macs_ratio(ratios)

    most = jax.vmap(lambda a: macs_with(a, self.lower_bound))(points)
    least = jax.vmap(lambda a: macs_with(a, 1.0))(points)
    fits = most <= self.target
    reaches = least >= self.target - self.tolerance
    high = jnp.where(fits.any(), jnp.max(jnp.where(fits, points, -1.0)), self.lower_bound)
    low = jnp.where(reaches.any(), jnp.min(jnp.where(reaches, points, 2.0)), 1.0)
    return jnp.minimum(low, high), high

  def min_macs_ratio(self) -> float:
    """MACs ratio with every free group at the lower bound: the smallest target allowed."""
    ratios = np.where(self.fixed, 1.0, self.lower_bound)
    return float(costs.macs(self.spec, self.widths(ratios)) / self.full_macs)
