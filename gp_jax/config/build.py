"""Turning an ml_collections config into the objects the stages use."""
from __future__ import annotations

from gp_jax import constraints
from gp_jax.data import datasets
from gp_jax.net import channels, costs
from gp_jax.net.architectures import get_spec
from gp_jax.net.spec import ArchSpec
from gp_jax.runtime.errors import UserError
from gp_jax.search.env import PruningEnv

# The retrain stage's choices (validation checks the config against them).
INITS = ("scratch", "pruningnet", "checkpoint")  # retrain.init: where a retrained net starts
BASELINES = ("", "uniform")        # retrain.baseline: the role trained beside `pruned`


def spec_from_config(config) -> ArchSpec:
  """The architecture spec for `config.model` on `config.dataset`."""
  info = datasets.info(config.dataset)
  resolution = config.dataset.get("resolution", None) or info.resolution
  if not isinstance(resolution, int) or resolution < 1:
    raise UserError(f"dataset.resolution must be a positive integer, got {resolution!r}")
  return get_spec(config.model.arch, num_classes=info.num_classes,
                  resolution=resolution, in_channels=info.channels,
                  width_multiplier=float(config.model.get("width_multiplier", 1.0)),
                  padding=config.model.get("padding", "same"))


def fixed_groups_from_config(config, spec: ArchSpec):
  """Boolean per group: never pruned (the logits, plus `channels.fixed_groups`)."""
  patterns = config.channels.get("fixed_groups", ())
  if isinstance(patterns, str):
    patterns = tuple(p for p in patterns.split(",") if p)
  return channels.fixed_groups_mask(spec, tuple(patterns))


def make_cost(config, spec: ArchSpec, workdir: str | None = None,
              constraint: str | None = None) -> costs.Cost:
  """The budget's cost (`search.constraint`, or `constraint`), built by its
  registered constraint (gp_jax/constraints/); a measured one (latency) reads
  W/latency_table.json or measures it now."""
  return constraints.get(constraint or config.search.constraint).build(config, spec, workdir)


def make_env(config, spec: ArchSpec, target: float, cost: costs.Cost | None = None
             ) -> PruningEnv:
  """The search's pruning environment for one target (a ratio of `cost`; MACs if None)."""
  return PruningEnv(spec, fixed=fixed_groups_from_config(config, spec),
                    divisor=config.channels.divisor, target=float(target),
                    tolerance=float(config.search.macs_tolerance),
                    lower_bound=float(config.channels.grid_low), cost=cost)
