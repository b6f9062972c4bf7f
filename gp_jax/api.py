"""The Python API: run the pipeline from a notebook or script, load what it found.

    import gp_jax
    config = gp_jax.get_config("configs/digits_resnet20.py:smoke")  # or any get_config()
    report = gp_jax.prune(config, "runs/api")        # every stage; resumes when rerun
    net = gp_jax.load("runs/api")                    # the retrained pruned network
    logits = net.apply(images)                       # (N, H, W, C) -> (N, classes)

`prune` is what `gp-jax` / `python -m gp_jax.main` runs, in this process (one
device mesh; multi-host runs go through the command line). XLA flags that a
config asks for (`cpu_low_memory`) take effect only if set before jax starts, so
the command line applies them and this API does not.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
from typing import Any

import ml_collections

from gp_jax import artifacts
from gp_jax.artifacts import input_norm_from_record, load_network, RETRAIN
from gp_jax.config import validation
from gp_jax.data import datasets
from gp_jax.net import models
from gp_jax.runtime import io_utils, workdir_lock
from gp_jax.runtime.errors import unknown_name, UserError
from gp_jax.stages import eval as eval_stage, pruningnet, retrain, search

# name -> run(config, workdir), in pipeline order
STAGES = {"pruningnet": pruningnet.run, "search": search.run, "retrain": retrain.run,
          "eval": eval_stage.run}


def get_config(path: str) -> ml_collections.ConfigDict:
  """The config of a config file, `path[:arg]` as on the command line (from any directory)."""
  file, _, arg = path.partition(":")
  if not os.path.exists(file):
    raise UserError(f"no config file {file}")
  spec = importlib.util.spec_from_file_location(
      f"gp_jax_config_{os.path.basename(file)[:-3]}", file)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()


def prune(config: ml_collections.ConfigDict, workdir: str, stages=tuple(STAGES)) -> dict:
  """Runs `stages` of the pipeline for `config` into `workdir` (each resumes where it
  stopped); returns W/report.json (empty before the eval stage has run).

  Raises `gp_jax.runtime.errors.UserError` (one line saying what to do) for a bad config or a
  missing dataset, before anything is written.
  """
  for stage in stages:
    if stage not in STAGES:
      raise unknown_name("stage", stage, STAGES)
  validation.validate(config)
  if set(stages) & {"pruningnet", "search", "retrain"}:
    datasets.check_available(config.dataset)
  with workdir_lock.hold(workdir):
    for stage in stages:
      STAGES[stage](config, workdir)
  path = artifacts.report_path(workdir)
  return io_utils.read_json(path) if os.path.exists(path) else {}


@dataclasses.dataclass(frozen=True)
class PrunedNetwork:
  """A retrained network: its Flax module (sliced shapes), variables and record."""
  module: models.ConvNet
  variables: dict[str, Any]
  widths: tuple[int, ...]
  record: dict  # network.json: architecture, dataset facts, MACs, params, ...

  @property
  def input_shape(self) -> tuple[int, int, int]:
    """(height, width, channels) of one input image."""
    spec = self.module.spec
    return (spec.resolution, spec.resolution, spec.in_channels)

  def apply(self, images):
    """Logits of `images` ((N, H, W, C) as the dataset gives them), inference mode."""
    return self.module.apply(self.variables, images, train=False)


def load(path: str, role: str = "pruned") -> PrunedNetwork:
  """The network in a workdir (`role`: pruned, uniform or unpruned) or in one retrain
  checkpoint directory (W/retrain/<role>[/<step>])."""
  if os.path.isdir(os.path.join(path, RETRAIN)):
    path = artifacts.network_dir(path, role)
    if not os.path.isdir(path):
      raise UserError(f"no {role} network in {os.path.dirname(path)}; run the retrain stage")
  spec, widths, variables, record, _ = load_network(path)
  module = models.ConvNet(spec, tuple(widths), input_norm=input_norm_from_record(record))
  return PrunedNetwork(module, variables, tuple(int(w) for w in widths), record)
