"""The workdir's layout and the files one stage leaves there for the next.

    W/pruningnet/<step>/              the PruningNet's train state (orbax)
    W/search/result.json              the search's result for its first target
                                      (result_<target>.json for each target)
    W/search/candidates_<target>.jsonl  every candidate scored (candidates.jsonl: the
                                      first target's)
    W/search/curve_<label>_<target>.json, state_<label>_<target>/  its learning curve
                                      and resumable state
    W/retrain/<role>/network.json     what rebuilds a retrained network without the
                                      config (role: pruned, uniform, unpruned),
                                      beside its checkpoints
    W/report.json                     the evaluation's table
    W/plots/*.png                     the search's plots

Every path of the workdir is made here: the stages, `evaluate` and `export` ask for
them by what they hold.

The stages read one another's outputs only through this module, so no stage
imports another (tests/test_layering.py checks it).
"""
from __future__ import annotations

import dataclasses
import os

import jax

from gp_jax import constraints
from gp_jax.data import datasets
from gp_jax.hypernet.pruningnet import create_state, pruningnet_from_config
from gp_jax.net import costs
from gp_jax.net.architectures import get_spec
from gp_jax.net.network_files import NETWORK_FILE, locate_network  # noqa: F401
from gp_jax.runtime import checkpoints, io_utils, optim, seeds, sharding
from gp_jax.runtime.errors import UserError

PRUNINGNET, SEARCH, RETRAIN = "pruningnet", "search", "retrain"
RESULT_FILE, REPORT_FILE, CANDIDATES_FILE = "result.json", "report.json", "candidates.jsonl"


def target_tag(target: float) -> str:
  """How a target names its files: 0.3 -> '0.3'."""
  return f"{target:g}"


def pruningnet_dir(workdir: str) -> str:
  return os.path.join(workdir, PRUNINGNET)


def search_dir(workdir: str) -> str:
  return os.path.join(workdir, SEARCH)


def search_state_dir(workdir: str, label: str, target: float) -> str:
  """The resumable state of one method's search for one target."""
  return os.path.join(workdir, SEARCH, f"state_{label}_{target_tag(target)}")


def candidates_path(workdir: str, target: float | None = None) -> str:
  """Every candidate a search scored (one JSON row each); without a target, the
  first target's copy."""
  name = CANDIDATES_FILE if target is None else f"candidates_{target_tag(target)}.jsonl"
  return os.path.join(workdir, SEARCH, name)


def curve_path(workdir: str, label: str, target: float) -> str:
  return os.path.join(workdir, SEARCH, f"curve_{label}_{target_tag(target)}.json")


def plot_path(workdir: str, name: str) -> str:
  """W/plots/<name>.png."""
  return os.path.join(workdir, "plots", f"{name}.png")


def network_dir(workdir: str, role: str) -> str:
  """W/retrain/<role>/: a retrained network's checkpoints and network.json."""
  return os.path.join(workdir, RETRAIN, role)


def report_path(workdir: str) -> str:
  return os.path.join(workdir, REPORT_FILE)


def retrained_networks(workdir: str, roles) -> dict:
  """{role: W/retrain/<role>} for each of `roles` retrained in the workdir."""
  return {r: network_dir(workdir, r) for r in roles
          if os.path.exists(os.path.join(network_dir(workdir, r), NETWORK_FILE))}


def write_network_record(directory: str, record: dict) -> None:
  """<directory>/network.json, beside the network's checkpoints."""
  os.makedirs(directory, exist_ok=True)
  io_utils.write_json(os.path.join(directory, NETWORK_FILE), record)


def load_pruningnet(config, spec, workdir, mesh=None):
  """The trained PruningNet's params, placed as in training on `mesh` (default: this
  process's first device), whatever mesh wrote them; a one-line error if there is none."""
  directory = pruningnet_dir(workdir)
  if not os.path.isdir(directory) or not any(d.isdigit() for d in os.listdir(directory)):
    raise UserError(f"no PruningNet checkpoint in {directory}; run the pruningnet "
                    "stage first (--stages=pruningnet,search)")
  model = pruningnet_from_config(spec, config)
  template = jax.eval_shape(lambda: create_state(
      model, spec, optim.make_optimizer(config.pruningnet, 1), seeds.seed(config, "init")))
  mesh = mesh or sharding.local_mesh()
  template = sharding.with_shardings(template, sharding.state_shardings(mesh, template))
  ckpts = checkpoints.Checkpoints(directory, owner=False)
  state, step = ckpts.restore_latest(template)
  return state.params, int(step)


@dataclasses.dataclass(frozen=True)
class SearchResult:
  """What the later stages read of W/search/result.json (the file holds more: scores,
  curves, the re-scored candidates)."""
  method: str
  label: str
  arch: str
  constraint: str
  target_ratio: float
  widths: tuple[int, ...]
  macs_ratio: float
  cost_ratio: float
  seed: int

  @classmethod
  def from_json(cls, record: dict, path: str = "result.json") -> "SearchResult":
    """The typed record; a one-line error naming the file when a field is missing (a
    workdir written by another version of gp_jax)."""
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in record]
    if missing:
      raise UserError(f"{path} lacks {', '.join(missing)}: a stale workdir; run the search "
                      "stage again into a new --workdir")
    return cls(**{f.name: record[f.name] for f in dataclasses.fields(cls)})


def result_path(workdir: str, target: float | None = None) -> str:
  """W/search/result.json, or the result of one target (result_<target>.json)."""
  name = RESULT_FILE if target is None else f"result_{target_tag(target)}.json"
  return os.path.join(workdir, SEARCH, name)


def read_search_result(spec, workdir) -> SearchResult:
  """W/search/result.json, checked against `spec`; a one-line error if missing."""
  path = result_path(workdir)
  if not os.path.exists(path):
    raise UserError(f"no search result at {path}; run the search stage first "
                    "(--stages=search,retrain)")
  result = SearchResult.from_json(io_utils.read_json(path), path)
  if result.arch != spec.name or len(result.widths) != spec.num_groups:
    raise UserError(f"{path} is for {result.arch} with {len(result.widths)} groups, not this "
                    f"config's {spec.name}")
  return result


def network_record(config, spec, widths, role: str, method: str, cost=None) -> dict:
  """network.json: everything needed to rebuild and evaluate the network without the
  config (and, under a latency budget, its predicted latency, which eval sets beside
  the measured).

  Args:
    widths: the network's channels per group (spec.num_groups integers).
    role: "pruned", "uniform" or "unpruned" (its directory under W/retrain/).
    method: the search method that chose the widths ("uniform", "unpruned" for those).
    cost: the search's budget `Cost`; its constraint adds its fields (a latency
      prediction). None: MACs and params only.
  """
  widths = [int(w) for w in widths]
  predicted = ({} if cost is None else
               constraints.get(cost.name).record_fields(cost, widths))
  return {
      "role": role, "method": method, "arch": config.model.arch,
      "width_multiplier": float(config.model.width_multiplier), "padding": spec.padding,
      "dataset": {k: config.dataset[k] for k in
                  ("name", "holdout_size", "data_dir", "path", "flip", "worker_count",
                   "lighting")},
      # The facts the network was built with (class names make a report readable).
      **datasets.info(config.dataset).as_record(),
      "resolution": spec.resolution, "widths": widths,
      "macs": int(costs.macs(spec, widths)), "params": int(costs.params(spec, widths)),
      "macs_ratio": float(costs.macs(spec, widths) / costs.macs(spec)),
      "unpruned_macs": int(costs.macs(spec)), "unpruned_params": int(costs.params(spec)),
      "init": start_of(config.retrain, role), "seed": int(config.seed),
      "eval": {k: int(v) for k, v in config.eval.items()},
      **predicted,
  }


def start_of(retrain, role: str) -> str:
  """Where the network `role` starts: the unpruned one never from the PruningNet, nor
  from itself (retrain.init_checkpoint=unpruned)."""
  if role == "unpruned" and (retrain.init == "pruningnet" or (
      retrain.init == "checkpoint" and retrain.init_checkpoint == "unpruned")):
    return "scratch"
  return retrain.init


def _facts(record: dict) -> dict:
  """The dataset facts of a network.json (older records: the built-in dataset's)."""
  if "num_classes" in record:
    return record
  return datasets.info(record["dataset"]).as_record()


def input_norm_from_record(record: dict):
  norm = _facts(record)["input_norm"]
  return None if norm is None else tuple(tuple(float(v) for v in x) for x in norm)


def spec_from_record(record: dict):
  facts = _facts(record)
  return get_spec(record["arch"], num_classes=int(facts["num_classes"]),
                  resolution=int(record["resolution"]), in_channels=int(facts["channels"]),
                  width_multiplier=float(record["width_multiplier"]),
                  # networks recorded before the field existed all padded as XLA's SAME
                  padding=record.get("padding", "same"))


def load_network(path: str):
  """(spec, widths, variables, record, step) of a retrained network."""
  directory, step = locate_network(path)
  record = io_utils.read_json(os.path.join(directory, NETWORK_FILE))
  spec = spec_from_record(record)
  widths = tuple(record["widths"])
  ckpts = checkpoints.Checkpoints(directory, owner=False)
  if step is None:  # the newest readable checkpoint
    saved, step = ckpts.restore_latest(None)
  elif step in ckpts.steps():
    try:
      saved = ckpts.restore(step)
    except Exception as e:  # pylint: disable=broad-except  # truncated or foreign
      raise UserError(f"cannot read checkpoint {step} in {directory} ({type(e).__name__}); "
                      "pass another step or retrain") from None
  else:
    saved = None
  if saved is None:
    raise UserError(f"no checkpoint {'' if step is None else step} in {directory}; "
                    "run the retrain stage first")
  variables = {"params": saved["params"], "batch_stats": saved["batch_stats"]}
  return spec, widths, variables, record, step
