"""Stage `eval`: test every network of W/retrain/ on the test split.

Reads each W/retrain/<role>/ (its network.json and latest checkpoint); writes
W/report.json and prints the table (top-1/top-5, MACs, params, latency measured
in this process beside the prediction). `python -m gp_jax.evaluate` does the same
for a workdir or a single checkpoint without a config.
"""
from __future__ import annotations

from gp_jax import evaluate


def run(config, workdir: str) -> dict:
  """The report of W/retrain/*; the networks are rebuilt from their records, so
  `config` is not read."""
  del config
  report = evaluate.evaluate_workdir(workdir)
  print(evaluate.format_table(report))
  return report
