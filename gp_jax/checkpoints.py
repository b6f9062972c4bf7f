"""Orbax checkpoint managers for the stages' train states."""
from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp


def manager(directory: str, *, max_to_keep: int = 3) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
  return ocp.CheckpointManager(os.path.abspath(directory), options=options)


def save(mngr: ocp.CheckpointManager, step: int, state) -> None:
  mngr.save(int(step), args=ocp.args.StandardSave(state), force=True)


def restore_latest(mngr: ocp.CheckpointManager, template):
  """(state, step) from the latest checkpoint, or (None, None) if there is none."""
  step = mngr.latest_step()
  if step is None:
    return None, None
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
  return mngr.restore(step, args=ocp.args.StandardRestore(abstract)), step
