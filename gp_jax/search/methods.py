"""Search methods in one harness: each proposes populations of configurations.

A method is driven round by round: `propose(state, round, log)` returns a
population of widths (P, G) that the harness scores in one vmapped call, and
`observe(...)` folds the scores back into the method's state. All randomness
derives from (seed, round), and the state is a pytree of fixed-shape arrays, so
a search resumes exactly from a checkpoint.

* `uniform`: one keep-ratio for every group, the largest within the budget.
* `random`: random grid configurations inside the MACs window.
* `evolution`: MetaPruning's evolutionary search (top-k parents, mutation,
  crossover, rejection of configurations outside the MACs window).
* `graph_rl`: DDPG whose state is the PruningNet GCN's embedding of the group.
* `amc`: the same DDPG with AMC's hand-crafted layer features (the ablation).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gp_jax import costs
from gp_jax.errors import UserError
from gp_jax.search import ddpg as ddpg_lib
from gp_jax.search.env import NUM_SCALARS, PruningEnv

METHODS = ("graph_rl", "amc", "evolution", "random", "uniform")


def _round_rng(seed: int, round_: int, salt: int = 0) -> np.random.Generator:
  return np.random.default_rng([seed, round_, salt])


def group_average_matrix(spec) -> np.ndarray:
  """(G, num_layers): row g averages the layers whose output is in group g."""
  m = np.zeros((spec.num_groups, len(spec.layers)), np.float32)
  for i, layer in enumerate(spec.layers):
    m[layer.out_group, i] = 1.0
  return m / np.maximum(m.sum(1, keepdims=True), 1.0)


class Uniform:
  name = "uniform"

  def __init__(self, env: PruningEnv, population: int, evaluations: int, seed: int):
    self.env = env

  def num_rounds(self) -> int:
    return 1

  def population(self) -> int:
    return 1

  def init_state(self):
    return {}

  def keep_ratio(self) -> float:
    """Largest uniform keep-ratio whose MACs fit the target (bisection)."""
    env = self.env
    ratio_at = lambda r: float(env.macs_ratio(np.where(env.fixed, 1.0, r)))
    lo, hi = env.lower_bound, 1.0
    if ratio_at(hi) <= env.target:
      return hi
    for _ in range(50):
      mid = 0.5 * (lo + hi)
      lo, hi = (mid, hi) if ratio_at(mid) <= env.target else (lo, mid)
    return lo

  def propose(self, state, round_, log):
    r = self.keep_ratio()
    return self.env.widths(np.where(self.env.fixed, 1.0, r))[None], {}

  def observe(self, state, round_, widths, scores, extra):
    return state


class RandomSearch:
  """Random grid configurations inside [target - tolerance, target]."""
  name = "random"

  def __init__(self, env: PruningEnv, population: int, evaluations: int, seed: int,
               grid=None):
    self.env, self._population, self.seed = env, population, seed
    self.rounds = max(evaluations // population, 1)
    self.grid = np.asarray(grid)

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
    ratio = costs.population_macs(self.env.spec, self.genes_to_widths(genes)) / self.env.full_macs
    return (ratio <= self.env.target) & (ratio >= self.env.target - self.env.tolerance)

  def sample_genes(self, rng: np.random.Generator, n: int) -> np.ndarray:
    found = []
    for _ in range(200):
      genes = rng.integers(0, len(self.grid), size=(2048, self.env.spec.num_groups))
      found.extend(genes[self.in_window(genes)])
      if len(found) >= n:
        return np.stack(found[:n])
    raise UserError(
        f"random sampling found too few configurations with MACs in "
        f"[{self.env.target - self.env.tolerance:.3f}, {self.env.target:.3f}]; "
        "raise search.macs_tolerance or use another method")

  def propose(self, state, round_, log):
    genes = self.sample_genes(_round_rng(self.seed, round_), self._population)
    return self.genes_to_widths(genes), {"genes": genes}

  def observe(self, state, round_, widths, scores, extra):
    return state


class Evolution(RandomSearch):
  """MetaPruning's evolutionary search over grid indices."""
  name = "evolution"

  def __init__(self, env, population, evaluations, seed, grid=None, *,
               parents: int = 4, mutation_prob: float = 0.1):
    super().__init__(env, population, evaluations, seed, grid)
    self.parents = max(2, min(parents, population))
    self.mutation_prob = mutation_prob
    self.capacity = self.rounds * population

  def init_state(self):
    return {"genes": np.zeros((self.capacity, self.env.spec.num_groups), np.int32)}

  def propose(self, state, round_, log):
    rng = _round_rng(self.seed, round_)
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

  def observe(self, state, round_, widths, scores, extra):
    genes = np.array(state["genes"])
    start = round_ * self._population
    genes[start:start + len(extra["genes"])] = extra["genes"]
    return {"genes": genes}


class RLSearch:
  """DDPG over the groups, E episodes per round in parallel (AMC's method)."""

  def __init__(self, env: PruningEnv, population: int, evaluations: int, seed: int, *,
               features: str, rl_config, pruningnet=None, pruningnet_params=None):
    self.env, self.seed, self.E = env, seed, population
    self.name = "graph_rl" if features == "gcn" else "amc"
    self.rounds = max(evaluations // population, 1)
    self.c = rl_config
    spec = env.spec
    average = jnp.asarray(group_average_matrix(spec))
    if features == "gcn":
      from gp_jax.pruningnet import PruningNet
      model = pruningnet

      def group_features(pn_params, ratios):
        emb = model.apply({"params": pn_params}, env.widths(ratios),
                          method=PruningNet.embeddings)
        return average @ emb
      feature_dim = model.gcn_features
    else:
      from gp_jax.layer_graph import build_layer_graph
      static = average @ jnp.asarray(build_layer_graph(spec).static_features)
      group_features = lambda pn_params, ratios: static
      feature_dim = static.shape[1]
    self.pn_params = pruningnet_params if features == "gcn" else {}
    self.state_dim = feature_dim + NUM_SCALARS
    self.agent = ddpg_lib.DDPG(self.state_dim, hidden=self.c.hidden,
                               lower_bound=env.lower_bound, actor_lr=self.c.actor_lr,
                               critic_lr=self.c.critic_lr, tau=self.c.tau,
                               discount=self.c.discount)
    self._rollout = jax.jit(jax.vmap(self._episode_fn(group_features),
                                     in_axes=(None, None, 0, None, None)))
    self._update = jax.jit(self.agent.update_many)

  def num_rounds(self) -> int:
    return self.rounds

  def population(self) -> int:
    return self.E

  def _episode_fn(self, group_features):
    env, agent = self.env, self.agent
    free = jnp.asarray(env.free_groups)
    lb = env.lower_bound

    def episode(actor_params, pn_params, key, sigma, random_actions):
      def step(carry, t):
        ratios, prev = carry
        feats = group_features(pn_params, ratios)
        obs = jnp.concatenate([feats[free[t]], env.scalar_features(ratios, t, prev)])
        mu = agent.actor.apply({"params": actor_params}, obs)
        k_uniform, k_noise = jax.random.split(jax.random.fold_in(key, t))
        uniform = jax.random.uniform(k_uniform, (), minval=lb, maxval=1.0)
        noise = jax.random.truncated_normal(k_noise, (lb - mu) / sigma, (1.0 - mu) / sigma)
        a = jnp.where(random_actions, uniform, mu + sigma * noise)
        low, high = env.action_bounds(ratios, t)
        a = jnp.clip(a, low, high)
        return (ratios.at[free[t]].set(a), a), (obs, a)

      init = (jnp.ones(env.spec.num_groups, jnp.float32), jnp.float32(1.0))
      (ratios, _), (obs, actions) = jax.lax.scan(step, init, jnp.arange(env.num_steps))
      return env.widths(ratios), obs, actions

    return episode

  def init_state(self):
    return {"agent": self.agent.init(jax.random.key(self.seed)),
            "replay": ddpg_lib.replay_init(self.c.replay_size, self.state_dim),
            "baseline": np.zeros((), np.float32)}

  def _exploration(self, round_):
    episodes = round_ * self.E
    random_actions = episodes < self.c.warmup_episodes
    sigma = self.c.noise_init * self.c.noise_decay ** max(episodes - self.c.warmup_episodes, 0)
    return random_actions, max(float(sigma), 1e-3)

  def propose(self, state, round_, log):
    random_actions, sigma = self._exploration(round_)
    keys = jax.random.split(jax.random.fold_in(jax.random.key(self.seed + 1), round_), self.E)
    widths, obs, actions = self._rollout(state["agent"].actor, self.pn_params, keys,
                                         jnp.float32(sigma), jnp.bool_(random_actions))
    return np.asarray(widths), {"obs": np.asarray(obs), "actions": np.asarray(actions)}

  def observe(self, state, round_, widths, scores, extra):
    macs_ratio = costs.population_macs(self.env.spec, widths) / self.env.full_macs
    rewards = np.asarray(scores) + self.c.macs_reward * macs_ratio
    # AMC: every step of an episode gets the episode's reward minus a moving baseline.
    baseline = float(np.mean(rewards)) if round_ == 0 else (
        self.c.baseline_decay * float(state["baseline"])
        + (1 - self.c.baseline_decay) * float(np.mean(rewards)))
    obs, actions = extra["obs"], extra["actions"]  # (E, T, S), (E, T)
    E, T = actions.shape
    next_obs = np.concatenate([obs[:, 1:], np.zeros_like(obs[:, :1])], axis=1)
    done = np.zeros((E, T), np.float32)
    done[:, -1] = 1.0
    transitions = {
        "state": obs.reshape(E * T, -1), "action": actions.reshape(-1),
        "reward": np.repeat(rewards - baseline, T).astype(np.float32),
        "next_state": next_obs.reshape(E * T, -1), "done": done.reshape(-1)}
    replay = ddpg_lib.replay_add(state["replay"], transitions)
    agent = state["agent"]
    if (round_ + 1) * self.E > self.c.warmup_episodes:
      batches = ddpg_lib.replay_sample(replay, _round_rng(self.seed, round_, 1),
                                       updates=T * E // max(self.c.update_every, 1),
                                       batch=self.c.batch_size)
      agent, _ = self._update(agent, batches)
    return {"agent": agent, "replay": replay, "baseline": np.asarray(baseline, np.float32)}


def build_method(name: str, env: PruningEnv, search_config, *, seed: int, grid,
                 pruningnet=None, pruningnet_params=None):
  c = search_config
  common = (env, c.population, c.evaluations, seed)
  if name == "uniform":
    return Uniform(*common)
  if name == "random":
    return RandomSearch(*common, grid=grid)
  if name == "evolution":
    return Evolution(*common, grid=grid, parents=c.evolution.parents,
                     mutation_prob=c.evolution.mutation_prob)
  if name in ("graph_rl", "amc"):
    return RLSearch(*common, features="gcn" if name == "graph_rl" else "handcrafted",
                    rl_config=c.rl, pruningnet=pruningnet,
                    pruningnet_params=pruningnet_params)
  from gp_jax.errors import unknown_name
  raise unknown_name("search method", name, METHODS)
