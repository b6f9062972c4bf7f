"""The RL search learns: separate random streams per method, a synthetic reward of known
optimum that the greedy policy must approach, the reward options, and learning curves."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gp_jax import channels, io_utils
from gp_jax.config_lib import make_env, spec_from_config
from gp_jax.pruningnet import PruningNet, pruningnet_from_config
from gp_jax.search import baselines, methods
from gp_jax.search.base import SearchContext, stream_seed
from gp_jax.stages import search as search_stage
from tests.conftest import link_pruningnet, tiny_config

GRID = np.linspace(0.1, 1, 31)


def context(config, target=0.5, seed=0):
  spec = spec_from_config(config)
  env = make_env(config, spec, target)
  model = pruningnet_from_config(spec, config)
  # A freshly initialised GCN: the synthetic reward does not need a trained one.
  params = model.init(jax.random.key(1), jnp.asarray(spec.max_widths),
                      method=PruningNet.embeddings)["params"]
  return SearchContext(env, config.search, seed, GRID, model, params)


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


def synthetic_search(label: str, episodes: int, seed: int = 0, warmup: int = 100):
  """RL against reward = -mean |keep-ratio - target| over the groups, with a target
  configuration inside the MACs window (so the optimum, reward 0, is reachable)."""
  config = tiny_config()
  c = config.search
  c.evaluations, c.rl.episodes_per_round = episodes, 4
  c.rl.hidden, c.rl.batch_size = 300, 64  # AMC's sizes (the tiny config shrinks them)
  c.rl.warmup_episodes = warmup
  c.method, _, c.rl.state = label.partition("+")
  ctx = context(config, seed=seed)
  env, spec = ctx.env, ctx.env.spec
  rs = baselines.RandomSearch(env, 1, 1, 123, GRID)
  goal_widths = rs.genes_to_widths(rs.sample_genes(np.random.default_rng(5), 1))[0]
  goal = np.asarray(channels.keep_ratios_from_widths(spec, goal_widths))[env.free_groups]

  def reward(widths):
    ratios = np.stack([np.asarray(channels.keep_ratios_from_widths(spec, w))[env.free_groups]
                       for w in widths])
    return -np.abs(ratios - goal).mean(1)

  method = methods.build_method(c.method, ctx)
  state = method.init_state()
  rewards, greedy = [], []
  for r in range(method.num_rounds()):
    widths, extra = method.propose(state, r, None)
    rewards.extend(reward(widths))
    state = method.observe(state, r, widths, reward(widths), extra)
    greedy.append(float(reward(method.greedy(state))[0]))
  return np.asarray(rewards), np.asarray(greedy)


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
