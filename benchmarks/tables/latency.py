"""Tables 4 and 4b: the pruned networks' speed-up, and the latency table's
predictions against measured latency."""
from __future__ import annotations


from benchmarks.harness import bench_setup, in_subprocess


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
