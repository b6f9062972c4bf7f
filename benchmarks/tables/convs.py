"""Table 8: each conv kind at the shapes the networks use, forward and forward+backward,
in XLA's form and the CPU forms (`models`), and the unpruned retrain step with the CPU
forms against XLA's conv everywhere."""
from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np

from benchmarks.harness import bench_setup, in_subprocess, random_batch, timed


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
        times[key].append(timed(lambda fn=fn: jax.block_until_ready(fn(x, k)), runs))
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
      times[portable].append(timed(lambda p=portable: jax.block_until_ready(
          steps_fn[p](states[p], data)), steps))
  cpu, xla = (statistics.median(times[p]) for p in (False, True))
  return {"cpu_forms_step_s": cpu, "xla_step_s": xla, "speedup": xla / cpu,
          "cpu_forms_compile_s": compile_s[False], "xla_compile_s": compile_s[True]}


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


