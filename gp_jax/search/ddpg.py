"""DDPG, as AMC uses it: a deterministic actor, a Q critic, target networks, replay.

The agent's parameters, optimizer states and reward baseline live in one
pytree (`AgentState`), updated by a pure jitted function; the replay buffer is
a fixed-size FIFO of arrays, so the whole search state checkpoints with orbax.
Each sampled batch's rewards have a moving average of batch-mean rewards
subtracted (AMC's `moving_alpha`). Where AMC's code and this agent could differ,
an option chooses (`search.rl.*`, defaults in `config/schema.py`):
* `critic_action`: `first` adds the action into the critic's first layer
  (AMC: `fc11(state) + fc12(action)`), `hidden` concatenates it to the first
  hidden layer (DDPG's paper);
* `output_init`: `default` leaves the output layers at PyTorch's default init
  (uniform +-1/sqrt(fan_in): AMC's `init_w` call is commented out), `small`
  starts them at +-3e-3 (actions near the middle);
* `action_range`: `bounded` maps the actor into [lower bound, 1]; `unit` lets it
  output [0, 1] and the environment clips it up (AMC's `lbound`);
* `reward_norm`: `baseline` subtracts the moving average; `std` also divides by a
  running standard deviation of the rewards.
Replay is sampled with or without replacement (`replay_sampling`).
"""
from __future__ import annotations

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax


INIT_W = 3e-3  # AMC's init_w: the last layers start near zero (actions near the middle)


def _small(key, shape, dtype=jnp.float32):
  return jax.random.uniform(key, shape, dtype, -INIT_W, INIT_W)


def _torch_default(key, shape, dtype=jnp.float32):
  """PyTorch's nn.Linear default: uniform +-1/sqrt(fan_in) (kernel (fan_in, out))."""
  bound = 1.0 / np.sqrt(shape[0])
  return jax.random.uniform(key, shape, dtype, -bound, bound)


def _output_dense(output_init: str, fan_in: int):
  if output_init == "small":
    return nn.Dense(1, kernel_init=_small)
  bound = 1.0 / np.sqrt(fan_in)
  return nn.Dense(1, kernel_init=_torch_default,
                  bias_init=lambda k, s, d=jnp.float32: jax.random.uniform(k, s, d, -bound, bound))


class Actor(nn.Module):
  hidden: int = 300
  lower_bound: float = 0.1
  output_init: str = "small"
  action_range: str = "bounded"

  @nn.compact
  def __call__(self, state):
    x = nn.relu(nn.Dense(self.hidden)(state))
    x = nn.relu(nn.Dense(self.hidden)(x))
    a = nn.sigmoid(_output_dense(self.output_init, self.hidden)(x))[..., 0]
    if self.action_range == "unit":  # AMC: [0, 1]; the environment clips to the bound
      return a
    return self.lower_bound + (1.0 - self.lower_bound) * a


class Critic(nn.Module):
  hidden: int = 300
  output_init: str = "small"
  critic_action: str = "hidden"

  @nn.compact
  def __call__(self, state, action):
    if self.critic_action == "first":  # AMC: fc11(state) + fc12(action), then ReLU
      x = nn.relu(nn.Dense(self.hidden)(state)
                  + nn.Dense(self.hidden, use_bias=False)(action[..., None]))
    else:
      x = nn.relu(nn.Dense(self.hidden)(state))
      x = jnp.concatenate([x, action[..., None]], axis=-1)
    x = nn.relu(nn.Dense(self.hidden)(x))
    return _output_dense(self.output_init, self.hidden)(x)[..., 0]


@flax.struct.dataclass
class AgentState:
  actor: Any
  critic: Any
  actor_target: Any
  critic_target: Any
  actor_opt: Any
  critic_opt: Any
  baseline: Any = 0.0       # moving average of sampled batches' mean reward
  has_baseline: Any = False  # False until the first update sets it
  reward_var: Any = 1.0     # moving average of sampled batches' reward variance (`std`)


class DDPG:
  """Pure functions over `AgentState`; hyper-parameters are attributes."""

  def __init__(self, state_dim: int, *, hidden: int, lower_bound: float,
               actor_lr: float, critic_lr: float, tau: float, discount: float,
               baseline_alpha: float = 0.5, critic_action: str = "hidden",
               output_init: str = "small", action_range: str = "bounded",
               reward_norm: str = "baseline"):
    self.state_dim = state_dim
    self.actor = Actor(hidden, lower_bound, output_init, action_range)
    self.critic = Critic(hidden, output_init, critic_action)
    self.reward_norm = reward_norm
    self.actor_tx = optax.adam(actor_lr)
    self.critic_tx = optax.adam(critic_lr)
    self.tau = tau
    self.discount = discount
    self.baseline_alpha = baseline_alpha

  def init(self, key) -> AgentState:
    ka, kc = jax.random.split(key)
    s = jnp.zeros((1, self.state_dim))
    actor = self.actor.init(ka, s)["params"]
    critic = self.critic.init(kc, s, jnp.zeros((1,)))["params"]
    return AgentState(actor=actor, critic=critic, actor_target=actor,
                      critic_target=critic, actor_opt=self.actor_tx.init(actor),
                      critic_opt=self.critic_tx.init(critic),
                      baseline=jnp.zeros((), jnp.float32), has_baseline=jnp.zeros((), bool),
                      reward_var=jnp.ones((), jnp.float32))

  def act(self, agent: AgentState, state):
    return self.actor.apply({"params": agent.actor}, state)

  def update(self, agent: AgentState, batch: dict):
    """One DDPG step on a replay batch {state, action, reward, next_state, done}."""
    batch_mean = jnp.mean(batch["reward"])
    baseline = jnp.where(agent.has_baseline,
                         agent.baseline + self.baseline_alpha * (batch_mean - agent.baseline),
                         batch_mean)
    batch_var = jnp.var(batch["reward"])
    reward_var = jnp.where(agent.has_baseline,
                           agent.reward_var + self.baseline_alpha * (batch_var - agent.reward_var),
                           batch_var)
    reward = batch["reward"] - baseline
    if self.reward_norm == "std":
      reward = reward / jnp.sqrt(reward_var + 1e-8)
    batch = dict(batch, reward=reward)
    next_action = self.actor.apply({"params": agent.actor_target}, batch["next_state"])
    next_q = self.critic.apply({"params": agent.critic_target}, batch["next_state"],
                               next_action)
    target_q = batch["reward"] + self.discount * (1.0 - batch["done"]) * next_q
    target_q = jax.lax.stop_gradient(target_q)

    def critic_loss(params):
      q = self.critic.apply({"params": params}, batch["state"], batch["action"])
      return jnp.mean((q - target_q) ** 2)

    c_loss, c_grads = jax.value_and_grad(critic_loss)(agent.critic)
    c_updates, critic_opt = self.critic_tx.update(c_grads, agent.critic_opt, agent.critic)
    critic = optax.apply_updates(agent.critic, c_updates)

    def actor_loss(params):  # against the just-updated critic, as AMC's update_policy
      action = self.actor.apply({"params": params}, batch["state"])
      return -jnp.mean(self.critic.apply({"params": critic}, batch["state"], action))

    a_loss, a_grads = jax.value_and_grad(actor_loss)(agent.actor)
    a_updates, actor_opt = self.actor_tx.update(a_grads, agent.actor_opt, agent.actor)
    actor = optax.apply_updates(agent.actor, a_updates)
    agent = AgentState(
        actor=actor, critic=critic,
        actor_target=optax.incremental_update(actor, agent.actor_target, self.tau),
        critic_target=optax.incremental_update(critic, agent.critic_target, self.tau),
        actor_opt=actor_opt, critic_opt=critic_opt, baseline=baseline,
        has_baseline=jnp.ones((), bool), reward_var=reward_var)
    return agent, {"critic_loss": c_loss, "actor_loss": a_loss}

  def update_many(self, agent: AgentState, batches: dict):
    """Several updates in one call: `batches` has a leading update axis."""
    agent, losses = jax.lax.scan(self.update, agent, batches)
    return agent, jax.tree.map(jnp.mean, losses)


def replay_init(capacity: int, state_dim: int) -> dict:
  return {"state": np.zeros((capacity, state_dim), np.float32),
          "action": np.zeros((capacity,), np.float32),
          "reward": np.zeros((capacity,), np.float32),
          "next_state": np.zeros((capacity, state_dim), np.float32),
          "done": np.zeros((capacity,), np.float32),
          "count": np.zeros((), np.int64)}


def replay_add(replay: dict, transitions: dict) -> dict:
  """Ring-buffer insert of N transitions (host-side numpy)."""
  capacity = len(replay["action"])
  n = len(transitions["action"])
  idx = (int(replay["count"]) + np.arange(n)) % capacity
  out = {k: np.array(v) for k, v in replay.items()}
  for k, v in transitions.items():
    out[k][idx] = np.asarray(v)
  out["count"] = np.asarray(int(replay["count"]) + n)
  return out


def replay_sample(replay: dict, rng: np.random.Generator, updates: int, batch: int,
                  replacement: bool = True) -> dict:
  """`updates` batches of `batch` transitions; without `replacement` no transition
  repeats within a batch (AMC's memory), while the buffer holds at least `batch`."""
  size = min(int(replay["count"]), len(replay["action"]))
  if replacement or size < batch:
    idx = rng.integers(0, size, size=(updates, batch))
  else:
    idx = np.stack([rng.choice(size, batch, replace=False) for _ in range(updates)])
  return {k: v[idx] for k, v in replay.items() if k != "count"}
