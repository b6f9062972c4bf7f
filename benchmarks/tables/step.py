"""Tables 1-2: the PruningNet training step, gp_jax's and the PyTorch
reference's (MetaPruning's form, benchmarks/bench_torch.py), in the same run."""
from __future__ import annotations

import json
import os
import time

import numpy as np

from benchmarks.harness import (bench_setup, device_peak_mb, have_torch, in_subprocess,
                                matmul_flops_per_s, mean_macs_ratio, peak_rss_mb, random_batch,
                                sample_population, timed)


def worker_jax_step(config_name, arg, batch, resolution, steps, warmup=2,
                    momentum_dtype="float32", low_memory=False):
  """The PruningNet train step of gp_jax: one compiled step for every configuration.

  As the stage does, the step is compiled before the state exists; `low_memory`
  sets `config.cpu_low_memory` (XLA:CPU flags, before the backend starts).
  """
  from gp_jax.runtime import xla_flags
  config, spec = bench_setup(config_name, arg, resolution)
  config.cpu_low_memory = low_memory
  flags_applied = xla_flags.apply(config)
  import jax
  from gp_jax.runtime import host_memory, optim, sharding
  from gp_jax.hypernet import pruningnet as pn_lib
  from gp_jax.hypernet.pruningnet import pruningnet_from_config
  from gp_jax.stages import pruningnet as stage
  c = config.pruningnet
  c.configs_per_step, c.batch_size, c.momentum_dtype = 1, batch, momentum_dtype
  model = pruningnet_from_config(spec, config)
  tx = optim.make_optimizer(c, 10_000)
  traces = []
  inner = stage.make_train_step(model, spec, stage.make_sampler(spec, config),
                                optim.learning_rate_schedule(c, 10_000), configs_per_step=1,
                                label_smoothing=0.1, seed=0)

  def counted(state, batch):
    traces.append(1)
    return inner(state, batch)

  data = random_batch(spec, batch)
  abstract = jax.eval_shape(lambda: pn_lib.create_state(model, spec, tx, 0))
  lowered = jax.jit(counted, donate_argnums=0).lower(
      abstract, {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in data.items()})
  flops = lowered.cost_analysis()["flops"]
  t0 = time.perf_counter()
  step_fn = lowered.compile()
  compile_s = time.perf_counter() - t0
  memory = step_fn.memory_analysis()
  rss_after_compile = peak_rss_mb()
  host_memory.release_freed()  # as the stage does
  state, _ = pn_lib.create_sharded_state(model, spec, tx, 0, sharding.local_mesh())
  jax.block_until_ready(state)  # dispatch is asynchronous: wait for the init itself
  rss_after_init = peak_rss_mb()
  data = jax.device_put(data)
  macs = set()

  def one_step():
    nonlocal state
    state, metrics = step_fn(state, data)
    macs.add(float(metrics["macs_ratio"]))  # waits for the step; one value per configuration

  for _ in range(warmup):
    one_step()
  step_s = timed(one_step, steps)
  matmul = matmul_flops_per_s()
  del state
  return {"step_s": step_s, "images_per_s": batch / step_s, "compile_s": compile_s,
          "configurations": len(macs), "compilations": len(traces), "flops": flops,
          "flops_per_s": flops / step_s, "matmul_flops_per_s": matmul,
          "utilisation": flops / step_s / matmul, "peak_rss_mb": peak_rss_mb(),
          "peak_rss_after_compile_mb": rss_after_compile,
          "peak_rss_after_init_mb": rss_after_init, "low_memory": flags_applied,
          "device_peak_mb": device_peak_mb(), "device": jax.devices()[0].device_kind,
          "temp_gib": memory.temp_size_in_bytes / 2 ** 30,
          "argument_gib": memory.argument_size_in_bytes / 2 ** 30}


def worker_torch_step(config_name, arg, batch, resolution, steps, warmup=2, device="cpu"):
  """The same step in PyTorch eager, MetaPruning-style (max-size weights, sliced)."""
  import torch
  from benchmarks import bench_torch
  torch.set_num_threads(os.cpu_count() or 1)
  torch.manual_seed(0)
  config, spec = bench_setup(config_name, arg, resolution)
  model = bench_torch.MetaPruningStyleNet(spec, config.pruningnet.head_hidden).to_device(device)
  step = bench_torch.make_step(model)
  data = random_batch(spec, batch)
  images = bench_torch.to_nchw(data["image"].astype(np.float32) / 255.0).to(device)
  labels = torch.from_numpy(data["label"].astype(np.int64)).to(device)
  widths = sample_population(config, spec, warmup + steps)  # one configuration per step
  population = iter(widths)
  for _ in range(warmup):
    step(images, labels, next(population))
  step_s = timed(lambda: step(images, labels, next(population)), steps)
  return {"step_s": step_s, "images_per_s": batch / step_s,
          "mean_macs_ratio": mean_macs_ratio(spec, widths[warmup:]),
          "params": bench_torch.count_params(model),
          "torch": torch.__version__, "threads": torch.get_num_threads(),
          "peak_rss_mb": peak_rss_mb(), **_torch_device_peak(torch, device)}


def _torch_device_peak(torch, device) -> dict:
  if str(device).startswith("cuda"):
    return {"device_peak_mb": torch.cuda.max_memory_allocated() / 2 ** 20,
            "device": torch.cuda.get_device_name()}
  return {}


STEP_CASES = (  # label, config, arg, batch, resolution, timed steps, quick steps, momentum,
    # cpu_low_memory (the configs' own: False for digits, True for MobileNetV2 and ResNet-50)
    ("digits_resnet20", "digits_resnet20", None, 128, 32, 50, 3, "float32", False),
    ("digits_resnet20, cpu_low_memory", "digits_resnet20", None, 128, 32, 50, 0, "float32",
     True),
    ("imagenet_mobilenetv2, without cpu_low_memory", "imagenet_mobilenetv2", None, 8, 224, 20,
     0, "float32", False),
    ("imagenet_mobilenetv2", "imagenet_mobilenetv2", None, 8, 224, 20, 2, "float32", True),
    ("imagenet_resnet50, without cpu_low_memory", "imagenet_resnet50", None, 8, 224, 6, 0,
     "float32", False),
    ("imagenet_resnet50", "imagenet_resnet50", None, 8, 224, 6, 0, "float32", True),
    ("imagenet_resnet50, bf16 momentum", "imagenet_resnet50", None, 8, 224, 6, 0, "bfloat16",
     True),
)


def bench_step(quick: bool) -> dict:
  out, references = {}, {}
  for label, name, arg, batch, resolution, steps, quick_steps, momentum, lean in STEP_CASES:
    n = quick_steps if quick else steps
    if not n:
      continue
    row = {"batch": batch, "resolution": resolution,
           "jax": in_subprocess("jax_step", config_name=name, arg=arg, batch=batch,
                                resolution=resolution, steps=n, momentum_dtype=momentum,
                                low_memory=lean)}
    if have_torch():
      if name not in references:  # one reference per network
        references[name] = in_subprocess("torch_step", config_name=name, arg=arg,
                                         batch=batch, resolution=resolution,
                                         steps=max(2, n // 4))
      row["torch"] = references[name]
      row["speed_ratio"] = row["jax"]["images_per_s"] / row["torch"]["images_per_s"]
      row["memory_ratio"] = row["jax"]["peak_rss_mb"] / row["torch"]["peak_rss_mb"]
    out[label] = row
    print(f"  {label}: {json.dumps(row)}", flush=True)
  return out


def table_step(r: dict) -> str:
  lines = ["| network (batch, resolution) | gp_jax img/s | reference img/s | ratio | "
           "reference's MACs | ratio per MAC | "
           "compilations / configurations | utilisation | gp_jax peak RSS | reference peak RSS "
           "| XLA: state + temporaries |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
  for name, row in r.items():
    j, t = row["jax"], row.get("torch")
    ref = (f"{t['images_per_s']:.2f} | {row['speed_ratio']:.2f}x" if t else "n/a | n/a")
    if t and "mean_macs_ratio" in t:
      ref += (f" | {t['mean_macs_ratio']:.2f} | "
              f"{row['speed_ratio'] / t['mean_macs_ratio']:.2f}x")
    else:
      ref += " | n/a | n/a"
    ref_mem = (f"{t['peak_rss_mb'] / 1024:.2f} GB ({row['memory_ratio']:.2f}x)" if t
               else "n/a")
    xla = (f"{j['argument_gib']:.2f} + {j['temp_gib']:.2f} GiB" if "temp_gib" in j else "n/a")
    lines.append(f"| {name} ({row['batch']}, {row['resolution']}) | {j['images_per_s']:.2f} | "
                 f"{ref} | {j['compilations']} / {j['configurations']} | "
                 f"{100 * j['utilisation']:.1f}% | {j['peak_rss_mb'] / 1024:.2f} GB | "
                 f"{ref_mem} | {xla} |")
  lines += ["", "Reference: the same PruningNet step in PyTorch eager, written as MetaPruning "
            "writes it (`benchmarks/bench_torch.py`), same architecture, batch and threads. "
            "It slices the generated weights to each step's configuration and computes only "
            "those channels; gp_jax's masked step computes every channel, so that one "
            "compiled step serves all configurations. Reference's MACs: the mean MACs of "
            "its timed configurations over the full network's; ratio per MAC: the ratio "
            "over that, gp_jax's MACs per second (all channels) over the reference's (the "
            "sampled ones): the speed left to gain apart from the masking's cost. "
            "Utilisation: the step's XLA flops per second over a 2048^2 float32 matmul's, "
            "measured in the same process. Configurations: distinct sampled configurations "
            "(by MACs) that ran through the one compiled step. Peak RSS is the whole "
            "process's (compile, init, steps); the step is compiled before the state is "
            "allocated, as the stage does. XLA: the step's arguments (the train state) and "
            "temporaries from its memory analysis. A row named for a config runs with that "
            "config's `cpu_low_memory` (`gp_jax/runtime/xla_flags.py`: on for MobileNetV2 and "
            "ResNet-50, off for digits); the 'cpu_low_memory' and 'without cpu_low_memory' rows "
            "flip it."]
  return "\n".join(lines)
