"""Tables 5 and 7: each stage's peak memory, and the PruningNet's memory per
device on a (data, model) mesh."""
from __future__ import annotations

import resource
import subprocess
import sys


from benchmarks.harness import ROOT, bench_setup, in_subprocess


def worker_stage_memory(stage, overrides):
  """Peak RSS of one pipeline stage in a fresh process (the demo config)."""
  workdir = overrides.pop("workdir")
  proc = subprocess.run(
      [sys.executable, "-m", "gp_jax.main", "--config=configs/digits_resnet20.py",
       f"--workdir={workdir}", f"--stages={stage}", "--config.progress=False",
       *[f"--config.{k}={v}" for k, v in overrides.items()]],
      cwd=ROOT, capture_output=True, text=True)
  if proc.returncode:
    raise RuntimeError(proc.stderr[-2000:])
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return {"peak_rss_mb": usage.ru_maxrss / 1024.0}


def worker_sharded_memory(config_name, devices, model_sizes):
  """Per-device bytes of the PruningNet train state on (devices / model, model) meshes,
  from the shardings the stage uses (nothing is allocated)."""
  import jax
  from gp_jax.runtime import optim, sharding
  from gp_jax.hypernet.pruningnet import create_state, pruningnet_from_config
  config, spec = bench_setup(config_name, None, 0)
  model = pruningnet_from_config(spec, config)
  state = jax.eval_shape(lambda: create_state(model, spec, optim.make_optimizer(
      config.pruningnet, 1), config.seed))
  rows = {}
  for m in model_sizes:
    mesh = jax.make_mesh((devices // m, m), sharding.AXES)
    shardings = sharding.state_shardings(mesh, state)
    leaves = jax.tree_util.tree_leaves_with_path(state.params)
    path, largest = max(leaves, key=lambda leaf: leaf[1].size)  # a head's output matrix
    where = jax.tree.leaves(shardings.params)[[p for p, _ in leaves].index(path)]
    rows[str(m)] = {
        "params_bytes": sharding.per_device_bytes(shardings.params, state.params),
        "state_bytes": sharding.per_device_bytes(shardings, state),
        "largest_head_bytes": sharding.per_device_bytes([where], [largest]),
        "largest_head": jax.tree_util.keystr(path),
    }
  return {"config": config_name, "devices": devices, "rows": rows}


def bench_memory(quick: bool) -> dict:
  import tempfile
  from gp_jax.hypernet.pruningnet import count_pruningnet_params
  out = {"stages": {}, "pruningnet_params": {}}
  with tempfile.TemporaryDirectory() as workdir:
    overrides = {"pruningnet.steps": 20 if quick else 100, "search.evaluations": 32,
                 "retrain.steps": 20 if quick else 100}
    for stage in ("pruningnet", "search", "retrain", "eval"):
      out["stages"][stage] = in_subprocess("stage_memory", stage=stage,
                                           overrides={"workdir": workdir, **overrides})
  for name, arg in (("digits_resnet20", None), ("cifar10_resnet56", None),
                    ("imagenet_mobilenetv1", None), ("imagenet_mobilenetv2", None),
                    ("imagenet_resnet50", None)):
    config, spec = bench_setup(name, arg, 0)
    out["pruningnet_params"][name] = count_pruningnet_params(spec, config)
  return out


def table_memory(r: dict) -> str:
  lines = ["| demo stage (digits_resnet20) | peak RSS |", "|---|---|"]
  for stage, row in r["stages"].items():
    lines.append(f"| {stage} | {row['peak_rss_mb']:.0f} MB |")
  lines += ["", "| PruningNet | parameters | float32 bytes |", "|---|---|---|"]
  for name, n in r["pruningnet_params"].items():
    lines.append(f"| {name} | {n / 1e6:.1f}M | {4 * n / 2 ** 30:.2f} GiB |")
  return "\n".join(lines)


def bench_sharding(quick: bool) -> dict:
  del quick  # computed, not timed
  return in_subprocess("sharded_memory", env={"JAX_NUM_CPU_DEVICES": "8",
                                              "JAX_PLATFORMS": "cpu"},
                       config_name="imagenet_resnet50", devices=8, model_sizes=[1, 2, 4, 8])


def table_sharding(r: dict) -> str:
  gib = lambda b: f"{b / 2 ** 30:.2f} GiB"  # pylint: disable=unnecessary-lambda-assignment
  rows = r["rows"]
  lines = [f"| mesh (data x model), {r['devices']} devices | PruningNet params per device "
           "| with SGD momentum | largest head output matrix |", "|---|---|---|---|"]
  for m, row in rows.items():
    lines.append(f"| {r['devices'] // int(m)} x {m} | {gib(row['params_bytes'])} | "
                 f"{gib(row['state_bytes'])} | {row['largest_head_bytes'] / 2 ** 20:.0f} MiB |")
  one, last = rows["1"], rows[list(rows)[-1]]
  lines += ["", f"{r['config']}'s PruningNet (float32), per device, from the shardings "
            f"`gp_jax.runtime.sharding.state_shardings` gives the train state: the kernel-head "
            f"output matrices (and their momentum) are split over `model`, the rest replicated. "
            f"`model={list(rows)[-1]}` holds {last['state_bytes'] / one['state_bytes']:.2f}x "
            f"the state of `model=1`; the largest head is {one['largest_head']}."]
  return "\n".join(lines)
