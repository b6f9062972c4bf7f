"""Does the PruningNet's score rank configurations as retraining does? -> rank.json, RANKING.md

    make rank                                           # every phase; rerun to continue
    python -m benchmarks.rank --workdir=runs/rank --phase=recipe   # seed noise per recipe
    python -m benchmarks.rank --workdir=runs/rank --phase=truth --recipe=e2
    python -m benchmarks.rank --workdir=runs/rank --phase=variants
    python -m benchmarks.rank --workdir=runs/rank --report_only

The ground truth: `--configs` configurations drawn at random inside the search's
MACs window (their own random stream, independent of any proxy) plus the uniform
configuration, each retrained from scratch with two seeds and tested on the test
split. Its recipe is chosen first by measurement (`--phase=recipe`: on the first
`--probe` configurations, the seed-to-seed Kendall tau of each recipe in
`--recipes`); once chosen (`--recipe`), it is stored and never changes. Each
proxy variant (a PruningNet recipe and a scorer) scores the same configurations;
the report gives Kendall tau and Spearman rho against the 2-seed mean with a
bootstrap interval, over all and within the proxy's top half, the top-5 gain and
the regret. Every piece resumes: a retrain from its last checkpoint, a PruningNet
likewise, a finished piece is skipped. Two processes may share a workdir (each
claims a unit before it runs it), which on 2 cores retrains two networks side by
side. Not run in CI (hours of CPU; RANKING.md says how long and where).
"""
from __future__ import annotations

import copy
import os
import sys
import time

import jax
import numpy as np
from absl import flags
from ml_collections import config_flags

from gp_jax import evaluate
from gp_jax.config import validation
from gp_jax.config.build import make_env, spec_from_config
from gp_jax.runtime import cli, io_utils
from gp_jax.runtime.errors import UserError
from gp_jax.runtime.timing import host_cpu
from gp_jax.search import methods
from gp_jax.search.baselines import RandomSearch
from gp_jax.stages import pruningnet, search

from benchmarks import rank_stats
from benchmarks.recipes import (RECIPES, SCORERS, VARIANTS, apply_pruningnet, apply_scorer,
                                epochs_to_steps_of)
from benchmarks.claims import claim, release

_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/fashion_mnist_resnet20.py",
    "The config whose space is ranked (`--config.x=y` overrides it).", lock_config=False)
_WORKDIR = flags.DEFINE_string("workdir", "runs/rank", "Where every piece lives.")
_TARGET = flags.DEFINE_float("target", 0.3, "MACs ratio of the search window ranked.")
_CONFIGS = flags.DEFINE_integer("configs", 20, "Random configurations (the uniform one is "
                                "added).")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1"], "Retrain seeds of the ground truth.")
_PROBE = flags.DEFINE_integer("probe", 8, "Configurations whose seed noise picks the recipe.")
_RECIPES = flags.DEFINE_list("recipes", ["e2", "e4"], "Recipes the probe measures.")
_RECIPE = flags.DEFINE_string("recipe", "", "The ground truth's recipe (stored once chosen).")
_VARIANTS = flags.DEFINE_list("variants", list(VARIANTS), "Proxy variants to score.")
_PHASE = flags.DEFINE_enum("phase", "all", ["all", "recipe", "truth", "variants"],
                           "What to run before the report.")
_REPORT_ONLY = flags.DEFINE_bool("report_only", False, "Only write the report.")
_OUTPUT = flags.DEFINE_string("output", "RANKING.md", "The markdown report.")
_JSON = flags.DEFINE_string("json", "rank.json", "The figures the report is rendered from.")
_PLOTS = flags.DEFINE_string("plots", "docs/ranking", "Where the report's plots go.")
_RETRAIN_STEPS = flags.DEFINE_integer("retrain_steps", 0, "Override: steps per retrain "
                                      "(tests).")
_PN_STEPS = flags.DEFINE_integer("pruningnet_steps", 0, "Override: PruningNet steps (tests).")


def base_config():
  config = cli.load_config(_CONFIG)
  config.progress = False
  return config


# Training-set sizes (for epochs -> steps), read once from the data.
_SIZES = {}


def train_sizes(config) -> dict:
  """{pruningnet: images the PruningNet trains on, retrain: those a retrain uses}."""
  if not _SIZES:
    from gp_jax.data import datasets  # pylint: disable=import-outside-toplevel
    splits = datasets.load_splits(config.dataset, spec_from_config(config).resolution)
    _SIZES["pruningnet"] = len(splits.train)
    _SIZES["retrain"] = len(splits.train) + (len(splits.holdout) if config.retrain.use_holdout
                                             else 0)
  return _SIZES


def _epochs_to_steps(config, section: str, epochs: float) -> int:
  return epochs_to_steps_of(config, section, epochs, train_sizes(config)[section])


# ---------------------------------------------------------------- the configurations


def draw_configurations(config, target: float, n: int) -> list[dict]:
  """`n` random configurations in [target - tolerance, target] from the ranking's
  own stream, then the uniform one."""
  spec = spec_from_config(config)
  env = make_env(config, spec, target)
  from gp_jax.net import channels  # pylint: disable=import-outside-toplevel
  grid = channels.keep_ratio_grid(config.channels.grid_levels, config.channels.grid_low,
                                  config.channels.grid_high)
  sampler = RandomSearch(env, population=n, evaluations=n, seed=0, grid=grid)
  rng = np.random.default_rng([20261207, int(round(target * 1000))])
  genes = sampler.sample_genes(rng, n)
  widths = [list(map(int, w)) for w in sampler.genes_to_widths(genes)]
  widths.append(list(map(int, methods.uniform_widths(env))))
  ratio = env.cost.population_ratio(np.asarray(widths))
  return [{"widths": w, "macs_ratio": float(r), "kind": "random" if i < n else "uniform"}
          for i, (w, r) in enumerate(zip(widths, ratio))]


def configurations(root: str, config, target: float, n: int) -> list[dict]:
  path = os.path.join(root, "configurations.json")
  if os.path.exists(path):
    stored = io_utils.read_json(path)
    if stored["target"] != target or len(stored["configurations"]) != n + 1:
      raise UserError(f"{path} holds {len(stored['configurations']) - 1} configurations at "
                      f"{stored['target']}; use another --workdir for --target={target:g} "
                      f"--configs={n}")
    return stored["configurations"]
  confs = draw_configurations(config, target, n)
  io_utils.write_json(path, {"target": target, "configurations": confs})
  return confs


# ---------------------------------------------------------------- the ground truth


def retrain_config(config, recipe: str, seed: int):
  cfg = copy.deepcopy(config)
  cfg.seed = seed
  cfg.retrain.baseline = ""
  cfg.retrain.unpruned = False
  r = cfg.retrain
  r.steps = _RETRAIN_STEPS.value or _epochs_to_steps(cfg, "retrain", RECIPES[recipe]["epochs"])
  r.warmup_steps = min(r.warmup_steps, r.steps // 10)
  r.checkpoint_every = max(1, r.steps // 4)
  r.log_every = max(1, r.steps // 4)
  cfg.eval.latency_runs = 2
  validation.validate(cfg)
  return cfg


def unit_dir(root: str, recipe: str, index: int, seed: int) -> str:
  return os.path.join(root, "truth", recipe, f"c{index:02d}_s{seed}")


# The committed rank.json (--json) of an earlier run: its finished retrains and variants
# count as done, so partial results travel with the repository, not only the workdir.
_COMMITTED: dict = {}


def load_committed(path: str, target: float, confs) -> None:
  _COMMITTED.clear()
  if not os.path.exists(path):
    return
  out = io_utils.read_json(path)
  truth = out.get("ground_truth", [])
  if (out.get("target") != target or len(truth) != len(confs)
      or any(t["widths"] != c["widths"] for t, c in zip(truth, confs))):
    return  # another space: nothing to reuse
  _COMMITTED.update(out)


def retrained_top1(root: str, recipe: str, index: int, seed: int):
  path = os.path.join(unit_dir(root, recipe, index, seed), "report.json")
  if os.path.exists(path):
    return io_utils.read_json(path)["top1"]
  if _COMMITTED and recipe == _COMMITTED.get("recipe") and seed in _COMMITTED["seeds"]:
    return _COMMITTED["ground_truth"][index]["top1"][_COMMITTED["seeds"].index(seed)]
  for probe in _COMMITTED.get("probe_units", []):
    if (probe["recipe"], probe["index"], probe["seed"]) == (recipe, index, seed):
      return probe["top1"]
  return None


def run_retrain(root: str, config, recipe: str, index: int, conf: dict, seed: int) -> bool:
  """Retrains one configuration with one seed (resuming); False if another process holds it."""
  from gp_jax.stages import retrain  # pylint: disable=import-outside-toplevel
  directory = unit_dir(root, recipe, index, seed)
  if retrained_top1(root, recipe, index, seed) is not None:
    return True
  if not claim(directory):
    return False
  t0 = time.time()
  cfg = retrain_config(config, recipe, seed)
  spec = spec_from_config(cfg)
  io_utils.write_json(os.path.join(directory, "search", "result.json"), {
      "method": conf["kind"], "label": conf["kind"], "arch": spec.name, "constraint": "macs",
      "target_ratio": _TARGET.value, "widths": conf["widths"], "seed": seed,
      "macs_ratio": conf["macs_ratio"], "cost_ratio": conf["macs_ratio"]})
  retrain.run(cfg, directory)
  report = evaluate.evaluate_workdir(directory)
  io_utils.write_json(os.path.join(directory, "minutes.json"),
                      {"minutes": (time.time() - t0) / 60, "host_cpu": host_cpu()})
  release(directory)
  print(f"rank: {recipe} configuration {index} seed {seed}: test top-1 {report['top1']:.4f} "
        f"({(time.time() - t0) / 60:.1f} min)", flush=True)
  return True


def run_units(root, config, units) -> bool:
  """Runs the (recipe, index, conf, seed) units this process can claim; True when every
  unit is done (units held by another process are waited for)."""
  pending = list(units)
  while pending:
    skipped = [u for u in pending if not run_retrain(root, config, *u)]
    if skipped and len(skipped) == len(pending):
      time.sleep(20)  # the rest run in another process
    pending = [u for u in skipped if retrained_top1(root, u[0], u[1], u[3]) is None]
  return True


def truth_recipe(root: str, chosen: str) -> str:
  path = os.path.join(root, "truth_recipe.json")
  if not os.path.exists(path) and _COMMITTED.get("recipe"):
    io_utils.write_json(path, {"recipe": _COMMITTED["recipe"]})
  if os.path.exists(path):
    stored = io_utils.read_json(path)["recipe"]
    if chosen and chosen != stored:
      raise UserError(f"the ground truth in {root} uses recipe {stored}; it does not change "
                      f"once started (drop --recipe={chosen}, or use another --workdir)")
    return stored
  if not chosen:
    return ""
  if chosen not in RECIPES:
    raise UserError(f"unknown --recipe {chosen!r}; use one of {', '.join(RECIPES)}")
  io_utils.write_json(path, {"recipe": chosen})
  return chosen


def unit_minutes(root: str, recipe: str, index: int, seed: int):
  path = os.path.join(unit_dir(root, recipe, index, seed), "minutes.json")
  if os.path.exists(path):
    return io_utils.read_json(path)["minutes"]
  for probe in _COMMITTED.get("probe_units", []):
    if (probe["recipe"], probe["index"], probe["seed"]) == (recipe, index, seed):
      return probe.get("minutes")
  return None


def seed_noise(root: str, recipe: str, indices, seeds) -> dict | None:
  pairs = [[retrained_top1(root, recipe, i, s) for s in seeds[:2]] for i in indices]
  pairs = np.asarray([p for p in pairs if None not in p], dtype=float)
  if len(pairs) < 2:
    return None
  tau = rank_stats.kendall_tau(pairs[:, 0], pairs[:, 1])
  minutes = [m for m in (unit_minutes(root, recipe, i, s) for i in indices for s in seeds[:2])
             if m is not None]
  return {"recipe": recipe, "epochs": RECIPES[recipe]["epochs"], "configs": len(pairs),
          "seed_tau": tau, "mean_abs_diff": float(np.mean(np.abs(pairs[:, 0] - pairs[:, 1]))),
          "spread": float(np.std(pairs.mean(1))),
          "minutes_per_retrain": float(np.mean(minutes)) if minutes else None}


# ---------------------------------------------------------------- the proxies


def pruningnet_config(config, name: str):
  cfg = copy.deepcopy(config)
  cfg.seed = 0
  apply_pruningnet(cfg, name, train_sizes(cfg)["pruningnet"], _PN_STEPS.value)
  validation.validate(cfg)
  return cfg


def run_pruningnet(root: str, config, name: str):
  """Trains (or resumes) one PruningNet recipe; None if another process holds it."""
  cfg = pruningnet_config(config, name)
  directory = os.path.join(root, "pruningnet", name)
  done = os.path.join(directory, "minutes.json")
  if os.path.exists(done):
    return cfg, directory
  if not claim(directory):
    return None
  t0 = time.time()
  pruningnet.run(cfg, directory)
  io_utils.write_json(done, {"minutes": (time.time() - t0) / 60, "host_cpu": host_cpu()})
  release(directory)
  return cfg, directory


def score_variant(root: str, config, confs, name: str) -> dict | None:
  path = os.path.join(root, "variants", f"{name}.json")
  if os.path.exists(path):
    return io_utils.read_json(path)
  if name in _COMMITTED.get("variants", {}):
    v = _COMMITTED["variants"][name]
    io_utils.write_json(path, {k: v[k] for k in VARIANT_KEYS if k in v})
    return io_utils.read_json(path)
  pn_name, scorer = VARIANTS[name]
  got = run_pruningnet(root, config, pn_name)
  if got is None:
    return None
  cfg, directory = got
  apply_scorer(cfg, scorer)
  recal_batches, _, reward = SCORERS[scorer]
  cfg.search.rescore_top = 0  # the ranking scores on the images given, no re-scoring
  t0 = time.time()
  scores = search.score_configurations(cfg, directory, [c["widths"] for c in confs])
  seconds = time.time() - t0
  record = {"pruningnet": pn_name, "scorer": scorer, "reward": reward,
            "recal_images": recal_batches * 64, "eval_images": cfg.search.eval_examples,
            "proxy": [float(x) for x in scores[reward]],
            "proxy_top1": [float(x) for x in scores["top1"]],
            "seconds_per_candidate": seconds / len(confs),
            "pruningnet_minutes": io_utils.read_json(
                os.path.join(directory, "minutes.json"))["minutes"],
            "pruningnet_steps": int(cfg.pruningnet.steps), "host_cpu": host_cpu()}
  assert set(record) <= set(VARIANT_KEYS)
  io_utils.write_json(path, record)
  print(f"rank: variant {name}: scored {len(confs)} configurations "
        f"({record['seconds_per_candidate']:.2f} s each)", flush=True)
  return record


# ---------------------------------------------------------------- the report

# What a variant's record holds before its statistics are added.
VARIANT_KEYS = ("pruningnet", "scorer", "reward", "recal_images", "eval_images", "proxy",
                "proxy_top1", "seconds_per_candidate", "pruningnet_minutes", "pruningnet_steps",
                "host_cpu")


def probe_units(root: str) -> list[dict]:
  """Every retrain finished (probe and ground truth, per recipe) with its wall time: the
  record a later run resumes from when its workdir is gone."""
  units = list(_COMMITTED.get("probe_units", []))
  seen = {(u["recipe"], u["index"], u["seed"]) for u in units}
  base = os.path.join(root, "truth")
  for recipe in sorted(os.listdir(base)) if os.path.isdir(base) else []:
    for name in sorted(os.listdir(os.path.join(base, recipe))):
      report = os.path.join(base, recipe, name, "report.json")
      index, seed = int(name[1:3]), int(name.split("_s")[1])
      if os.path.exists(report) and (recipe, index, seed) not in seen:
        units.append({"recipe": recipe, "index": index, "seed": seed,
                      "top1": io_utils.read_json(report)["top1"],
                      "minutes": unit_minutes(root, recipe, index, seed)})
  return units


def collect(root: str, confs, recipe: str, seeds) -> list[dict]:
  rows = []
  for i, c in enumerate(confs):
    top1 = [retrained_top1(root, recipe, i, s) for s in seeds] if recipe else []
    rows.append({"widths": c["widths"], "macs_ratio": c["macs_ratio"], "kind": c["kind"],
                 "top1": top1})
  return rows


def _config_name() -> str:
  """The --config argument as given (a path and its `:arg`)."""
  for a in sys.argv[1:]:
    if a.startswith("--config="):
      return a.split("=", 1)[1]
  return "configs/fashion_mnist_resnet20.py"


def compute_minutes(units: list[dict], variants: dict) -> dict:
  """Minutes of work per part, summed over its units (each a process's wall time):
  retrains per recipe, each distinct PruningNet once, and the variants' scoring."""
  out = {}
  for u in units:
    if u.get("minutes") is not None:
      key = f"retrains {u['recipe']}"
      out[key] = out.get(key, 0.0) + u["minutes"]
  pns = {v["pruningnet"]: v["pruningnet_minutes"] for v in variants.values()}
  out["PruningNets"] = float(sum(pns.values()))
  out["scoring"] = float(sum(v["seconds_per_candidate"] * len(v["proxy"])
                             for v in variants.values()) / 60)
  return out


def build_json(root, confs, recipe, seeds, probes, variants, minutes) -> dict:
  truth = collect(root, confs, recipe, seeds)
  units = probe_units(root)
  complete = [i for i, r in enumerate(truth) if r["top1"] and None not in r["top1"]]
  out = {"config": _config_name(), "target": _TARGET.value, "recipe": recipe,
         "recipe_epochs": RECIPES[recipe]["epochs"] if recipe else None,
         "seeds": [int(s) for s in seeds], "ground_truth": truth,
         "complete": len(complete), "probes": probes, "probe_units": units,
         "minutes": minutes, "compute_minutes": compute_minutes(units, variants),
         "host_cpu": host_cpu(), "cores": os.cpu_count(), "jax": jax.__version__,
         "date": time.strftime("%Y-%m-%d"), "variants": {}, "best": None}
  if len(complete) >= 3:
    seeds_top1 = np.asarray([truth[i]["top1"] for i in complete], float)
    out["ceiling_tau"] = rank_stats.kendall_tau(seeds_top1[:, 0], seeds_top1[:, 1])
    mean = seeds_top1.mean(1)
    for name, v in variants.items():
      proxy = np.asarray(v["proxy"], float)[complete]
      stats = rank_stats.ranking_stats(proxy, mean)
      out["variants"][name] = {**v, **stats}
    if "today" in variants:
      today = np.asarray(variants["today"]["proxy"], float)[complete]
      for name, v in variants.items():
        if name != "today":
          gain = rank_stats.paired_tau_difference(
              np.asarray(v["proxy"], float)[complete], today, mean)
          out["variants"][name]["tau_gain"] = gain["difference"]
          out["variants"][name]["tau_gain_ci"] = gain["ci"]
    if out["variants"]:
      out["best"] = rank_stats.best_variant(out["variants"])
  else:
    for name, v in variants.items():
      out["variants"][name] = dict(v)
  return out


def main(argv):
  del argv
  config = base_config()
  root = _WORKDIR.value
  target = _TARGET.value
  seeds = [int(s) for s in _SEEDS.value]
  for r in _RECIPES.value:
    if r not in RECIPES:
      raise UserError(f"unknown recipe {r!r} in --recipes; use {', '.join(RECIPES)}")
  for v in _VARIANTS.value:
    if v not in VARIANTS:
      raise UserError(f"unknown variant {v!r} in --variants; use {', '.join(VARIANTS)}")
  timing = os.path.join(root, "minutes.json")
  os.makedirs(root, exist_ok=True)
  spent = io_utils.read_json(timing) if os.path.exists(timing) else {}
  t0 = time.time()
  confs = configurations(root, config, target, _CONFIGS.value)
  load_committed(_JSON.value, target, confs)
  if not spent and _COMMITTED.get("minutes"):
    spent = dict(_COMMITTED["minutes"])

  def account(part: str):
    nonlocal t0
    spent[part] = spent.get(part, 0.0) + (time.time() - t0) / 60
    t0 = time.time()
    io_utils.write_json(timing, spent)

  probe = list(range(min(_PROBE.value, len(confs))))
  recipe = truth_recipe(root, _RECIPE.value)
  phase = _PHASE.value
  if not _REPORT_ONLY.value:
    if phase in ("all", "recipe") and not recipe:
      # Cheapest first; the first recipe whose seed noise is low enough ends the probe.
      noise = []
      for r in sorted(_RECIPES.value, key=lambda r: RECIPES[r]["epochs"]):
        run_units(root, config, [(r, i, confs[i], s) for i in probe for s in seeds])
        account("recipe probe")
        noise.append(seed_noise(root, r, probe, seeds))
        if noise[-1] and noise[-1]["seed_tau"] >= 0.6:
          break
      measured = [n for n in noise if n and np.isfinite(n["seed_tau"])]
      pick = (next((n for n in measured if n["seed_tau"] >= 0.6), None)
              or max(measured, key=lambda n: n["seed_tau"], default=None)
              or {"recipe": sorted(_RECIPES.value, key=lambda r: RECIPES[r]["epochs"])[0]})
      print("rank: recipe probe: " + "; ".join(
          f"{n['recipe']} tau {n['seed_tau']:.2f} |diff| {100 * n['mean_abs_diff']:.2f}"
          for n in measured) + f" -> {pick['recipe']}", flush=True)
      if phase == "all":
        recipe = truth_recipe(root, pick["recipe"])
    if phase in ("all", "variants"):
      pending = list(_VARIANTS.value)
      while pending:  # a variant whose PruningNet another process trains waits for it
        blocked = [v for v in pending if score_variant(root, config, confs, v) is None]
        if blocked and len(blocked) == len(pending):
          time.sleep(20)
        pending = blocked
      account("variants")
    if phase in ("all", "truth"):
      if not recipe:
        raise UserError("the ground truth needs its recipe: run --phase=recipe first, then "
                        "--recipe=NAME")
      run_units(root, config, [(recipe, i, c, s) for i, c in enumerate(confs) for s in seeds])
      account("ground truth")
  probes = [n for n in (seed_noise(root, r, probe, seeds) for r in RECIPES) if n]
  variants = {}
  for name in VARIANTS:
    path = os.path.join(root, "variants", f"{name}.json")
    if os.path.exists(path):
      variants[name] = io_utils.read_json(path)
    elif name in _COMMITTED.get("variants", {}):
      v = _COMMITTED["variants"][name]
      variants[name] = {k: v[k] for k in VARIANT_KEYS if k in v}
  out = build_json(root, confs, recipe, seeds, probes, variants, spent)
  io_utils.write_json(_JSON.value, out)
  from benchmarks import rank_report  # pylint: disable=import-outside-toplevel
  text = rank_report.render(out, _PLOTS.value, os.path.dirname(os.path.abspath(_OUTPUT.value)))
  io_utils.write_text(_OUTPUT.value, text)
  print(f"rank: wrote {_JSON.value} and {_OUTPUT.value} ({out['complete']} of {len(confs)} "
        f"configurations retrained with every seed; {len(variants)} variants)")


if __name__ == "__main__":
  cli.run(main)
