"""Scoring a channel configuration with the PruningNet: the search's reward.

For a configuration: generate the weights, recompute BatchNorm statistics
exactly on training images (one train-mode pass with momentum 0 over all
recalibration batches together stores their exact mean and variance), then
measure top-1 on the held-out split. Shapes never depend on the configuration,
so one compiled evaluator serves every configuration.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gp_jax import data


def stack_eval_set(split: data.ArraySplit, batch_size: int) -> dict:
  """The split as (num_batches, batch, ...) arrays plus a padding mask."""
  batches = list(data.eval_batches(split, batch_size))
  return {k: np.stack([b[k] for b in batches]) for k in batches[0]}


def recalibrate_batch_stats(model, params, widths, images):
  """Exact BN statistics of configuration `widths` over `images`.

  `model` must be built with `bn_momentum=0.0`, so the single train-mode pass
  stores the statistics of exactly these images.
  """
  _, updates = model.apply({"params": params}, images, widths, train=True,
                           mutable=["batch_stats"])
  return updates["batch_stats"]


def top1(model, params, batch_stats, widths, eval_set) -> jax.Array:
  """Top-1 accuracy over a stacked eval set (padding excluded)."""
  variables = {"params": params, "batch_stats": batch_stats}

  def body(correct, batch):
    logits = model.apply(variables, batch["image"], widths, train=False)
    hits = (jnp.argmax(logits, -1) == batch["label"]) * batch["mask"]
    return correct + hits.sum(), None

  correct, _ = jax.lax.scan(body, jnp.zeros((), jnp.float32), eval_set)
  return correct / eval_set["mask"].sum()


def score(model, params, widths, recal_images, eval_set) -> jax.Array:
  """Held-out top-1 of one configuration after exact BN recalibration."""
  stats = recalibrate_batch_stats(model, params, widths, recal_images)
  return top1(model, params, stats, widths, eval_set)
