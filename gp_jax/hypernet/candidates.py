"""Scoring a channel configuration with the PruningNet: the search's reward.

For a configuration: generate the weights, recompute BatchNorm statistics
exactly on training images (one train-mode pass with momentum 0 over all
recalibration batches together stores their exact mean and variance), then
measure top-1, top-5 and the cross-entropy on the held-out split (the search's
`search.reward` picks one). Shapes never depend on the configuration, so one
compiled evaluator serves every configuration.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from gp_jax.data import loader
from gp_jax.runtime import sharding


def stack_eval_set(split, batch_size: int, worker_count: int = 0) -> dict:
  """The split as (num_batches, batch, ...) arrays plus a padding mask."""
  batches = list(loader.eval_batches(split, batch_size, worker_count))
  return {k: np.stack([b[k] for b in batches]) for k in batches[0]}


def recalibrate_batch_stats(model, params, widths, images):
  """Exact BN statistics of configuration `widths` over `images`.

  `model` must be built with `bn_momentum=0.0`, so the single train-mode pass
  stores the statistics of exactly these images.
  """
  _, updates = model.apply({"params": params}, images, widths, train=True,
                           mutable=["batch_stats"])
  return updates["batch_stats"]


METRICS = ("top1", "top5", "neg_loss")


def held_out_metrics(model, params, batch_stats, widths, eval_set) -> dict:
  """{top1, top5, neg_loss (minus the mean cross-entropy)} over a stacked eval set,
  padding excluded. The loss is continuous: it separates candidates that tie in top-1.

  Args:
    model: the PruningNet module; `params` and `batch_stats` its variables.
    widths: (G,) int32, the configuration whose generated weights are scored.
    eval_set: `stack_eval_set`'s {image, label, mask} with a leading batch axis.
  """
  variables = {"params": params, "batch_stats": batch_stats}

  def body(sums, batch):
    logits = model.apply(variables, batch["image"], widths, train=False)
    label, mask = batch["label"], batch["mask"]
    label_logit = jnp.take_along_axis(logits, label[:, None], axis=-1)
    rank = jnp.sum(logits > label_logit, axis=-1)  # classes scored above the label
    loss = -jax.nn.log_softmax(logits)[jnp.arange(len(label)), label]
    hit1 = (jnp.argmax(logits, -1) == label) * mask
    return (sums[0] + hit1.sum(), sums[1] + ((rank < 5) * mask).sum(),
            sums[2] + (loss * mask).sum()), None

  zero = jnp.zeros((), jnp.float32)
  (top1, top5, loss), _ = jax.lax.scan(body, (zero, zero, zero), eval_set)
  n = eval_set["mask"].sum()
  return {"top1": top1 / n, "top5": top5 / n, "neg_loss": -loss / n}


def score(model, params, widths, recal_images, eval_set) -> dict:
  """Held-out metrics of one configuration after exact BN recalibration: the
  PruningNet `model`'s generated weights for `widths` (G,), BatchNorm statistics
  recomputed on `recal_images` (N, H, W, C), then `held_out_metrics` on `eval_set`."""
  stats = recalibrate_batch_stats(model, params, widths, recal_images)
  return held_out_metrics(model, params, stats, widths, eval_set)


def make_population_scorer(model, vmap_chunk: int = 0, mesh=None):
  """`scores(params, widths (P, G) numpy, recal_images, eval_set) -> {metric: (P,) numpy}`.

  One compiled program scores a block of candidates: `vmap_chunk` of them
  `vmap`ped on each device (a `mesh` splits the block over all its devices with
  `shard_map`, each scoring its candidates with the replicated PruningNet;
  `recal_images` and `eval_set` must then be replicated global arrays,
  `sharding.put`). A population is scored block by block, its last block padded
  with copies of its first candidate. A vmapped conv over per-candidate weights
  becomes a grouped convolution, fast on GPU/TPU but several times slower than a plain
  conv on CPU, so `vmap_chunk` 0 picks 1 on CPU (one candidate per device and
  call: the search's population and its single greedy candidate share one
  compiled program) and the whole population elsewhere (one call; a population of
  another size compiles once more).
  """
  if vmap_chunk <= 0:
    vmap_chunk = 1 if jax.default_backend() == "cpu" else 1 << 30
  devices = 1 if mesh is None else mesh.size

  def local_scores(params, widths, recal, eval_set):
    one = lambda w: score(model, params, w, recal, eval_set)
    if widths.shape[0] == 1:  # no vmap: a batch axis of 1 would still batch the convs
      return jax.tree.map(lambda x: x[None], one(widths[0]))
    return jax.vmap(one)(widths)

  if mesh is None:
    jitted = jax.jit(local_scores)
    place = jnp.asarray
  else:
    split = sharding.population_sharding(mesh)
    jitted = jax.jit(jax.shard_map(
        local_scores, mesh=mesh, in_specs=(P(), split.spec, P(), P()), out_specs=split.spec,
        check_vma=False),  # each device's candidates are independent: nothing to check
        out_shardings=sharding.replicated(mesh))
    place = lambda w: sharding.put(w, split)

  def scores(params, widths, recal, eval_set):
    widths = np.asarray(widths)
    n = len(widths)
    block = min(vmap_chunk, -(-n // devices)) * devices
    padded = np.concatenate([widths, np.repeat(widths[:1], -n % block, 0)])
    parts = [jitted(params, place(padded[i:i + block]), recal, eval_set)
             for i in range(0, len(padded), block)]
    return {k: np.concatenate([np.asarray(p[k]) for p in parts])[:n] for k in parts[0]}

  return scores
