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


def stack_eval_set(split, batch_size: int, worker_count: int = 0) -> dict:
  """The split as (num_batches, batch, ...) arrays plus a padding mask."""
  batches = list(data.eval_batches(split, batch_size, worker_count))
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


def make_population_scorer(model, vmap_chunk: int = 0, mesh=None):
  """`scores(params, widths (P, G) numpy, recal_images, eval_set) -> (P,) numpy`.

  The whole population is scored in one compiled call (one compilation per
  population size). With a `mesh`, the population is split over all its
  devices (`shard_map`; each device scores its candidates with the replicated
  PruningNet) and padded to a multiple of the device count; `recal_images` and
  `eval_set` must then be replicated global arrays (`sharding.put`).
  On each device, `vmap_chunk` candidates at a time are `vmap`ped (`lax.map`
  with `batch_size`): a vmapped conv over per-candidate weights becomes a
  grouped convolution, which is fast on GPU/TPU but about 8x slower than a
  plain conv on CPU. 0 picks 1 on CPU and the whole population elsewhere.
  """
  if vmap_chunk <= 0:
    vmap_chunk = 1 if jax.default_backend() == "cpu" else 1 << 30

  def local_scores(params, widths, recal, eval_set):
    one = lambda w: score(model, params, w, recal, eval_set)
    chunk = min(vmap_chunk, widths.shape[0])
    if chunk >= widths.shape[0]:
      return jax.vmap(one)(widths)
    return jax.lax.map(one, widths, batch_size=chunk)

  if mesh is None:
    jitted = jax.jit(local_scores)
    return lambda params, widths, recal, eval_set: np.asarray(
        jitted(params, jnp.asarray(widths), recal, eval_set))

  from jax.sharding import PartitionSpec as P
  from gp_jax import sharding
  split = sharding.population_sharding(mesh)
  jitted = jax.jit(jax.shard_map(
      local_scores, mesh=mesh, in_specs=(P(), split.spec, P(), P()), out_specs=split.spec,
      check_vma=False),  # each device's candidates are independent: nothing to check
      out_shardings=sharding.replicated(mesh))

  def scores(params, widths, recal, eval_set):
    widths = np.asarray(widths)
    padded = sharding.put(sharding.padded_population(widths, mesh), split)
    return np.asarray(jitted(params, padded, recal, eval_set))[:len(widths)]

  return scores
