"""What every constraint provides (gp_jax/constraints/__init__.py registers them)."""
from __future__ import annotations

import numpy as np

from gp_jax.net import costs
from gp_jax.net.spec import ArchSpec


class Constraint:
  """A budget's cost. Subclasses set `name`, `label` and `build`; the defaults here
  suit an analytic cost (MACs, params)."""
  name = ""
  label = ""                 # for messages and plot axes
  measured_on_device = False  # targets are checked only once the cost is measured

  def prepare(self, config, spec: ArchSpec, workdir: str) -> None:
    """Measures and writes into `workdir` what `build` reads (a latency table); the
    stages that sample or search under the budget call it first. Nothing for an
    analytic cost."""

  def build(self, config, spec: ArchSpec, workdir: str | None = None) -> costs.Cost:
    """The `Cost` of `spec` under this constraint, from what `prepare` wrote."""
    raise NotImplementedError

  def ratios(self, cost: costs.Cost, widths, macs_ratio) -> np.ndarray:
    """The cost ratio of each configuration of a population (`macs_ratio`: theirs)."""
    return cost.population_ratio(widths)

  def result_fields(self, cost: costs.Cost, widths, target: float, ratio: float) -> dict:
    """Extra fields of a search result for its pick (`widths`, at cost `ratio`)."""
    return {}

  def candidate_fields(self, ratio: float) -> dict:
    """Extra fields of a scored candidate's row in candidates_<t>.jsonl."""
    return {f"{self.name}_ratio": float(ratio)}

  def round_metrics(self, cost: costs.Cost, widths) -> dict:
    """Extra metrics of a search round (the MACs ratio is always logged)."""
    return {f"round_mean_{self.name}_ratio": float(cost.population_ratio(widths).mean())}

  def record_fields(self, cost: costs.Cost, widths) -> dict:
    """Extra fields of a retrained network's network.json."""
    return {}
