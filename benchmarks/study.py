"""Does graph_rl find better networks than amc, evolution, random and uniform search at
equal budget? Paired replicates in two spaces -> study.json, STUDY.md.

    make study                                   # every piece; rerun to continue
    python -m benchmarks.study --workdir=runs/study --spaces=resnet20x0.5 --replicates=10
    python -m benchmarks.study --report_only     # STUDY.md from study.json

A replicate is one PruningNet seed and one search stream (`search.stream`):
replicate r uses PruningNet seed r // --streams and stream r % --streams, so the
searches of one replicate share the PruningNet and the scoring images (paired),
and two streams share one PruningNet. Every method searches --target MACs with
--evaluations candidates (RL: episodes, AMC's warm-up included) and picks, as the
search stage does, the best report-split score among its re-scored top candidates
(`search.rescore_top`): the figure compared is a score on images no search saw.
Random search is not one run but its expectation: a pool of --pool scored random
configurations per replicate, and random's figures the expected ones of a search
of --evaluations draws from it (study_stats.expected_best_of_n and a Monte Carlo
of the re-scoring), so no paired difference carries one random run's luck.
Configurations are scored once per PruningNet (a score cache shared by its
replicates' methods). The controls (GCN untrained or shuffled, no step index)
run on the first --control_replicates replicates of the first space. The picks of
the first --retrain_replicates replicates are retrained with --retrain_seeds at
the ranking's recipe (--retrain_recipe) and tested. The work runs in the order that
decides the question first (`schedule`): a space's methods and pools, its retrained
picks, then the controls. Every piece resumes; two processes can share a workdir
(each claims a PruningNet's group of work, or a retrain).
Not run in CI (hours on 2 cores; STUDY.md says how long and where).
"""
from __future__ import annotations

import copy
import dataclasses
import fnmatch
import json
import os
import shutil
import time

import jax
import numpy as np
from absl import flags
from scipy import stats

from benchmarks import ledger, study_report, study_stats
from benchmarks.claims import claim, release
from benchmarks.recipes import (RECIPES, VARIANTS, apply_pruningnet, apply_scorer,
                                epochs_to_steps_of)
from gp_jax import api, artifacts, evaluate
from gp_jax.config import validation
from gp_jax.config.build import make_cost, spec_from_config
from gp_jax.data import datasets
from gp_jax.hypernet.pruningnet import pruningnet_from_config
from gp_jax.runtime import checkpoints, cli, io_utils, sharding
from gp_jax.runtime.errors import UserError, unknown_name
from gp_jax.runtime.metrics import MetricWriter
from gp_jax.runtime.timing import host_cpu
from gp_jax.stages import pruningnet, retrain
from gp_jax.stages import search as search_stage

SPACES = {
    "resnet20x0.5": "configs/fashion_mnist_resnet20.py",
    "resnet56x0.5": "configs/fashion_mnist_resnet56.py",
    "digits": "configs/digits_resnet20.py",  # offline and too easy: the tests' space
}
# label -> (search.method, search.rl.state, search.rl.scalars)
RUNS = {
    "graph_rl": ("graph_rl", "", "all"),
    "amc": ("amc", "", "all"),
    "evolution": ("evolution", "", "all"),
    "uniform": ("uniform", "", "all"),
    "graph_rl+gcn_untrained": ("graph_rl", "gcn_untrained", "all"),
    "graph_rl+gcn_shuffled": ("graph_rl", "gcn_shuffled", "all"),
    "graph_rl+no_step": ("graph_rl", "", "no_step"),  # the GCN embeddings alone
    "amc+no_step": ("amc", "", "no_step"),  # the hand-crafted features alone
}
METHODS = ("graph_rl", "amc", "evolution", "uniform")  # and random, from the pool
CONTROLS = ("graph_rl+gcn_untrained", "graph_rl+gcn_shuffled", "graph_rl+no_step",
            "amc+no_step")
POOL = "random_pool"
# Monte Carlo draws of a random search from the pool (its re-scoring has no closed form)
RANDOM_DRAWS = 2000

_WORKDIR = flags.DEFINE_string("workdir", "runs/study", "Where every piece lives.")
_SPACES = flags.DEFINE_list("spaces", ["resnet20x0.5", "resnet56x0.5"],
                            f"Search spaces, in order, of {', '.join(SPACES)}.")
_REPLICATES = flags.DEFINE_list("replicates", ["10", "5"], "Paired replicates per space.")
_STREAMS = flags.DEFINE_integer("streams", 2, "Search streams per PruningNet.")
_CONTROL_REPLICATES = flags.DEFINE_integer("control_replicates", 5,
                                           "Replicates of the first space with the controls.")
_TARGET = flags.DEFINE_float("target", 0.3, "MACs ratio searched.")
_EVALUATIONS = flags.DEFINE_integer("evaluations", 300, "Candidates per search (RL: episodes).")
_POOL = flags.DEFINE_integer("pool", 600, "Scored random configurations per replicate "
                            "(random search's expectation is over draws from it).")
_VARIANT = flags.DEFINE_string("variant", "", "PruningNet recipe + scorer "
                               "(benchmarks/recipes.py VARIANTS); '': rank.json's best.")
_RETRAIN_RECIPE = flags.DEFINE_string("retrain_recipe", "", "Retrain recipe of the picks; "
                                      "'': rank.json's (the ranking's ground truth's).")
_RANK_JSON = flags.DEFINE_string("rank_json", "rank.json", "Where the ranking's choices are.")
_RETRAIN_SEEDS = flags.DEFINE_list("retrain_seeds", ["0", "1", "2"], "Seeds of each retrain.")
_RETRAINED = flags.DEFINE_list("retrained", ["graph_rl", "amc", "evolution", "random", "uniform"],
                               "Methods whose picks are retrained.")
_RETRAIN_REPLICATES = flags.DEFINE_integer("retrain_replicates", 3,
                                           "Replicates of each space whose picks are retrained.")
_REPORT_ONLY = flags.DEFINE_bool("report_only", False, "Only write STUDY.md from study.json.")
_OUTPUT = flags.DEFINE_string("output", "STUDY.md", "The markdown report.")
_JSON = flags.DEFINE_string("json", "study.json", "The figures the report is rendered from.")
_PN_STEPS = flags.DEFINE_integer("pruningnet_steps", 0, "Override: PruningNet steps (tests).")
_SMOKE = flags.DEFINE_bool("smoke", False, "Every config at its :smoke size (tests).")
_RETRAIN_STEPS = flags.DEFINE_integer("retrain_steps", 0, "Override: steps per retrain (tests).")
_LEDGER = flags.DEFINE_string("ledger", "", "The finished pieces, kept between sessions "
                              "(benchmarks/ledger.py; make study: benchmarks/ledgers/study.json); "
                              "'': none.")


@dataclasses.dataclass(frozen=True)
class Replicate:
  space: str
  index: int
  seed: int  # the PruningNet's (config.seed)
  stream: int  # the searches' (search.stream)


def replicates(space: str, count: int, streams: int) -> list[Replicate]:
  return [Replicate(space, r, r // streams, r % streams) for r in range(count)]


# ---------------------------------------------------------------- configs


def space_config(space: str, seed: int, variant: str):
  """The space's config with the study's PruningNet recipe and scorer, for one
  PruningNet seed."""
  config = api.get_config(SPACES[space] + (":smoke" if _SMOKE.value else ""))
  config.seed, config.progress = seed, False
  pn_name, scorer = VARIANTS[variant]
  apply_pruningnet(config, pn_name, _train_images(config), _PN_STEPS.value)
  apply_scorer(config, scorer)
  # The selection part is the scorer's images (at most half the held-out ones); the
  # report part, which re-scores each method's best, the rest.
  config.search.eval_examples = min(config.search.eval_examples,
                                    config.dataset.holdout_size // 2)
  config.search.targets = (_TARGET.value,)
  config.search.evaluations = _EVALUATIONS.value
  config.retrain.baseline, config.retrain.unpruned = "", False
  return config


def run_config(config, label: str, stream: int, evaluations: int | None = None):
  cfg = copy.deepcopy(config)
  method, state, scalars = RUNS[label] if label != POOL else ("random", "", "all")
  cfg.search.method, cfg.search.rl.state, cfg.search.rl.scalars = method, state, scalars
  cfg.search.stream = stream
  # The greedy policy is scored on the side, outside the budget, for its curve only:
  # every 5th round keeps the curve and saves a fifth of an RL search's scoring.
  cfg.search.rl.greedy_every = 5
  if evaluations:
    cfg.search.evaluations = evaluations
  validation.validate(cfg)
  return cfg


_TRAIN_IMAGES: dict = {}


def _train_images(config) -> int:
  key = (config.dataset.name, config.dataset.path)
  if key not in _TRAIN_IMAGES:
    splits = datasets.load_splits(config.dataset, spec_from_config(config).resolution)
    _TRAIN_IMAGES[key] = len(splits.train)
  return _TRAIN_IMAGES[key]


# ---------------------------------------------------------------- the score cache


class ScoreCache:
  """Scores of configurations by one PruningNet on one image set, kept in a JSONL file:
  a configuration scored once is never scored again (the methods of every replicate
  on this PruningNet share it; a resumed study reads it back). Exact on the CPU, where
  each candidate is scored alone (candidates.make_population_scorer)."""

  def __init__(self, path: str, score_fn):
    self.path, self.score_fn = path, score_fn
    self.rows = {}
    if os.path.exists(path):
      for row in io_utils.read_jsonl(path):
        self.rows[tuple(row["widths"])] = row["scores"]

  def __call__(self, widths) -> dict:
    widths = np.asarray(widths)
    keys = [tuple(int(x) for x in w) for w in widths]
    todo = sorted({k for k in keys if k not in self.rows})
    if todo:
      got = self.score_fn(np.asarray(todo))
      new = [{"widths": list(k), "scores": {m: float(v[i]) for m, v in got.items()}}
             for i, k in enumerate(todo)]
      with open(self.path, "a") as f:
        f.write("".join(json.dumps(row) + "\n" for row in new))
      self.rows.update({tuple(r["widths"]): r["scores"] for r in new})
    metrics = self.rows[keys[0]].keys()
    return {m: np.asarray([self.rows[k][m] for k in keys]) for m in metrics}


@dataclasses.dataclass(frozen=True)
class CachedScorer(search_stage.Scorer):
  selection_cache: ScoreCache | None = None
  report_cache: ScoreCache | None = None

  @classmethod
  def wrap(cls, scorer: search_stage.Scorer, directory: str) -> "CachedScorer":
    fields = {f.name: getattr(scorer, f.name) for f in dataclasses.fields(scorer)}
    plain = search_stage.Scorer(**fields)
    return cls(**fields, selection_cache=ScoreCache(
        os.path.join(directory, "scores_selection.jsonl"), plain.score),
               report_cache=ScoreCache(os.path.join(directory, "scores_report.jsonl"),
                                       plain.rescore))

  def score(self, widths) -> dict:
    return self.selection_cache(widths)

  def rescore(self, widths) -> dict:
    return self.report_cache(widths)


# ---------------------------------------------------------------- one PruningNet's work


def pruningnet_dir(root: str, space: str, seed: int) -> str:
  return os.path.join(root, space, f"pn{seed}")


def search_dir(root: str, rep: Replicate, label: str) -> str:
  return os.path.join(pruningnet_dir(root, rep.space, rep.seed), f"s{rep.stream}", label)


def result_of(root: str, rep: Replicate, label: str) -> dict | None:
  path = artifacts.result_path(search_dir(root, rep, label), _TARGET.value)
  return io_utils.read_json(path) if os.path.exists(path) else None


def run_group(root: str, space: str, seed: int, work: dict) -> bool:
  """Trains (or reuses) PruningNet `seed` of `space` and runs `work` ({Replicate: labels},
  the pool included) on it; False if another process holds the group."""
  directory = pruningnet_dir(root, space, seed)
  if all(result_of(root, rep, label) is not None for rep, labels in work.items()
         for label in labels) and all(
             os.path.exists(os.path.join(search_dir(root, rep, POOL), "random.json"))
             for rep, labels in work.items() if POOL in labels):
    return True
  if not claim(directory):
    return False
  config = space_config(space, seed, _VARIANT.value)
  if not pruningnet_complete(config, directory):  # never trained, or lost with a session
    t0 = time.time()
    pruningnet.run(config, directory)
    done = os.path.join(directory, "pruningnet_minutes.json")
    before = io_utils.read_json(done)["minutes"] if os.path.exists(done) else 0.0
    io_utils.write_json(done, {"minutes": before + (time.time() - t0) / 60,
                               "host_cpu": host_cpu()})

  def on_mesh(config, workdir, mesh):
    spec = spec_from_config(config)
    pn_params, _ = artifacts.load_pruningnet(config, spec, workdir, mesh)
    same_pruningnet(workdir, pn_params)
    scorer = CachedScorer.wrap(search_stage.make_scorer(config, spec, pn_params, mesh), workdir)
    cost = make_cost(config, spec, workdir)
    pn_model = pruningnet_from_config(spec, config)
    for rep, labels in work.items():
      for label in labels:
        if result_of(root, rep, label) is not None:
          continue
        evaluations = _POOL.value if label == POOL else None
        cfg = run_config(config, label, rep.stream, evaluations)
        out = search_dir(root, rep, label)
        t0 = time.time()
        writer = MetricWriter(out)
        r = search_stage.search_target(cfg, spec, _TARGET.value, pn_model, scorer, out, writer,
                                       cost)
        writer.close()
        io_utils.write_json(os.path.join(out, "minutes.json"),
                            {"minutes": (time.time() - t0) / 60, "host_cpu": host_cpu()})
        print(f"study: {rep.space} replicate {rep.index} {label}: selection "
              f"{r['selection_reward' if 'selection_reward' in r else 'best_reward']:.4f} "
              f"({(time.time() - t0) / 60:.1f} min)", flush=True)
        keep(root)
      if POOL in labels:
        random_figures(root, rep, scorer, config.search.reward, config.search.rescore_top)
        keep(root)

  sharding.run_on_mesh(on_mesh, config, directory)
  release(directory)
  return True


def pruningnet_complete(config, directory: str) -> bool:
  """Whether the group's PruningNet is trained to its last step in this workdir."""
  ckpt = artifacts.pruningnet_dir(directory)
  return os.path.isdir(ckpt) and checkpoints.Checkpoints(
      ckpt, owner=False).latest_step() == config.pruningnet.steps


# What a group's finished pieces were computed from its PruningNet: searches, pools,
# retrained picks, score caches.
STALE = ("result_*.json", "random.json", "report.json", "scores_*.jsonl")


def same_pruningnet(directory: str, params) -> None:
  """Records the PruningNet's fingerprint; where the group's finished pieces came from
  another one (a PruningNet retrained after the workdir was lost, on a machine that
  rounds differently), they are dropped and rerun: one replicate's methods must be
  scored by one PruningNet to be paired."""
  path = os.path.join(directory, "pruningnet_fingerprint.json")
  now = ledger.fingerprint(params)
  if os.path.exists(path) and io_utils.read_json(path)["sha256"] != now:
    dropped = 0
    for d, subdirs, files in os.walk(directory):
      for f in files:
        if any(fnmatch.fnmatch(f, p) for p in STALE):
          os.remove(os.path.join(d, f))
          dropped += 1
      for sub in [s for s in subdirs if s.startswith("state_")]:  # a search's resume state
        shutil.rmtree(os.path.join(d, sub))
    print(f"study: {directory}: the PruningNet rebuilt differs from the one that scored "
          f"its finished pieces; {dropped} of their files dropped, to be rerun", flush=True)
  io_utils.write_json(path, {"sha256": now})


def keep(root: str) -> None:
  """The finished pieces into --ledger (a session may end at any time)."""
  if _LEDGER.value:
    ledger.save(root, _LEDGER.value)


def rescore_depth(pool: int, draws: int, k: int, tail: float = 1e-4) -> int:
  """How many of the pool's best (by selection) can be among the top `k` of a search of
  `draws` from it with probability above `tail`: the rest need no report score."""
  for depth in range(k, pool + 1):
    # the depth-th best is in a draw's top k only if fewer than k better ones were drawn
    if stats.hypergeom(pool, depth, draws).cdf(k - 1) < tail:
      return depth
  return pool


def random_figures(root: str, rep: Replicate, scorer, reward: str, k: int) -> dict:
  """Random search from the replicate's pool: the expected selection score of its best
  of --evaluations draws, and by Monte Carlo its expected report-split score under the
  search's re-scoring; written beside the pool."""
  path = os.path.join(search_dir(root, rep, POOL), "random.json")
  if os.path.exists(path):
    return io_utils.read_json(path)
  rows = io_utils.read_jsonl(artifacts.candidates_path(search_dir(root, rep, POOL),
                                                       _TARGET.value))
  widths = np.asarray([r["widths"] for r in rows])
  selection = np.asarray([r["reward"] for r in rows])
  ratio = np.asarray([r["macs_ratio"] for r in rows])
  n = _EVALUATIONS.value
  order = search_stage.top_distinct(selection, widths, ratio, _TARGET.value,
                                    rescore_depth(len(rows), n, k))
  report = np.full(len(rows), -np.inf)
  if order:
    report[order] = scorer.rescore(widths[order])[reward]
  rng = np.random.default_rng([rep.seed, rep.stream, 7])
  picks = []
  for _ in range(RANDOM_DRAWS):
    idx = np.sort(rng.choice(len(rows), n, replace=False))
    top = search_stage.top_distinct(selection[idx], widths[idx], ratio[idx], _TARGET.value, k)
    pick = search_stage.report_pick(selection[idx][top], report[idx][top])
    picks.append(idx[top[pick]])
  first = np.arange(n)  # the pool's first n: one real random search, for retraining
  top = search_stage.top_distinct(selection[first], widths[first], ratio[first], _TARGET.value,
                                  k)
  one = first[top[search_stage.report_pick(selection[first][top], report[first][top])]]
  figures = {"pool": len(rows), "evaluations": n,
             "selection": study_stats.expected_best_of_n(selection, n),
             "report": float(np.mean(report[picks])),
             "report_draws": RANDOM_DRAWS,
             "one_run": {"widths": [int(x) for x in widths[one]],
                         "macs_ratio": float(ratio[one]),
                         "selection": float(selection[one]), "report": float(report[one])}}
  io_utils.write_json(path, figures)
  return figures


# ---------------------------------------------------------------- retraining


def retrain_pick(root: str, rep: Replicate, label: str, widths, seed: int) -> float | None:
  """Test top-1 of `widths` retrained with `seed` at --retrain_recipe (resumed); None
  if another process holds it."""
  directory = os.path.join(search_dir(root, rep, "retrain"), f"{label}_s{seed}")
  done = os.path.join(directory, "report.json")
  if os.path.exists(done):
    return io_utils.read_json(done)["top1"]
  if not claim(directory):
    return None
  config = api.get_config(SPACES[rep.space] + (":smoke" if _SMOKE.value else ""))
  config.seed, config.progress = seed, False
  config.retrain.baseline, config.retrain.unpruned = "", False
  r = config.retrain
  r.steps = _RETRAIN_STEPS.value or epochs_to_steps_of(
      config, "retrain", RECIPES[_RETRAIN_RECIPE.value]["epochs"], _train_images(config)
      + (config.dataset.holdout_size if r.use_holdout else 0))
  r.warmup_steps = min(r.warmup_steps, r.steps // 10)
  r.checkpoint_every = r.log_every = max(1, r.steps // 4)
  config.eval.latency_runs = 2
  validation.validate(config)
  spec = spec_from_config(config)
  from gp_jax.net import costs  # pylint: disable=import-outside-toplevel
  ratio = float(costs.macs(spec, widths) / costs.macs(spec))
  io_utils.write_json(artifacts.result_path(directory), {
      "method": label, "label": label, "arch": spec.name, "constraint": "macs",
      "target_ratio": _TARGET.value, "widths": [int(w) for w in widths], "seed": seed,
      "macs_ratio": ratio, "cost_ratio": ratio})
  t0 = time.time()
  retrain.run(config, directory)
  top1 = evaluate.evaluate_workdir(directory)["top1"]
  io_utils.write_json(os.path.join(directory, "minutes.json"),
                      {"minutes": (time.time() - t0) / 60, "host_cpu": host_cpu()})
  release(directory)
  return top1


def retrain_space(root: str, groups: dict, space: str) -> bool:
  """Retrains the picks of `space`'s first --retrain_replicates replicates with every
  --retrain_seeds; False while a pick is missing or another process holds one."""
  complete = True
  rows = [r for r in collect(root, {k: v for k, v in groups.items() if k[0] == space})
          if r["replicate"] < _RETRAIN_REPLICATES.value]
  for row in rows:
    rep = Replicate(row["space"], row["replicate"], row["seed"], row["stream"])
    for label in _RETRAINED.value:
      m = row["methods"].get(label)
      if m is None:
        complete = False  # its search is not done yet
        continue
      for seed in _RETRAIN_SEEDS.value:
        if _retrained(root, rep, label, int(seed)) is not None:
          continue
        top1 = retrain_pick(root, rep, label, m["widths"], int(seed))
        if top1 is None:
          complete = False
          continue
        print(f"study: {rep.space} replicate {rep.index} {label} retrained (seed {seed}): "
              f"{top1:.4f}", flush=True)
        keep(root)
  return complete


# ---------------------------------------------------------------- the plan and the figures


def planned(spaces, counts) -> dict:
  """{(space, PruningNet seed): {Replicate: labels}}: every search of the study, the
  pool included, by PruningNet (`schedule`'s search steps merged)."""
  groups = {}
  for kind, space, seed, work in schedule(spaces, counts):
    if kind == "search":
      for rep, labels in work.items():
        groups.setdefault((space, seed), {}).setdefault(rep, []).extend(labels)
  return groups


def schedule(spaces, counts) -> list[tuple]:
  """The study's steps in priority order, ("search", space, seed, {Replicate: labels})
  or ("retrain", space, None, None): per space, every PruningNet's methods and pools,
  then the picks of its first replicates retrained, then (first space only) the
  controls. What decides the question comes first; each step resumes."""
  steps = []
  for i, (space, count) in enumerate(zip(spaces, counts)):
    reps = replicates(space, count, _STREAMS.value)
    main, controls = {}, {}
    for rep in reps:
      main.setdefault(rep.seed, {})[rep] = list(METHODS) + [POOL]
      if i == 0 and rep.index < _CONTROL_REPLICATES.value:
        controls.setdefault(rep.seed, {})[rep] = list(CONTROLS)
    steps += [("search", space, seed, work) for seed, work in main.items()]
    steps.append(("retrain", space, None, None))
    steps += [("search", space, seed, work) for seed, work in controls.items()]
  return steps


def collect(root: str, groups: dict) -> list[dict]:
  """The study.json replicates: what every finished search found."""
  out = []
  for (space, _), work in groups.items():
    for rep, labels in work.items():
      row = {"space": space, "replicate": rep.index, "seed": rep.seed, "stream": rep.stream,
             "target": _TARGET.value, "methods": {}}
      for label in labels:
        if label == POOL:
          path = os.path.join(search_dir(root, rep, POOL), "random.json")
          if os.path.exists(path):
            f = io_utils.read_json(path)
            row["methods"]["random"] = {
                "selection": f["selection"], "report": f["report"], "pool": f["pool"],
                "widths": f["one_run"]["widths"], "macs_ratio": f["one_run"]["macs_ratio"],
                "one_run": f["one_run"]}
          continue
        r = result_of(root, rep, label)
        if r is None:
          continue
        row["methods"][label] = {
            "widths": r["widths"], "macs_ratio": r["macs_ratio"],
            "selection": r.get("selection_reward", r["best_reward"]),
            "report": r.get("report_reward"), "evaluations": r["evaluations"],
            "best_so_far": r["best_so_far"][::10]}
      for label, m in row["methods"].items():
        top1 = [_retrained(root, rep, label, int(s)) for s in _RETRAIN_SEEDS.value]
        if any(t is not None for t in top1):
          m["retrained_top1"] = [t for t in top1 if t is not None]
      out.append(row)
  return out


def compute_minutes(root: str) -> float:
  """Minutes of work in the workdir, summed over its pieces (PruningNets, searches,
  retrains: each a process's wall time, whichever session and process ran it)."""
  total = 0.0
  for directory, _, files in os.walk(root):
    for name in ("minutes.json", "pruningnet_minutes.json"):
      if name in files:
        total += io_utils.read_json(os.path.join(directory, name))["minutes"]
  return total


def _retrained(root, rep, label, seed):
  path = os.path.join(search_dir(root, rep, "retrain"), f"{label}_s{seed}", "report.json")
  return io_utils.read_json(path)["top1"] if os.path.exists(path) else None


def main(argv):
  del argv
  spaces = _SPACES.value
  for s in spaces:
    if s not in SPACES:
      raise unknown_name("space", s, SPACES)
  ranking = io_utils.read_json(_RANK_JSON.value) if os.path.exists(_RANK_JSON.value) else {}
  if not _VARIANT.value:  # the ranking's choices, as STUDY.md's setup states them
    flags.FLAGS.variant = ranking.get("best") or "today"
  if not _RETRAIN_RECIPE.value:
    flags.FLAGS.retrain_recipe = ranking.get("recipe") or "e4"
  if _VARIANT.value not in VARIANTS:
    raise unknown_name("--variant", _VARIANT.value, VARIANTS)
  if _RETRAIN_RECIPE.value not in RECIPES:
    raise unknown_name("--retrain_recipe", _RETRAIN_RECIPE.value, RECIPES)
  counts = [int(c) for c in _REPLICATES.value][:len(spaces)]
  if len(counts) != len(spaces):
    raise UserError("--replicates takes one count per space in --spaces")
  if _POOL.value < _EVALUATIONS.value:
    raise UserError(f"--pool={_POOL.value} is smaller than --evaluations="
                    f"{_EVALUATIONS.value}: random search draws its evaluations from it")
  root = _WORKDIR.value
  os.makedirs(root, exist_ok=True)
  restored = ledger.restore(root, _LEDGER.value)
  if restored:
    print(f"study: {restored} finished pieces restored from {_LEDGER.value}", flush=True)
  groups = planned(spaces, counts)
  if not _REPORT_ONLY.value:
    pending = schedule(spaces, counts)
    while pending:  # a step another process holds, or whose searches it runs, waits
      waiting = []
      for step in pending:
        kind, space, seed, work = step
        done = (run_group(root, space, seed, work) if kind == "search"
                else retrain_space(root, groups, space))
        if not done:
          waiting.append(step)
      pending = waiting
      if pending:
        time.sleep(30)
    keep(root)
  previous = io_utils.read_json(_JSON.value) if os.path.exists(_JSON.value) else {}
  found = collect(root, groups) if os.path.isdir(root) else []
  if _REPORT_ONLY.value and previous.get("replicates") and not any(r["methods"] for r in found):
    found = previous["replicates"]  # no workdir here: the committed figures
  study = {**previous,
           "replicates": found,
           "setup": {"spaces": {s: SPACES[s] for s in spaces}, "replicates": counts,
                     "streams": _STREAMS.value, "target": _TARGET.value,
                     "evaluations": _EVALUATIONS.value, "pool": _POOL.value,
                     "variant": _VARIANT.value, "retrain_recipe": _RETRAIN_RECIPE.value,
                     "retrain_seeds": [int(s) for s in _RETRAIN_SEEDS.value],
                     "control_replicates": _CONTROL_REPLICATES.value},
           "minutes": (compute_minutes(root) if os.path.isdir(root)
                       else previous.get("minutes", 0.0)), "host_cpu": host_cpu(),
           "cores": os.cpu_count(), "jax": jax.__version__, "date": time.strftime("%Y-%m-%d")}
  io_utils.write_json(_JSON.value, study)
  io_utils.write_text(_OUTPUT.value, study_report.render(study))
  print(f"study: wrote {_JSON.value} and {_OUTPUT.value}")


if __name__ == "__main__":
  cli.run(main)
