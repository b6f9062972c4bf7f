"""Metrics: JSON lines in W/metrics.jsonl and TensorBoard event files in W/tensorboard/.

TensorBoard files are written with tensorboardX, so no TensorFlow is needed.
"""
from __future__ import annotations

import json
import os
import time

import numpy as np


class MetricWriter:
  """Appends `{"stage", "step", "time", ...scalars}` lines; mirrors them to TensorBoard."""

  def __init__(self, workdir: str, enabled: bool = True):
    self._enabled = enabled
    self._path = os.path.join(workdir, "metrics.jsonl")
    self._tb = None
    if enabled:
      os.makedirs(workdir, exist_ok=True)
      from tensorboardX import SummaryWriter
      self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write(self, stage: str, step: int, scalars: dict) -> None:
    if not self._enabled:
      return
    clean = {k: float(np.asarray(v)) for k, v in scalars.items()}
    with open(self._path, "a") as f:
      f.write(json.dumps({"stage": stage, "step": int(step), "time": time.time(),
                          **clean}) + "\n")
    for k, v in clean.items():
      self._tb.add_scalar(f"{stage}/{k}", v, int(step))

  def flush(self):
    if self._tb is not None:
      self._tb.flush()

  def close(self):
    if self._tb is not None:
      self._tb.close()


def read_metrics(workdir: str, stage: str | None = None) -> list[dict]:
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  return [r for r in rows if stage is None or r["stage"] == stage]
