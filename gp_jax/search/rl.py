"""Layer-by-layer RL search (AMC's DDPG), with the state a graph embedding or hand-crafted.

An episode visits the prunable groups in order; at step t the actor maps the
state of group t to its keep-ratio, the action wall (`env.action_bounds`)
keeps the MACs budget reachable, and the episode's reward (the candidate's
held-out score) is given to every step, as in AMC. The agent follows AMC's
code (mit-han-lab/amc `amc_search.py`, `lib/agent.py`); `config/schema.py`
cites each default. Per round, E episodes run as one vmapped rollout; after
the warm-up, each episode then brings T DDPG updates (AMC: one per step),
so the actor changes every E episodes.

The state of group t is `search.rl.state`:
* `gcn` (`graph_rl`, the paper's method): the trained PruningNet GCN's node
  embedding of the group under the configuration decided so far;
* `handcrafted` (`amc`, the ablation): AMC's static layer features;
* `gcn_untrained`: the embedding from a freshly initialised aggregator;
* `gcn_shuffled`: trained embeddings permuted across groups;
plus four scalars: t/T, MACs already kept, MACs still to decide, the previous
action (`search.rl.scalars`: `no_step` drops t/T, `none` all four). Hand-crafted features are min-max scaled per feature over the groups
(AMC's `_build_state_embedding`); embeddings are standardised per dimension
over the groups and scaled by 1/sqrt(dim), so the 64 GCN dimensions together
weigh about as much as one scalar each does rather than drowning them.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from gp_jax.hypernet.layer_graph import build_layer_graph
from gp_jax.hypernet.pruningnet import PruningNet
from gp_jax.net import costs
from gp_jax.search import ddpg as ddpg_lib
from gp_jax.search.base import round_rng, SearchContext, stream_seed

STATES = ("gcn", "handcrafted", "gcn_untrained", "gcn_shuffled")
# Which of the environment's scalars (t/T, cost decided, cost to decide, previous
# action) join the features: `no_step` and `none` are the controls that test whether
# the features alone identify the step (t/T alone would let any features do).
SCALARS = {"all": (0, 1, 2, 3), "no_step": (1, 2, 3), "none": ()}


def group_average_matrix(spec) -> np.ndarray:
  """(G, num_layers): row g averages the layers whose output is in group g."""
  m = np.zeros((spec.num_groups, len(spec.layers)), np.float32)
  for i, layer in enumerate(spec.layers):
    m[layer.out_group, i] = 1.0
  return m / np.maximum(m.sum(1, keepdims=True), 1.0)


def min_max(x: np.ndarray) -> np.ndarray:
  """Each column scaled to [0, 1] over the rows (a constant column becomes 0)."""
  lo, hi = x.min(0), x.max(0)
  return np.where(hi > lo, (x - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0).astype(np.float32)


def episodes_per_round(rl_config, population: int) -> int:
  """`search.rl.episodes_per_round`, or for 0: 4 on CPU (the actor changes every 4
  episodes; candidates are scored one by one there anyway), the population elsewhere."""
  if rl_config.episodes_per_round > 0:
    return int(rl_config.episodes_per_round)
  return 4 if jax.default_backend() == "cpu" else int(population)


class RLSearch:
  """DDPG over the groups; `name` and `default_state` are set by the subclasses."""
  name = "rl"
  default_state = "gcn"

  def __init__(self, ctx: SearchContext):
    c = ctx.search_config
    self.c = c.rl
    self.env = env = ctx.env
    self.state_kind = self.c.state or self.default_state
    self.label = (self.name if self.state_kind == self.default_state
                  else f"{self.name}+{self.state_kind}")
    # The stream is the state's, with or without the scalar control: a paired comparison.
    self.stream = stream_seed(ctx.seed, self.label)
    self.E = episodes_per_round(self.c, c.population)
    self.rounds = max(c.evaluations // self.E, 1)
    self.T = env.num_steps
    features, feature_dim = self._state_features(ctx)
    self.scalars = np.asarray(SCALARS[self.c.scalars], np.int32)
    if self.c.scalars != "all":
      self.label += f"+{self.c.scalars}"
    self.state_dim = feature_dim + len(self.scalars)
    self.agent = ddpg_lib.DDPG(self.state_dim, hidden=self.c.hidden,
                               lower_bound=env.lower_bound, actor_lr=self.c.actor_lr,
                               critic_lr=self.c.critic_lr, tau=self.c.tau,
                               discount=self.c.discount, baseline_alpha=self.c.baseline_alpha,
                               critic_action=self.c.critic_action,
                               output_init=self.c.output_init,
                               action_range=self.c.action_range,
                               reward_norm=self.c.reward_norm)
    self._rollout = jax.jit(jax.vmap(self._episode_fn(features),
                                     in_axes=(None, 0, 0, 0)))
    self._update = jax.jit(self.agent.update_many)

  @classmethod
  def from_context(cls, ctx: SearchContext):
    return cls(ctx)

  # -- state -----------------------------------------------------------------------------
  def _state_features(self, ctx: SearchContext):
    """(features(ratios) -> (T, F) array for the episode's steps, F)."""
    env = self.env
    spec = env.spec
    free = env.free_groups
    average = group_average_matrix(spec)
    if self.state_kind == "handcrafted":
      table = jnp.asarray(min_max((average @ build_layer_graph(spec).static_features)[free]))
      return (lambda ratios: table), int(table.shape[1])
    model = ctx.pruningnet
    if self.state_kind == "gcn_untrained":
      params = model.init(jax.random.key(self.stream), jnp.asarray(spec.max_widths),
                          method=PruningNet.embeddings)["params"]
    else:
      params = ctx.pruningnet_params
    params = jax.tree.map(jnp.asarray, params)
    average_free = jnp.asarray(average[free])

    def embed(ratios):
      emb = model.apply({"params": params}, env.widths(ratios), method=PruningNet.embeddings)
      return average_free @ emb

    full = np.asarray(jax.jit(embed)(jnp.ones(spec.num_groups, jnp.float32)))
    mean, std = full.mean(0), full.std(0) + 1e-6
    scale = 1.0 / math.sqrt(full.shape[1])
    order = np.arange(len(free))
    if self.state_kind == "gcn_shuffled":
      order = round_rng(self.stream, 0, 7).permutation(len(free))
    order = jnp.asarray(order)

    def features(ratios):
      return ((embed(ratios) - mean) / std * scale)[order]

    return features, int(full.shape[1])

  # -- episodes --------------------------------------------------------------------------
  def _episode_fn(self, features):
    env, agent = self.env, self.agent
    free = jnp.asarray(env.free_groups)
    scalars = jnp.asarray(self.scalars)
    # The agent's own action range (AMC: [0, 1]; the wall below clips to the bound).
    lb = 0.0 if self.c.action_range == "unit" else env.lower_bound

    def episode(actor_params, key, sigma, random_actions):
      def step(carry, t):
        ratios, prev = carry
        obs = jnp.concatenate([features(ratios)[t],
                               env.scalar_features(ratios, t, prev)[scalars]])
        mu = agent.actor.apply({"params": actor_params}, obs)
        k_uniform, k_noise = jax.random.split(jax.random.fold_in(key, t))
        uniform = jax.random.uniform(k_uniform, (), minval=lb, maxval=1.0)
        s = jnp.maximum(sigma, 1e-6)  # sigma 0 is the greedy policy
        noise = jax.random.truncated_normal(k_noise, (lb - mu) / s, (1.0 - mu) / s)
        a = jnp.where(random_actions, uniform, mu + sigma * noise)
        low, high = env.action_bounds(ratios, t)
        a = jnp.clip(a, low, high)
        return (ratios.at[free[t]].set(a), a), (obs, a)

      init = (jnp.ones(env.spec.num_groups, jnp.float32), jnp.float32(1.0))
      (ratios, _), (obs, actions) = jax.lax.scan(step, init, jnp.arange(env.num_steps))
      return env.widths(ratios), obs, actions

    return episode

  def num_rounds(self) -> int:
    return self.rounds

  def population(self) -> int:
    return self.E

  def init_state(self):
    return {"agent": self.agent.init(jax.random.key(self.stream)),
            "replay": ddpg_lib.replay_init(self.c.replay_episodes * self.T, self.state_dim)}

  def exploration(self, round_: int):
    """Per episode of the round: (random warm-up action?, noise sigma), as AMC:
    uniform actions for the first `warmup_episodes`, then truncated-normal noise
    around the actor's action with sigma = noise_init * noise_decay^(episode - warmup)."""
    episodes = round_ * self.E + np.arange(self.E)
    random_actions = episodes < self.c.warmup_episodes
    sigma = self.c.noise_init * self.c.noise_decay ** np.maximum(
        episodes - self.c.warmup_episodes, 0)
    return random_actions, sigma.astype(np.float32)

  def propose(self, state, round_, log):
    random_actions, sigma = self.exploration(round_)
    keys = jax.random.split(jax.random.fold_in(jax.random.key(self.stream), round_), self.E)
    widths, obs, actions = self._rollout(state["agent"].actor, keys, jnp.asarray(sigma),
                                         jnp.asarray(random_actions))
    return np.asarray(widths), {"obs": np.asarray(obs), "actions": np.asarray(actions),
                                "learned": ~random_actions}

  def greedy(self, state) -> np.ndarray:
    """(1, G): the noise-free policy's configuration. The round's E episodes are
    rolled out, all noise-free, so the rollout's one compiled program serves (a
    batch of 1 compiled another: 1.2 s on the demo's search)."""
    widths, _, _ = self._rollout(state["agent"].actor,
                                 jax.random.split(jax.random.key(0), self.E),
                                 jnp.zeros(self.E), jnp.zeros(self.E, bool))
    return np.asarray(widths)[:1]

  def observe(self, state, round_, widths, rewards, extra):
    macs_ratio = costs.population_macs(self.env.spec, widths) / costs.macs(self.env.spec)
    rewards = np.asarray(rewards, np.float32) + self.c.macs_reward * macs_ratio
    obs, actions = extra["obs"], extra["actions"]  # (E, T, S), (E, T)
    E, T = actions.shape
    next_obs = np.concatenate([obs[:, 1:], np.zeros_like(obs[:, :1])], axis=1)
    done = np.zeros((E, T), np.float32)
    done[:, -1] = 1.0
    # AMC: every step of an episode gets the episode's final reward; the moving
    # baseline is subtracted when a batch is sampled (ddpg.DDPG.update).
    transitions = {
        "state": obs.reshape(E * T, -1), "action": actions.reshape(-1),
        "reward": np.repeat(rewards, T).astype(np.float32),
        "next_state": next_obs.reshape(E * T, -1), "done": done.reshape(-1)}
    replay = ddpg_lib.replay_add(state["replay"], transitions)
    agent = state["agent"]
    # AMC: after the warm-up, one update per step of each finished episode.
    updates = T * int(np.sum(extra["learned"]))
    if updates:
      batches = ddpg_lib.replay_sample(
          replay, round_rng(self.stream, round_, 1), updates=updates,
          batch=self.c.batch_size, replacement=self.c.replay_sampling == "with_replacement")
      agent, _ = self._update(agent, batches)
    return {"agent": agent, "replay": replay}


class GraphRL(RLSearch):
  """GraphPruning: the state is the trained GCN's node embedding."""
  name = "graph_rl"
  default_state = "gcn"


class AMC(RLSearch):
  """AMC: the state is the layer's hand-crafted features (the ablation)."""
  name = "amc"
  default_state = "handcrafted"
