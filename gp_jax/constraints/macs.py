"""MACs: multiply-accumulates of the conv and dense layers, counted from the spec."""
from __future__ import annotations

import numpy as np

from gp_jax.constraints.base import Constraint
from gp_jax.net import costs


class Macs(Constraint):
  name, label = "macs", "MACs"

  def build(self, config, spec, workdir=None):
    return costs.macs_cost(spec)

  def ratios(self, cost, widths, macs_ratio):
    return np.asarray(macs_ratio)  # already computed for every candidate

  def result_fields(self, cost, widths, target, ratio):
    return {"target_macs_ratio": float(target)}

  def candidate_fields(self, ratio):
    return {}  # the row's macs_ratio says it

  def round_metrics(self, cost, widths):
    return {}
