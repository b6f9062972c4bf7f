"""Which start makes the best pruned network? Scratch, the PruningNet's weights, or the
trained full network's most important channels, each with and without distillation
from it -> bench.json["trained"], BENCHMARKS.md table 11.

    make trained                                  # every unit; rerun to continue
    python -m benchmarks.trained --workdir=runs/trained --seeds=0,1,2
    python -m benchmarks.trained --report_only    # the table from the finished units

On `configs/fashion_mnist_resnet20.py`: one PruningNet and one search at each of
--targets (seed 0), and the full network trained once per seed with the config's
recipe (the teacher, and what `retrain.init=checkpoint` prunes). Then for each target,
the searched configuration and the uniform one, every start in --inits, with and
without distillation, each retrained with every seed in --seeds for the config's
2 epochs; a fine-tune from the trained network starts at --finetune_lr instead of
the schedule's 0.1 (its weights are already trained: the usual recipe). Every
unit resumes; two processes can share a workdir. Not run in CI (hours on 2 cores).
"""
from __future__ import annotations

import itertools
import os
import time

import jax
from absl import flags

from benchmarks import ledger
from benchmarks.claims import claim, release
from benchmarks.tables import trained as table
from gp_jax import api, artifacts, evaluate
from gp_jax.config import validation
from gp_jax.config.build import make_env, spec_from_config
from gp_jax.net import costs
from gp_jax.runtime import cli, io_utils
from gp_jax.runtime.errors import UserError, unknown_name
from gp_jax.runtime.timing import host_cpu
from gp_jax.search import methods
from gp_jax.stages import pruningnet, retrain, search

INITS = ("scratch", "pruningnet", "checkpoint")
CONFIGURATIONS = ("searched", "uniform")

_CONFIG = flags.DEFINE_string("config", "configs/fashion_mnist_resnet20.py", "The config.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/trained", "Where every unit lives.")
_TARGETS = flags.DEFINE_list("targets", ["0.3", "0.5"], "MACs targets.")
_CONFIGURATIONS = flags.DEFINE_list("configurations", list(CONFIGURATIONS),
                                    "searched and/or uniform.")
_INITS = flags.DEFINE_list("inits", list(INITS), "Starts of the pruned network.")
_DISTILL = flags.DEFINE_list("distill", ["off", "on"], "Without and/or with distillation.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Retrain seeds of every unit.")
_FINETUNE_LR = flags.DEFINE_float("finetune_lr", 0.01, "Peak learning rate of a fine-tune "
                                  "from the trained network.")
_JSON = flags.DEFINE_string("json", "bench.json", "Where the figures go (key 'trained').")
_OUTPUT = flags.DEFINE_string("output", "BENCHMARKS.md", "The page re-rendered with them.")
_STEPS = flags.DEFINE_integer("steps", 0, "Override: every training's steps (tests).")
_REPORT_ONLY = flags.DEFINE_bool("report_only", False, "Only collect the finished units "
                                 "into the table (another process may still run the rest).")
_LEDGER = flags.DEFINE_string("ledger", "", "The finished units, kept between sessions "
                              "(benchmarks/ledger.py; make trained: "
                              "benchmarks/ledgers/trained.json); '': none.")


def base_config(seed: int = 0):
  config = api.get_config(_CONFIG.value)
  config.seed, config.progress = seed, False
  config.retrain.baseline, config.retrain.unpruned = "", False
  config.search.targets = tuple(float(t) for t in _TARGETS.value)
  if _STEPS.value:
    for section in (config.pruningnet, config.retrain):
      section.steps = _STEPS.value
      section.warmup_steps = 0
      section.checkpoint_every = section.log_every = max(1, _STEPS.value // 2)
  return config


def search_workdir(root: str, pruningnet_needed: bool) -> str:
  """The PruningNet and the searches (seed 0), run here unless another process holds
  them (its units wait for them: `missing`). Searches restored from the ledger are
  kept (the units already retrained their configurations); their PruningNet is
  trained again only if a unit still starts from its weights."""
  directory = os.path.join(root, "search")
  config = base_config()
  validation.validate(config)
  searched = all(os.path.exists(artifacts.result_path(directory, float(t)))
                 for t in _TARGETS.value)
  trained = os.path.exists(pruningnet_done(directory))
  if not (searched and (trained or not pruningnet_needed)) and claim(directory):
    pruningnet.run(config, directory)  # resumes; skips a finished one
    io_utils.write_text(pruningnet_done(directory), "")
    if not searched:
      search.run(config, directory)
    release(directory)
  return directory


def pruningnet_done(search_dir: str) -> str:
  """The marker of a PruningNet trained in this workdir (not a ledger record: a
  restored workdir has the searches, not the weights)."""
  return os.path.join(search_dir, "pruningnet.done")


def teachers_needed(pending) -> None:
  """A teacher whose record was restored but whose weights were lost with a session is
  trained again if a unit still learns from it or starts from it (its old record is
  kept beside, as unit.previous.json)."""
  fresh = [u for u in pending if not os.path.exists(os.path.join(u[1], "unit.json"))]
  for key, directory, *_ in pending:
    done = os.path.join(directory, "unit.json")
    if key[0] != "full" or not os.path.exists(done) or os.path.isdir(
        artifacts.network_dir(directory, "pruned")):
      continue
    if any(done in needs for *_, needs in fresh):
      os.replace(done, os.path.join(directory, "unit.previous.json"))


def missing(needs: list[str]) -> bool:
  """Whether a unit's inputs (another unit's record, a search result) are not there
  yet: another process is still making them."""
  return not all(os.path.exists(p) for p in needs)


def train_unit(directory: str, config, widths, label: str) -> dict | None:
  """Retrains `widths` with `config` into `directory` (resumed) and tests it; None if
  another process holds the unit."""
  done = os.path.join(directory, "unit.json")
  if os.path.exists(done):
    return io_utils.read_json(done)
  if not claim(directory):
    return None
  t0 = time.time()
  validation.validate(config)
  spec = spec_from_config(config)
  ratio = float(costs.macs(spec, widths) / costs.macs(spec))
  io_utils.write_json(artifacts.result_path(directory), {
      "method": label, "label": label, "arch": spec.name, "constraint": "macs",
      "target_ratio": ratio, "widths": [int(w) for w in widths], "seed": int(config.seed),
      "macs_ratio": ratio, "cost_ratio": ratio})
  retrain.run(config, directory)
  report = evaluate.evaluate_workdir(directory)
  unit = {"top1": report["top1"], "macs_ratio": ratio, "minutes": (time.time() - t0) / 60}
  io_utils.write_json(done, unit)
  release(directory)
  return unit


def units(root: str, search_dir: str):
  """(key, directory, config, widths, needs) of every unit, seed by seed: the full
  network first (the teacher and the pruned-from-trained start), then the pruned ones;
  `widths` is a function (a searched configuration is read once its search is done),
  `needs` the files that must exist before the unit can start."""
  spec = spec_from_config(base_config())
  done = ([artifacts.result_path(search_dir, float(t)) for t in _TARGETS.value]
          if search_dir else [])
  for seed in map(int, _SEEDS.value):
    teacher = os.path.join(root, f"full_s{seed}")
    yield (("full", seed), teacher, base_config(seed), lambda: spec.max_widths, [])
    for t, conf, init, distill in itertools.product(
        map(float, _TARGETS.value), _CONFIGURATIONS.value, _INITS.value, _DISTILL.value):
      config = base_config(seed)
      needs = list(done) if conf == "searched" or init == "pruningnet" else []
      if init == "pruningnet":
        needs.append(pruningnet_done(search_dir))
      if conf == "searched":
        widths = (lambda t=t: io_utils.read_json(artifacts.result_path(search_dir, t))["widths"])
      else:
        widths = (lambda config=config, t=t: methods.uniform_widths(make_env(config, spec, t)))
      if init == "checkpoint" or distill == "on":
        needs.append(os.path.join(teacher, "unit.json"))
      r = config.retrain
      r.init = init
      if init == "checkpoint":
        r.init_checkpoint = artifacts.network_dir(teacher, "pruned")
        r.finetune_learning_rate = _FINETUNE_LR.value
      if distill == "on":
        r.distill.teacher = artifacts.network_dir(teacher, "pruned")
      name = f"{t:g}_{conf}_{init}_{distill}_s{seed}"
      directory = os.path.join(root, "units", name)
      if init == "pruningnet" and not os.path.exists(os.path.join(directory, "pruningnet")):
        os.makedirs(directory, exist_ok=True)
        os.symlink(os.path.abspath(artifacts.pruningnet_dir(search_dir)),
                   os.path.join(directory, "pruningnet"))
      yield ((t, conf, init, distill, seed), directory, config, widths, needs)


def main(argv):
  del argv
  for init in _INITS.value:
    if init not in INITS:
      raise unknown_name("--inits", init, INITS)
  for conf in _CONFIGURATIONS.value:
    if conf not in CONFIGURATIONS:
      raise unknown_name("--configurations", conf, CONFIGURATIONS)
  if set(_DISTILL.value) - {"off", "on"}:
    raise UserError("--distill takes off and/or on")
  root = _WORKDIR.value
  os.makedirs(root, exist_ok=True)
  restored = ledger.restore(root, _LEDGER.value)
  if restored:
    print(f"trained: {restored} finished pieces restored from {_LEDGER.value}", flush=True)
  # The PruningNet and the searches, where a unit needs them.
  needed = "searched" in _CONFIGURATIONS.value or "pruningnet" in _INITS.value
  search_dir = os.path.join(root, "search") if needed else None
  results, pending = [], list(units(root, search_dir))
  planned = len(pending)
  if _REPORT_ONLY.value:  # the finished units only
    pending = [u for u in pending if os.path.exists(os.path.join(u[1], "unit.json"))]
  else:
    teachers_needed(pending)
    if needed:
      search_workdir(root, any(
          u[0][0] != "full" and u[0][2] == "pruningnet"
          and not os.path.exists(os.path.join(u[1], "unit.json")) for u in pending))
  while pending:  # a unit another process holds, or whose inputs it still makes, waits
    waiting = []
    for key, directory, config, widths, needs in pending:
      fresh = not os.path.exists(os.path.join(directory, "unit.json"))
      got = None if fresh and missing(needs) else train_unit(
          directory, config, widths(), "full" if key[0] == "full" else key[1])
      if got is None:
        waiting.append((key, directory, config, widths, needs))
        continue
      results.append({"key": list(key), **got})
      if fresh:
        print(f"trained: {' '.join(map(str, key))}: test top-1 {got['top1']:.4f} "
              f"({got['minutes']:.1f} min)", flush=True)
        if _LEDGER.value:
          ledger.save(root, _LEDGER.value)
    pending = waiting
    if pending:
      time.sleep(30)
  bench = io_utils.read_json(_JSON.value) if os.path.exists(_JSON.value) else {}
  bench["trained"] = {"config": _CONFIG.value, "units": results, "planned": planned,
                      "finetune_lr": _FINETUNE_LR.value, "host_cpu": host_cpu(),
                      "cores": os.cpu_count(), "jax": jax.__version__,
                      "date": time.strftime("%Y-%m-%d")}
  io_utils.write_json(_JSON.value, bench)
  text = open(_OUTPUT.value).read() if os.path.exists(_OUTPUT.value) else ""
  io_utils.write_text(_OUTPUT.value, table.replace_section(text, bench["trained"]))
  print(table.render(bench["trained"]))


if __name__ == "__main__":
  cli.run(main)
