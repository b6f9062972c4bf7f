"""Benchmarks: `python -m benchmarks.bench [--only=pipeline,...]` (or `make bench`).

Prints each table, writes every figure to bench.json and the tables to
BENCHMARKS.md (both atomically). Each figure is the median of several timed
runs after warm-up; every comparison is a ratio measured in the same run,
since these machines are noisy.

Tables (each in its module under benchmarks/tables/; each heavy measurement runs in
its own subprocess, benchmarks/harness.py, so peak RSS is its own):
* `step`: PruningNet training step, images/s, compilations over many sampled
  configurations, utilisation (XLA flops/s over a big matmul's flops/s), peak
  RSS; beside the same step in PyTorch eager written as MetaPruning does.
* `candidates`: search candidate evaluation (BN recalibration + held-out
  top-1): population in one compiled call vs a Python loop vs the PyTorch one.
* `latency`: sliced pruned networks at 0.7/0.5/0.3 MACs vs the unpruned one.
* `latency_model`: the latency table of `search.constraint=latency` (its build
  time), and its predictions against measured latency of 20 random sliced
  networks, beside MACs as a predictor and a second measurement of each network
  (the noise ceiling).
* `memory`: peak RSS of each pipeline stage on the demo config; PruningNet
  parameter bytes per network.
* `convs`: each conv kind at the shapes the networks use, forward and
  forward+backward, in XLA's form and the CPU forms (`models`), and the unpruned
  retrain step with the CPU forms against XLA's conv everywhere.
* `xla_options`: the PruningNet step and the candidate evaluation under each of
  the XLA:CPU options this jaxlib knows (xnnpack, ynn and oneDNN fusions).
* `pipeline`: input pipeline throughput (images/s per process) on synthetic
  JPEGs at ImageNet shapes: decode + ImageNet train augmentation, inline and
  in grain worker processes, beside decode alone.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time

from absl import flags

from benchmarks.harness import RESULT, in_subprocess
from benchmarks.tables import (candidates, convs, dense_rules, latency, memory, pipeline, step,
                               trained, xla_options)
from gp_jax.runtime import cli, io_utils, timing
from gp_jax.runtime.errors import UserError

_ONLY = flags.DEFINE_list("only", [], "Tables to run (default: all but gpu; gpu alone runs the "
                          "accelerator table into bench_gpu.json).")
_OUT = flags.DEFINE_string("out", ".", "Directory for bench.json and BENCHMARKS.md.")
_QUICK = flags.DEFINE_bool("quick", False, "Fewer repetitions (for a smoke run).")
_RENDER = flags.DEFINE_bool("render", False, "Only rewrite BENCHMARKS.md from bench.json.")
_WORKER = flags.DEFINE_string("worker", "", "Internal: run one measurement, print JSON.")
_PARAMS = flags.DEFINE_string("params", "{}", "Internal: the measurement's parameters.")


# The measurements that run in their own process (harness.in_subprocess), by name.
WORKERS = {"jax_step": step.worker_jax_step, "torch_step": step.worker_torch_step,
           "jax_candidates": candidates.worker_jax_candidates,
           "torch_candidates": candidates.worker_torch_candidates,
           "latency": latency.worker_latency, "latency_model": latency.worker_latency_model,
           "stage_memory": memory.worker_stage_memory,
           "sharded_memory": memory.worker_sharded_memory,
           "conv_forms": convs.worker_conv_forms, "net_forms": convs.worker_net_forms,
           "dense_rules": dense_rules.worker_dense_rules}


# BENCHMARKS.md's prose, around the tables.
PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "benchmarks_page.md")

# name -> (measure, render, title), in the order BENCHMARKS.md shows them.
TABLES = {"step": (step.bench_step, step.table_step,
                   "1-2. PruningNet training step vs the reference"),
          "candidates": (candidates.bench_candidates, candidates.table_candidates,
                         "3. Candidate evaluation"),
          "latency": (latency.bench_latency, latency.table_latency,
                      "4. Pruned network speed-up"),
          "latency_model": (latency.bench_latency_model, latency.table_latency_model,
                            "4b. Latency table: predicted vs measured latency"),
          "memory": (memory.bench_memory, memory.table_memory, "5. Memory"),
          "pipeline": (pipeline.bench_pipeline, pipeline.table_pipeline,
                       "6. Input pipeline: decode + augment throughput"),
          "sharding": (memory.bench_sharding, memory.table_sharding,
                       "7. PruningNet memory per device on a (data, model) mesh"),
          "convs": (convs.bench_convs, convs.table_convs,
                    "8. Conv forms on the CPU, per layer kind"),
          "dense_rules": (dense_rules.bench_dense_rules, dense_rules.table_dense_rules,
                          "8b. Which dense convs take the CPU form: the whole PruningNet step"),
          "xla_options": (xla_options.bench_xla_options, xla_options.table_xla_options,
                          "9. XLA:CPU options on the step and the candidate evaluation")}


def machine() -> dict:
  import jax
  return {"date": time.strftime("%Y-%m-%d"), "python": sys.version.split()[0],
          "jax": jax.__version__, "backend": jax.default_backend(),
          "devices": [str(d) for d in jax.devices()], "cpu_count": os.cpu_count(),
          "platform": platform.platform(), "host_cpu": timing.host_cpu()}


def main(argv):
  if len(argv) > 1:
    raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
  if _WORKER.value:
    result = WORKERS[_WORKER.value](**json.loads(_PARAMS.value))
    print(RESULT + json.dumps(result), flush=True)
    return
  if _ONLY.value == ["gpu"]:  # the accelerator table: its own file (benchmarks/gpu.py)
    from benchmarks import gpu
    gpu.bench_gpu(_QUICK.value, os.path.join(_OUT.value, "bench_gpu.json"), in_subprocess,
                  machine())
    json_path = os.path.join(_OUT.value, "bench.json")
    if os.path.exists(json_path):
      io_utils.write_text(os.path.join(_OUT.value, "BENCHMARKS.md"),
                          render(io_utils.read_json(json_path)))
    return
  names = _ONLY.value or list(TABLES)
  for name in names:
    if name not in TABLES:
      from gp_jax.runtime.errors import unknown_name
      raise unknown_name("benchmark", name, TABLES)
  json_path = os.path.join(_OUT.value, "bench.json")
  if _RENDER.value:
    if not os.path.exists(json_path):
      raise UserError(f"no {json_path} to render; run python -m benchmarks.bench first")
    results = io_utils.read_json(json_path)
  else:  # tables not run this time keep their figures from bench.json
    results = io_utils.read_json(json_path) if os.path.exists(json_path) else {}
    results["machine"] = machine()
    for name in names:
      print(f"bench: {name} ...", flush=True)
      results[name] = TABLES[name][0](_QUICK.value)
      # Each table names the machine and day it was measured on: a partial run
      # (--only) keeps the other tables' figures, which another machine may have made.
      results.setdefault("machines", {})[name] = results["machine"]
      print(TABLES[name][1](results[name]) + "\n", flush=True)
    io_utils.write_json(json_path, results)
  io_utils.write_text(os.path.join(_OUT.value, "BENCHMARKS.md"), render(results))


def render(results: dict) -> str:
  m = results["machine"]
  cpu = f"{m['host_cpu']}, " if "host_cpu" in m else ""
  machine_line = (f"{m['date']} on {cpu}{m['platform']}, {m['cpu_count']} cores, python "
                  f"{m['python']}, jax {m['jax']} ({m['backend']})")
  out = []
  for name, (_, table, title) in TABLES.items():
    if name in results:
      m = results.get("machines", {}).get(name)
      where = (f"\n\nMeasured {m['date']} on {m.get('host_cpu', m['platform'])}, "
               f"{m['cpu_count']} cores, jax {m['jax']}." if m else "")
      # A caveat about one run of a table (e.g. what else the machine was running),
      # written into bench.json's "notes" by whoever ran it.
      note = results.get("notes", {}).get(name)
      where += f" {note}" if note else ""
      out.append(f"## {title}\n\n{table(results[name])}{where}\n")
  from benchmarks import gpu
  out.append(gpu.render_section(_OUT.value))
  if "trained" in results:  # benchmarks/trained.py's, measured apart (hours)
    out.append(trained.section(results["trained"]))
  with open(PAGE, encoding="utf-8") as f:
    return f.read().format(machine=machine_line, tables="\n".join(out))


if __name__ == "__main__":
  cli.run(main)
