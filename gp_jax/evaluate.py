"""Evaluates retrained networks from their checkpoints alone: top-1/5, MACs, params, latency
(measured, and beside it the latency table's prediction when the search budgeted latency).

    python -m gp_jax.evaluate --workdir=W                  # writes W/report.json
    python -m gp_jax.evaluate --checkpoint=W/retrain/pruned  # one network, JSON on stdout
    python -m gp_jax.evaluate --checkpoint=W/retrain/pruned/500

Each W/retrain/<role>/ holds `network.json` (architecture, widths, dataset) next
to the orbax checkpoints, so no config and no PruningNet are needed.
"""
from __future__ import annotations

import json
import os

import jax
import ml_collections
import numpy as np
from absl import flags

from gp_jax import artifacts
from gp_jax.artifacts import input_norm_from_record, load_network
from gp_jax.data import datasets, loader
from gp_jax.net import models
from gp_jax.runtime import cli, distributed, io_utils, workdir_lock
from gp_jax.runtime.errors import UserError
from gp_jax.runtime.timing import host_cpu, measure_latency_ms

ROLES = ("pruned", "uniform", "unpruned")


def test_split(record: dict, spec):
  """The test split of the network's dataset."""
  return datasets.load_splits(ml_collections.ConfigDict(record["dataset"]),
                              spec.resolution).test


def test_batches(split, record: dict):
  """`split` in order, in `eval.batch_size` batches."""
  return loader.eval_batches(split, record["eval"]["batch_size"],
                             record["dataset"].get("worker_count", 0))


def test_accuracy(logits_fn, split, record: dict) -> tuple[float, float]:
  """(top-1, top-5) on `split` of `logits_fn(images) -> logits`."""
  top1 = top5 = 0.0
  for batch in test_batches(split, record):
    logits = np.asarray(logits_fn(batch["image"]))
    top = np.argsort(-logits, axis=-1)[:, :5]
    hit1 = top[:, 0] == batch["label"]
    hit5 = (top == batch["label"][:, None]).any(-1)
    top1 += float((hit1 * batch["mask"]).sum())
    top5 += float((hit5 * batch["mask"]).sum())
  return top1 / len(split), top5 / len(split)


def evaluate_network(path: str) -> dict:
  spec, widths, variables, record, step = load_network(path)
  model = models.ConvNet(spec, widths, input_norm=input_norm_from_record(record))
  apply = jax.jit(lambda v, x: model.apply(v, x, train=False))
  call = lambda images: apply(variables, images)  # noqa: E731
  split = test_split(record, spec)
  top1, top5 = test_accuracy(call, split, record)
  e = record["eval"]
  image_shape = (spec.resolution, spec.resolution, spec.in_channels)
  return {
      "role": record["role"], "method": record["method"], "arch": record["arch"],
      "top1": top1, "top5": top5, "test_images": len(split),
      "macs": record["macs"], "params": record["params"],
      "macs_ratio": record["macs_ratio"],
      "latency_ms": measure_latency_ms(call, image_shape,
                                       e["latency_batch_size"], e["latency_runs"]),
      "latency_batch_size": e["latency_batch_size"],
      **({"latency_ms_predicted": record["latency_ms_predicted"]}
         if "latency_ms_predicted" in record else {}),
      "widths": list(widths), "step": int(step), "device": jax.devices()[0].device_kind,
      "host_cpu": host_cpu(),
      "dataset": record["dataset"]["name"], "class_names": record.get("class_names"),
  }


def retrained_networks(workdir: str) -> dict:
  """{role: W/retrain/<role>} for each role retrained in the workdir."""
  return artifacts.retrained_networks(workdir, ROLES)


def evaluate_workdir(workdir: str) -> dict:
  """Evaluates W/retrain/{pruned, uniform, unpruned}; writes W/report.json."""
  found = retrained_networks(workdir)
  if "pruned" not in found:
    raise UserError(f"no retrained network in {artifacts.network_dir(workdir, '')}; run the "
                    "retrain stage first (--stages=retrain,eval)")
  rows = {role: evaluate_network(path) for role, path in found.items()}
  if "unpruned" in rows:
    for row in rows.values():  # measured against the unpruned net in this same run
      row["latency_ratio"] = row["latency_ms"] / rows["unpruned"]["latency_ms"]
      if "latency_ms_predicted" in row and "latency_ms_predicted" in rows["unpruned"]:
        row["latency_ratio_predicted"] = (row["latency_ms_predicted"]
                                          / rows["unpruned"]["latency_ms_predicted"])
  report = dict(rows["pruned"])
  if "uniform" in rows:
    report["baseline"] = rows["uniform"]
  if "unpruned" in rows:
    report["unpruned"] = rows["unpruned"]
  if distributed.is_primary():
    io_utils.write_json(artifacts.report_path(workdir), report)
  return report


def format_table(report: dict) -> str:
  rows = [("unpruned", report.get("unpruned")), ("uniform", report.get("baseline")),
          (f"{report['method']} (pruned)", report)]
  predicted = "latency_ms_predicted" in report
  lines = [f"{'network':<22}{'top-1':>8}{'top-5':>8}{'MACs':>10}{'ratio':>7}"
           f"{'params':>10}{'latency':>12}{'ratio':>7}"
           + (f"{'predicted':>13}{'ratio':>7}" if predicted else "")]
  for name, r in rows:
    if r is None:
      continue
    line = (f"{name:<22}{100 * r['top1']:>7.2f}%{100 * r['top5']:>7.2f}%"
            f"{r['macs'] / 1e6:>9.2f}M{r['macs_ratio']:>7.3f}{r['params'] / 1e3:>9.1f}K"
            f"{r['latency_ms']:>9.2f} ms{r.get('latency_ratio', float('nan')):>7.3f}")
    if predicted and "latency_ms_predicted" in r:
      line += (f"{r['latency_ms_predicted']:>10.2f} ms"
               f"{r.get('latency_ratio_predicted', float('nan')):>7.3f}")
    lines.append(line)
  lines.append(f"(latency: median forward pass, batch {report['latency_batch_size']}, "
               f"{report['device']}, {report.get('host_cpu', '?')}"
               + ("; predicted: the search's latency table" if predicted else "") + ")")
  return "\n".join(lines)


def run():
  """The `gp-jax-evaluate` console script."""
  _WORKDIR = flags.DEFINE_string("workdir", None, "Pipeline workdir: evaluates W/retrain/*.")
  _CHECKPOINT = flags.DEFINE_string("checkpoint", None,
                                    "A retrain checkpoint: W/retrain/<role>[/<step>].")

  def main(argv):
    if len(argv) > 1:
      raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    if _CHECKPOINT.value:
      print(json.dumps(evaluate_network(_CHECKPOINT.value), indent=1))
    elif _WORKDIR.value:
      if not os.path.isdir(_WORKDIR.value):
        raise UserError(f"no workdir {_WORKDIR.value}; run gp_jax.main into it first")
      with workdir_lock.hold(_WORKDIR.value):
        report = evaluate_workdir(_WORKDIR.value)
      print(json.dumps(report, indent=1))
      print(format_table(report))
    else:
      raise UserError("pass --workdir=W or --checkpoint=W/retrain/<role>[/<step>]")

  cli.run(main)


if __name__ == "__main__":
  run()
