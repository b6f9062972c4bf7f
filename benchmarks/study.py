"""The paper's claim, tested: search methods and controls on Fashion-MNIST (ResNet-20).

    make study                                     # -> STUDY.md, runs/study
    python -m benchmarks.study --workdir=runs/study --seeds=0,1,2
    python -m benchmarks.study --dataset=digits        # the quick, too-easy variant

Per seed one PruningNet; from it, every method and control searches 0.3 MACs
with the same budget (`--evaluations` candidates; RL: episodes, AMC's 100
warm-up included), and `graph_rl`, `amc` and `random` also 0.5. Exploration
streams differ per method; the PruningNet and the held-out images are shared,
so the comparisons are paired per seed. The configurations found at 0.3 by
`graph_rl`, `amc`, `random` and `uniform` are retrained from scratch for the
seeds in `--retrain_seeds` and evaluated on the test split. Every piece
resumes: rerunning skips finished searches and continues an interrupted one
from its last round. Not run in CI (hours on 2 CPU cores; STUDY.md says how
long it took and where).
"""
from __future__ import annotations

import os
import platform
import time

import jax
import numpy as np
from absl import flags

from configs import digits_resnet20, fashion_mnist_resnet20
from gp_jax import evaluate
from gp_jax.config import validation
from gp_jax.config.schema import epochs_to_steps
from gp_jax.runtime import cli, io_utils
from gp_jax.runtime.errors import UserError
from gp_jax.runtime.timing import host_cpu
from gp_jax.search import plots
from gp_jax.stages import pruningnet, retrain, search

# (label, method, rl.state): the methods and controls
RUNS = {
    "graph_rl": ("graph_rl", ""),
    "amc": ("amc", ""),
    "graph_rl+gcn_untrained": ("graph_rl", "gcn_untrained"),
    "graph_rl+gcn_shuffled": ("graph_rl", "gcn_shuffled"),
    "evolution": ("evolution", ""),
    "random": ("random", ""),
    "uniform": ("uniform", ""),
}
RL_LABELS = ("graph_rl", "amc", "graph_rl+gcn_untrained", "graph_rl+gcn_shuffled")
RETRAINED = ("graph_rl", "amc", "random", "uniform")

_WORKDIR = flags.DEFINE_string("workdir", "runs/study", "Where every run of the study lives.")
_DATASET = flags.DEFINE_enum("dataset", "fashion_mnist", ["fashion_mnist", "digits"],
                             "fashion_mnist (the study) or digits (quick, too easy).")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (one PruningNet each).")
_LOW = flags.DEFINE_list("low_target_runs", list(RUNS), "Runs searching the low target.")
_HIGH = flags.DEFINE_list("high_target_runs", ["graph_rl", "amc", "random"],
                          "Runs also searching the high target.")
_TARGETS = flags.DEFINE_list("targets", ["0.3", "0.5"], "Low and high MACs targets.")
_EVALUATIONS = flags.DEFINE_integer("evaluations", 300, "Candidates per search (RL: episodes).")
_GREEDY_EVERY = flags.DEFINE_integer("greedy_every", 2, "Rounds between greedy-policy scores.")
_RETRAIN_EPOCHS = flags.DEFINE_float("retrain_epochs", 1.0, "Epochs of retraining for the "
                                     "tested configurations (the config's own is 2).")
_RETRAIN_SEEDS = flags.DEFINE_list("retrain_seeds", ["0"], "Seeds whose 0.3 results are "
                                   "retrained and tested.")
_OUTPUT = flags.DEFINE_string("output", "STUDY.md", "The markdown report to write.")
_REPORT_ONLY = flags.DEFINE_bool("report_only", False, "Write the report from what has "
                                 "finished so far, without running anything.")
_PLOTS = flags.DEFINE_string("plots", "docs/study", "Where the report's plots go.")


def base_config():
  if _DATASET.value == "digits":
    return digits_resnet20.get_config()
  return fashion_mnist_resnet20.get_config()


def study_config(seed: int, label: str, target: float, validate: bool = True):
  """The config of one study run; `validate=False` for describing it only (validating
  reads the dataset, which the report does not need)."""
  config = base_config()
  config.seed = seed
  config.progress = False
  method, state = RUNS[label]
  config.search.method = method
  config.search.rl.state = state
  config.search.targets = (target,)
  config.search.evaluations = _EVALUATIONS.value
  config.search.rl.greedy_every = _GREEDY_EVERY.value
  config.retrain.baseline = ""      # the uniform method is its own row
  config.retrain.unpruned = False
  if _DATASET.value == "fashion_mnist":  # a shorter, equal budget for every tested network
    r = config.retrain
    r.steps = epochs_to_steps(_RETRAIN_EPOCHS.value, fashion_mnist_resnet20.TRAIN, r.batch_size)
    r.warmup_steps = min(r.warmup_steps, r.steps // 10)
    r.checkpoint_every = max(1, r.steps // 2)
  if validate:  # the stages it runs take a validated config
    validation.validate(config)
  return config


def pruningnet_dir(root: str, seed: int) -> str:
  return os.path.join(root, f"seed{seed}", "pruningnet_run")


def run_search(root: str, seed: int, label: str, target: float) -> dict:
  """One search (resumed if interrupted, skipped if done) from the seed's PruningNet."""
  config = study_config(seed, label, target)
  pn_dir = pruningnet_dir(root, seed)
  if not os.path.exists(os.path.join(pn_dir, "pruningnet", str(config.pruningnet.steps))):
    pruningnet.run(config, pn_dir)
  workdir = os.path.join(root, f"seed{seed}", f"{label}_{target:g}")
  os.makedirs(workdir, exist_ok=True)
  link = os.path.join(workdir, "pruningnet")
  if not os.path.exists(link):
    os.symlink(os.path.abspath(os.path.join(pn_dir, "pruningnet")), link)
  [result] = search.run(config, workdir)
  return result


def run_retrain(root: str, seed: int, label: str, target: float) -> dict:
  config = study_config(seed, label, target)
  workdir = os.path.join(root, f"seed{seed}", f"{label}_{target:g}")
  report_path = os.path.join(workdir, "report.json")
  if os.path.exists(report_path):
    return io_utils.read_json(report_path)
  retrain.run(config, workdir)
  return evaluate.evaluate_workdir(workdir)


def first_round(root: str, seed: int, label: str, target: float) -> list:
  path = os.path.join(root, f"seed{seed}", f"{label}_{target:g}", "search",
                      f"candidates_{target:g}.jsonl")
  rows = io_utils.read_jsonl(path) if os.path.exists(path) else []
  return [r["widths"] for r in rows if r["round"] == 0]


def _cell(values, scale=100.0, digits=2) -> str:
  v = np.asarray(values, dtype=float) * scale
  if len(v) == 0:
    return "–"
  return f"{v.mean():.{digits}f} ± {v.std():.{digits}f}" if len(v) > 1 else f"{v[0]:.{digits}f}"


def evaluations_to_reach(curve: list, level: float):
  """1-based evaluations until best-so-far reaches `level`, or None."""
  hit = np.flatnonzero(np.asarray(curve) >= level - 1e-9)
  return int(hit[0]) + 1 if len(hit) else None


def learning_row(result: dict, last: int = 5):
  """(warm-up mean, mean greedy reward of the last `last` rounds, learned?, greedy
  reward of the untrained actor (the first score), last above that?)."""
  greedy = result.get("greedy_rewards") or []
  if not greedy or "warmup_mean" not in result:
    return None
  tail = float(np.mean(greedy[-last:]))
  return (result["warmup_mean"], tail, tail > result["warmup_mean"], float(greedy[0]),
          tail > greedy[0])


def report(results: dict, retrained: dict, seeds, targets, minutes: float, root: str) -> str:
  low, high = targets
  reward = next(iter(results.values()))["reward"]
  pct = 100.0 if reward in ("top1", "top5") else 1.0
  unit = "points" if pct == 100.0 else "nats"
  lines = []
  cfg = study_config(seeds[0], "graph_rl", low, validate=False)
  lines += [
      f"# Study: GraphPruning vs AMC and AutoML baselines on {_DATASET.value} "
      f"(ResNet-20 x{cfg.model.width_multiplier:g})", "",
      f"Generated by `python -m benchmarks.study --workdir={root}` "
      f"(finished {time.strftime('%Y-%m-%d')}): {minutes:.0f} minutes of compute on "
      f"{platform.processor() or platform.machine()} ({host_cpu()}, {os.cpu_count()} cores), "
      f"jax {jax.__version__}, {jax.devices()[0].platform}.", "",
      "## Setup", "",
      f"- Data: {cfg.dataset.name} `{os.path.basename(cfg.dataset.path) or cfg.dataset.name}`; "
      f"{cfg.dataset.holdout_size} training images held out for the search; each candidate is "
      f"scored on the first {cfg.search.eval_examples or cfg.dataset.holdout_size} of them "
      f"after BatchNorm recalibration on {cfg.search.recal_batches * cfg.search.recal_batch_size}"
      " training images.",
      f"- Per seed one PruningNet ({cfg.pruningnet.steps} steps of batch "
      f"{cfg.pruningnet.batch_size}). Seeds: {', '.join(map(str, seeds))}.",
      f"- Every search: {cfg.search.evaluations} candidates (RL: episodes; "
      f"{cfg.search.rl.warmup_episodes} random warm-up, noise {cfg.search.rl.noise_init} x "
      f"{cfg.search.rl.noise_decay}^episode after it, {cfg.search.rl.episodes_per_round or 4} "
      "episodes per actor update round; AMC's defaults otherwise). "
      f"Reward: held-out `{reward}`. Each method draws from its own random stream.",
      "- Controls: `graph_rl+gcn_untrained` (a freshly initialised GCN), "
      "`graph_rl+gcn_shuffled` (trained embeddings permuted across layers).", ""]

  planned = [(s, label, t) for s in seeds for t, labels in ((low, _LOW.value), (high, _HIGH.value))
             for label in labels]
  missing = [f"{label} @ {t:g} (seed {s})" for s, label, t in planned if (s, label, t) not in results]
  if missing:
    lines += [f"**Not run yet** ({len(missing)} of {len(planned)} searches; rerun the same "
              f"command to continue): {', '.join(missing)}.", ""]
  lines += [f"## Best held-out {reward} at equal budget", "",
            f"Mean ± std over seeds ({'percent' if pct == 100 else reward}); paired difference "
            f"to `random` per seed in {unit}.", ""]
  header = "| method | " + " | ".join(
      f"best @ {t:g} | minus random @ {t:g} | evals to reach random's best @ {t:g}"
      for t in targets) + " |"
  lines += [header, "|---" * (1 + 3 * len(targets)) + "|"]
  for label in RUNS:
    cells = []
    for t in targets:
      got = [results[(s, label, t)] for s in seeds if (s, label, t) in results]
      if not got:
        cells += ["–", "–", "–"]
        continue
      best = [r["best_reward"] for r in got]
      diffs, reach = [], []
      for s in seeds:
        if (s, label, t) in results and (s, "random", t) in results:
          r, rnd = results[(s, label, t)], results[(s, "random", t)]
          diffs.append(r["best_reward"] - rnd["best_reward"])
          reach.append(evaluations_to_reach(r["best_so_far"], rnd["best_reward"]))
      per_seed = ", ".join(f"{pct * d:+.2f}" for d in diffs)
      cells += [_cell(best, pct), f"{_cell(diffs, pct)} ({per_seed})" if diffs else "–",
                ", ".join("never" if x is None else str(x) for x in reach) or "–"]
    lines.append(f"| {label} | " + " | ".join(cells) + " |")

  lines += ["", "## Does the agent learn? Warm-up mean vs the greedy policy", "",
            "Greedy: the noise-free policy's configuration, scored every "
            f"{cfg.search.rl.greedy_every} rounds (not counted in the budget); the first score "
            "is the untrained actor's (every group near the middle of its allowed range), the "
            "last 5 are averaged.", "",
            "| method | target | seed | warm-up mean | greedy, untrained actor | greedy, last "
            "rounds | above warm-up | above untrained |", "|---|---|---|---|---|---|---|---|"]
  for label in RL_LABELS:
    for t in targets:
      for s in seeds:
        row = learning_row(results.get((s, label, t), {}))
        if row:
          lines.append(f"| {label} | {t:g} | {s} | {pct * row[0]:.2f} | {pct * row[3]:.2f} | "
                       f"{pct * row[1]:.2f} | {'yes' if row[2] else '**no**'} | "
                       f"{'yes' if row[4] else '**no**'} |")
  same = []
  for s in seeds:
    for t in targets:
      a, b = first_round(root, s, "graph_rl", t), first_round(root, s, "amc", t)
      if a and b:
        same.append(a == b)
  lines += ["", f"`graph_rl` and `amc` first-round candidates identical in "
            f"{sum(same)} of {len(same)} (seed, target) pairs.", ""]

  if retrained:
    lines += [f"## Retrained test top-1 at {low:g} MACs", "",
              f"Retrained from scratch ({cfg.retrain.steps} steps of batch "
              f"{cfg.retrain.batch_size}, same schedule and seed for every network) on train + "
              "held-out images; test split of "
              f"{next(iter(retrained.values()))['test_images']} images.", "",
              "| method | seed | test top-1 | MACs ratio | params | proxy reward |",
              "|---|---|---|---|---|---|"]
    for (s, label), r in sorted(retrained.items(), key=lambda kv: (kv[0][0],
                                                                   RETRAINED.index(kv[0][1]))):
      lines.append(f"| {label} | {s} | {100 * r['top1']:.2f} | {r['macs_ratio']:.3f} | "
                   f"{r['params'] / 1e3:.1f}K | {pct * results[(s, label, low)]['best_reward']:.2f} |")
  reading = os.path.join(os.path.dirname(os.path.abspath(_OUTPUT.value)), "docs",
                         "study_reading.md")
  if os.path.exists(reading):  # the written reading of these figures, kept across reruns
    with open(reading) as f:
      lines += ["", f.read().strip()]
  spreads = []
  for s in seeds:
    path = os.path.join(root, f"seed{s}", f"random_{low:g}", "search",
                        f"candidates_{low:g}.jsonl")
    if os.path.exists(path):
      first = np.asarray([r["reward"] for r in io_utils.read_jsonl(path)[:100]])
      spreads.append((s, first.max() - np.median(first), first.max() - first.min()))
  if spreads:
    lines += ["", "## Does this dataset separate configurations?", "",
              f"Held-out {reward} of the first 100 random configurations at {low:g} MACs, "
              f"best minus median (best minus worst), in {unit}: "
              + "; ".join(f"seed {s}: {pct * a:.2f} ({pct * b:.2f})" for s, a, b in spreads)
              + ". One held-out image is 0.1 points."]
  lines += ["", "## Curves", ""]
  for s in seeds:
    for t in targets:
      if os.path.exists(os.path.join(_PLOTS.value, f"curves_seed{s}_{t:g}.png")):
        lines.append(f"![seed {s} @ {t:g}]({_PLOTS.value}/curves_seed{s}_{t:g}.png)")
  return "\n".join(lines) + "\n"


def plot_curves(root: str, seeds, targets):
  for s in seeds:
    for t in targets:
      curves = []
      for label in RUNS:
        path = os.path.join(root, f"seed{s}", f"{label}_{t:g}", "search")
        curves += plots.read_curves(path, f"{t:g}")
      if curves:
        plots.search_curves_plot(curves, os.path.join(_PLOTS.value, f"curves_seed{s}_{t:g}.png"),
                                 title=f"seed {s}: search curves at {t:g} MACs")


def plan(seeds, targets, low_runs, high_runs, retrain_seeds):
  """The study's pieces in priority order, so an interrupted study has the core
  comparison first: graph_rl, amc, random at the low target for every seed, the
  retraining, then seed by seed the controls, evolution and the high target."""
  low, high = targets
  core = [r for r in ("graph_rl", "amc", "random", "uniform") if r in low_runs]
  rest = [r for r in low_runs if r not in core]
  steps = [("search", s, r, low) for s in seeds for r in core]
  steps += [("retrain", s, r, low) for s in retrain_seeds for r in RETRAINED if r in low_runs]
  for s in seeds:  # one seed complete before the next seed's controls
    steps += [("search", s, r, low) for r in rest]
    steps += [("search", s, r, high) for r in high_runs]
  return steps


def collect(root, seeds, targets, labels):
  """The finished searches and retrained reports found under `root`."""
  results, retrained = {}, {}
  for s in seeds:
    for t in targets:
      for label in labels:
        workdir = os.path.join(root, f"seed{s}", f"{label}_{t:g}")
        path = os.path.join(workdir, "search", f"result_{t:g}.json")
        if os.path.exists(path):
          results[(s, label, t)] = io_utils.read_json(path)
        report_path = os.path.join(workdir, "report.json")
        if t == targets[0] and os.path.exists(report_path):
          retrained[(s, label)] = io_utils.read_json(report_path)
  return results, retrained


def main(argv):
  del argv
  for label in _LOW.value + _HIGH.value:
    if label not in RUNS:
      from gp_jax.runtime.errors import unknown_name
      raise unknown_name("study run", label, RUNS)
  if len(_TARGETS.value) != 2:
    raise UserError("--targets takes two MACs ratios: low,high")
  targets = [float(t) for t in _TARGETS.value]
  seeds = [int(s) for s in _SEEDS.value]
  root = _WORKDIR.value
  timing_path = os.path.join(root, "minutes.json")
  spent = io_utils.read_json(timing_path)["minutes"] if os.path.exists(timing_path) else 0.0
  t0 = time.time()
  minutes = lambda: spent + (time.time() - t0) / 60  # pylint: disable=unnecessary-lambda-assignment
  if not _REPORT_ONLY.value:
    for kind, seed, label, t in plan(seeds, targets, _LOW.value, _HIGH.value,
                                     [int(s) for s in _RETRAIN_SEEDS.value]):
      if kind == "search":
        r = run_search(root, seed, label, t)
        print(f"study: seed {seed} {label} @ {t:g}: best {r['reward']} {r['best_reward']:.4f} "
              f"[{minutes():.1f} min]", flush=True)
      else:
        r = run_retrain(root, seed, label, t)
        print(f"study: retrained seed {seed} {label} @ {t:g}: test top-1 {r['top1']:.4f} "
              f"[{minutes():.1f} min]", flush=True)
      os.makedirs(root, exist_ok=True)
      io_utils.write_json(timing_path, {"minutes": minutes()})
  results, retrained = collect(root, seeds, targets, list(RUNS))
  if not results:
    raise UserError(f"no finished search under {root}; run the study first")
  plot_curves(root, seeds, targets)
  text = report(results, retrained, seeds, targets, minutes(), root)
  io_utils.write_text(_OUTPUT.value, text)
  study_json = os.path.join(os.path.dirname(os.path.abspath(_OUTPUT.value)), "study.json")
  if os.path.exists(study_json) and "agent" in io_utils.read_json(study_json):
    # benchmarks/agent.py's section, kept across reruns of this report
    from benchmarks import agent  # pylint: disable=import-outside-toplevel
    agent.write_section(_OUTPUT.value, agent.render(io_utils.read_json(study_json)["agent"]))
  print(text)


if __name__ == "__main__":
  cli.run(main)
