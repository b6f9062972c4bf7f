"""Orbax checkpoints of one stage's state: async saves, safe retention, fallback restore.

* Saves are asynchronous (training goes on while a checkpoint is written).
  Orbax writes each step to a temporary directory and renames it when it is
  complete, so a kill mid-save leaves no step that looks finished.
* Retention is ours, not orbax's `max_to_keep`: older steps are deleted only
  after the newer save has committed (we wait for it first), so the last good
  checkpoint never goes before a newer one is complete, even when a save fails.
* `restore_latest` tries the newest step first; an unreadable one (truncated,
  missing files) is reported by name and the next older one is tried. An owner
  (the stage that writes here) moves such a step aside to `<dir>.corrupt/` so
  that nothing is lost and the step number can be written again.
"""
from __future__ import annotations

import os
import shutil
import sys
import time

import jax
import orbax.checkpoint as ocp
from jax.sharding import NamedSharding, PartitionSpec as P

from gp_jax.runtime import distributed
from gp_jax.runtime.errors import UserError


class Checkpoints:
  """The checkpoints in one directory; keeps the newest `keep` complete steps."""

  def __init__(self, directory: str, *, keep: int = 3, owner: bool = True):
    self.directory = os.path.abspath(directory)
    self.keep = int(keep)
    self.owner = owner
    options = ocp.CheckpointManagerOptions(max_to_keep=None, create=owner)
    self._mngr = ocp.CheckpointManager(self.directory, options=options,
                                       item_handlers=ocp.StandardCheckpointHandler())

  def steps(self) -> list[int]:
    self._mngr.reload()
    return sorted(self._mngr.all_steps())

  def latest_step(self) -> int | None:
    steps = self.steps()
    return steps[-1] if steps else None

  def save(self, step: int, state) -> None:
    """Starts an async save of `state` at `step` once the previous save has committed."""
    self.finish()
    self._mngr.save(int(step), args=ocp.args.StandardSave(state), force=True)

  def finish(self) -> None:
    """Waits for the save in flight, then deletes steps beyond the newest `keep`."""
    self._mngr.wait_until_finished()
    self._mngr.check_for_errors()
    for step in self.steps()[:-self.keep]:
      self._mngr.delete(step)

  def restore(self, step: int, template=None):
    """The state saved at `step`, shaped and placed like `template`; without one, as
    saved and replicated on every device (whatever mesh wrote it). Raises if unreadable."""
    if template is None:
      everywhere = NamedSharding(jax.make_mesh((jax.device_count(),), ("all",)), P())
      template = jax.tree.map(
          lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=everywhere),
          self._mngr.item_metadata(int(step)).tree)
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    return self._mngr.restore(int(step), args=ocp.args.StandardRestore(abstract))

  def restore_latest(self, template):
    """(state, step) from the newest readable checkpoint, or (None, None) if there is none.

    An unreadable step gets a warning naming it; the next older one is tried.
    If every step is unreadable, a UserError says which directory to move away.
    """
    steps = self.steps()
    for step in reversed(steps):
      try:
        return self.restore(step, template), step
      except Exception as e:  # pylint: disable=broad-except  # truncated, missing, foreign
        reason = " ".join(str(e).split())[:120] or type(e).__name__
        where = os.path.join(self.directory, str(step))
        action = "moved to " + self._quarantine(step) if self.owner else "skipped"
        distributed.barrier(f"checked checkpoint {where}")
        print(f"warning: checkpoint {where} is unreadable ({type(e).__name__}: {reason}); "
              f"{action}; falling back to an older checkpoint", file=sys.stderr)
    if steps:
      raise UserError(f"every checkpoint in {self.directory} is unreadable; move that "
                      "directory away to start this stage over")
    return None, None

  def _quarantine(self, step: int) -> str:
    """Moves an unreadable step aside (the primary process does; see `distributed`)."""
    target_dir = self.directory + ".corrupt"
    if not distributed.is_primary():
      return target_dir
    os.makedirs(target_dir, exist_ok=True)
    target = os.path.join(target_dir, f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
    shutil.move(os.path.join(self.directory, str(step)), target)
    self._mngr.reload()
    return target
