"""Latency of a channel configuration on this device, predicted from a measured table.

MACs do not tell how fast a pruned network runs: on a CPU, XLA's convs run some
widths slower than wider ones, and glue (pooling, adds, dispatch) does not shrink
with the channels. So `search.constraint=latency` budgets a prediction built
from measurements on the device the search runs on (as MetaPruning's latency
lookup table):

* every layer of the spec, sliced to each (input width, output width) pair its
  channel groups can take, is jitted alone (conv + BatchNorm + activation, in the
  form `models.Layer` runs on this backend) and timed at
  `eval.latency_batch_size`. Layers of the same shape share measurements; a
  group with more allowed widths than `latency.grid_points` is measured at that
  many of them, evenly spread, and interpolated (bilinearly) in between;
* a few whole sliced networks (full, smallest, two uniform ones) calibrate
  `network ~ scale * sum(layers) + constant` by least squares: the constant
  takes what the layers leave out (and their per-call dispatch, which is the
  same for every configuration).

By default (`latency.monotone=True`) each layer's times are made
non-decreasing in each width (a running maximum over narrower widths): a
prediction never rewards more channels, and it errs on the slow side. That
lifts wider widths to a narrower one's timing noise (and to the real slowness
of the narrowest widths on XLA:CPU), so it ranks networks worse than the
measured values do on digits ResNet-20 (Spearman 0.67 against 0.79 over 20
random networks, BENCHMARKS.md table 4b; 0.42 against 0.66 over 30 in another
check), though not on ResNet-50 (0.88 against 0.78). A search picks the
configurations whose prediction is lowest for their accuracy, so it finds
where an unbiased prediction is too low: on digits at a 0.6 target, the search
under the measured values (`latency.monotone=False`) chose a network that ran
at 0.66x, the one under the monotone table one that ran at 0.58x (docs/budgets.md,
"Budgets"). Neither needs the other's shape: the RL wall keeps an action within
the widths that fit from the lower bound up, the uniform baseline scans before
it bisects, and the best configuration is chosen among those within the
budget.

The table is written to W/latency_table.json with what it was measured on
(backend, device, host CPU, batch, jax version, the widths); it is reused only
when all of that matches, and rebuilt with a warning otherwise.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from tqdm import tqdm

from gp_jax.net import channels, costs, models
from gp_jax.net.spec import ArchSpec
from gp_jax.runtime import distributed, io_utils, timing
from gp_jax.runtime.errors import UserError
from gp_jax.runtime.timing import host_cpu

TABLE_FILE = "latency_table.json"
FORMAT = 2  # 2: both predictions (measured and monotone), each with its own fit
PREDICTIONS = ("measured", "monotone")  # entry fields "ms_<prediction>"


@dataclasses.dataclass(frozen=True)
class Settings:
  """What a table is measured with (all from the config: see `settings_from_config`)."""
  batch: int
  runs: int          # timed calls per measurement (median)
  grid_points: int   # widths measured per channel group at most
  divisor: int
  grid: tuple        # the keep-ratio grid
  fixed: tuple       # per group: never pruned


def settings_from_config(config, fixed) -> Settings:
  ch = config.channels
  grid = channels.keep_ratio_grid(ch.grid_levels, ch.grid_low, ch.grid_high)
  return Settings(batch=int(config.eval.latency_batch_size), runs=int(config.latency.runs),
                  grid_points=int(config.latency.grid_points), divisor=int(ch.divisor),
                  grid=tuple(float(r) for r in grid), fixed=tuple(bool(f) for f in fixed))


def measured_widths(spec: ArchSpec, s: Settings) -> list[list[int]]:
  """Per group, the widths measured: those the keep-ratio grid reaches (and full),
  thinned to `grid_points` evenly spread ones (the smallest and full kept)."""
  ratios = np.tile(np.asarray(s.grid)[:, None], (1, spec.num_groups))
  reached = np.asarray(channels.widths_from_keep_ratios(
      spec, ratios, divisor=s.divisor, fixed=np.asarray(s.fixed)))
  out = []
  for g, full in enumerate(spec.max_widths):
    allowed = np.unique(np.append(reached[:, g], full))
    if len(allowed) > s.grid_points:
      allowed = allowed[np.unique(np.round(
          np.linspace(0, len(allowed) - 1, s.grid_points)).astype(int))]
    out.append([int(w) for w in allowed])
  return out


def table_key(spec: ArchSpec, s: Settings) -> dict:
  """What the table's figures depend on; a table is reused only if all match."""
  return {"format": FORMAT, "arch": spec.name, "resolution": spec.resolution,
          "num_groups": spec.num_groups, "batch": s.batch,
          "backend": jax.default_backend(), "device": jax.devices()[0].device_kind,
          "host_cpu": host_cpu(), "jax": jax.__version__,
          "widths": measured_widths(spec, s)}


def _signature(spec: ArchSpec, layer, widths) -> tuple:
  op = spec.ops[layer.op_index]
  w_in = [spec.in_channels] if layer.in_group == -1 else widths[layer.in_group]
  diagonal = layer.in_group == layer.out_group  # depthwise: one width for both
  return (layer.kind, layer.kernel, layer.stride, layer.in_resolution, op.batch_norm,
          op.activation, tuple(w_in), tuple(widths[layer.out_group]), diagonal)


def _compiled_call(module, x, activation=models.ACTIVATIONS["none"]):
  """A no-argument, compiled eval-mode call of `module` on `x`, its variables all
  0.01 (values do not change the speed; no init is compiled)."""
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), x, train=False))
  variables = jax.tree.map(lambda t: jnp.full(t.shape, 0.01, t.dtype), shapes)
  compiled = jax.jit(lambda v, x: activation(module.apply(v, x, train=False))).lower(
      variables, x).compile()
  return lambda: compiled(variables, x)


def _layer_call(spec: ArchSpec, layer, w_in: int, w_out: int, batch: int):
  """The layer alone, sliced to (w_in, w_out), with its activation."""
  op = spec.ops[layer.op_index]
  x = jnp.full((batch, layer.in_resolution, layer.in_resolution, w_in), 0.5, jnp.float32)
  return _compiled_call(models.Layer(op, w_out, padding=spec.padding), x,
                        models.ACTIVATIONS[op.activation])


def network_call(spec: ArchSpec, widths, batch: int):
  """The sliced network at `widths`."""
  model = models.ConvNet(spec, tuple(int(w) for w in widths))
  return _compiled_call(model, jnp.zeros(models.input_shape(spec, batch), jnp.float32))


def measure_network_ms(spec: ArchSpec, widths, batch: int, runs: int) -> float:
  """Measured median latency of the sliced network at `widths`."""
  return timing.median_ms(network_call(spec, widths, batch), runs)


def _monotone(ms: np.ndarray) -> np.ndarray:
  for axis in range(ms.ndim):
    ms = np.maximum.accumulate(ms, axis=axis)
  return ms


def calibration_widths(spec: ArchSpec, s: Settings) -> list[list[int]]:
  """Full, smallest and two uniform networks: what the table is calibrated on."""
  fixed = np.asarray(s.fixed)
  out = []
  for ratio in (1.0, 0.75, 0.5, min(s.grid)):
    widths = channels.widths_from_keep_ratios(spec, np.where(fixed, 1.0, ratio),
                                              divisor=s.divisor, fixed=fixed)
    out.append([int(w) for w in widths])
  return out


def build_table(spec: ArchSpec, s: Settings, progress: bool = True) -> dict:
  """Measures the table (see the module docstring); minutes on a CPU."""
  t0 = time.perf_counter()
  key = table_key(spec, s)
  widths = key["widths"]
  entries, index, layer_entry = [], {}, []
  for layer in spec.layers:
    sig = _signature(spec, layer, widths)
    if sig not in index:
      index[sig] = len(entries)
      entries.append({"layer": layer.name, "kind": layer.kind, "in": list(sig[6]),
                      "out": list(sig[7]), "diagonal": sig[8]})
    layer_entry.append(index[sig])
  pairs = [(e, wi, wo) for e in entries for wi, wo in
           (zip(e["in"], e["out"]) if e["diagonal"] else
            ((a, b) for a in e["in"] for b in e["out"]))]
  calibration = calibration_widths(spec, s)
  bar = tqdm(total=len(pairs) + len(calibration), desc=f"latency table {spec.name}",
             unit="shape", disable=not progress)
  layers = {l.name: l for l in spec.layers}
  values = {}
  for e, wi, wo in pairs:
    call = _layer_call(spec, layers[e["layer"]], wi, wo, s.batch)
    values[(id(e), wi, wo)] = timing.median_ms(call, s.runs, warmup=2)
    bar.update(1)
  for e in entries:
    if e["diagonal"]:
      ms = np.array([values[(id(e), w, w)] for w in e["out"]])
    else:
      ms = np.array([[values[(id(e), a, b)] for b in e["out"]] for a in e["in"]])
    e["ms_measured"] = ms.tolist()
    e["ms_monotone"] = _monotone(ms).tolist()
  table = {"key": key, "entries": entries, "layer_entry": layer_entry}
  networks = []
  for w in calibration:
    networks.append({"widths": w, "ms": measure_network_ms(spec, w, s.batch, s.runs),
                     "layer_sum_ms": {p: float(sum(_layer_values(table, spec, w, p)))
                                      for p in PREDICTIONS}})
    bar.update(1)
  bar.close()
  table["fits"] = {p: _fit([n["ms"] for n in networks],
                           [n["layer_sum_ms"][p] for n in networks]) for p in PREDICTIONS}
  table["calibration"] = networks
  table["measured_shapes"] = len(pairs)
  table["seconds"] = round(time.perf_counter() - t0, 1)
  return table


def _fit(network_ms, layer_sum_ms) -> dict:
  """Least squares `ms ~ scale * layer_sum + constant`. If that line is degenerate or
  predicts a calibration network at 0 ms or less (one slow timing can tilt it), the
  line through the origin; scale 1 if even that is degenerate."""
  x, y = np.asarray(layer_sum_ms, np.float64), np.asarray(network_ms, np.float64)
  if np.ptp(x) > 0:
    scale, constant = np.polyfit(x, y, 1)
    if scale > 0 and scale * x.min() + constant > 0:
      return {"scale": float(scale), "constant_ms": float(constant)}
  if np.dot(x, y) > 0:
    return {"scale": float(np.dot(x, y) / np.dot(x, x)), "constant_ms": 0.0}
  return {"scale": 1.0, "constant_ms": float(np.mean(y - x))}


def _position(w, grid, xp):
  """(index, fraction) of width `w` between the measured widths `grid`."""
  grid = np.asarray(grid, np.float64)
  if len(grid) == 1:
    return 0, 0.0
  u = xp.interp(xp.asarray(w, dtype=np.float32 if xp is jnp else np.float64), grid,
                np.arange(len(grid), dtype=np.float64))
  i = xp.clip(xp.floor(u), 0, len(grid) - 2)
  return i.astype(np.int32), u - i


def _lookup(entry: dict, w_in, w_out, xp, prediction: str):
  ms = xp.asarray(np.asarray(entry[f"ms_{prediction}"], np.float32 if xp is jnp else np.float64))
  j, fj = _position(w_out, entry["out"], xp)
  j1 = j + 1 if len(entry["out"]) > 1 else j
  if entry["diagonal"]:
    return ms[j] * (1 - fj) + ms[j1] * fj
  i, fi = _position(w_in, entry["in"], xp)
  i1 = i + 1 if len(entry["in"]) > 1 else i
  return ((1 - fi) * ((1 - fj) * ms[i, j] + fj * ms[i, j1])
          + fi * ((1 - fj) * ms[i1, j] + fj * ms[i1, j1]))


def _layer_values(table: dict, spec: ArchSpec, widths, prediction: str) -> list:
  pairs = costs.layer_widths(spec, widths)
  traced = any(isinstance(w, jax.Array) for pair in pairs for w in pair)
  xp = jnp if traced else np
  return [_lookup(table["entries"][e], w_in, w_out, xp, prediction)
          for e, (w_in, w_out) in zip(table["layer_entry"], pairs)]


def table_cost(table: dict, spec: ArchSpec, monotone: bool = True) -> costs.Cost:
  """The latency `Cost` of a table: predicted milliseconds of the whole network,
  from the layers' measured times (or their running maximum: `monotone`)."""
  if len(table["layer_entry"]) != len(spec.layers):
    raise UserError(f"the latency table has {len(table['layer_entry'])} layers, "
                    f"{spec.name} {len(spec.layers)}; delete it to rebuild")
  prediction = "monotone" if monotone else "measured"
  fit = table["fits"][prediction]
  return costs.Cost(spec, "latency",
                    functools.partial(_layer_values, table, prediction=prediction), unit="ms",
                    scale=float(fit["scale"]), constant=float(fit["constant_ms"]))


def _differences(saved: dict, key: dict) -> list[str]:
  return [k for k in sorted(set(saved) | set(key)) if saved.get(k) != key.get(k)]


def load_table(path: str, spec: ArchSpec, s: Settings) -> dict | None:
  """The table at `path` if it was measured as `s` asks on this device; else None,
  with a warning saying why (a stale table is never silently reused)."""
  if not os.path.exists(path):
    return None
  try:
    table = io_utils.read_json(path)
    saved = table["key"]
    if saved.get("format") == FORMAT:  # an older format is rebuilt for its format below
      table["entries"], table["layer_entry"], table["fits"]  # pylint: disable=pointless-statement
  except (ValueError, KeyError, TypeError):
    logging.warning("%s is not a readable latency table; rebuilding it", path)
    print(f"latency: {path} is unreadable; rebuilding it")
    return None
  changed = _differences(saved, table_key(spec, s))
  if changed:
    logging.warning("latency table %s was measured with other %s; rebuilding it", path,
                    ", ".join(changed))
    print(f"latency: WARNING: {path} was measured with another "
          f"{', '.join(changed)}; rebuilding it for this device and config")
    return None
  return table


def load_or_build(workdir: str, spec: ArchSpec, s: Settings, progress: bool = True) -> dict:
  """W/latency_table.json, measured now unless a matching one is there (the primary
  process measures; the others wait for its file)."""
  path = os.path.join(workdir, TABLE_FILE)
  table = load_table(path, spec, s)
  if table is not None:
    return table
  if distributed.is_primary():
    print(f"latency: measuring {spec.name}'s layers at batch {s.batch} on "
          f"{jax.devices()[0].device_kind} ({host_cpu()})")
    table = build_table(spec, s, progress)
    io_utils.write_json(path, table)
    print(f"latency: {table['measured_shapes']} layer shapes in {table['seconds']:.0f} s; "
          f"full network {table['calibration'][0]['ms']:.2f} ms; written to {path}")
  distributed.barrier("latency_table")
  return table if table is not None else io_utils.read_json(path)


def random_widths(spec: ArchSpec, s: Settings, n: int, seed: int = 0) -> np.ndarray:
  """(n, num_groups) configurations with each free group's keep-ratio drawn from the
  grid, as the PruningNet samples them."""
  rng = np.random.default_rng(seed)
  ratios = np.asarray(s.grid)[rng.integers(0, len(s.grid), (n, spec.num_groups))]
  return np.asarray(channels.widths_from_keep_ratios(
      spec, ratios, divisor=s.divisor, fixed=np.asarray(s.fixed)))


def check_table(table: dict, spec: ArchSpec, s: Settings, n: int = 20, seed: int = 0,
                progress: bool = True) -> dict:
  """Predicted against measured latency of `n` random sliced networks: the rows, and
  for each prediction (measured layer times, and monotone) the Spearman rank
  correlation and the median relative error |pred - meas| / meas."""
  from scipy import stats  # a jax dependency; only the bench's check needs it
  cost = {p: table_cost(table, spec, monotone=p == "monotone") for p in PREDICTIONS}
  rows = []
  for widths in tqdm(random_widths(spec, s, n, seed), desc=f"latency check {spec.name}",
                     disable=not progress):
    w = [int(x) for x in widths]
    rows.append({"widths": w,
                 **{f"predicted_ms_{p}": float(cost[p].total(w)) for p in PREDICTIONS},
                 "measured_ms": measure_network_ms(spec, widths, s.batch, s.runs),
                 "macs_ratio": float(costs.macs_ratio(spec, w))})
  meas = np.array([r["measured_ms"] for r in rows])
  macs = np.array([r["macs_ratio"] for r in rows])
  out = {"rows": rows, "spearman_macs": float(stats.spearmanr(macs, meas).statistic)}
  for p in PREDICTIONS:
    pred = np.array([r[f"predicted_ms_{p}"] for r in rows])
    suffix = "" if p == "measured" else f"_{p}"
    out.update({f"spearman{suffix}": float(stats.spearmanr(pred, meas).statistic),
                f"median_rel_error{suffix}": float(np.median(np.abs(pred - meas) / meas)),
                f"max_rel_error{suffix}": float(np.max(np.abs(pred - meas) / meas))})
  return out
