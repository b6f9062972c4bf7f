"""Metrics: JSON lines in W/metrics.jsonl and TensorBoard event files in W/tensorboard/.

TensorBoard files are written with tensorboardX, so no TensorFlow is needed.
"""
from __future__ import annotations

import json
import os
import time

import numpy as np

from gp_jax.runtime import io_utils


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

  def drop_after(self, stage: str, step: int) -> None:
    """Drops `stage`'s rows past `step` (a resumed run logs them again), atomically."""
    if not self._enabled or not os.path.exists(self._path):
      return
    rows = _read_rows(self._path)
    kept = [r for r in rows if not (r.get("stage") == stage and r.get("step", 0) > step)]
    if len(kept) != len(rows) or len(rows) != _count_lines(self._path):
      io_utils.write_jsonl(self._path, kept)

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
  return [r for r in _read_rows(path) if stage is None or r["stage"] == stage]


def _read_rows(path: str) -> list[dict]:
  """The parsable rows; a line cut short by a kill is skipped."""
  rows = []
  with open(path) as f:
    for line in f:
      try:
        rows.append(json.loads(line))
      except json.JSONDecodeError:
        continue
  return rows


def _count_lines(path: str) -> int:
  with open(path) as f:
    return sum(1 for line in f if line.strip())
