"""The search baselines: uniform width, random search, MetaPruning's evolution.

* `uniform`: one keep-ratio for every group, the largest within the budget.
* `random`: random grid configurations inside the budget's window.
* `evolution`: MetaPruning's evolutionary search (top-k parents, mutation,
  crossover, rejection of configurations outside the budget's window).

The budget is the env's cost (MACs, params or latency; `costs.Cost`).
"""
from __future__ import annotations

import numpy as np

from gp_jax.runtime.errors import UserError
from gp_jax.search.base import round_rng, SearchContext, stream_seed
from gp_jax.search.env import PruningEnv


def uniform_keep_ratio(env: PruningEnv, scan_points: int = 1025) -> float:
  """Largest uniform keep-ratio whose cost fits the target. A latency table need not
  be monotone in the widths (gp_jax.net.latency), so a scan finds the largest fitting
  ratio on a fine grid first; bisection then refines it up to the next one."""
  ratio_at = lambda r: float(env.cost_ratio(np.where(env.fixed, 1.0, r)))  # pylint: disable=unnecessary-lambda-assignment
  if ratio_at(1.0) <= env.target:
    return 1.0
  points = np.linspace(env.lower_bound, 1.0, scan_points)
  ratios = np.where(env.fixed[None], 1.0, points[:, None])
  fits = np.flatnonzero(env.cost.population_ratio(np.asarray(env.widths(ratios)))
                        <= env.target)
  if not len(fits):  # below the all-lower-bound cost: validation rejects such targets
    return float(env.lower_bound)
  lo, hi = points[fits[-1]], points[fits[-1] + 1]
  for _ in range(50):
    mid = 0.5 * (lo + hi)
    lo, hi = (mid, hi) if ratio_at(mid) <= env.target else (lo, mid)
  return lo


def uniform_widths(env: PruningEnv) -> np.ndarray:
  """(G,) widths of the uniform network at the env's target."""
  return np.asarray(env.widths(np.where(env.fixed, 1.0, uniform_keep_ratio(env))))


class Uniform:
  name = label = "uniform"

  def __init__(self, env: PruningEnv):
    self.env = env

  @classmethod
  def from_context(cls, ctx: SearchContext):
    return cls(ctx.env)

  def num_rounds(self) -> int:
    return 1

  def population(self) -> int:
    return 1

  def init_state(self):
    return {}

  def propose(self, state, round_, log):
    return uniform_widths(self.env)[None], {}

  def observe(self, state, round_, widths, rewards, extra):
    return state

  def greedy(self, state):
    return None


class RandomSearch:
  """Random grid configurations inside [target - tolerance, target]."""
  name = label = "random"

  def __init__(self, env: PruningEnv, population: int, evaluations: int, seed: int, grid):
    self.env, self._population = env, population
    self.stream = stream_seed(seed, self.label)
    self.rounds = max(evaluations // population, 1)
    self.grid = np.asarray(grid)

  @classmethod
  def from_context(cls, ctx: SearchContext, **kw):
    c = ctx.search_config
    return cls(ctx.env, c.population, c.evaluations, ctx.seed, ctx.grid, **kw)

  def num_rounds(self) -> int:
    return self.rounds

  def population(self) -> int:
    return self._population

  def init_state(self):
    return {}

  def genes_to_widths(self, genes: np.ndarray) -> np.ndarray:
    ratios = np.where(self.env.fixed, 1.0, self.grid[genes])
    return np.asarray(self.env.widths(ratios))

  def in_window(self, genes: np.ndarray) -> np.ndarray:
    ratio = self.env.cost.population_ratio(self.genes_to_widths(genes))
    return (ratio <= self.env.target) & (ratio >= self.env.target - self.env.tolerance)

  def sample_genes(self, rng: np.random.Generator, n: int) -> np.ndarray:
    found = []
    for _ in range(200):
      genes = rng.integers(0, len(self.grid), size=(2048, self.env.spec.num_groups))
      found.extend(genes[self.in_window(genes)])
      if len(found) >= n:
        return np.stack(found[:n])
    raise UserError(
        f"random sampling found too few configurations with {self.env.cost.name} ratio in "
        f"[{self.env.target - self.env.tolerance:.3f}, {self.env.target:.3f}]; "
        "raise search.macs_tolerance or use another method")

  def propose(self, state, round_, log):
    genes = self.sample_genes(round_rng(self.stream, round_), self._population)
    return self.genes_to_widths(genes), {"genes": genes}

  def observe(self, state, round_, widths, rewards, extra):
    return state

  def greedy(self, state):
    return None


class Evolution(RandomSearch):
  """MetaPruning's evolutionary search over grid indices."""
  name = label = "evolution"

  def __init__(self, env, population, evaluations, seed, grid, *, parents: int = 4,
               mutation_prob: float = 0.1):
    super().__init__(env, population, evaluations, seed, grid)
    self.parents = max(2, min(parents, population))
    self.mutation_prob = mutation_prob
    self.capacity = self.rounds * population

  @classmethod
  def from_context(cls, ctx: SearchContext, **kw):
    e = ctx.search_config.evolution
    return super().from_context(ctx, parents=e.parents, mutation_prob=e.mutation_prob)

  def init_state(self):
    return {"genes": np.zeros((self.capacity, self.env.spec.num_groups), np.int32)}

  def propose(self, state, round_, log):
    rng = round_rng(self.stream, round_)
    n = self._population
    if round_ == 0:
      return super().propose(state, round_, log)
    count = int(log["count"])
    seen = {tuple(g) for g in state["genes"][:count]}
    top = np.argsort(-log["scores"][:count], kind="stable")[:self.parents]
    parents = state["genes"][top]
    free = ~self.env.fixed
    children = []
    for _ in range(20 * n):
      if len(children) >= n:
        break
      if len(children) < n // 2:  # mutation
        child = parents[rng.integers(len(parents))].copy()
        flip = (rng.random(child.shape) < self.mutation_prob) & free
        child[flip] = rng.integers(0, len(self.grid), size=int(flip.sum()))
      else:  # crossover
        a, b = parents[rng.choice(len(parents), 2, replace=False)]
        child = np.where(rng.random(a.shape) < 0.5, a, b)
      key = tuple(child)
      if key not in seen and self.in_window(child[None])[0]:
        seen.add(key)
        children.append(child)
    if len(children) < n:  # as MetaPruning: top up with random samples
      children.extend(self.sample_genes(rng, n - len(children)))
    genes = np.stack(children).astype(np.int32)
    return self.genes_to_widths(genes), {"genes": genes}

  def observe(self, state, round_, widths, rewards, extra):
    genes = np.array(state["genes"])
    start = round_ * self._population
    genes[start:start + len(extra["genes"])] = extra["genes"]
    return {"genes": genes}
