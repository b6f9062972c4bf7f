"""Benchmarks: `python -m benchmarks.bench [--only=pipeline,...]` (or `make bench`).

Prints each table, writes every figure to bench.json and the tables to
BENCHMARKS.md (both atomically). Each figure is the median of several timed
runs after warm-up; every comparison is a ratio measured in the same run,
since these machines are noisy.

Tables (each heavy measurement runs in its own subprocess, so peak RSS is its own):
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

import importlib.util
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
from absl import flags

from gp_jax.data import loader, tfds_source
from gp_jax.data import splits as splits_lib
from gp_jax.runtime import cli, io_utils, timing
from gp_jax.runtime.errors import UserError

_ONLY = flags.DEFINE_list("only", [], "Tables to run (default: all but gpu; gpu alone runs the "
                          "accelerator table into bench_gpu.json).")
_OUT = flags.DEFINE_string("out", ".", "Directory for bench.json and BENCHMARKS.md.")
_QUICK = flags.DEFINE_bool("quick", False, "Fewer repetitions (for a smoke run).")
_RENDER = flags.DEFINE_bool("render", False, "Only rewrite BENCHMARKS.md from bench.json.")
_WORKER = flags.DEFINE_string("worker", "", "Internal: run one measurement, print JSON.")
_PARAMS = flags.DEFINE_string("params", "{}", "Internal: the measurement's parameters.")
RESULT = "BENCH_RESULT "
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def peak_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def in_subprocess(worker: str, timeout: int = 1800, env=None, **params) -> dict:
  """Runs WORKERS[worker](**params) in a fresh python (with extra `env`); its JSON result."""
  proc = subprocess.run(
      [sys.executable, "-m", "benchmarks.bench", f"--worker={worker}",
       f"--params={json.dumps(params)}"], cwd=ROOT, capture_output=True, text=True,
      timeout=timeout, env={**os.environ, **(env or {})})
  for line in proc.stdout.splitlines():
    if line.startswith(RESULT):
      return json.loads(line[len(RESULT):])
  raise RuntimeError(f"bench worker {worker} {params} failed: {proc.stderr[-3000:]}")


def load_config(name: str, arg=None):
  path = os.path.join(ROOT, "configs", f"{name}.py")
  spec = importlib.util.spec_from_file_location(f"bench_config_{name}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def bench_setup(config_name: str, arg, resolution: int):
  from gp_jax.config.build import spec_from_config
  config = load_config(config_name, arg)
  config.dataset.resolution = resolution
  return config, spec_from_config(config)


def random_batch(spec, batch: int, seed: int = 0):
  rng = np.random.default_rng(seed)
  shape = (batch, spec.resolution, spec.resolution, spec.in_channels)
  images = rng.integers(0, 256, shape, dtype=np.uint8) if spec.in_channels == 3 else \
      rng.normal(size=shape).astype(np.float32)
  return {"image": images, "label": rng.integers(0, spec.num_classes, batch).astype(np.int32)}


def _timed(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def matmul_flops_per_s(n: int = 2048, runs: int = 10) -> float:
  import jax
  import jax.numpy as jnp
  x = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda a: a @ a)
  jax.block_until_ready(f(x))
  return 2 * n ** 3 / _timed(lambda: jax.block_until_ready(f(x)), runs)


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
      abstract, {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in loader.items()})
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
  step_s = _timed(one_step, steps)
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
  widths = _population(config, spec, warmup + steps)  # one configuration per step
  population = iter(widths)
  for _ in range(warmup):
    step(images, labels, next(population))
  step_s = _timed(lambda: step(images, labels, next(population)), steps)
  return {"step_s": step_s, "images_per_s": batch / step_s,
          "mean_macs_ratio": _mean_macs_ratio(spec, widths[warmup:]),
          "params": bench_torch.count_params(model),
          "torch": torch.__version__, "threads": torch.get_num_threads(),
          "peak_rss_mb": peak_rss_mb(), **_torch_device_peak(torch, device)}


def _torch_device_peak(torch, device) -> dict:
  if str(device).startswith("cuda"):
    return {"device_peak_mb": torch.cuda.max_memory_allocated() / 2 ** 20,
            "device": torch.cuda.get_device_name()}
  return {}


def device_peak_mb():
  """Peak memory of jax's first device in MiB (None where the backend does not say)."""
  import jax
  stats = jax.devices()[0].memory_stats() or {}
  peak = stats.get("peak_bytes_in_use")
  return None if peak is None else peak / 2 ** 20


def _population(config, spec, count: int, seed: int = 0) -> np.ndarray:
  from gp_jax.net import channels
  from gp_jax.config.build import fixed_groups_from_config
  grid = channels.keep_ratio_grid(config.channels.grid_levels, config.channels.grid_low,
                                  config.channels.grid_high)
  rng = np.random.default_rng(seed)
  return np.stack([channels.widths_from_keep_ratios(
      spec, rng.choice(grid, spec.num_groups), divisor=config.channels.divisor,
      fixed=fixed_groups_from_config(config, spec)) for _ in range(count)])


def _mean_macs_ratio(spec, widths) -> float:
  """Mean MACs of the configurations the reference timed, over the full network's:
  it computes only their channels, gp_jax's masked programs compute all of them."""
  from gp_jax.net import costs
  return float(np.mean([costs.macs_ratio(spec, w) for w in widths]))


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
  widths = jnp.asarray(_population(config, spec, population))
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
    out[f"{mode}_candidates_per_s"] = population / _timed(run, repeats)
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
  population = _population(config, spec, count + 1)
  candidates = iter(population)
  bench_torch.score_candidate(model, next(candidates), recal, images, labels)  # warm-up
  seconds = _timed(lambda: bench_torch.score_candidate(model, next(candidates), recal, images,
                                                       labels), count)
  return {"candidates_per_s": 1.0 / seconds,
          "mean_macs_ratio": _mean_macs_ratio(spec, population[1:]),
          "peak_rss_mb": peak_rss_mb()}


def worker_latency(config_name, arg, resolution, ratios, batches, runs):
  """Latency of the sliced network at uniform keep-ratios hitting each MACs ratio."""
  import jax
  from gp_jax.net import costs, models
  from gp_jax.config.build import make_env
  from gp_jax.runtime.timing import measure_latency_ms
  from gp_jax.search import methods
  config, spec = bench_setup(config_name, arg, resolution)
  shape = (spec.resolution, spec.resolution, spec.in_channels)
  rows = []
  for ratio in [1.0, *ratios]:
    if ratio == 1.0:
      widths = tuple(spec.max_widths)
    else:
      widths = tuple(int(w) for w in methods.uniform_widths(make_env(config, spec, ratio)))
    model = models.ConvNet(spec, widths)
    variables = jax.jit(lambda k: models.init_variables(model, k))(jax.random.key(0))  # pylint: disable=cell-var-from-loop
    apply = jax.jit(lambda v, x: model.apply(v, x, train=False))  # pylint: disable=cell-var-from-loop
    row = {"target": ratio, "macs_ratio": float(costs.macs(spec, widths) / costs.macs(spec))}
    for b in batches:
      row[f"latency_ms_b{b}"] = measure_latency_ms(
          lambda x: apply(variables, x), shape, b, runs)  # pylint: disable=cell-var-from-loop
    rows.append(row)
    del variables
  return {"rows": rows}


def worker_latency_model(config_name, arg, resolution, batch, grid_points, runs, checks):
  """Builds the latency table for a config, then predicted vs measured (twice) latency
  of `checks` random sliced networks."""
  import numpy as np
  from scipy import stats
  from gp_jax.net import latency
  from gp_jax.config.build import fixed_groups_from_config
  config, spec = bench_setup(config_name, arg, resolution)
  config.eval.latency_batch_size, config.latency.grid_points = batch, grid_points
  config.latency.runs = runs
  settings = latency.settings_from_config(config, fixed_groups_from_config(config, spec))
  table = latency.build_table(spec, settings, progress=False)
  check = latency.check_table(table, spec, settings, n=checks, seed=1, progress=False)
  again = [latency.measure_network_ms(spec, r["widths"], batch, runs) for r in check["rows"]]
  first = np.array([r["measured_ms"] for r in check["rows"]])
  return {"arch": spec.name, "resolution": resolution, "batch": batch,
          "layers": len(spec.layers), "entries": len(table["entries"]),
          "measured_shapes": table["measured_shapes"], "build_s": table["seconds"],
          "fits": table["fits"],
          "full_ms": table["calibration"][0]["ms"], "host_cpu": table["key"]["host_cpu"],
          "spearman_repeat": float(stats.spearmanr(first, again).statistic),
          "median_repeat_diff": float(np.median(np.abs(first - again) / first)),
          **{k: v for k, v in check.items()}}


def _im2col_conv(x, kernel, stride: int):
  """The alternative measured beside gp_jax's forms: every tap's window
  concatenated along channels, one (N*H*W, k*k*Cin) x (k*k*Cin, Cout) product."""
  import jax.numpy as jnp
  from gp_jax.net import models
  taps = [tap for _, _, tap in models.same_padding_taps(x, kernel.shape[0], stride)]
  n, h, w, _ = taps[0].shape
  patches = jnp.concatenate(taps, axis=-1).reshape(n * h * w, -1)
  return (patches @ kernel.reshape(patches.shape[1], -1)).reshape(n, h, w, -1)


def worker_conv_forms(cases, runs, rounds=5):
  """Forward and forward+backward (input and kernel gradients) of one conv layer
  in each form, the forms interleaved round by round (the machine drifts)."""
  import jax
  import jax.numpy as jnp
  from gp_jax.net import models

  def xla(x, k, stride, groups):
    return jax.lax.conv_general_dilated(x, k, (stride, stride), "SAME",
                                        feature_group_count=groups,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

  out = []
  for network, kind, batch, size, cin, cout, kernel, stride in cases:
    depthwise = kind.startswith("depthwise")
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(batch, size, size, cin)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(kernel, kernel, 1 if depthwise else cin, cout)) * 0.1,
                    jnp.float32)
    groups = cin if depthwise else 1
    forms = {"xla": lambda x, k: xla(x, k, stride, groups)}
    if depthwise:
      forms["shifted products"] = lambda x, k: models.depthwise_conv(x, k, stride)
      used = "shifted products" if models.depthwise_by_shifts() else "xla"
    elif kernel == 1:
      forms["one matrix product"] = lambda x, k: models.pointwise_conv(x, k, stride)
      used = "one matrix product" if models.pointwise_as_dot() else "xla"
    else:
      forms["xla + per-tap kernel gradient"] = lambda x, k: models.dense_conv(x, k, stride)
      forms["im2col"] = lambda x, k: _im2col_conv(x, k, stride)
      used = ("xla + per-tap kernel gradient"
              if models.dense_by_shifted_grad(cin, cout, stride) else "xla")
    fns = {}
    for name, f in forms.items():
      fns[(name, "forward")] = jax.jit(f)
      fns[(name, "forward+backward")] = jax.jit(jax.grad(
          lambda x, k, f=f: jnp.sum(f(x, k) ** 2), argnums=(0, 1)))
    times = {key: [] for key in fns}
    for key, fn in fns.items():
      jax.block_until_ready(fn(x, k))  # compile + warm-up
    for _ in range(rounds):
      for key, fn in fns.items():
        times[key].append(_timed(lambda fn=fn: jax.block_until_ready(fn(x, k)), runs))
    row = {"network": network, "kind": kind, "shape": [batch, size, size, cin, cout],
           "kernel": kernel, "stride": stride, "used": used,
           "ms": {f"{name}|{pass_}": 1e3 * statistics.median(v)
                  for (name, pass_), v in times.items()}}
    out.append(row)
    print(json.dumps(row), file=sys.stderr, flush=True)
  return {"rows": out}


def worker_net_forms(config_name, arg, resolution, batch, rounds, steps):
  """The retrain step of the unpruned (sliced, full-width) network with the CPU
  conv forms against XLA's own convs everywhere (`portable`), interleaved."""
  import jax
  from gp_jax.net import models
  from gp_jax.runtime import optim
  from gp_jax.stages import retrain
  config, spec = bench_setup(config_name, arg, resolution)
  data = jax.device_put(random_batch(spec, batch))
  c = config.retrain
  schedule, tx = optim.learning_rate_schedule(c, 1000), optim.make_optimizer(c, 1000)
  steps_fn, states, compile_s = {}, {}, {}
  for portable in (False, True):
    model = models.ConvNet(spec, tuple(spec.max_widths), portable=portable)
    variables = jax.jit(lambda key, m=model: models.init_variables(m, key))(jax.random.key(0))
    state = retrain.RetrainState.create(apply_fn=model.apply, params=variables["params"],
                                        tx=tx, batch_stats=variables["batch_stats"])
    t0 = time.perf_counter()
    steps_fn[portable] = jax.jit(retrain.make_train_step(
        model, spec.num_classes, 0.0, schedule)).lower(state, data).compile()
    compile_s[portable] = time.perf_counter() - t0
    states[portable] = state
  times = {False: [], True: []}
  for portable in (False, True):
    jax.block_until_ready(steps_fn[portable](states[portable], data))
  for _ in range(rounds):
    for portable in (False, True):
      times[portable].append(_timed(lambda p=portable: jax.block_until_ready(
          steps_fn[p](states[p], data)), steps))
  cpu, xla = (statistics.median(times[p]) for p in (False, True))
  return {"cpu_forms_step_s": cpu, "xla_step_s": xla, "speedup": xla / cpu,
          "cpu_forms_compile_s": compile_s[False], "xla_compile_s": compile_s[True]}


XLA_CONV_RULE = "none (XLA's conv)"  # the rule the others are compared with
DENSE_RULES = {  # label -> which dense convs take `models.dense_conv` (cin, cout, stride)
    XLA_CONV_RULE: lambda cin, cout, stride: False,
    "stems": lambda cin, cout, stride: cin < 8,
    "stems + strided": lambda cin, cout, stride: cin < 8 or stride > 1,
    "stems + strided + from 16x32 channels (the first rule)":
        lambda cin, cout, stride: cin < 8 or stride > 1 or cin * cout >= 16 * 32,
    "every one": lambda cin, cout, stride: True,
}


def worker_dense_rules(config_name, resolution, batch, rounds):
  """The PruningNet train step with the dense form on for the convs each rule
  picks, and with gp_jax's rule; one process, the rules interleaved round by round."""
  import jax
  from gp_jax.net import models
  from gp_jax.runtime import optim, sharding
  from gp_jax.hypernet import pruningnet as pn_lib
  from gp_jax.stages import pruningnet as stage
  config, spec = bench_setup(config_name, None, resolution)
  c = config.pruningnet
  c.configs_per_step, c.batch_size = 1, batch
  model = pn_lib.pruningnet_from_config(spec, config)
  tx = optim.make_optimizer(c, 10_000)
  data = jax.device_put(random_batch(spec, batch))
  state, _ = pn_lib.create_sharded_state(model, spec, tx, 0, sharding.local_mesh())
  rules = {**DENSE_RULES, "gp_jax (models.dense_by_shifted_grad)": models.dense_by_shifted_grad}
  gp_jax_rule, steps, picked = models.dense_by_shifted_grad, {}, {}
  try:
    for label, rule in rules.items():
      models.dense_by_shifted_grad = rule  # what models.Layer asks, at trace time
      picked[label] = sum(bool(rule(layer.in_channels, layer.out_channels, layer.stride))
                          for layer in spec.layers if layer.kind == "conv" and layer.kernel > 1)
      steps[label] = jax.jit(stage.make_train_step(
          model, spec, stage.make_sampler(spec, config),
          optim.learning_rate_schedule(c, 10_000), configs_per_step=1, label_smoothing=0.1,
          seed=0)).lower(state, data).compile()
  finally:
    models.dense_by_shifted_grad = gp_jax_rule
  times = {label: [] for label in steps}
  for _ in range(rounds):
    for label, step in steps.items():
      jax.block_until_ready(step(state, data))
      times[label].append(_timed(lambda f=step: jax.block_until_ready(f(state, data)), 1))
  return {label: {"step_s": statistics.median(t), "dense_convs": picked[label]}
          for label, t in times.items()}


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


WORKERS = {"jax_step": worker_jax_step, "torch_step": worker_torch_step,
           "jax_candidates": worker_jax_candidates,
           "torch_candidates": worker_torch_candidates, "latency": worker_latency,
           "latency_model": worker_latency_model,
           "stage_memory": worker_stage_memory, "sharded_memory": worker_sharded_memory,
           "conv_forms": worker_conv_forms, "net_forms": worker_net_forms,
           "dense_rules": worker_dense_rules}


def _have_torch() -> bool:
  return importlib.util.find_spec("torch") is not None


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


CONV_CASES = (  # network, kind, batch, size, in channels, out channels, kernel, stride
    ("digits ResNet-20 (16x16, batch 64)", "3x3 (stem)", 64, 16, 1, 16, 3, 1),
    ("digits ResNet-20 (16x16, batch 64)", "3x3", 64, 16, 16, 16, 3, 1),
    ("digits ResNet-20 (16x16, batch 64)", "3x3 /2", 64, 16, 16, 32, 3, 2),
    ("digits ResNet-20 (16x16, batch 64)", "3x3", 64, 8, 32, 32, 3, 1),
    ("digits ResNet-20 (16x16, batch 64)", "3x3", 64, 4, 64, 64, 3, 1),
    ("digits ResNet-20 (16x16, batch 64)", "1x1 /2 (shortcut)", 64, 16, 16, 32, 1, 2),
    ("ResNet-50 (224, batch 8)", "7x7 /2 (stem)", 8, 224, 3, 64, 7, 2),
    ("ResNet-50 (224, batch 8)", "3x3", 8, 56, 64, 64, 3, 1),
    ("ResNet-50 (224, batch 8)", "3x3 /2", 8, 56, 128, 128, 3, 2),
    ("ResNet-50 (224, batch 8)", "3x3", 8, 28, 128, 128, 3, 1),
    ("ResNet-50 (224, batch 8)", "3x3", 8, 14, 256, 256, 3, 1),
    ("ResNet-50 (224, batch 8)", "3x3", 8, 7, 512, 512, 3, 1),
    ("ResNet-50 (224, batch 8)", "1x1", 8, 56, 64, 256, 1, 1),
    ("ResNet-50 (224, batch 8)", "1x1", 8, 14, 1024, 256, 1, 1),
    ("MobileNetV2 1.4 (224, batch 8)", "depthwise 3x3 /2", 8, 112, 144, 144, 3, 2),
    ("MobileNetV2 1.4 (224, batch 8)", "depthwise 3x3", 8, 56, 192, 192, 3, 1),
    ("MobileNetV2 1.4 (224, batch 8)", "1x1", 8, 56, 192, 32, 1, 1),
)
NET_FORM_CASES = (  # label, config, resolution, batch, rounds, steps a round (quick: the first)
    ("digits_resnet20 (16x16, batch 64)", "digits_resnet20", 16, 64, 5, 4),
    ("digits_resnet20 (32x32, batch 64)", "digits_resnet20", 32, 64, 3, 3),
    ("imagenet_mobilenetv2 1.4 (224, batch 8)", "imagenet_mobilenetv2", 224, 8, 3, 2),
    ("imagenet_resnet50 (224, batch 8)", "imagenet_resnet50", 224, 8, 2, 2),
)


def bench_convs(quick: bool) -> dict:
  cases = CONV_CASES[:6] if quick else CONV_CASES
  out = {"layers": in_subprocess("conv_forms", cases=cases, runs=2 if quick else 5,
                                 rounds=2 if quick else 5)["rows"], "networks": {}}
  for label, name, resolution, batch, rounds, steps in NET_FORM_CASES[:1 if quick else None]:
    out["networks"][label] = in_subprocess(
        "net_forms", config_name=name, arg=None, resolution=resolution, batch=batch,
        rounds=1 if quick else rounds, steps=1 if quick else steps)
    print(f"  {label}: {json.dumps(out['networks'][label])}", flush=True)
  return out


def table_convs(r: dict) -> str:
  forms = ("xla", "xla + per-tap kernel gradient", "im2col", "shifted products",
           "one matrix product")
  lines = ["| network | layer | N, H=W, Cin, Cout | " + " | ".join(forms) + " | gp_jax uses |",
           "|---|---|---|" + "---|" * (len(forms) + 1)]
  for row in r["layers"]:
    cells = []
    for form in forms:
      f, b = row["ms"].get(f"{form}|forward"), row["ms"].get(f"{form}|forward+backward")
      cells.append(f"{f:.1f} / {b:.1f}" if f is not None else "")
    n, size, _, cin, cout = row["shape"]
    lines.append(f"| {row['network']} | {row['kind']} | {n}, {size}, {cin}, {cout} | "
                 + " | ".join(cells) + f" | {row['used']} |")
  lines += ["", "Milliseconds, forward / forward+backward (input and kernel gradients), "
            "median of 5 rounds with the forms interleaved. xla: `lax.conv_general_dilated` "
            "(what `nn.Conv` runs); xla + per-tap kernel gradient: `models.dense_conv`, XLA's "
            "forward and input gradient, the kernel gradient as k*k (Cin, N*H*W) x (N*H*W, Cout) "
            "products (one product over all taps for a stem's few input channels); im2col: "
            "the k*k windows concatenated, one matrix product (measured, not used); shifted "
            "products: `models.depthwise_conv`; one matrix product: `models.pointwise_conv`. "
            "gp_jax uses: the form `models.Layer` picked on this backend when measured (export "
            "always uses xla; `models.DENSE_CONV_ON_CPU = False` turns the dense form off).", "",
            "| network, unpruned retrain step | CPU forms | XLA's conv everywhere | speed-up "
            "| compile, CPU forms / XLA |", "|---|---|---|---|---|"]
  for label, row in r["networks"].items():
    lines.append(f"| {label} | {1e3 * row['cpu_forms_step_s']:.0f} ms | "
                 f"{1e3 * row['xla_step_s']:.0f} ms | {row['speedup']:.2f}x | "
                 f"{row['cpu_forms_compile_s']:.1f} / {row['xla_compile_s']:.1f} s |")
  lines += ["", "The sliced full-width network's retrain step (forward, backward, SGD) "
            "with the forms `models.Layer` picks on the CPU against `ConvNet(portable=True)` "
            "(XLA's conv for every layer), the two compiled in one process and timed "
            "alternately; the CPU forms include the dense one (`models.dense_conv`, docs/pipeline.md)."]
  return "\n".join(lines)


DENSE_RULE_CASES = (  # label, config, resolution, batch, rounds
    ("digits_resnet20 (16x16, batch 64)", "digits_resnet20", 16, 64, 15),
    ("imagenet_resnet50 (112, batch 8)", "imagenet_resnet50", 112, 8, 5),
)


def bench_dense_rules(quick: bool) -> dict:
  out = {}
  for label, name, resolution, batch, rounds in DENSE_RULE_CASES[:1 if quick else None]:
    out[label] = in_subprocess("dense_rules", config_name=name, resolution=resolution,
                               batch=batch, rounds=1 if quick else rounds)
    print(f"  {label}: {json.dumps(out[label])}", flush=True)
  return out


def table_dense_rules(r: dict) -> str:
  nets = list(r)
  lines = ["| dense convs in the CPU form | " + " | ".join(nets) + " |",
           "|---|" + "---|" * len(nets)]
  for rule in r[nets[0]]:
    cells = []
    for net in nets:
      row, base = r[net][rule], r[net][XLA_CONV_RULE]
      cells.append(f"{1e3 * row['step_s']:.0f} ms ({base['step_s'] / row['step_s']:.2f}x, "
                   f"{row['dense_convs']} convs)")
    lines.append(f"| {rule} | " + " | ".join(cells) + " |")
  lines += ["", "The PruningNet train step (configs_per_step 1) with `models.dense_conv` for "
            "the dense convs each rule picks and XLA's conv for the others; speed-up against "
            "XLA's conv everywhere; medians, the rules interleaved in one process. Layers "
            "timed alone (table 8) can favour the dense form where the whole step does not. "
            "Fastest here: " + "; ".join(
                f"{net}: {min(r[net], key=lambda rule, n=net: r[n][rule]['step_s'])}"
                for net in nets) + "."]
  return "\n".join(lines)


XLA_OPTIONS = (  # label, XLA flags; the options this jaxlib's XLA:CPU knows
    ("default", {}),
    ("xnnpack", {"--xla_cpu_use_xnnpack": "true"}),
    ("ynn fusions (dot, eltwise)", {"--xla_cpu_experimental_ynn_fusion_type": "dot,eltwise"}),
    ("oneDNN fusions (dot, eltwise)",
     {"--xla_cpu_experimental_onednn_fusion_type": "dot,eltwise"}),
    ("oneDNN custom calls", {"--xla_cpu_experimental_onednn_custom_call": "true"}),
    ("loop emitters (no fusion emitters)", {"--xla_cpu_use_fusion_emitters": "false"}),
)


def bench_xla_options(quick: bool) -> dict:
  """Each option in its own processes (XLA reads XLA_FLAGS once, at start), the
  options taken in turn `passes` times so drift hits them alike."""
  from gp_jax.runtime import xla_flags
  passes = 1 if quick else 2
  runs = {label: {"step": [], "candidates": [], "compile": [], "error": None}
          for label, _ in XLA_OPTIONS}
  for _ in range(passes):
    for label, flags_ in XLA_OPTIONS:
      env = {"XLA_FLAGS": xla_flags.with_flags(os.environ.get("XLA_FLAGS", ""), flags_)}
      try:
        step = in_subprocess("jax_step", env=env, config_name="digits_resnet20", arg=None,
                             batch=64, resolution=16, steps=3 if quick else 15)
        cand = in_subprocess("jax_candidates", env=env, config_name="digits_resnet20",
                             arg=None, resolution=16, population=16, modes=["1"],
                             recal_batches=2, recal_batch=64, eval_images=300)
      except RuntimeError as e:  # an option this jaxlib rejects or fails to compile with
        runs[label]["error"] = str(e).strip().splitlines()[-1][:200]
        continue
      runs[label]["step"].append(step["images_per_s"])
      runs[label]["compile"].append(step["compile_s"])
      runs[label]["candidates"].append(cand["1_candidates_per_s"])
  out = {}
  for label, flags_ in XLA_OPTIONS:
    r = runs[label]
    out[label] = {"flags": xla_flags.with_flags("", flags_), "error": r["error"],
                  "step_images_per_s": statistics.median(r["step"]) if r["step"] else None,
                  "candidates_per_s": (statistics.median(r["candidates"]) if r["candidates"]
                                       else None),
                  "step_compile_s": statistics.median(r["compile"]) if r["compile"] else None}
    print(f"  {label}: {json.dumps(out[label])}", flush=True)
  return out


def table_xla_options(r: dict) -> str:
  base = r["default"]
  lines = ["| XLA:CPU option | XLA_FLAGS | PruningNet step img/s | vs default | "
           "candidates/s | vs default | step compile s | vs default |",
           "|---|---|---|---|---|---|---|---|"]
  for label, row in r.items():
    if row["step_images_per_s"] is None:
      lines.append(f"| {label} | `{row['flags']}` | failed: {row['error']} | | | | | |")
      continue
    compile_s, base_compile = row.get("step_compile_s"), base.get("step_compile_s")
    compiled = (f"{compile_s:.1f} | {compile_s / base_compile:.2f}x"
                if compile_s and base_compile else "not measured | ")
    lines.append(
        f"| {label} | `{row['flags'] or '(none)'}` | {row['step_images_per_s']:.1f} | "
        f"{row['step_images_per_s'] / base['step_images_per_s']:.2f}x | "
        f"{row['candidates_per_s']:.2f} | "
        f"{row['candidates_per_s'] / base['candidates_per_s']:.2f}x | {compiled} |")
  lines += ["", "digits ResNet-20 at 16x16 (the demo's config): the PruningNet step at batch "
            "64, and the search's scorer (16 candidates one at a time, recalibration 2x64, "
            "top-1 on 300 images); the step's compile time with XLA's optimisations on, as in "
            "a user's run. Each option runs in fresh processes; the options were "
            "taken in turn twice and each figure is the median of its runs. No option is "
            "set by gp_jax unless a row here shows it faster than the default."]
  return "\n".join(lines)


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
    if _have_torch():
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
  if _have_torch():
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


def bench_latency(quick: bool) -> dict:
  out = {}
  for name, arg, resolution in (("digits_resnet20", None, 32),
                                ("imagenet_mobilenetv2", "1.0", 224),
                                ("imagenet_resnet50", None, 224)):
    if quick and name != "digits_resnet20":
      continue
    out[name] = in_subprocess("latency", config_name=name, arg=arg, resolution=resolution,
                              ratios=[0.7, 0.5, 0.3], batches=[1, 64] if not quick else [1],
                              runs=3 if quick or resolution > 32 else 10)
  return out


def table_latency(r: dict) -> str:
  lines = ["| network | MACs ratio | batch 1 ms | speed-up | batch 64 ms | speed-up | "
           "physical limit (1 / MACs ratio) |", "|---|---|---|---|---|---|---|"]
  for name, res in r.items():
    base = res["rows"][0]
    for row in res["rows"]:
      cells = []
      for b in (1, 64):
        key = f"latency_ms_b{b}"
        if key in row:
          cells += [f"{row[key]:.2f}", f"{base[key] / row[key]:.2f}x"]
        else:
          cells += ["n/a", "n/a"]
      lines.append(f"| {name} | {row['macs_ratio']:.3f} | {' | '.join(cells)} | "
                   f"{1 / row['macs_ratio']:.2f}x |")
  lines += ["", "Sliced networks (real channel counts) at uniform keep-ratios hitting each "
            "MACs target, median forward pass after warm-up, jitted, on this machine."]
  return "\n".join(lines)


LATENCY_MODEL_CASES = (  # config, arg, resolution, batch (quick: digits at 16x16, batch 8)
    ("digits_resnet20", None, 32, 32),
    ("imagenet_mobilenetv2", "smoke", 32, 32),
    ("imagenet_resnet50", None, 64, 8),
)


def bench_latency_model(quick: bool) -> dict:
  out = {}
  cases = (("digits_resnet20", None, 16, 8),) if quick else LATENCY_MODEL_CASES
  for name, arg, resolution, batch in cases:
    out[f"{name} ({resolution}x{resolution}, batch {batch})"] = in_subprocess(
        "latency_model", timeout=3600, config_name=name, arg=arg, resolution=resolution,
        batch=batch, grid_points=2 if quick else 8, runs=2 if quick else 10,
        checks=4 if quick else 20)
  return out


def table_latency_model(r: dict) -> str:
  lines = ["| network | layers / shared tables / shapes measured | build time | full net ms | "
           "rank corr. measured values | rank corr. monotone table (default) | rank corr. MACs | "
           "rank corr. 2nd measurement | median error (monotone) | max error (monotone) | "
           "median 2nd-measurement diff |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
  for name, x in r.items():
    lines.append(
        f"| {name} | {x['layers']} / {x['entries']} / {x['measured_shapes']} | "
        f"{x['build_s']:.0f} s | {x['full_ms']:.2f} | {x['spearman']:.2f} | "
        f"{x['spearman_monotone']:.2f} | {x['spearman_macs']:.2f} | "
        f"{x['spearman_repeat']:.2f} | {100 * x['median_rel_error']:.1f}% "
        f"({100 * x['median_rel_error_monotone']:.1f}%) | {100 * x['max_rel_error']:.1f}% "
        f"({100 * x['max_rel_error_monotone']:.1f}%) | {100 * x['median_repeat_diff']:.1f}% |")
  lines += ["", "The latency table of `search.constraint=latency` (gp_jax/net/latency.py): every "
            "layer jitted alone at up to 8 widths per channel group (bilinear in between), "
            "calibrated on 4 whole networks (`network = scale * sum(layers) + constant`). "
            "'Measured values' predicts from the layers' measured times "
            "(`latency.monotone=False`), 'monotone table' from their running maximum over "
            "narrower widths (the default), each with its own calibration. Checked on 20 "
            "random sliced networks (keep-ratios drawn from the grid, as the PruningNet samples them, so not the calibration "
            "networks): Spearman rank correlation of predicted and measured latency, of "
            "MACs and measured latency, and of two measurements of the same networks (how "
            "far timing noise alone lets any predictor go); relative errors |predicted - "
            "measured| / measured. Median of 10 timed calls per measurement."]
  return "\n".join(lines)


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


class SyntheticJpegs:
  """A random-access source of JPEG-encoded random images, decoded on read
  (as `tfds.data_source` decodes ImageNet): {'image': uint8 HWC, 'label'}."""

  def __init__(self, count: int, seed: int = 0):
    from PIL import Image
    rng = np.random.default_rng(seed)
    self._jpegs = []
    for _ in range(count):
      h, w = rng.integers(300, 500, size=2)  # ImageNet's typical sizes
      # Smooth random images compress like photos, not like noise.
      small = rng.integers(0, 255, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
      image = Image.fromarray(small).resize((int(w), int(h)), Image.BICUBIC)
      buf = io.BytesIO()
      image.save(buf, format="JPEG", quality=90)
      self._jpegs.append(buf.getvalue())

  def __len__(self):
    return len(self._jpegs)

  def __getitem__(self, index):
    from PIL import Image
    image = np.asarray(Image.open(io.BytesIO(self._jpegs[index])).convert("RGB"))
    return {"image": image, "label": index % 1000}


def _median_rate(make_iterator, images_per_item: int, items: int, repeats: int) -> float:
  rates = []
  for _ in range(repeats):
    it = make_iterator()
    next(it)  # warm-up: workers started, first batch decoded
    t0 = time.perf_counter()
    for _ in range(items):
      next(it)
    rates.append(items * images_per_item / (time.perf_counter() - t0))
  return statistics.median(rates)


def bench_pipeline(quick: bool) -> dict:
  """Decode + augment throughput per process, inline and with grain workers."""
  resolution, batch = 224, 32
  source = SyntheticJpegs(256)
  train_fn, eval_fn = tfds_source.transforms("imagenet2012", resolution, lighting=0.1)
  split = splits_lib.SourceSplit(source, np.arange(len(source)), train_fn, eval_fn)
  ds = loader.train_batches(split, batch, seed=0)
  batches, repeats = (4, 1) if quick else (12, 3)
  decode_only = _median_rate(lambda: (source[i % len(source)] for i in range(10 ** 9)),
                             1, batches * batch, repeats)
  workers = min(4, os.cpu_count() or 1)
  out = {"resolution": resolution, "batch": batch, "cpu_count": os.cpu_count(),
         "decode_only_images_per_s": decode_only}
  out["inline_images_per_s"] = _median_rate(lambda: loader.iterate(ds, 0, 0), batch, batches,
                                              repeats)
  out[f"workers_{workers}_images_per_s"] = _median_rate(
      lambda: loader.iterate(ds, 0, workers), batch, batches, repeats)
  out["workers"] = workers
  out["augment_cost_ratio"] = decode_only / out["inline_images_per_s"]
  out["worker_speedup"] = out[f"workers_{workers}_images_per_s"] / out["inline_images_per_s"]
  return out


def table_pipeline(r: dict) -> str:
  w = r["workers"]
  return "\n".join([
      "| pipeline (per process, synthetic ImageNet-size JPEGs) | images/s |",
      "|---|---|",
      f"| JPEG decode only | {r['decode_only_images_per_s']:.0f} |",
      f"| decode + random-resized crop {r['resolution']} + flip + lighting, inline "
      f"| {r['inline_images_per_s']:.0f} |",
      f"| the same in {w} grain worker processes | {r[f'workers_{w}_images_per_s']:.0f} |",
      "",
      f"Augmentation costs {r['augment_cost_ratio']:.2f}x the decode alone; {w} workers give "
      f"{r['worker_speedup']:.2f}x the inline rate on {r['cpu_count']} cores.",
  ])


READING = """\
**Figures to beat, measured elsewhere** (MetaPruning's own PyTorch code on a
2-core CPU of this kind, random data, median of 10 steps; reported in the issue,
not measured by this bench):

| MetaPruning (PyTorch) | time | peak RSS | PruningNet params |
|---|---|---|---|
| MobileNetV2 1.4 PruningNet step, 224x224, batch 8 | about 1.0 s (8 img/s) | 4.35 GB | 242M |
| ResNet-50 PruningNet step, 224x224, batch 8 | about 5.0 s (1.5 img/s) | 11 GB | 776M |
| one search candidate, MobileNetV2 (5x32 recalibration + 100 images at 224) | 9.7 s | | |

The goals: at least 2x its step speed, at most 0.6x its peak memory, at least
10x cheaper candidate evaluation. The "reference" columns below are this
bench's own PyTorch re-implementation of MetaPruning's step
(`benchmarks/bench_torch.py`), measured in the same run as gp_jax, so the ratios
compare like with like on this machine.
"""


TABLES = {"step": (bench_step, table_step, "1-2. PruningNet training step vs the reference"),
          "candidates": (bench_candidates, table_candidates, "3. Candidate evaluation"),
          "latency": (bench_latency, table_latency, "4. Pruned network speed-up"),
          "latency_model": (bench_latency_model, table_latency_model,
                            "4b. Latency table: predicted vs measured latency"),
          "memory": (bench_memory, table_memory, "5. Memory"),
          "pipeline": (bench_pipeline, table_pipeline,
                       "6. Input pipeline: decode + augment throughput"),
          "sharding": (bench_sharding, table_sharding,
                       "7. PruningNet memory per device on a (data, model) mesh"),
          "convs": (bench_convs, table_convs, "8. Conv forms on the CPU, per layer kind"),
          "dense_rules": (bench_dense_rules, table_dense_rules,
                          "8b. Which dense convs take the CPU form: the whole PruningNet step"),
          "xla_options": (bench_xla_options, table_xla_options,
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
  out = [f"# Benchmarks\n\nLast run {m['date']} on {cpu}{m['platform']}, {m['cpu_count']} "
         f"cores, python {m['python']}, jax {m['jax']} ({m['backend']}); a table not rerun "
         "then keeps its earlier figures, and says under it when and where it was measured "
         "(tables without that line date from 2026-11-25 or before). Reproduce with "
         "`make bench` (`python -m benchmarks.bench`, about half an hour on 2 cores; "
         "`--only=step,memory` for some tables, `--quick` for a smoke run, `--render` to "
         "rewrite this file from bench.json). Figures are medians after warm-up; every "
         "comparison is a ratio measured in the same run.\n", READING]
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
  return "\n".join(out)


if __name__ == "__main__":
  cli.run(main)
