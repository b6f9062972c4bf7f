"""Table 3: evaluating search candidates (BatchNorm recalibration and
held-out top-1): a population in one compiled call, a Python loop, the PyTorch one."""
from __future__ import annotations

import os
import time

import numpy as np

from benchmarks.harness import (bench_setup, device_peak_mb, have_torch, in_subprocess,
                                mean_macs_ratio, peak_rss_mb, random_batch, sample_population,
                                timed)
from gp_jax.data import splits as splits_lib


def worker_jax_candidates(config_name, arg, resolution, population, modes, recal_batches=5,
                          recal_batch=32, eval_images=100, repeats=2):
  """Candidates/s of the search's scorer: BN recalibration + held-out top-1, with the
  config's `cpu_low_memory` (as the search stage runs)."""
  from gp_jax.runtime import xla_flags
  config, spec = bench_setup(config_name, arg, resolution)
  low_memory = xla_flags.apply(config)  # before the backend starts
  import jax
  import jax.numpy as jnp
  from gp_jax.hypernet import candidates
  from gp_jax.hypernet.pruningnet import pruningnet_from_config
  model = pruningnet_from_config(spec, config, bn_momentum=0.0)
  recal = jnp.asarray(random_batch(spec, recal_batches * recal_batch, 1)["image"])
  held = random_batch(spec, eval_images, 2)
  eval_set = jax.tree.map(jnp.asarray, candidates.stack_eval_set(
      splits_lib.ArraySplit(held["image"], held["label"]), eval_images))
  params = jax.jit(lambda k: model.init(k, recal[:1], jnp.asarray(spec.max_widths),
                                        train=False))(jax.random.key(0))["params"]
  widths = jnp.asarray(sample_population(config, spec, population))
  out = {"population": population, "recal_images": int(recal.shape[0]),
         "eval_images": eval_images, "low_memory": low_memory}
  for mode in modes:
    if mode == "loop":
      one = jax.jit(lambda p, w, r, e: candidates.score(model, p, w, r, e))
      run = lambda: [float(one(params, w, recal, eval_set)["top1"]) for w in widths]  # pylint: disable=cell-var-from-loop
    elif mode == "map":  # one program, the candidates one after another (lax.map)
      mapped = jax.jit(lambda p, ws, r, e: jax.lax.map(
          lambda w: candidates.score(model, p, w, r, e)["top1"], ws))
      run = lambda: np.asarray(mapped(params, widths, recal, eval_set))  # pylint: disable=cell-var-from-loop
    else:
      scorer = candidates.make_population_scorer(model, int(mode))
      run = lambda: np.asarray(scorer(params, widths, recal, eval_set)["top1"])  # pylint: disable=cell-var-from-loop
    t0 = time.perf_counter()
    run()  # compile
    out[f"{mode}_first_call_s"] = time.perf_counter() - t0
    out[f"{mode}_candidates_per_s"] = population / timed(run, repeats)
  out["peak_rss_mb"] = peak_rss_mb()
  out["device_peak_mb"] = device_peak_mb()
  return out


def worker_torch_candidates(config_name, arg, resolution, count, recal_batches=5,
                            recal_batch=32, eval_images=100, device="cpu"):
  import torch
  from benchmarks import bench_torch
  torch.set_num_threads(os.cpu_count() or 1)
  config, spec = bench_setup(config_name, arg, resolution)
  model = bench_torch.MetaPruningStyleNet(spec, config.pruningnet.head_hidden).to_device(device)
  to_t = lambda x: bench_torch.to_nchw(x.astype(np.float32) / 255.0).to(device)  # pylint: disable=unnecessary-lambda-assignment
  recal = [to_t(random_batch(spec, recal_batch, 10 + i)["image"]) for i in range(recal_batches)]
  held = random_batch(spec, eval_images, 2)
  images = to_t(held["image"])
  labels = torch.from_numpy(held["label"].astype(np.int64)).to(device)
  population = sample_population(config, spec, count + 1)
  candidates = iter(population)
  bench_torch.score_candidate(model, next(candidates), recal, images, labels)  # warm-up
  seconds = timed(lambda: bench_torch.score_candidate(model, next(candidates), recal, images,
                                                       labels), count)
  return {"candidates_per_s": 1.0 / seconds,
          "mean_macs_ratio": mean_macs_ratio(spec, population[1:]),
          "peak_rss_mb": peak_rss_mb()}


def bench_candidates(quick: bool) -> dict:
  out = {"digits_resnet20": {}}
  for population in ((16,) if quick else (16, 64)):
    out["digits_resnet20"][population] = in_subprocess(
        "jax_candidates", config_name="digits_resnet20", arg=None, resolution=32,
        population=population,
        modes=["loop", "1"] + ([str(population)] if population <= 16 else []), recal_batches=2,
        recal_batch=64, eval_images=300)
  big = {"jax": in_subprocess("jax_candidates", config_name="imagenet_mobilenetv2", arg=None,
                              resolution=224, population=2 if quick else 4,
                              modes=["loop", "1"], repeats=1)}
  if have_torch():
    big["torch"] = in_subprocess("torch_candidates", config_name="imagenet_mobilenetv2",
                                 arg=None, resolution=224, count=1 if quick else 3)
    big["ratio"] = big["jax"]["1_candidates_per_s"] / big["torch"]["candidates_per_s"]
  out["imagenet_mobilenetv2"] = big
  return out


def table_candidates(r: dict) -> str:
  lines = ["| network | population | search scorer, 1 per call (CPU default) | "
           "search scorer, all vmapped in one call | Python loop of jitted calls, each "
           "awaited | reference |",
           "|---|---|---|---|---|---|"]
  for population, row in r["digits_resnet20"].items():
    vmapped = row.get(f"{population}_candidates_per_s")
    vmapped = f"{vmapped:.2f}/s" if vmapped else "not run (too slow on CPU)"
    lines.append(f"| digits_resnet20 (recal {row['recal_images']}, eval {row['eval_images']}) "
                 f"| {population} | {row['1_candidates_per_s']:.2f}/s | {vmapped} | "
                 f"{row['loop_candidates_per_s']:.2f}/s | n/a |")
  big = r["imagenet_mobilenetv2"]
  j = big["jax"]
  ref = (f"{big['torch']['candidates_per_s']:.3f}/s ({big['ratio']:.2f}x)"
         if "torch" in big else "n/a")
  if "mean_macs_ratio" in big.get("torch", {}):
    macs = big["torch"]["mean_macs_ratio"]
    ref += f"; its MACs {macs:.2f}, per MAC {big['ratio'] / macs:.1f}x"
  lines.append(f"| imagenet_mobilenetv2 1.4 at 224 (recal 5x32, eval 100) | {j['population']} | "
               f"{j['1_candidates_per_s']:.3f}/s | n/a | {j['loop_candidates_per_s']:.3f}/s | "
               f"{ref} |")
  lines += ["", "Candidates per second (higher is better). The reference is MetaPruning's "
            "candidate evaluation in PyTorch eager: BN statistics reset, cumulative "
            "recalibration over 5 batches of 32, top-1 on 100 images; the ratio is gp_jax's "
            "search scorer (1 per call) over it. The scorer dispatches its calls without "
            "waiting for each result; the loop waits. gp_jax runs with each config's "
            "`cpu_low_memory`, as its search stage does (on for MobileNetV2, off for digits). "
            "The reference runs each candidate sliced to its widths (its MACs: their mean "
            "over the full network's); gp_jax's scorer runs the masked full-width network, "
            "so per MAC is the ratio over that."]
  return "\n".join(lines)
