"""Optimizers and learning-rate schedules from a config section."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from gp_jax.runtime.errors import unknown_name, UserError

SCHEDULES = ("cosine", "step", "linear", "constant")


def learning_rate_schedule(c, total_steps: int) -> optax.Schedule:
  """`c.schedule` in SCHEDULES, peak `c.learning_rate`, `c.warmup_steps` linear warm-up."""
  if c.schedule not in SCHEDULES:
    raise unknown_name("learning-rate schedule", c.schedule, SCHEDULES)
  if not c.learning_rate > 0:
    raise UserError(f"learning_rate must be > 0, got {c.learning_rate}")
  warmup = int(c.get("warmup_steps", 0))
  decay_steps = max(total_steps - warmup, 1)
  if c.schedule == "cosine":
    main = optax.cosine_decay_schedule(c.learning_rate, decay_steps)
  elif c.schedule == "linear":  # MetaPruning's schedule
    main = optax.linear_schedule(c.learning_rate, 0.0, decay_steps)
  elif c.schedule == "step":  # x0.1 at each fraction of training in c.decay_at
    boundaries = {int(f * decay_steps): 0.1 for f in c.get("decay_at", (0.5, 0.75))}
    main = optax.piecewise_constant_schedule(c.learning_rate, boundaries)
  else:
    main = optax.constant_schedule(c.learning_rate)
  if not warmup:
    return main
  return optax.join_schedules(
      [optax.linear_schedule(0.0, c.learning_rate, warmup), main], [warmup])


def make_optimizer(c, total_steps: int) -> optax.GradientTransformation:
  """SGD with momentum (optionally Nesterov) and decoupled-from-BN weight decay."""
  schedule = learning_rate_schedule(c, total_steps)
  # Decay weight matrices and kernels only: not biases, BN scales or offsets.
  decay_mask = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)
  # bfloat16 momentum halves the optimizer state (ResNet-50's PruningNet: 776M
  # parameters, 3.1 GB of momentum in float32).
  accumulator = jnp.bfloat16 if c.get("momentum_dtype", "float32") == "bfloat16" else None
  return optax.chain(
      optax.add_decayed_weights(c.weight_decay, mask=decay_mask),
      optax.sgd(schedule, momentum=c.momentum, nesterov=c.get("nesterov", False),
                accumulator_dtype=accumulator),
  )


def global_norm(tree) -> jax.Array:
  """The L2 norm of all leaves together (the gradient norm logged and NaN-checked)."""
  return jnp.sqrt(sum(jnp.vdot(x, x).real for x in jax.tree.leaves(tree)))
