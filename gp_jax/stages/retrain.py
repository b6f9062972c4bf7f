"""Stage `retrain`: train the pruned network (sliced shapes, real speed-up).

Reads W/search/result.json; trains the sliced network from scratch (default, as
MetaPruning), from the PruningNet's generated weights (`retrain.init=pruningnet`), or
from a trained full network with each group's most important channels kept
(`retrain.init=checkpoint`, gp_jax/net/importance.py; `retrain.init_checkpoint=unpruned`:
the full network, trained first in this run), then fine-tuned at
`retrain.finetune_learning_rate`. With `retrain.distill.teacher` the loss adds a
teacher's soft targets on the same augmented batch (`unpruned`: the full network,
trained first in this run).
With `retrain.baseline=uniform` it also trains the uniform-width network at the
same MACs, and with `retrain.unpruned=True` the full network, all with the same
schedule and seed. Each network lives in W/retrain/<role>/: orbax checkpoints
plus `network.json`, which is all `gp_jax.evaluate` needs to rebuild it.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax.training import train_state

from gp_jax import artifacts
from gp_jax.config.build import make_cost, make_env, spec_from_config
from gp_jax.data import datasets, loader
from gp_jax.hypernet import candidates
from gp_jax.hypernet.pruningnet import PruningNet, pruningnet_from_config
from gp_jax.net import importance, models
from gp_jax.runtime import (checkpoints, distributed, losses, optim, seeds, sharding,
                            train_loop, xla_flags)
from gp_jax.runtime.metrics import MetricWriter
from gp_jax.search import methods

STAGE = artifacts.RETRAIN


class RetrainState(train_state.TrainState):
  batch_stats: Any = None
  teacher: Any = None  # the distillation teacher's variables (never trained), or None


def make_train_step(model, num_classes: int, label_smoothing: float, schedule,
                    teacher=None, distill_weight: float = 0.0, temperature: float = 1.0):
  """`step(state, batch) -> (state, metrics)`, one SGD step of the sliced `model`.

  The loss is the labels' cross-entropy over `num_classes` (with `label_smoothing`);
  `schedule` (step -> learning rate) is only logged. With a `teacher` module (its
  variables in `state.teacher`) the loss is `(1 - distill_weight) * cross-entropy +
  distill_weight * KL` to its soft targets at `temperature`, on the same augmented
  batch."""
  def train_step(state, batch):
    def loss_fn(params):
      logits, updates = model.apply({"params": params, "batch_stats": state.batch_stats},
                                    batch["image"], train=True, mutable=["batch_stats"])
      loss, accuracy = losses.classification(logits, batch["label"], num_classes,
                                             label_smoothing)
      if teacher is not None:
        targets = teacher.apply(state.teacher, batch["image"], train=False)
        loss = ((1 - distill_weight) * loss
                + distill_weight * losses.distillation(logits, targets, temperature))
      return loss, (updates["batch_stats"], accuracy)

    (loss, (batch_stats, accuracy)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    metrics = {"loss": loss, "accuracy": accuracy,
               "learning_rate": schedule(state.step), "grad_norm": optim.global_norm(grads)}
    state = state.apply_gradients(grads=grads).replace(batch_stats=batch_stats)
    return state, metrics

  return train_step


def pruningnet_variables(config, spec, widths, workdir, splits, mesh=None):
  """Sliced variables from the PruningNet: generated kernels, its BN/classifier
  parameters, and BN statistics recalibrated for this configuration."""
  pn_params, _ = artifacts.load_pruningnet(config, spec, workdir, mesh)
  model = pruningnet_from_config(spec, config, bn_momentum=0.0)
  w = jnp.asarray(widths)
  kernels = model.apply({"params": pn_params}, w, method=PruningNet.kernels)
  recal = loader.recalibration_images(splits.train, config.pruningnet.batch_size,
                                      config.pruningnet.recal_batches,
                                      seeds.seed(config, "recal_retrain"))
  recal = recal if mesh is None else sharding.put(recal, sharding.replicated(mesh))
  stats = candidates.recalibrate_batch_stats(model, pn_params, w, jnp.asarray(recal))
  params = jax.tree.map(lambda x: x, dict(pn_params["net"]))
  for name, kernel in kernels.items():
    layer = dict(params.get(name, {}))
    layer["conv"] = {**layer.get("conv", {}), "kernel": kernel}
    params[name] = layer
  full = {"params": params, "batch_stats": stats["net"]}
  return models.slice_variables(full, spec, widths)


def teacher_path(config, workdir) -> str:
  """The distillation teacher's checkpoint directory ('' without distillation)."""
  teacher = config.retrain.distill.teacher
  return artifacts.network_dir(workdir, "unpruned") if teacher == "unpruned" else teacher


def init_path(config, workdir, role: str) -> str:
  """The trained network `role` starts from ('' if none): retrain.init=checkpoint's, but
  never the run's own unpruned network for itself."""
  c = config.retrain
  if artifacts.start_of(c, role) != "checkpoint":
    return ""
  return (artifacts.network_dir(workdir, "unpruned") if c.init_checkpoint == "unpruned"
          else c.init_checkpoint)


def optimizer_section(config, role_init: str):
  """retrain's optimiser fields, at finetune_learning_rate for a network that starts
  from a trained one (where set)."""
  c = config.retrain
  if not role_init or not c.finetune_learning_rate:
    return c
  c = c.copy_and_resolve_references()
  c.learning_rate = c.finetune_learning_rate
  return c


def load_teacher(config, workdir):
  """(teacher module, its variables), or (None, None) without distillation."""
  path = teacher_path(config, workdir)
  if not path:
    return None, None
  t_spec, t_widths, t_vars, t_record, _ = artifacts.load_network(path)
  module = models.ConvNet(t_spec, tuple(t_widths),
                          input_norm=artifacts.input_norm_from_record(t_record))
  return module, t_vars


def train_network(config, spec, record, workdir, splits, writer, mesh):
  """Trains (or resumes) one sliced network into W/retrain/<role>/: data-parallel
  over the mesh's `data` axis, the (small) state replicated.

  Args:
    record: its network.json (`artifacts.network_record`): role, widths, input norm.
    splits: the dataset's `Splits` (train, held-out, test).
    writer: the `MetricWriter` its rows go to.
  """
  c = config.retrain
  role, widths = record["role"], record["widths"]
  directory = artifacts.network_dir(workdir, role)
  model = models.ConvNet(spec, tuple(widths), input_norm=artifacts.input_norm_from_record(record))
  start_from = init_path(config, workdir, role)
  opt = optimizer_section(config, start_from)
  schedule = optim.learning_rate_schedule(opt, c.steps)
  tx = optim.make_optimizer(opt, c.steps)
  # The teacher (never itself: the unpruned network trains on the labels alone).
  teacher, teacher_vars = (None, None) if role == "unpruned" else load_teacher(config, workdir)
  create = lambda v: RetrainState.create(  # pylint: disable=unnecessary-lambda-assignment
      apply_fn=model.apply, params=v["params"], tx=tx, batch_stats=v["batch_stats"])
  replicated = sharding.replicated(mesh)
  # The state is created once: its program is compiled unoptimised. Optimised, the
  # many random draws of a network's init took longer to compile than its train step,
  # for a program that runs once.
  if artifacts.start_of(c, role) == "pruningnet":
    variables = pruningnet_variables(config, spec, widths, workdir, splits, mesh)
    state = xla_flags.run_unoptimised(create, variables, out_shardings=replicated)
  elif start_from:
    _, _, trained, _, _ = artifacts.load_network(start_from)
    variables = importance.prune_variables(trained, spec, widths, c.importance)
    state = xla_flags.run_unoptimised(create, variables, out_shardings=replicated)
  else:
    state = xla_flags.run_unoptimised(lambda k: create(models.init_variables(model, k)),
                                      jax.random.key(seeds.seed(config, "init")),
                                      out_shardings=replicated)
  if teacher_vars is not None:  # placed, not compiled into the init's program
    state = state.replace(teacher=sharding.put(teacher_vars, replicated))
  if distributed.is_primary():
    artifacts.write_network_record(directory, record)
  ckpts = checkpoints.Checkpoints(directory, keep=c.max_to_keep)
  label = f"{STAGE}/{role}"
  state, start = train_loop.restore_or(ckpts, state, label, writer)
  batch_sharding = sharding.batch_sharding(mesh)
  step_fn = jax.jit(make_train_step(model, spec.num_classes, c.label_smoothing, schedule,
                                    teacher, c.distill.weight, c.distill.temperature),
                    in_shardings=(replicated, batch_sharding),
                    out_shardings=(replicated, replicated), donate_argnums=0)
  train_split = loader.concat(splits.train, splits.holdout) if c.use_holdout else splits.train
  local = loader.train_batches(train_split, c.batch_size, seed=seeds.seed(config, "train_data"),
                               process_index=jax.process_index(),
                               process_count=jax.process_count())
  batches = sharding.global_batches(
      loader.iterate(local, start, config.dataset.worker_count), batch_sharding)
  loop = train_loop.Loop.from_config(config, "retrain", label)
  if opt is not c:  # a fine-tune: a non-finite loss asks to lower its own rate
    loop = dataclasses.replace(loop, learning_rate_flag="--config.retrain.finetune_learning_rate")
  train_loop.train(loop, state, step_fn, batches, start, ckpts, writer)


def networks_to_train(config, spec, result, workdir) -> list[dict]:
  """The pruned network, and the uniform one at the same target of the same
  constraint (the search result's), and the unpruned one, as configured."""
  cost = make_cost(config, spec, workdir, result.constraint)
  target = result.target_ratio
  records = [artifacts.network_record(config, spec, result.widths, "pruned",
                                      result.method, cost)]
  if config.retrain.baseline == "uniform":
    widths = methods.uniform_widths(make_env(config, spec, target, cost))
    records.append(artifacts.network_record(config, spec, widths, "uniform", "uniform", cost))
  r = config.retrain
  first = r.distill.teacher == "unpruned" or (r.init == "checkpoint"
                                              and r.init_checkpoint == "unpruned")
  if r.unpruned or first:
    # The teacher or the start first: the others learn from it, or start from it.
    at = 0 if first else len(records)
    records.insert(at, artifacts.network_record(config, spec, spec.max_widths, "unpruned",
                                                "unpruned", cost))
  return records


def run(config, workdir: str) -> list[dict]:
  """Trains (or resumes) each network to retrain; returns their network.json records.
  `config` is validated: gp_jax.main validates it once; call
  `validation.validate(config)` first when calling a stage yourself."""
  return sharding.run_on_mesh(_run, config, workdir)


def _run(config, workdir, mesh) -> list[dict]:
  spec = spec_from_config(config)
  result = artifacts.read_search_result(spec, workdir)
  splits = datasets.load_splits(config.dataset, spec.resolution)
  writer = MetricWriter(workdir, enabled=distributed.is_primary())
  records = networks_to_train(config, spec, result, workdir)
  for record in records:
    print(f"retrain: {record['role']} ({record['method']}): {record['macs'] / 1e6:.2f}M MACs "
          f"({record['macs_ratio']:.3f}), {record['params'] / 1e3:.1f}K params")
    train_network(config, spec, record, workdir, splits, writer, mesh)
  writer.close()
  return records
