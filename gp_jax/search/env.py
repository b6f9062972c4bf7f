"""The layer-by-layer pruning environment of the RL search (as in AMC).

An episode visits the prunable channel groups in order; at step t the agent
picks group t's keep-ratio. The *action wall* clips that action so the budget
stays reachable: after the episode the configuration's cost (MACs by default;
params or a latency table with `search.constraint`, see `costs.Cost`) is at most
the target ratio, and not more than `tolerance` below it (up to channel rounding).

Everything here is a pure jittable function of arrays, so E episodes run as
one `vmap`.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from gp_jax.net import channels, costs
from gp_jax.net.spec import ArchSpec

NUM_SCALARS = 4  # t/T, cost of decided layers, cost still to decide, previous action


@dataclasses.dataclass(frozen=True, eq=False)
class PruningEnv:
  spec: ArchSpec
  fixed: np.ndarray          # (G,) bool
  divisor: int
  target: float              # cost ratio to stay at or below
  tolerance: float           # ... and at most this far below
  lower_bound: float         # smallest keep-ratio an action may take
  wall_points: int = 181     # resolution of the action wall's search
  cost: costs.Cost | None = None  # the budget's cost; None: MACs

  def __post_init__(self):
    if self.cost is None:
      object.__setattr__(self, "cost", costs.macs_cost(self.spec))

  @property
  def free_groups(self) -> np.ndarray:
    return np.flatnonzero(~self.fixed).astype(np.int32)

  @property
  def num_steps(self) -> int:
    return len(self.free_groups)

  @property
  def full_cost(self) -> float:
    return self.cost.full

  def widths(self, keep_ratios):
    return channels.widths_from_keep_ratios(self.spec, keep_ratios, divisor=self.divisor,
                                            fixed=self.fixed)

  def cost_ratio(self, keep_ratios):
    return self.cost.ratio(self.widths(keep_ratios))

  def _decided_step(self) -> np.ndarray:
    """Per layer: the episode step after which both its channel counts are known."""
    step_of_group = np.full(self.spec.num_groups, -1)
    step_of_group[self.free_groups] = np.arange(self.num_steps)
    return np.array([max(step_of_group[l.out_group],
                         -1 if l.in_group == -1 else step_of_group[l.in_group])
                     for l in self.spec.layers])

  def cost_split(self, keep_ratios, t):
    """(cost of layers already decided before step t, cost of the rest at full width;
    a latency table's constant counts as not yet decided), as ratios of the full cost."""
    layer_costs = jnp.stack([jnp.asarray(m, jnp.float32) for m in
                             self.cost.layers(self.widths(keep_ratios))])
    full = np.asarray(self.cost.layers(None), dtype=np.float32)
    decided = jnp.asarray(self._decided_step()) < t
    return (jnp.sum(jnp.where(decided, layer_costs, 0.0)) / self.full_cost,
            (jnp.sum(jnp.where(decided, 0.0, full)) + self.cost.constant) / self.full_cost)

  def scalar_features(self, keep_ratios, t, prev_action):
    decided, rest = self.cost_split(keep_ratios, t)
    return jnp.stack([t / self.num_steps, decided, rest, prev_action]).astype(jnp.float32)

  def action_bounds(self, keep_ratios, t):
    """[low, high] for step t's keep-ratio so the target stays reachable.

    high: the largest ratio such that it and every ratio below it fit the target
    with every later group at the lower bound (a latency table need not be
    monotone in a width, so a fitting ratio above one that does not fit is left
    out: then every action up to high keeps the all-lower-bound completion in
    the budget, which the check of the target guarantees at the start); low:
    the smallest one that still reaches target - tolerance with every later
    group at full width. On a conflict (channel rounding) the budget wins.
    """
    group = jnp.asarray(self.free_groups)[t]
    later = jnp.zeros(self.spec.num_groups, bool).at[jnp.asarray(self.free_groups)].set(
        jnp.arange(self.num_steps) > t)
    points = jnp.linspace(self.lower_bound, 1.0, self.wall_points)

    def cost_with(a, rest_value):
      ratios = jnp.where(later, rest_value, keep_ratios).at[group].set(a)
      return self.cost_ratio(ratios)

    most = jax.vmap(lambda a: cost_with(a, self.lower_bound))(points)
    least = jax.vmap(lambda a: cost_with(a, 1.0))(points)
    fits = jnp.cumprod(most <= self.target) > 0  # from the lower bound up, until one does not
    reaches = least >= self.target - self.tolerance
    high = jnp.where(fits.any(), jnp.max(jnp.where(fits, points, -1.0)), self.lower_bound)
    low = jnp.where(reaches.any(), jnp.min(jnp.where(reaches, points, 2.0)), 1.0)
    return jnp.minimum(low, high), high

  def min_cost_ratio(self) -> float:
    """Cost ratio with every free group at the lower bound: the smallest target allowed."""
    ratios = np.where(self.fixed, 1.0, self.lower_bound)
    return float(self.cost.ratio(self.widths(ratios)))
