"""The RL search learns: separate random streams per method, a synthetic reward of known
optimum that the greedy policy must approach, the reward options, and learning curves."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import agent as agent_bench
from benchmarks.agent import context
from gp_jax.runtime import io_utils
from gp_jax.search import methods
from gp_jax.search.base import stream_seed
from gp_jax.stages import search as search_stage
from tests.conftest import link_pruningnet, tiny_config

def test_methods_draw_from_their_own_streams():
  config = tiny_config()
  config.search.rl.episodes_per_round = 4
  ctx = context(config)
  first = {}
  for label in ("graph_rl", "amc", "graph_rl+gcn_shuffled", "random"):
    config.search.method, _, config.search.rl.state = label.partition("+")
    method = methods.build_method(config.search.method, ctx)
    assert method.label == label
    widths, _ = method.propose(method.init_state(), 0, None)
    again, _ = methods.build_method(config.search.method, ctx).propose(method.init_state(), 0,
                                                                     None)
    np.testing.assert_array_equal(widths, again)  # same (seed, method): same proposals
    first[label] = widths
  assert not np.array_equal(first["graph_rl"], first["amc"])
  assert not np.array_equal(first["graph_rl"], first["graph_rl+gcn_shuffled"])
  assert len({stream_seed(0, l) for l in first} | {stream_seed(1, "graph_rl")}) == 5


def test_greedy_rollout_is_noise_free_and_reuses_the_rounds_program():
  config = tiny_config()
  config.search.rl.episodes_per_round = 4
  method = methods.build_method("graph_rl", context(config))
  state = method.init_state()
  widths, _ = method.propose(state, 0, None)
  greedy = method.greedy(state)
  assert greedy.shape == (1, widths.shape[1])
  # Every noise-free episode of the rollout is the same configuration.
  everyone, _, _ = method._rollout(state["agent"].actor, jax.random.split(jax.random.key(3), 4),
                                   jnp.zeros(4), jnp.zeros(4, bool))
  assert (np.asarray(everyone) == greedy).all()
  assert method._rollout._cache_size() == 1  # the round's and the greedy's: one program


def synthetic_search(label: str, episodes: int, seed: int = 0, warmup: int = 100, **rl):
  """benchmarks.agent's reward of known optimum, on the tiny config."""
  return agent_bench.synthetic_search(label, episodes, seed, warmup, config=tiny_config(), **rl)


@pytest.mark.parametrize("label", ["amc", "graph_rl"])
def test_agent_learns_a_synthetic_reward_of_known_optimum(label):
  """With AMC's settings (but our noise decay), 400 episodes: the greedy policy ends
  much closer to the optimum than the best of 400 uniformly random episodes from the
  same wall and stream, and far above the warm-up's mean."""
  rewards, greedy = synthetic_search(label, 400)
  random_rewards, _ = synthetic_search(label, 400, warmup=400)  # never leaves the warm-up
  final = greedy[-5:].mean()
  assert final > rewards[:100].mean() + 0.1
  assert -final < 0.75 * -random_rewards.max(), (final, random_rewards.max())
  # Sanity: the synthetic optimum is reachable (reward 0) and random search is far from it.
  assert random_rewards.max() < -0.1


def test_reward_can_be_the_held_out_loss(trained_workdir, tmp_path):
  config = tiny_config()
  config.search.method, config.search.reward = "random", "neg_loss"
  config.search.rescore_top = 0  # the pick is the selection-best (test_search checks re-scoring)
  workdir = str(tmp_path / "w")
  link_pruningnet(trained_workdir, workdir)
  [result] = search_stage.run(config, workdir)
  rows = io_utils.read_jsonl(os.path.join(workdir, "search", "candidates_0.5.jsonl"))
  rewards = [r["reward"] for r in rows]
  assert result["reward"] == "neg_loss" and result["best_reward"] == max(rewards) < 0
  best = rows[result["best_evaluation"]]
  assert best["reward"] == result["best_reward"]
  assert best["proxy_top1"] == pytest.approx(result["proxy_top1"])
  assert result["best_ties"] == rewards.count(max(rewards)) >= 1
  # The first of equal best rewards is chosen.
  assert result["best_evaluation"] == rewards.index(max(rewards))


def test_amc_options_change_the_agent_as_documented():
  from gp_jax.search import ddpg
  config = tiny_config()
  c = config.search.rl
  c.episodes_per_round = 4
  c.critic_action, c.output_init, c.action_range = "first", "default", "unit"
  c.replay_sampling, c.reward_norm, c.scalars = "without_replacement", "std", "no_step"
  method = methods.build_method("graph_rl", context(config))
  assert method.label == "graph_rl+no_step" == methods.method_label(config.search)
  base = methods.build_method("graph_rl", context(tiny_config()))
  assert method.state_dim == base.state_dim - 1  # t/T left out
  assert method.stream == base.stream  # a paired control: the same random stream
  state = method.init_state()
  critic = state["agent"].critic
  assert {"Dense_0", "Dense_1"} <= set(critic) and critic["Dense_1"]["kernel"].shape == (1, 16)
  out_kernel = np.abs(np.asarray(state["agent"].actor["Dense_2"]["kernel"]))
  assert out_kernel.max() > 3e-3 * 2  # PyTorch's default, not AMC's unused init_w
  widths, extra = method.propose(state, 0, None)
  env = method.env
  ratio = env.cost.population_ratio(widths)
  assert ((ratio <= 0.5 + 1e-6) & (ratio >= 0.5 - env.tolerance - 0.02)).all()
  assert (extra["actions"] >= env.lower_bound - 1e-6).all()  # the wall clipped [0, 1] up
  # Replay without replacement: no transition twice in a batch.
  replay = ddpg.replay_init(50, 3)
  replay = ddpg.replay_add(replay, {"state": np.zeros((50, 3)), "action": np.arange(50.0),
                                    "reward": np.zeros(50), "next_state": np.zeros((50, 3)),
                                    "done": np.zeros(50)})
  batches = ddpg.replay_sample(replay, np.random.default_rng(0), 20, 40, replacement=False)
  assert all(len(set(b)) == 40 for b in batches["action"])
  with_repeats = ddpg.replay_sample(replay, np.random.default_rng(0), 20, 40)
  assert any(len(set(b)) < 40 for b in with_repeats["action"])
  # Reward normalisation by a running std: rewards of any scale reach the critic alike.
  agent = ddpg.DDPG(3, hidden=8, lower_bound=0.1, actor_lr=1e-3, critic_lr=1e-3, tau=0.01,
                    discount=0.0, reward_norm="std")
  a = agent.init(jax.random.key(0))
  batch = {"state": jnp.zeros((16, 3)), "action": jnp.full((16,), 0.5),
           "reward": jnp.linspace(0, 100, 16), "next_state": jnp.zeros((16, 3)),
           "done": jnp.ones(16)}
  a2, _ = agent.update(a, batch)
  assert float(a2.reward_var) == pytest.approx(float(jnp.var(batch["reward"])), rel=1e-5)
