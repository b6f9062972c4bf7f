"""Latency on this device, predicted from a per-layer table measured here
(gp_jax/net/latency.py): `prepare` measures it into W unless W has it, `build` reads it."""
from __future__ import annotations

import os

from gp_jax.constraints.base import Constraint
from gp_jax.net import channels, latency
from gp_jax.runtime.errors import UserError


def _settings(config, spec) -> latency.Settings:
  patterns = config.channels.get("fixed_groups", ())
  if isinstance(patterns, str):
    patterns = tuple(p for p in patterns.split(",") if p)
  return latency.settings_from_config(config, channels.fixed_groups_mask(spec, tuple(patterns)))


class Latency(Constraint):
  name, label = "latency", "latency"
  measured_on_device = True

  def prepare(self, config, spec, workdir):
    latency.load_or_build(workdir, spec, _settings(config, spec), config.get("progress", True))

  def build(self, config, spec, workdir=None):
    if workdir is None:
      raise ValueError("a latency cost needs the workdir its table lives in")
    path = os.path.join(workdir, latency.TABLE_FILE)
    table = latency.load_table(path, spec, _settings(config, spec))
    if table is None:
      raise UserError(f"no latency table for this config at {path}; the pruningnet and "
                      "search stages measure it: run --stages=search (or pruningnet) first")
    return latency.table_cost(table, spec, monotone=config.latency.monotone)

  def result_fields(self, cost, widths, target, ratio):
    return {"latency_ms_predicted": float(cost.total(widths)),
            "latency_ms_predicted_unpruned": cost.full, "latency_ratio": float(ratio)}

  def record_fields(self, cost, widths):
    return {"latency_ms_predicted": float(cost.total(widths))}
