"""Stage `pruningnet`: train the GCN aggregator + hypernetwork on random configurations.

Reads nothing from earlier stages; writes W/pruningnet/ (orbax checkpoints),
W/metrics.jsonl and W/tensorboard/. A rerun resumes from the latest checkpoint.
"""
from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np

from gp_jax import artifacts, constraints
from gp_jax.config.build import fixed_groups_from_config, make_cost, spec_from_config
from gp_jax.data import datasets, loader
from gp_jax.hypernet import candidates
from gp_jax.hypernet.pruningnet import create_sharded_state, create_state, pruningnet_from_config
from gp_jax.net import channels, costs, sampling
from gp_jax.runtime import (checkpoints, distributed, host_memory, losses, optim, seeds, sharding,
                            train_loop)
from gp_jax.runtime.metrics import MetricWriter, read_metrics

STAGE = artifacts.PRUNINGNET


def make_sampler(spec, config, workdir=None):
  """The training configurations' sampler; `pruningnet.macs_range`, if set, bounds
  them in the search's constraint (a latency range measures W's table first)."""
  ch = config.channels
  grid = channels.keep_ratio_grid(ch.grid_levels, ch.grid_low, ch.grid_high)
  macs_range = tuple(config.pruningnet.macs_range) or None
  cost = None
  if macs_range:
    if workdir is not None:
      constraints.get(config.search.constraint).prepare(config, spec, workdir)
    cost = make_cost(config, spec, workdir)
  return sampling.make_sampler(spec, grid=grid, fixed=fixed_groups_from_config(config, spec),
                               divisor=ch.divisor, macs_range=macs_range, cost=cost)


def grid_extremes(spec, config) -> np.ndarray:
  """(2, G) widths: every free group at the grid's highest and lowest keep-ratio."""
  ch = config.channels
  grid = channels.keep_ratio_grid(ch.grid_levels, ch.grid_low, ch.grid_high)
  fixed = fixed_groups_from_config(config, spec)
  return np.stack([np.asarray(channels.widths_from_keep_ratios(
      spec, np.full(spec.num_groups, r), divisor=ch.divisor, fixed=fixed))
                   for r in (np.max(grid), np.min(grid))]).astype(np.int32)


def make_train_step(model, spec, sampler, schedule, *, configs_per_step: int,
                    label_smoothing: float, seed: int, sandwich=None, distill: bool = False):
  """`step(state, batch) -> (state, metrics)`; the configurations come from (seed, step).

  Each of the `configs_per_step` sampled configurations takes its own slice of
  the batch (and its own BatchNorm batch statistics): one `vmap`. With `sandwich`
  ((2, G) widths: the largest and the smallest configuration), every step trains
  those two and the sampled ones, each on the whole batch, losses summed (the
  sandwich rule); `distill` makes the largest one's predictions (no gradient) the
  others' targets (in-place distillation). `model` is the PruningNet, `sampler`
  a `sampling.make_sampler`, `schedule` (step -> learning rate) is only logged, and
  `seed` with the step number seeds each step's configurations.
  """
  base_key = jax.random.key(seed)
  full_macs = float(costs.macs(spec))

  def logits_of(params, images, widths):
    logits, _ = model.apply({"params": params}, images, widths, train=True,
                            mutable=["batch_stats"])
    return logits

  def config_loss(params, images, labels, widths):
    return losses.classification(logits_of(params, images, widths), labels, spec.num_classes,
                                 label_smoothing)

  def loss_fn(params, images, labels, widths):
    if configs_per_step == 1:  # no vmap: its batch dimension would reach every product
      return config_loss(params, images[0], labels[0], widths[0])
    losses_, accs = jax.vmap(config_loss, in_axes=(None, 0, 0, 0))(
        params, images, labels, widths)
    return losses_.mean(), accs.mean()

  def sandwich_loss(params, images, labels, widths):
    # A loop, not a vmap: on the CPU a vmapped conv over per-configuration weights is
    # a grouped convolution, several times slower than the plain ones (candidates.py).
    largest = logits_of(params, images, widths[0])
    total, acc = losses.classification(largest, labels, spec.num_classes, label_smoothing)
    teacher = jax.nn.softmax(jax.lax.stop_gradient(largest)) if distill else None
    for i in range(1, widths.shape[0]):
      logits = logits_of(params, images, widths[i])
      loss, a = losses.classification(logits, labels, spec.num_classes, label_smoothing)
      if distill:
        loss = losses.soft_cross_entropy(logits, teacher)
      total, acc = total + loss, acc + a
    return total, acc / widths.shape[0]

  def train_step(state, batch):
    key = jax.random.fold_in(base_key, state.step)
    widths = jax.vmap(sampler)(jax.random.split(key, configs_per_step))
    if sandwich is not None:
      widths = jnp.concatenate([jnp.asarray(sandwich, widths.dtype), widths])
      (loss, acc), grads = jax.value_and_grad(sandwich_loss, has_aux=True)(
          state.params, batch["image"], batch["label"], widths)
    else:
      split = lambda x: x.reshape(configs_per_step, -1, *x.shape[1:])
      (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(
          state.params, split(batch["image"]), split(batch["label"]), widths)
    metrics = {
        "loss": loss, "accuracy": acc,
        "macs_ratio": jnp.mean(jax.vmap(lambda w: costs.macs(spec, w))(widths)) / full_macs,
        "learning_rate": schedule(state.step),
        "grad_norm": optim.global_norm(grads),
    }
    return state.apply_gradients(grads=grads), metrics

  return train_step


def abstract_batch(local_batch, batch_size: int, batch_sharding) -> dict:
  """The global batch's shapes and dtypes, from one process's slice of it."""
  return {k: jax.ShapeDtypeStruct((batch_size, *np.shape(v)[1:]), np.asarray(v).dtype,
                                  sharding=batch_sharding) for k, v in local_batch.items()}


def evaluate_uniform(config, spec, params, splits, mesh, keep_ratios=(1.0, 0.5)) -> dict:
  """Held-out top-1 of uniform configurations after exact BN recalibration."""
  model = pruningnet_from_config(spec, config, bn_momentum=0.0)
  c = config.pruningnet
  recal = loader.recalibration_images(splits.train, c.batch_size, c.recal_batches,
                                      seeds.seed(config, "recal_pruningnet"))
  eval_set = candidates.stack_eval_set(loader.head(splits.holdout, config.search.eval_examples),
                                         c.eval_batch_size, config.dataset.worker_count)
  recal, eval_set = sharding.put((recal, eval_set), sharding.replicated(mesh))
  score = jax.jit(lambda p, w, x, e: candidates.score(model, p, w, x, e)["top1"],
                  out_shardings=sharding.replicated(mesh))
  fixed = fixed_groups_from_config(config, spec)
  out = {}
  for r in keep_ratios:
    widths = channels.widths_from_keep_ratios(
        spec, np.full(spec.num_groups, r), divisor=config.channels.divisor, fixed=fixed)
    widths = sharding.put(widths, sharding.replicated(mesh))
    out[f"holdout_top1_uniform_{r:g}"] = float(score(params, widths, recal, eval_set))
  return out


def run(config, workdir: str) -> dict:
  """Trains (or resumes) the PruningNet; returns the final held-out figures.
  `config` is validated: gp_jax.main validates it once; call
  `validation.validate(config)` first when calling a stage yourself."""
  return sharding.run_on_mesh(_run, config, workdir)


def _run(config, workdir, mesh) -> dict:
  c = config.pruningnet
  spec = spec_from_config(config)
  splits = datasets.load_splits(config.dataset, spec.resolution)
  model = pruningnet_from_config(spec, config)
  schedule = optim.learning_rate_schedule(c, c.steps)
  tx = optim.make_optimizer(c, c.steps)
  ckpts = checkpoints.Checkpoints(artifacts.pruningnet_dir(workdir), keep=c.max_to_keep)
  writer = MetricWriter(workdir, enabled=distributed.is_primary())
  init_seed = seeds.seed(config, "init")
  abstract = jax.eval_shape(lambda: create_state(model, spec, tx, init_seed))
  state_shardings = sharding.state_shardings(mesh, abstract)
  target = sharding.with_shardings(abstract, state_shardings)
  finished = [r for r in read_metrics(workdir, STAGE + "_eval") if r["step"] == c.steps]
  if finished and ckpts.latest_step() == c.steps:  # a rerun of the pipeline?
    # Only if that checkpoint reads (an unreadable one is moved aside, and the
    # stage resumes from the one before).
    if ckpts.restore_latest(target)[1] == c.steps:
      writer.close()
      print(f"pruningnet: complete at step {c.steps}; skipping")
      return {k: v for k, v in finished[-1].items() if k.startswith("holdout_")}
  local = loader.train_batches(splits.train, c.batch_size, seed=seeds.seed(config, "train_data"),
                               process_index=jax.process_index(),
                               process_count=jax.process_count())
  batch_sharding = sharding.batch_sharding(mesh)
  # Compiled before the state exists, and the compiler's freed memory handed back,
  # so the compiler's memory and the state's do not add up in the peak.
  step_fn = jax.jit(make_train_step(
      model, spec, make_sampler(spec, config, workdir), schedule,
      configs_per_step=c.configs_per_step, label_smoothing=c.label_smoothing,
      seed=seeds.seed(config, "sampler"),
      sandwich=grid_extremes(spec, config) if c.sandwich else None,
      distill=c.distill == "inplace"), in_shardings=(state_shardings, batch_sharding),
      out_shardings=(state_shardings, sharding.replicated(mesh)), donate_argnums=0).lower(
          target, abstract_batch(local[0], c.batch_size, batch_sharding)).compile()
  host_memory.release_freed()
  state, start = train_loop.restore_or(
      ckpts, target, STAGE, writer,
      init=lambda: create_sharded_state(model, spec, tx, init_seed, mesh, state_shardings)[0])
  batches = sharding.global_batches(
      loader.iterate(local, start, config.dataset.worker_count), batch_sharding)
  state = train_loop.train(train_loop.Loop.from_config(config, "pruningnet", STAGE), state,
                           step_fn, batches, start, ckpts, writer)

  results = evaluate_uniform(config, spec, state.params, splits, mesh)
  writer.write(STAGE + "_eval", c.steps, results)
  writer.close()
  print("pruningnet: held-out top-1 after BN recalibration: "
        + ", ".join(f"{k.removeprefix('holdout_top1_')}={v:.3f}" for k, v in results.items()))
  return results
