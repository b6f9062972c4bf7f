"""Config validation, before any compilation, dataset read or workdir write.

`RULES` gives every config field its type and range; `validate(config)` checks
each field, rejects unknown fields (suggesting the closest known one), then
the checks that span fields: known names (architecture, dataset, method,
schedule), batch sizes divisible by the configurations per step, targets
reachable (for a latency budget: once its table is measured, in the search stage). Every failure is a one-line `UserError`.

A field added to `default_config.py` needs a rule here (a test checks both
lists agree).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import ml_collections

from gp_jax import candidates, channels, costs, datasets, optim, sharding
from gp_jax.config_lib import fixed_groups_from_config, make_cost, make_env, spec_from_config
from gp_jax.errors import UserError, unknown_name


@dataclasses.dataclass(frozen=True)
class Rule:
  """A field's check, what it requires (for the message), and values it must reject."""
  check: Callable[[Any], bool]
  requirement: str
  bad_values: tuple  # used by the tests' generated malformed configs
  choices: tuple = ()  # for names: the error suggests the closest one


def _is_int(v) -> bool:
  return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
  return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def integer(low: int = 1) -> Rule:
  word = {0: "a non-negative integer", 1: "a positive integer"}.get(low, f"an integer >= {low}")
  return Rule(lambda v: _is_int(v) and v >= low, word, (low - 1, 2.5, "many"))


def number(low: float, high: float, *, low_open: bool = False,
           high_open: bool = False) -> Rule:
  def check(v):
    return (_is_number(v) and (v > low if low_open else v >= low)
            and (v < high if high_open else v <= high))
  bounds = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
  if math.isinf(high):
    bounds = f"{'>' if low_open else '>='} {low:g}"
  bad = [low - 1, float("nan"), "high"]
  if low_open:
    bad.append(low)
  if math.isfinite(high):
    bad.append(high if high_open else high + 1)
  return Rule(check, f"a number {bounds}", tuple(bad))


def boolean() -> Rule:
  return Rule(lambda v: isinstance(v, bool), "True or False", ("maybe", 2))


def choice(options) -> Rule:
  options = tuple(options)
  typo = options[0][1:] + options[0][0] if len(options[0]) > 1 else options[0] + "x"
  return Rule(lambda v: isinstance(v, str) and v in options,
              "one of " + ", ".join(map(repr, options)), (typo, 3), options)


def text() -> Rule:
  return Rule(lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string", ("", 3))


def ratios() -> Rule:
  def check(v):
    return (isinstance(v, (tuple, list)) and len(v) > 0
            and all(_is_number(t) and 0 < t <= 1 for t in v))
  return Rule(check, "a non-empty tuple of MACs ratios in (0, 1], e.g. (0.5,)",
              ((), (0.0,), (1.5,), (0.5, -0.2), "half"))


def range_pair() -> Rule:
  def check(v):
    return isinstance(v, (tuple, list)) and (
        len(v) == 0 or (len(v) == 2 and all(_is_number(t) for t in v)
                        and 0 < v[0] < v[1] <= 1))
  return Rule(check, "() or (low, high) with 0 < low < high <= 1",
              ((0.5,), (0.8, 0.2), (0.0, 0.5), (0.2, 1.5)))


def patterns() -> Rule:
  def check(v):
    return isinstance(v, str) or (isinstance(v, (tuple, list))
                                  and all(isinstance(p, str) for p in v))
  # A pattern matching no group is rejected by the cross-field checks.
  return Rule(check, "a tuple of group-name patterns", (3, ("no_such_group*",)))


def fractions() -> Rule:
  def check(v):
    return isinstance(v, (tuple, list)) and all(_is_number(t) and 0 < t < 1 for t in v)
  return Rule(check, "a tuple of training fractions in (0, 1)", ((1.5,), "half"))


def mesh_axis() -> Rule:
  return Rule(lambda v: _is_int(v) and (v == -1 or v >= 1),
              "a positive number of devices, or -1 for all remaining ones", (0, -2, 2.5, "all"))


def _train_section(prefix: str) -> dict[str, Rule]:
  """The fields the pruningnet and retrain sections share."""
  return {
      f"{prefix}.steps": integer(),
      f"{prefix}.batch_size": integer(),
      f"{prefix}.learning_rate": number(0, math.inf, low_open=True),
      f"{prefix}.schedule": choice(optim.SCHEDULES),
      f"{prefix}.decay_at": fractions(),
      f"{prefix}.warmup_steps": integer(0),
      f"{prefix}.momentum": number(0, 1, high_open=True),
      f"{prefix}.nesterov": boolean(),
      f"{prefix}.weight_decay": number(0, 1),
      f"{prefix}.label_smoothing": number(0, 1, high_open=True),
      f"{prefix}.log_every": integer(),
      f"{prefix}.checkpoint_every": integer(),
      f"{prefix}.max_to_keep": integer(),
  }


def rules() -> dict[str, Rule]:
  from gp_jax.search.methods import METHODS, RL_STATES
  from gp_jax.stages.retrain import BASELINES, INITS
  rules = {
      "seed": integer(0),
      "dataset.name": choice(datasets.KINDS),
      "dataset.resolution": integer(0),
      "dataset.holdout_size": integer(),
      "dataset.data_dir": Rule(lambda v: isinstance(v, str), "a directory path (or '')", (3,)),
      "dataset.path": Rule(lambda v: isinstance(v, str), "a file or folder path (or '')", (3,)),
      "dataset.flip": boolean(),
      "dataset.worker_count": integer(0),
      "dataset.lighting": number(0, 1),
      "model.arch": text(),
      "model.width_multiplier": number(0, 8, low_open=True),
      "channels.divisor": integer(),
      "channels.fixed_groups": patterns(),
      "channels.grid_levels": integer(2),
      "channels.grid_low": number(0, 1, low_open=True),
      "channels.grid_high": number(0, 1, low_open=True),
      "progress": boolean(),
      "cpu_low_memory": boolean(),
      "mesh.data": mesh_axis(),
      "mesh.model": mesh_axis(),
      **_train_section("pruningnet"),
      "pruningnet.configs_per_step": integer(),
      "pruningnet.momentum_dtype": choice(("float32", "bfloat16")),
      "pruningnet.macs_range": range_pair(),
      "pruningnet.gcn_features": integer(),
      "pruningnet.gcn_layers": integer(),
      "pruningnet.head_hidden": integer(),
      "pruningnet.recal_batches": integer(),
      "pruningnet.eval_batch_size": integer(),
      "search.method": choice(METHODS),
      "search.constraint": choice(costs.CONSTRAINTS),
      "search.targets": ratios(),
      "search.macs_tolerance": number(0, 1, low_open=True, high_open=True),
      "search.evaluations": integer(),
      "search.population": integer(),
      "search.recal_batches": integer(),
      "search.recal_batch_size": integer(),
      "search.eval_batch_size": integer(),
      "search.eval_examples": integer(0),
      "search.vmap_chunk": integer(0),
      "search.reward": choice(candidates.METRICS),
      "search.rl.state": choice(("",) + RL_STATES),
      "search.rl.episodes_per_round": integer(0),
      "search.rl.greedy_every": integer(0),
      "search.rl.hidden": integer(),
      "search.rl.actor_lr": number(0, 1, low_open=True),
      "search.rl.critic_lr": number(0, 1, low_open=True),
      "search.rl.tau": number(0, 1, low_open=True),
      "search.rl.discount": number(0, 1),
      "search.rl.batch_size": integer(),
      "search.rl.replay_episodes": integer(),
      "search.rl.warmup_episodes": integer(0),
      "search.rl.noise_init": number(0, 10, low_open=True),
      "search.rl.noise_decay": number(0, 1, low_open=True),
      "search.rl.baseline_alpha": number(0, 1, low_open=True),
      "search.rl.macs_reward": number(-100, 100),
      "search.evolution.parents": integer(),
      "search.evolution.mutation_prob": number(0, 1),
      "retrain.init": choice(INITS),
      "retrain.baseline": choice(BASELINES),
      "retrain.unpruned": boolean(),
      "retrain.use_holdout": boolean(),
      **_train_section("retrain"),
      "eval.batch_size": integer(),
      "eval.latency_batch_size": integer(),
      "eval.latency_runs": integer(),
      "latency.grid_points": integer(2),
      "latency.runs": integer(),
  }
  return rules


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
                      "gp_jax.default_config.base_config()")
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
  s = config.search
  if s.rl.state and s.method not in ("graph_rl", "amc"):
    raise UserError(f"search.rl.state={s.rl.state} is for the RL methods (graph_rl, amc), "
                    f"not {s.method}; drop it")
  if s.evolution.parents > s.population:
    raise UserError(f"search.evolution.parents ({s.evolution.parents}) must be at most "
                    f"search.population ({s.population})")
  if s.constraint != "latency":  # a latency table exists only once measured (search stage)
    check_targets(config, spec, make_cost(config, spec))


def check_targets(config, spec, cost) -> None:
  """Every target reachable: at or above the smallest allowed configuration's cost."""
  ch = config.channels
  for target in config.search.targets:
    smallest = make_env(config, spec, target, cost).min_cost_ratio()
    if target < smallest:
      raise UserError(
          f"{costs.LABELS[cost.name]} target {target:g} is unreachable: the smallest allowed "
          f"configuration (every group at keep-ratio {ch.grid_low:g}) has a "
          f"{costs.LABELS[cost.name]} ratio of {smallest:.3f}; raise the target or lower "
          "channels.grid_low")


def validate(config) -> None:
  """Raises a one-line UserError for anything wrong in `config`; writes nothing."""
  check_fields(config)
  check_relations(config)
