"""The device mesh and where every array lives on it.

A `jax.make_mesh` mesh with two axes: `data` (the batch and the search's
candidate populations are split over it) and `model` (the PruningNet's large
kernel-head output matrices, which make MetaPruning run out of memory, are
split over it). Everything else is replicated. `config.mesh.data` and
`config.mesh.model` size the axes; -1 takes all remaining devices.

Arrays are built directly as global arrays: the train state by a jit with
`out_shardings`, batches from each process's slice with
`jax.make_array_from_process_local_data`, and values every process knows in
full (held-out sets, populations) with `jax.make_array_from_callback`.
"""
from __future__ import annotations

import math

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from gp_jax.runtime.errors import UserError

AXES = ("data", "model")


def check_axes(mesh_config) -> None:
  """The axis sizes' own rule (the device count is checked by `mesh_shape`)."""
  if mesh_config.data == -1 and mesh_config.model == -1:
    raise UserError("at most one of mesh.data and mesh.model can be -1 (all remaining "
                    "devices)")


def mesh_shape(mesh_config, device_count: int) -> tuple[int, int]:
  """(data, model) sizes for `device_count` devices; -1 takes the rest."""
  check_axes(mesh_config)
  data, model = int(mesh_config.data), int(mesh_config.model)
  fixed = (data if data != -1 else 1) * (model if model != -1 else 1)
  if device_count % fixed:
    raise UserError(f"mesh.data x mesh.model = {data} x {model} does not divide the "
                    f"{device_count} devices; pick sizes whose product divides it")
  data = device_count // fixed if data == -1 else data
  model = device_count // fixed if model == -1 else model
  if data * model != device_count:
    raise UserError(f"mesh.data x mesh.model = {data} x {model} = {data * model} must use "
                    f"all {device_count} devices; set one of them to -1")
  return data, model


def run_on_mesh(fn, config, workdir: str):
  """`fn(config, workdir, mesh)` under the config's mesh (`jax.set_mesh`): how
  every stage runs."""
  mesh = make_mesh(config)
  with jax.set_mesh(mesh):
    return fn(config, workdir, mesh)


def make_mesh(config) -> jax.sharding.Mesh:
  """The (data, model) mesh of `config.mesh` over all devices of all processes; a
  UserError if it does not fit them or the batch sizes do not split over it."""
  shape = mesh_shape(config.mesh, jax.device_count())
  for section in ("pruningnet", "retrain"):
    _check_batch(f"{section}.batch_size", config[section].batch_size, shape[0])
  # Auto axes: XLA propagates shardings through the model code (reshapes of the
  # batch into per-configuration slices included); only inputs and state are pinned.
  return jax.make_mesh(shape, AXES, axis_types=(jax.sharding.AxisType.Auto,) * 2)


def local_mesh() -> jax.sharding.Mesh:
  """A 1 x 1 mesh on this process's first device."""
  return jax.make_mesh((1, 1), AXES, devices=jax.local_devices()[:1],
                       axis_types=(jax.sharding.AxisType.Auto,) * 2)


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh) -> NamedSharding:
  """Leading (batch) dimension split over `data`."""
  return NamedSharding(mesh, P("data"))


def population_sharding(mesh) -> NamedSharding:
  """Leading (candidate) dimension split over every device."""
  return NamedSharding(mesh, P(AXES))


def is_head_output(path) -> bool:
  """Whether a tree path ends at a kernel head's output matrix or bias (or their
  optimizer moments, whose paths end the same way)."""
  keys = [str(getattr(k, "key", getattr(k, "name", ""))) for k in path]
  return (any(k.startswith("heads_") for k in keys) and len(keys) >= 2
          and keys[-2] == "out" and keys[-1] in ("kernel", "bias"))


def state_shardings(mesh, abstract_state):
  """Shardings for a PruningNet train state: kernel-head output matrices, their
  biases and their optimizer moments split over `model` along the
  generated-kernel dimension when it divides evenly; the rest replicated.
  (The retrain stage's small state is simply `replicated`.)"""
  model = mesh.shape["model"]

  def place(path, leaf):
    shape = getattr(leaf, "shape", ())
    if model > 1 and is_head_output(path) and shape and shape[-1] % model == 0:
      return NamedSharding(mesh, P(*([None] * (len(shape) - 1)), "model"))
    return NamedSharding(mesh, P())

  return jax.tree_util.tree_map_with_path(place, abstract_state)


def with_shardings(abstract, shardings):
  """ShapeDtypeStructs carrying `shardings` (a restore target)."""
  return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                      abstract, shardings)


def _check_batch(name: str, batch_size: int, data: int) -> None:
  if batch_size % data:
    raise UserError(f"{name} ({batch_size}) must be divisible by the mesh's data axis "
                    f"({data} devices); change it or mesh.data")
  if batch_size % jax.process_count():
    raise UserError(f"{name} ({batch_size}) must be divisible by the "
                    f"{jax.process_count()} processes")


def global_batches(local_batches, sharding):
  """Each process's slices of the global batches -> global arrays."""
  for batch in local_batches:
    yield jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), batch)


def put(tree, sharding):
  """Host values every process holds in full -> global arrays with `sharding`."""
  def one(x):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])
  return jax.tree.map(one, tree)


def per_device_bytes(shardings, abstract) -> int:
  """Bytes one device holds of a sharded tree (the largest shard of each leaf)."""
  total = 0
  for s, a in zip(jax.tree.leaves(shardings), jax.tree.leaves(abstract)):
    total += math.prod(s.shard_shape(a.shape)) * np.dtype(a.dtype).itemsize
  return total
