"""Turning an ml_collections config into the objects the stages use."""
from __future__ import annotations

from gp_jax import channels, datasets
from gp_jax.architectures import get_spec
from gp_jax.errors import UserError
from gp_jax.search.env import PruningEnv
from gp_jax.spec import ArchSpec


def spec_from_config(config) -> ArchSpec:
  """The architecture spec for `config.model` on `config.dataset`."""
  info = datasets.info(config.dataset)
  resolution = config.dataset.get("resolution", None) or info.resolution
  if not isinstance(resolution, int) or resolution < 1:
    raise UserError(f"dataset.resolution must be a positive integer, got {resolution!r}")
  return get_spec(config.model.arch, num_classes=info.num_classes,
                  resolution=resolution, in_channels=info.channels,
                  width_multiplier=float(config.model.get("width_multiplier", 1.0)))


def fixed_groups_from_config(config, spec: ArchSpec):
  """Boolean per group: never pruned (the logits, plus `channels.fixed_groups`)."""
  patterns = config.channels.get("fixed_groups", ())
  if isinstance(patterns, str):
    patterns = tuple(p for p in patterns.split(",") if p)
  return channels.fixed_groups_mask(spec, tuple(patterns))


def make_env(config, spec: ArchSpec, target: float) -> PruningEnv:
  """The search's pruning environment for one MACs target."""
  return PruningEnv(spec, fixed=fixed_groups_from_config(config, spec),
                    divisor=config.channels.divisor, target=float(target),
                    tolerance=float(config.search.macs_tolerance),
                    lower_bound=float(config.channels.grid_low))
