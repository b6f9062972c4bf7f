"""Config validation, before any compilation, dataset read or workdir write.

`validate(config)` checks each field against its rule in the schema
(`schema.FIELDS`), rejects unknown fields (suggesting the closest known
one), then the checks that span fields: known names (architecture, dataset),
batch sizes divisible by the configurations per step, targets reachable (for a
latency budget: once its table is measured, in the search stage). Every failure
is a one-line `UserError`. `gp_jax.main` runs it once per launch.
"""
from __future__ import annotations

import sys
from typing import Any

import ml_collections

from gp_jax import constraints
from gp_jax.config.build import fixed_groups_from_config, make_cost, make_env, spec_from_config
from gp_jax.config.schema import rules
from gp_jax.data import datasets
from gp_jax.net import channels, network_files
from gp_jax.runtime import sharding
from gp_jax.runtime.errors import unknown_name, UserError
from gp_jax.search import methods


def leaves(config, prefix: str = "") -> dict[str, Any]:
  """{dotted path: value} of every non-section field."""
  out = {}
  for key, value in config.items():
    path = prefix + key
    if isinstance(value, (ml_collections.ConfigDict, dict)):
      out.update(leaves(value, path + "."))
    else:
      out[path] = value
  return out


def check_fields(config) -> None:
  """Each field known, present, and of the right type and range."""
  known = rules()
  values = leaves(config)
  for path in values:
    if path not in known:
      raise unknown_name("config field", path, known)
  for path, rule in known.items():
    if path not in values:
      raise UserError(f"config field {path} is missing; start configs from "
                      "gp_jax.config.schema.base_config()")
    value = values[path]
    if not rule.check(value):
      if rule.choices and isinstance(value, str):
        raise unknown_name(path, value, rule.choices)
      raise UserError(f"{path} must be {rule.requirement}, got {value!r}")


def check_relations(config) -> None:
  """The checks that span fields."""
  info = datasets.info(config.dataset)
  spec = spec_from_config(config)
  fixed_groups_from_config(config, spec)
  ch = config.channels
  channels.keep_ratio_grid(ch.grid_levels, ch.grid_low, ch.grid_high)
  pinned = config.dataset.get("resolution", 0)
  if pinned and info.resolution and pinned != info.resolution and config.dataset.name in (
      "npz", "image_folder"):
    print(f"note: dataset.resolution={pinned} resizes {config.dataset.path}'s "
          f"{info.resolution}x{info.resolution} images to {pinned}x{pinned}; set it to 0 to "
          "keep their size", file=sys.stderr)
  holdout = config.dataset.holdout_size
  if holdout >= info.train_examples // 2:
    raise UserError(f"dataset.holdout_size ({holdout}) must be below half of the "
                    f"{info.train_examples} {config.dataset.name} training examples")
  train_examples = info.train_examples - holdout
  for section in ("pruningnet", "retrain"):
    c = config[section]
    if c.batch_size > train_examples:
      raise UserError(f"{section}.batch_size ({c.batch_size}) exceeds the {train_examples} "
                      "training examples")
  sharding.check_axes(config.mesh)
  p = config.pruningnet
  if p.batch_size % p.configs_per_step:
    raise UserError(f"pruningnet.batch_size ({p.batch_size}) must be divisible by "
                    f"pruningnet.configs_per_step ({p.configs_per_step})")
  if p.distill == "inplace" and not p.sandwich:
    raise UserError("pruningnet.distill=inplace needs pruningnet.sandwich=True (the largest "
                    "configuration is the teacher)")
  r = config.retrain
  if r.init == "checkpoint":
    if not r.init_checkpoint:
      raise UserError("retrain.init=checkpoint needs retrain.init_checkpoint=unpruned (the "
                      "full network, trained first in this run) or W/retrain/unpruned of "
                      "another run of the same architecture")
  if r.init == "checkpoint" and r.init_checkpoint != "unpruned":
    network_files.check_fits(r.init_checkpoint, spec, "retrain.init_checkpoint",
                             config.model.arch)
  if r.distill.teacher not in ("", "unpruned"):
    network_files.check_fits(r.distill.teacher, spec, "retrain.distill.teacher")
  s = config.search
  if s.rescore_top and (s.eval_examples or holdout // 2) >= holdout:
    raise UserError(f"search.eval_examples ({s.eval_examples}) leaves none of the {holdout} "
                    "held-out images to re-score the best candidates; lower it, raise "
                    "dataset.holdout_size, or set search.rescore_top=0")
  rl_only = {"state": "", "scalars": "all"}  # RL options and their neutral values
  for option, neutral in rl_only.items():
    if s.rl[option] != neutral and s.method not in methods.RL_METHODS:
      raise UserError(f"search.rl.{option}={s.rl[option]} is for the RL methods "
                      f"({', '.join(methods.RL_METHODS)}), not {s.method}; drop it")
  if s.evolution.parents > s.population:
    raise UserError(f"search.evolution.parents ({s.evolution.parents}) must be at most "
                    f"search.population ({s.population})")
  if not constraints.get(s.constraint).measured_on_device:  # else checked once measured
    check_targets(config, spec, make_cost(config, spec))


def check_targets(config, spec, cost) -> None:
  """Every target reachable: at or above the smallest allowed configuration's cost."""
  ch = config.channels
  for target in config.search.targets:
    smallest = make_env(config, spec, target, cost).min_cost_ratio()
    if target < smallest:
      raise UserError(
          f"{constraints.get(cost.name).label} target {target:g} is unreachable: the smallest allowed "
          f"configuration (every group at keep-ratio {ch.grid_low:g}) has a "
          f"{constraints.get(cost.name).label} ratio of {smallest:.3f}; raise the target or lower "
          "channels.grid_low")


def validate(config) -> None:
  """Raises a one-line UserError for anything wrong in `config`; writes nothing."""
  check_fields(config)
  check_relations(config)
