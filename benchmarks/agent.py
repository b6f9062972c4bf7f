"""The agent's options on a reward of known optimum -> study.json ("agent"), STUDY.md.

    python -m benchmarks.agent                 # every variant x --seeds, about 20 minutes
    python -m benchmarks.agent --render        # STUDY.md's agent section from study.json

The reward is -mean |keep-ratio - goal| over the groups for a goal configuration
inside the MACs window (optimum 0, reachable), so whether the DDPG agent learns,
and how fast, is measured without a PruningNet's noise. Each variant changes one
of the choices where AMC's code and this agent could differ (`search.rl.*`,
gp_jax/search/ddpg.py) or all of AMC's together; every variant runs the same
seeds (the goal is fixed; the agent's stream follows the seed). The figures are
the greedy policy's reward over the last 5 rounds, the warm-up's mean and the
best episode, over 400 episodes (AMC's 100 warm-up included).
"""
from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from configs import digits_resnet20
from gp_jax.config.build import make_env, spec_from_config
from gp_jax.hypernet.pruningnet import PruningNet, pruningnet_from_config
from gp_jax.net import channels
from gp_jax.runtime import cli, io_utils
from gp_jax.runtime.timing import host_cpu
from gp_jax.search import baselines, methods
from gp_jax.search.base import SearchContext

GRID = np.linspace(0.1, 1, 31)
VARIANTS = {
    "today": {},
    "critic_action=first": {"critic_action": "first"},
    "output_init=default": {"output_init": "default"},
    "action_range=unit": {"action_range": "unit"},
    "replay without replacement": {"replay_sampling": "without_replacement"},
    "discount=0": {"discount": 0.0},
    "reward_norm=std": {"reward_norm": "std"},
    "episodes_per_round=1": {"episodes_per_round": 1},
    "AMC's code (the four above)": {"critic_action": "first", "output_init": "default",
                                    "action_range": "unit",
                                    "replay_sampling": "without_replacement"},
    "scalars=no_step (control)": {"scalars": "no_step"},
}



def small_config():
  """The digits config at 16x16 with a small GCN: the synthetic reward needs no
  trained PruningNet, only the network's groups, budget and graph."""
  config = digits_resnet20.get_config()
  config.progress = False
  config.dataset.resolution = 16
  config.pruningnet.gcn_features, config.pruningnet.head_hidden = 16, 8
  config.search.population = 4
  return config


def context(config, target=0.5, seed=0):
  spec = spec_from_config(config)
  env = make_env(config, spec, target)
  model = pruningnet_from_config(spec, config)
  # A freshly initialised GCN: the synthetic reward does not need a trained one.
  params = model.init(jax.random.key(1), jnp.asarray(spec.max_widths),
                      method=PruningNet.embeddings)["params"]
  return SearchContext(env, config.search, seed, GRID, model, params)


def synthetic_search(label: str, episodes: int, seed: int = 0, warmup: int = 100,
                     config=None, **rl):
  """(every episode's reward, the greedy policy's reward after each round) of method
  `label` (`name[+state]`) against the synthetic reward; `rl` overrides `search.rl`."""
  config = config or small_config()
  c = config.search
  c.evaluations, c.rl.episodes_per_round = episodes, 4
  c.rl.hidden, c.rl.batch_size = 300, 64  # AMC's sizes
  c.rl.warmup_episodes = warmup
  for key, value in rl.items():
    c.rl[key] = value
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


def render(agent: dict) -> str:
  rows = agent["runs"]
  lines = ["## The agent on a reward of known optimum", "",
           f"`python -m benchmarks.agent` ({agent['date']}, {agent['host_cpu']}): `graph_rl` "
           f"with an untrained GCN, {agent['episodes']} episodes, seeds "
           f"{', '.join(map(str, agent['seeds']))}; reward -mean |keep-ratio - goal| (0 is "
           "the optimum). Mean ± std over seeds of the greedy policy's last 5 rounds; paired "
           "difference to `today` per seed.", "",
           "| variant | greedy, last rounds | minus today | warm-up mean | best episode |",
           "|---|---|---|---|---|"]
  today = {r["seed"]: r for r in rows if r["variant"] == "today"}
  for name in VARIANTS:
    got = [r for r in rows if r["variant"] == name]
    if not got:
      continue
    final = np.array([r["final_greedy"] for r in got])
    diffs = np.array([r["final_greedy"] - today[r["seed"]]["final_greedy"] for r in got
                      if r["seed"] in today])
    diff = (f"{diffs.mean():+.3f} ± {diffs.std(ddof=1) if len(diffs) > 1 else 0:.3f}"
            if name != "today" and len(diffs) else "–")
    lines.append(f"| {name} | {final.mean():.3f} ± {final.std(ddof=1) if len(final) > 1 else 0:.3f}"
                 f" | {diff} | {np.mean([r['warmup_mean'] for r in got]):.3f} | "
                 f"{np.mean([r['best'] for r in got]):.3f} |")
  return "\n".join(lines) + "\n"


START, END = "<!-- agent: benchmarks/agent.py -->", "<!-- /agent -->"


def write_section(path: str, section: str) -> None:
  text = open(path).read() if os.path.exists(path) else ""
  block = f"{START}\n{section}{END}"
  if START in text and END in text:
    text = text[:text.index(START)] + block + text[text.index(END) + len(END):]
  else:
    text = text.rstrip("\n") + "\n\n" + block + "\n"
  io_utils.write_text(path, text)


def main(argv):
  """The command line (its flags are defined only when run as a program: the tests
  import this module beside the other benchmarks)."""
  del argv
  f = flags.FLAGS
  _SEEDS, _EPISODES, _VARIANTS = f["seeds"], f["episodes"], f["variants"]
  _JSON, _OUTPUT, _RENDER = f["json"], f["output"], f["render"]
  study = io_utils.read_json(_JSON.value) if os.path.exists(_JSON.value) else {}
  if not _RENDER.value:
    runs = [r for r in study.get("agent", {}).get("runs", [])
            if r["episodes"] == _EPISODES.value]
    done = {(r["variant"], r["seed"]) for r in runs}
    for name in _VARIANTS.value:
      for seed in map(int, _SEEDS.value):
        if (name, seed) in done:
          continue
        t0 = time.time()
        rewards, greedy = synthetic_search("graph_rl", _EPISODES.value, seed=seed,
                                           **VARIANTS[name])
        runs.append({"variant": name, "seed": seed, "episodes": _EPISODES.value,
                     "final_greedy": float(greedy[-5:].mean()),
                     "warmup_mean": float(rewards[:100].mean()), "best": float(rewards.max()),
                     "seconds": time.time() - t0})
        print(f"agent: {name} seed {seed}: greedy {runs[-1]['final_greedy']:.3f}", flush=True)
        study["agent"] = {"runs": runs, "episodes": _EPISODES.value,
                          "seeds": sorted({r["seed"] for r in runs}),
                          "date": time.strftime("%Y-%m-%d"), "host_cpu": host_cpu()}
        io_utils.write_json(_JSON.value, study)
  write_section(_OUTPUT.value, render(study["agent"]))


if __name__ == "__main__":
  flags.DEFINE_list("seeds", ["0", "1", "2"], "Agent seeds per variant.")
  flags.DEFINE_integer("episodes", 400, "Episodes per search.")
  flags.DEFINE_list("variants", list(VARIANTS), "Variants to run.")
  flags.DEFINE_string("json", "study.json", "Where the figures go (key 'agent').")
  flags.DEFINE_string("output", "STUDY.md", "The page whose agent section is rendered.")
  flags.DEFINE_bool("render", False, "Only render the section from the JSON.")
  cli.run(main)
