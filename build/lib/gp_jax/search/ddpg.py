"""DDPG, as AMC uses it: a deterministic actor, a Q critic, target networks, replay.

The agent's parameters, optimizer states and reward baseline live in one
pytree (`AgentState`), updated by a pure jitted function; the replay buffer is
a fixed-size FIFO of arrays, so the whole search state checkpoints with orbax.
As in AMC's `lib/agent.py`: the output layers start near zero (uniform
+-3e-3, its `init_w`), and each sampled batch's rewards have a moving average
of batch-mean rewards subtracted (its `moving_alpha`).
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


class Actor(nn.Module):
  hidden: int = 300
  lower_bound: float = 0.1

  @nn.compact
  def __call__(self, state):
    x = nn.relu(nn.Dense(self.hidden)(state))
    x = nn.relu(nn.Dense(self.hidden)(x))
    a = nn.sigmoid(nn.Dense(1, kernel_init=_small)(x))[..., 0]
    return self.lower_bound + (1.0 - self.lower_bound) * a


class Critic(nn.Module):
  hidden: int = 300

  @nn.compact
  def __call__(self, state, action):
    x = nn.relu(nn.Dense(self.hidden)(state))
    x = jnp.concatenate([x, action[..., None]], axis=-1)
    x = nn.relu(nn.Dense(self.hidden)(x))
    return nn.Dense(1, kernel_init=_small)(x)[..., 0]


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


class DDPG:
  """Pure functions over `AgentState`; hyper-parameters are attributes."""

  def __init__(self, state_dim: int, *, hidden: int, lower_bound: float,
               actor_lr: float, critic_lr: float, tau: float, discount: float,
               baseline_alpha: float = 0.5):
    self.state_dim = state_dim
    self.actor = Actor(hidden, lower_bound)
    self.critic = Critic(hidden)
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
                      baseline=jnp.zeros((), jnp.float32), has_baseline=jnp.zeros((), bool))

  def act(self, agent: AgentState, state):
    return self.actor.apply({"params": agent.actor}, state)

  def update(self, agent: AgentState, batch: dict):
    """One DDPG step on a replay batch {state, action, reward, next_state, done}."""
    batch_mean = jnp.mean(batch["reward"])
    baseline = jnp.where(agent.has_baseline,
                         agent.baseline + self.baseline_alpha * (batch_mean - agent.baseline),
                         batch_mean)
    batch = dict(batch, reward=batch["reward"] - baseline)
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
        has_baseline=jnp.ones((), bool))
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


def replay_sample(replay: dict, rng: np.random.Generator, updates: int, batch: int) -> dict:
  size = min(int(replay["count"]), len(replay["action"]))
  idx = rng.integers(0, size, size=(updates, batch))
  return {k: v[idx] for k, v in replay.items() if k != "count"}
