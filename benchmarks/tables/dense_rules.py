"""Table 8b: which dense convs take the CPU form (`models.dense_conv`), judged on the
whole PruningNet step against XLA's conv everywhere."""
from __future__ import annotations

import json
import statistics


from benchmarks.harness import bench_setup, in_subprocess, random_batch, timed


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
      times[label].append(timed(lambda f=step: jax.block_until_ready(f(state, data)), 1))
  return {label: {"step_s": statistics.median(t), "dense_convs": picked[label]}
          for label, t in times.items()}


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
