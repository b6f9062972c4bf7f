"""The accelerator table: `python -m benchmarks.bench --only=gpu` -> bench_gpu.json.

Measures, on whatever device jax sees (`benchmarks/gpu.sh` runs it on a lent GPU):
the PruningNet step (images/s, compile time, compilations across the sampled
configurations, peak device memory) for MobileNetV2-1.4 at batch 256 and
ResNet-50 at batch 64 (224x224); the candidate scorer with the whole population
in one `vmap`, one candidate per call, and `lax.map`; the pruned networks'
latency at batch 1 and 64 against the unpruned one; and the PyTorch reference
(`bench_torch.py`, MetaPruning-style) on the same device. Rows run in priority
order, each in its own process with its own time limit, and bench_gpu.json is
rewritten after each, so a run cut off by the device's time limit keeps what it
measured. `--quick` (what `gpu.sh --smoke` and the test run) uses tiny shapes
that finish in about a minute on a CPU.
"""
from __future__ import annotations

import json
import os
import subprocess
import time

# (row, worker, parameters, parameters with --quick, seconds allowed)
ROWS = (
    ("step mobilenetv2 b256", "jax_step",
     dict(config_name="imagenet_mobilenetv2", arg=None, batch=256, resolution=224, steps=20),
     dict(config_name="digits_resnet20", arg=None, batch=16, resolution=16, steps=2), 240),
    ("reference step mobilenetv2 b256", "torch_step",
     dict(config_name="imagenet_mobilenetv2", arg=None, batch=256, resolution=224, steps=10),
     dict(config_name="digits_resnet20", arg=None, batch=16, resolution=16, steps=2), 150),
    ("candidates mobilenetv2", "jax_candidates",
     dict(config_name="imagenet_mobilenetv2", arg=None, resolution=224, population=16,
          modes=["16", "1", "map"], recal_batches=5, recal_batch=32, eval_images=100,
          repeats=2),
     dict(config_name="digits_resnet20", arg=None, resolution=16, population=2,
          modes=["2", "1", "map"], recal_batches=1, recal_batch=4, eval_images=8, repeats=1),
     240),
    ("reference candidates mobilenetv2", "torch_candidates",
     dict(config_name="imagenet_mobilenetv2", arg=None, resolution=224, count=8),
     dict(config_name="digits_resnet20", arg=None, resolution=16, count=1, recal_batches=1,
          recal_batch=4, eval_images=8), 120),
    ("latency mobilenetv2", "latency",
     dict(config_name="imagenet_mobilenetv2", arg=None, resolution=224, ratios=[0.5, 0.3],
          batches=[1, 64], runs=20),
     dict(config_name="digits_resnet20", arg=None, resolution=16, ratios=[0.5],
          batches=[1, 2], runs=2), 150),
    # --quick: None, the rows above already ran every worker
    ("step resnet50 b64", "jax_step",
     dict(config_name="imagenet_resnet50", arg=None, batch=64, resolution=224, steps=10),
     None, 180),
    ("reference step resnet50 b64", "torch_step",
     dict(config_name="imagenet_resnet50", arg=None, batch=64, resolution=224, steps=5),
     None, 120),
)
TORCH_WORKERS = ("torch_step", "torch_candidates")


def _torch_device() -> str | None:
  """cuda where torch sees a GPU, cpu where torch is there without one, None without torch."""
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  return "cuda" if torch.cuda.is_available() else "cpu"


def bench_gpu(quick: bool, json_path: str, in_subprocess, machine: dict,
              budget_s: float = 480.0) -> dict:
  """Runs the rows in order within `budget_s` (each through `in_subprocess(worker,
  timeout, **params)`, bench.py's), rewriting `json_path` after each."""
  from gp_jax.runtime import io_utils  # pylint: disable=import-outside-toplevel
  start = time.time()
  out = {"machine": machine, "quick": quick, "rows": {}}
  torch_device = _torch_device()
  for name, worker, params, quick_params, limit in ROWS:
    left = budget_s - (time.time() - start)
    if quick and quick_params is None:
      continue
    p = dict(quick_params if quick else params)
    if worker in TORCH_WORKERS:
      if torch_device is None:
        out["rows"][name] = {"skipped": "torch is not installed"}
        continue
      p["device"] = torch_device
    if left < 20:
      out["rows"][name] = {"skipped": f"out of time ({budget_s:.0f} s budget)"}
      continue
    t0 = time.time()
    try:
      row = in_subprocess(worker, timeout=int(min(limit, left)), **p)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
      row = {"error": " ".join(str(e).split())[-400:]}
    row["wall_s"] = time.time() - t0
    out["rows"][name] = row
    print(f"  gpu: {name}: {json.dumps(row)}", flush=True)
    io_utils.write_json(json_path, out)
  io_utils.write_json(json_path, out)
  return out


def _get(rows, name, key, fmt="{:.2f}"):
  value = rows.get(name, {}).get(key)
  return "–" if value is None else fmt.format(value)


def _why(rows, name) -> str:
  row = rows.get(name, {})
  return row.get("skipped") or ("failed: " + row["error"][:120] if "error" in row else "")


def table_gpu(r: dict | None) -> str:
  """The GPU section of BENCHMARKS.md: the figures of bench_gpu.json, or why there are none."""
  if not r:
    return ("Not measured yet: no accelerator has been lent to a session. When one is, "
            "`bash benchmarks/gpu.sh` (through the device tool, with `make gpu-wheels` "
            "carried) fills this table from `bench_gpu.json` in under 8 minutes.")
  m, rows = r["machine"], r["rows"]
  lines = [f"Measured {m['date']} on {', '.join(m['devices'][:1])} (jax {m['jax']}, "
           f"{m['backend']}; host {m.get('host_cpu', '?')})"
           + (", **smoke shapes** (`--smoke`)" if r.get("quick") else "") + ".", "",
           "| PruningNet step | gp_jax img/s | compile s | compilations / configurations | "
           "peak device MiB | reference img/s | ratio |", "|---|---|---|---|---|---|---|"]
  for net, label in (("mobilenetv2", "step mobilenetv2 b256"),
                     ("resnet50", "step resnet50 b64")):
    j = rows.get(label, {})
    ref = rows.get(f"reference {label}", {})
    ratio = (f"{j['images_per_s'] / ref['images_per_s']:.2f}x"
             if "images_per_s" in j and "images_per_s" in ref else "–")
    why = _why(rows, label)
    lines.append(
        f"| {label} | {_get(rows, label, 'images_per_s', '{:.1f}')} | "
        f"{_get(rows, label, 'compile_s', '{:.1f}')} | "
        f"{j.get('compilations', '–')} / {j.get('configurations', '–')} | "
        f"{_get(rows, label, 'device_peak_mb', '{:.0f}')} | "
        f"{_get(rows, f'reference {label}', 'images_per_s', '{:.1f}')} | {ratio}"
        + (f" ({why})" if why else "") + " |")
  c = rows.get("candidates mobilenetv2", {})
  ref = rows.get("reference candidates mobilenetv2", {})
  lines += ["", "| candidate scorer | candidates/s | first call s |", "|---|---|---|"]
  for mode in [k[:-len("_candidates_per_s")] for k in c if k.endswith("_candidates_per_s")]:
    label = {"1": "one per call (CPU default)", "map": "lax.map in one program"}.get(
        mode, f"all {mode} vmapped in one call (GPU/TPU default)")
    lines.append(f"| {label} | {c[f'{mode}_candidates_per_s']:.2f} | "
                 f"{c.get(f'{mode}_first_call_s', float('nan')):.1f} |")
  if "candidates_per_s" in ref:
    lines.append(f"| reference (PyTorch, sliced, one by one) | {ref['candidates_per_s']:.2f} | "
                 "– |")
  why = _why(rows, "candidates mobilenetv2")
  if why:
    lines.append(f"| ({why}) | | |")
  lat = rows.get("latency mobilenetv2", {}).get("rows", [])
  if lat:
    batches = sorted(int(k.split("_b")[1]) for k in lat[0] if k.startswith("latency_ms_b"))
    lines += ["", "| pruned network (uniform) | MACs ratio | "
              + " | ".join(f"latency ms, batch {b} (ratio)" for b in batches) + " |",
              "|---|---|" + "---|" * len(batches)]
    for row in lat:
      cells = [f"{row[f'latency_ms_b{b}']:.2f} ({row[f'latency_ms_b{b}'] / lat[0][f'latency_ms_b{b}']:.2f})"
               for b in batches]
      lines.append(f"| target {row['target']:g} | {row['macs_ratio']:.3f} | "
                   + " | ".join(cells) + " |")
  lines += ["", "Each row ran in its own process; the reference is the PyTorch MetaPruning-style "
            "step and candidate evaluation of tables 1-3 on the same device. Compilations must "
            "be 1 across the sampled configurations: one compiled step serves them all."]
  return "\n".join(lines)


def render_section(root: str) -> str:
  path = os.path.join(root, "bench_gpu.json")
  data = None
  if os.path.exists(path):
    with open(path) as f:
      data = json.load(f)
  return "## 10. On an accelerator (GPU)\n\n" + table_gpu(data) + "\n"
