"""Stage `pruningnet`: train the GCN aggregator + hypernetwork on random configurations.

Reads nothing from earlier stages; writes W/pruningnet/ (orbax checkpoints),
W/metrics.jsonl and W/tensorboard/. A rerun resumes from the latest checkpoint.
"""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state

from gp_jax import (candidates, channels, checkpoints, costs, data, datasets, distributed,
                    host_memory, optim, sampling, sharding, train_loop, validation)
from gp_jax.config_lib import fixed_groups_from_config, make_cost, spec_from_config
from gp_jax.metrics import MetricWriter, read_metrics
from gp_jax.pruningnet import pruningnet_from_config

STAGE = "pruningnet"


def make_sampler(spec, config, workdir=None):
  """The training configurations' sampler; `pruningnet.macs_range`, if set, bounds
  them in the search's constraint (a latency range reads or measures W's table)."""
  ch = config.channels
  grid = channels.keep_ratio_grid(ch.grid_levels, ch.grid_low, ch.grid_high)
  macs_range = tuple(config.pruningnet.macs_range) or None
  cost = make_cost(config, spec, workdir) if macs_range else None
  return sampling.make_sampler(spec, grid=grid, fixed=fixed_groups_from_config(config, spec),
                               divisor=ch.divisor, macs_range=macs_range, cost=cost)


def make_train_step(model, spec, sampler, schedule, *, configs_per_step: int,
                    label_smoothing: float, seed: int):
  """`step(state, batch) -> (state, metrics)`; the configurations come from (seed, step).

  Each of the `configs_per_step` sampled configurations takes its own slice of
  the batch (and its own BatchNorm batch statistics): one `vmap`.
  """
  base_key = jax.random.key(seed)
  full_macs = float(costs.macs(spec))

  def config_loss(params, images, labels, widths):
    logits, _ = model.apply({"params": params}, images, widths, train=True,
                            mutable=["batch_stats"])
    targets = optax.smooth_labels(jax.nn.one_hot(labels, spec.num_classes),
                                  label_smoothing)
    loss = optax.softmax_cross_entropy(logits, targets).mean()
    return loss, jnp.mean(jnp.argmax(logits, -1) == labels)

  def loss_fn(params, images, labels, widths):
    if configs_per_step == 1:  # no vmap: its batch dimension would reach every product
      return config_loss(params, images[0], labels[0], widths[0])
    losses, accs = jax.vmap(config_loss, in_axes=(None, 0, 0, 0))(
        params, images, labels, widths)
    return losses.mean(), accs.mean()

  def train_step(state, batch):
    key = jax.random.fold_in(base_key, state.step)
    widths = jax.vmap(sampler)(jax.random.split(key, configs_per_step))
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


def init_params(model, spec, seed: int):
  images = jnp.zeros((1, spec.resolution, spec.resolution, spec.in_channels))
  return model.init(jax.random.key(seed), images, jnp.asarray(spec.max_widths),
                    train=False)["params"]


def create_state(model, spec, tx, seed: int) -> train_state.TrainState:
  return train_state.TrainState.create(apply_fn=model.apply,
                                       params=init_params(model, spec, seed), tx=tx)


def create_sharded_state(model, spec, tx, seed: int, mesh, shardings=None):
  """(state, shardings): the train state created directly on the mesh (kernel
  heads split over `model`), never whole on one device; `shardings`, when the
  caller has them, are `sharding.state_shardings` of the state.

  Two programs, not one: the random-init temporaries of the parameters (about
  1.7x their size) are freed before the optimizer state is allocated, which
  lowers the start-up peak (ResNet-50 on one CPU device: 11.8 -> 8.0 GiB).
  """
  if shardings is None:
    shardings = sharding.state_shardings(
        mesh, jax.eval_shape(lambda: create_state(model, spec, tx, seed)))
  params = jax.jit(lambda: init_params(model, spec, seed), out_shardings=shardings.params)()
  create = lambda p: train_state.TrainState.create(  # pylint: disable=unnecessary-lambda-assignment
      apply_fn=model.apply, params=p, tx=tx)
  return jax.jit(create, out_shardings=shardings, donate_argnums=0)(params), shardings


def abstract_batch(local_batch, batch_size: int, batch_sharding) -> dict:
  """The global batch's shapes and dtypes, from one process's slice of it."""
  return {k: jax.ShapeDtypeStruct((batch_size, *np.shape(v)[1:]), np.asarray(v).dtype,
                                  sharding=batch_sharding) for k, v in local_batch.items()}


def evaluate_uniform(config, spec, params, splits, mesh, keep_ratios=(1.0, 0.5)) -> dict:
  """Held-out top-1 of uniform configurations after exact BN recalibration."""
  model = pruningnet_from_config(spec, config, bn_momentum=0.0)
  c = config.pruningnet
  recal = data.stacked_batches(data.train_batches(splits.train, c.batch_size,
                                                  seed=config.seed + 1, augment=False),
                               0, c.recal_batches)
  eval_set = candidates.stack_eval_set(data.head(splits.holdout, config.search.eval_examples),
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
    out[f"holdout_top1_uniform_{r:g}"] = float(score(params, widths, recal["image"], eval_set))
  return out


def run(config, workdir: str) -> dict:
  """Trains (or resumes) the PruningNet; returns the final held-out figures."""
  validation.validate(config)
  mesh = sharding.make_mesh(config)
  with jax.set_mesh(mesh):
    return _run(config, workdir, mesh)


def _run(config, workdir, mesh) -> dict:
  c = config.pruningnet
  spec = spec_from_config(config)
  splits = datasets.load_splits(config.dataset, spec.resolution)
  model = pruningnet_from_config(spec, config)
  schedule = optim.learning_rate_schedule(c, c.steps)
  tx = optim.make_optimizer(c, c.steps)
  ckpts = checkpoints.Checkpoints(os.path.join(workdir, STAGE), keep=c.max_to_keep)
  writer = MetricWriter(workdir, enabled=distributed.is_primary())
  abstract = jax.eval_shape(lambda: create_state(model, spec, tx, config.seed))
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
  local = data.train_batches(splits.train, c.batch_size, seed=config.seed,
                             process_index=jax.process_index(),
                             process_count=jax.process_count())
  batch_sharding = sharding.batch_sharding(mesh)
  # Compiled before the state exists, and the compiler's freed memory handed back,
  # so the compiler's memory and the state's do not add up in the peak.
  step_fn = jax.jit(make_train_step(
      model, spec, make_sampler(spec, config, workdir), schedule,
      configs_per_step=c.configs_per_step, label_smoothing=c.label_smoothing,
      seed=config.seed), in_shardings=(state_shardings, batch_sharding),
      out_shardings=(state_shardings, sharding.replicated(mesh)), donate_argnums=0).lower(
          target, abstract_batch(local[0], c.batch_size, batch_sharding)).compile()
  host_memory.release_freed()
  state, start = train_loop.restore_or(
      ckpts, target, STAGE, writer,
      init=lambda: create_sharded_state(model, spec, tx, config.seed, mesh, state_shardings)[0])
  state = train_loop.train(
      label=STAGE, state=state, step_fn=step_fn,
      batches=sharding.global_batches(
          data.iterate(local, start, config.dataset.worker_count), batch_sharding),
      start=start, steps=c.steps, batch_size=c.batch_size, ckpts=ckpts, writer=writer,
      log_every=c.log_every, checkpoint_every=c.checkpoint_every,
      progress=config.get("progress", True) and distributed.is_primary(),
      learning_rate_flag="--config.pruningnet.learning_rate")

  results = evaluate_uniform(config, spec, state.params, splits, mesh)
  writer.write(STAGE + "_eval", c.steps, results)
  writer.close()
  print("pruningnet: held-out top-1 after BN recalibration: "
        + ", ".join(f"{k.removeprefix('holdout_top1_')}={v:.3f}" for k, v in results.items()))
  return results
