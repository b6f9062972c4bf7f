"""Exports a retrained network to StableHLO (`jax.export`) and ONNX (`jax2onnx`).

    python -m gp_jax.export --workdir=W --out=DIR            # DIR/{pruned,uniform,unpruned}/
    python -m gp_jax.export --checkpoint=W/retrain/pruned[/<step>] --out=DIR
    python -m gp_jax.export ... --format=stablehlo           # one format only

Each artifact takes raw uint8 NHWC images of any batch size (the normalisation
is inside the graph) and returns logits. Before export, BatchNorm is folded into
the convs (`folding`) and every conv uses XLA's own form (`ConvNet(portable=True)`),
not the CPU-only forms `models.py` picks on this host. The command then checks the
artifacts against the Flax network on the test split (logits within
`LOGIT_RTOL` of the logits' scale, top-1 unchanged) and times them; the figures go
to `DIR/model.json` and, with `--workdir`, into `W/report.json`.
"""
from __future__ import annotations

import importlib.metadata
import logging
import os

import jax
import numpy as np
from absl import flags

from gp_jax import artifacts, evaluate
from gp_jax.artifacts import input_norm_from_record, locate_network
from gp_jax.net import folding, models
from gp_jax.runtime import cli, io_utils
from gp_jax.runtime.errors import UserError
from gp_jax.runtime.timing import measure_latency_ms

FORMATS = ("stablehlo", "onnx")
PLATFORMS = ("cpu", "cuda", "tpu")
STABLEHLO_FILE, ONNX_FILE, MODEL_FILE = "model.stablehlo", "model.onnx", "model.json"
# Exported logits may differ from Flax's by float32 rounding: folding BatchNorm
# changes the order of operations, and each runtime sums convolutions its own way.
LOGIT_RTOL = 1e-4
CHECK_BATCHES = (1, 7)  # the symbolic batch dimension, checked at two sizes


def inference_fn(spec, widths, variables, input_norm):
  """`fn(uint8 images) -> logits` of the folded network with the portable conv forms,
  its weights closed over (they become constants of the exported graph)."""
  model = models.ConvNet(spec, widths, input_norm=input_norm, portable=True, folded=True)
  folded = folding.fold_batch_norm(spec, variables)
  return lambda images: model.apply(folded, images, train=False)


def _image_spec(spec, dtype):
  shape = jax.export.symbolic_shape(f"b, {spec.resolution}, {spec.resolution}, "
                                    f"{spec.in_channels}")
  return jax.ShapeDtypeStruct(shape, dtype)


def to_stablehlo(fn, spec, dtype=np.uint8) -> bytes:
  """Serialised `jax.export.Exported` for every platform in PLATFORMS."""
  exported = jax.export.export(jax.jit(fn), platforms=PLATFORMS)(_image_spec(spec, dtype))
  return bytes(exported.serialize())


def load_stablehlo(blob: bytes):
  """`call(uint8 images) -> logits` of a serialised artifact (needs only jax)."""
  return jax.export.deserialize(bytearray(blob)).call


def _failing_layer(fn, spec, dtype, message: str) -> str:
  """The layer whose computation holds the primitive a converter rejected."""
  jaxpr = jax.make_jaxpr(fn)(jax.ShapeDtypeStruct(
      (1, spec.resolution, spec.resolution, spec.in_channels), dtype))
  names = {op.name for op in spec.ops}

  def walk(eqns):
    for eqn in eqns:
      if eqn.primitive.name in message:
        for scope in str(eqn.source_info.name_stack).split("/"):
          if scope in names:
            return scope
      for value in eqn.params.values():  # pjit, custom_jvp and scan bodies
        sub = getattr(value, "jaxpr", value)
        found = walk(sub.eqns) if hasattr(sub, "eqns") else None
        if found:
          return found
    return None

  return walk(jaxpr.jaxpr.eqns) or "unknown"


def _quiet_converters():
  """jax2onnx logs every optional plugin it skips (equinox, dm-pix: not installed,
  not needed for linen convnets), onnx_ir its shape merges."""
  for name in ("jax2onnx", "onnx_ir"):
    logging.getLogger(name).setLevel(logging.ERROR)


def to_onnx(fn, spec, dtype=np.uint8) -> bytes:
  """The ONNX model of `fn` (jax2onnx), input "images" with a symbolic batch."""
  _quiet_converters()
  import jax2onnx  # heavy: imported only when ONNX is asked for
  try:
    proto = jax2onnx.to_onnx(fn, [_image_spec(spec, dtype)], model_name=spec.name,
                             input_names=["images"], output_names=["logits"])
  except Exception as e:  # pylint: disable=broad-except  # a primitive with no ONNX rule
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    raise UserError(f"layer {_failing_layer(fn, spec, dtype, first)} does not convert to onnx "
                    f"(jax2onnx: {first}); export --format=stablehlo instead") from None
  return proto.SerializeToString()


def load_onnx(blob: bytes):
  """`call(uint8 images) -> logits` of an ONNX model, run by onnxruntime on the CPU."""
  import onnxruntime  # heavy: imported only when ONNX is asked for
  options = onnxruntime.SessionOptions()
  options.log_severity_level = 3  # errors only
  session = onnxruntime.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
  return lambda images: session.run(None, {"images": np.asarray(images)})[0]


def _version(package: str):
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:
    if package != "gp_jax":
      return None
    import tomllib  # python >= 3.11; only for a source checkout
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
      return tomllib.load(f)["project"]["version"]


def _check_out_dir(out: str, overwrite: bool):
  if os.path.exists(out) and not os.path.isdir(out):
    raise UserError(f"--out={out} is a file; pass a directory")
  if os.path.isdir(out) and os.listdir(out) and not overwrite:
    raise UserError(f"--out={out} exists and is not empty; pass an empty directory or "
                    "--overwrite")


def parse_formats(value: str) -> tuple[str, ...]:
  formats = tuple(f.strip() for f in value.split(",") if f.strip())
  unknown = [f for f in formats if f not in FORMATS]
  if unknown or not formats:
    raise UserError(f"unknown --format {','.join(unknown) or repr(value)}; choose from "
                    f"{','.join(FORMATS)}")
  return formats


def export_network(checkpoint: str, out: str, formats=FORMATS) -> dict:
  """Writes `out/model.*` for one retrained network; returns what model.json holds."""
  spec, widths, variables, record, step = evaluate.load_network(checkpoint)
  input_norm = input_norm_from_record(record)
  fn = inference_fn(spec, widths, variables, input_norm)
  split = evaluate.test_split(record, spec)
  images = next(iter(evaluate.test_batches(split, record)))["image"]  # uint8; digits: float32
  writers = {"stablehlo": (to_stablehlo, load_stablehlo, STABLEHLO_FILE),
             "onnx": (to_onnx, load_onnx, ONNX_FILE)}
  artifacts = {}
  for fmt in formats:  # convert all before writing anything
    make, load, name = writers[fmt]
    blob = make(fn, spec, images.dtype)
    artifacts[fmt] = (name, blob, load(blob))

  flax_model = models.ConvNet(spec, widths, input_norm=input_norm)
  flax_apply = jax.jit(lambda images: flax_model.apply(variables, images, train=False))
  checks = {"tolerance": f"max |logit difference| <= {LOGIT_RTOL} x max |Flax logit|",
            "batches": list(CHECK_BATCHES)}
  for fmt, (_, _, call) in artifacts.items():
    worst = 0.0
    for b in CHECK_BATCHES:
      batch = np.resize(images, (b, *images.shape[1:]))  # repeats images if b > batch
      reference = np.asarray(flax_apply(batch))
      diff = float(np.abs(np.asarray(call(batch)) - reference).max())
      if diff > LOGIT_RTOL * max(1.0, float(np.abs(reference).max())):
        raise UserError(f"the {fmt} export of {checkpoint} differs from the Flax network by "
                        f"{diff:.3g} in a logit (batch {b}); report this as a bug")
      worst = max(worst, diff)
    checks[f"{fmt}_max_abs_diff"] = worst

  e = record["eval"]
  image_shape = (spec.resolution, spec.resolution, spec.in_channels)
  top1, timing = {}, {}
  for fmt, call in (("flax", flax_apply), *((f, a[2]) for f, a in artifacts.items())):
    top1[fmt] = evaluate.test_accuracy(call, split, record)[0]
    timing[fmt] = measure_latency_ms(call, image_shape, e["latency_batch_size"],
                                              e["latency_runs"], images.dtype)
  n_test = len(split)
  for fmt in artifacts:  # one image may flip only where two logits tie within rounding
    if abs(top1[fmt] - top1["flax"]) * n_test > 1:
      raise UserError(f"the {fmt} export of {checkpoint} changes test top-1 from "
                      f"{top1['flax']:.4f} to {top1[fmt]:.4f}; report this as a bug")
  checks["test_top1"], checks["test_images"] = top1, n_test

  info = {
      "input": {"shape": [None, *image_shape], "dtype": str(images.dtype), "layout": "NHWC",
                "normalization": (
                    "none: float images as gp_jax's eval pipeline gives them"
                    if images.dtype != np.uint8 else
                    {"mean": list((input_norm or models.DEFAULT_INPUT_NORM)[0]),
                     "std": list((input_norm or models.DEFAULT_INPUT_NORM)[1]),
                     "applied": "(x / 255 - mean) / std, inside the graph"})},
      "output": {"shape": [None, spec.num_classes], "dtype": "float32", "kind": "logits"},
      "class_names": record.get("class_names"),
      "arch": record["arch"], "role": record["role"], "method": record["method"],
      "widths": list(widths), "macs": record["macs"], "params": record["params"],
      "macs_ratio": record["macs_ratio"],
      "source_checkpoint": os.path.abspath(os.path.join(locate_network(checkpoint)[0],
                                                         str(step))),
      "step": int(step),
      "files": {fmt: name for fmt, (name, _, _) in artifacts.items()},
      "stablehlo_platforms": list(PLATFORMS) if "stablehlo" in artifacts else None,
      "checks": checks,
      "latency_ms": timing, "latency_batch_size": e["latency_batch_size"],
      "latency_device": jax.devices()[0].device_kind,
      "versions": {p: _version(p) for p in ("gp_jax", "jax", "flax", "jax2onnx", "onnx",
                                            "onnxruntime")},
  }
  os.makedirs(out, exist_ok=True)
  for name, blob, _ in artifacts.values():
    with open(os.path.join(out, name), "wb") as f:
      f.write(blob)
  io_utils.write_json(os.path.join(out, MODEL_FILE), info)
  return info


def export_workdir(workdir: str, out: str, formats=FORMATS) -> dict:
  """Exports W/retrain/<role> for each role there to out/<role>/; adds the exported
  latencies to W/report.json when it exists."""
  found = evaluate.retrained_networks(workdir)
  if not found:
    raise UserError(f"no retrained network in {artifacts.network_dir(workdir, '')}; run the "
                    "retrain stage first")
  infos = {role: export_network(path, os.path.join(out, role), formats)
           for role, path in found.items()}
  report_path = artifacts.report_path(workdir)
  if os.path.exists(report_path):
    report = io_utils.read_json(report_path)
    rows = {"pruned": report, "uniform": report.get("baseline"),
            "unpruned": report.get("unpruned")}
    for role, info in infos.items():
      if rows.get(role) is not None:
        rows[role]["export"] = {"dir": os.path.abspath(os.path.join(out, role)),
                                "latency_ms": info["latency_ms"],
                                "max_abs_diff": {f: info["checks"][f"{f}_max_abs_diff"]
                                                 for f in info["files"]}}
    io_utils.write_json(report_path, report)
  return infos


def format_table(infos: dict) -> str:
  fmts = [f for f in FORMATS if any(f in i["files"] for i in infos.values())]
  head = f"{'network':<10}{'test top-1':>11}" + "".join(
      f"{f + ' ms':>15}" for f in ("flax", *fmts)) + "".join(
      f"{f + ' max|diff|':>20}" for f in fmts)
  lines = [head]
  for role, i in infos.items():
    c = i["checks"]
    lines.append(f"{role:<10}{100 * c['test_top1']['flax']:>10.2f}%" + "".join(
        f"{i['latency_ms'][f]:>15.2f}" for f in ("flax", *fmts)) + "".join(
        f"{c[f + '_max_abs_diff']:>20.2e}" for f in fmts))
  first = next(iter(infos.values()))
  lines.append(f"(latency: median call, batch {first['latency_batch_size']}, "
               f"{first['input']['dtype']} input, {first['latency_device']})")
  return "\n".join(lines)


def run():
  """The `gp-jax-export` console script."""
  _WORKDIR = flags.DEFINE_string("workdir", None, "Pipeline workdir: exports W/retrain/*.")
  _CHECKPOINT = flags.DEFINE_string("checkpoint", None,
                                    "A retrain checkpoint: W/retrain/<role>[/<step>].")
  _OUT = flags.DEFINE_string("out", None, "Output directory (new or empty).")
  _FORMAT = flags.DEFINE_string("format", ",".join(FORMATS), "Comma-separated: "
                                + ", ".join(FORMATS) + ".")
  _OVERWRITE = flags.DEFINE_bool("overwrite", False, "Write into a non-empty --out.")

  def main(argv):
    if len(argv) > 1:
      raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    formats = parse_formats(_FORMAT.value)
    if not _OUT.value:
      raise UserError("pass --out=DIR")
    _check_out_dir(_OUT.value, _OVERWRITE.value)
    if _CHECKPOINT.value:
      infos = {"network": export_network(_CHECKPOINT.value, _OUT.value, formats)}
    elif _WORKDIR.value:
      if not os.path.isdir(_WORKDIR.value):
        raise UserError(f"no workdir {_WORKDIR.value}; run gp_jax.main into it first")
      infos = export_workdir(_WORKDIR.value, _OUT.value, formats)
    else:
      raise UserError("pass --workdir=W or --checkpoint=W/retrain/<role>[/<step>]")
    print(format_table(infos))
    print(f"wrote {os.path.abspath(_OUT.value)}")

  cli.run(main)


if __name__ == "__main__":
  run()
