"""Latency on this device, predicted from a per-layer table measured here
(gp_jax/net/latency.py): building the cost measures the table unless W has it."""
from __future__ import annotations

from gp_jax.constraints.base import Constraint
from gp_jax.net import channels, latency


class Latency(Constraint):
  name, label = "latency", "latency"
  measured_on_device = True

  def build(self, config, spec, workdir=None):
    if workdir is None:
      raise ValueError("a latency cost needs the workdir its table lives in")
    patterns = config.channels.get("fixed_groups", ())
    if isinstance(patterns, str):
      patterns = tuple(p for p in patterns.split(",") if p)
    settings = latency.settings_from_config(config,
                                            channels.fixed_groups_mask(spec, tuple(patterns)))
    table = latency.load_or_build(workdir, spec, settings, config.get("progress", True))
    return latency.table_cost(table, spec, monotone=config.latency.monotone)

  def result_fields(self, cost, widths, target, ratio):
    return {"latency_ms_predicted": float(cost.total(widths)),
            "latency_ms_predicted_unpruned": cost.full, "latency_ratio": float(ratio)}

  def record_fields(self, cost, widths):
    return {"latency_ms_predicted": float(cost.total(widths))}
