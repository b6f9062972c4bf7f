"""The training loop the stages share: resume, progress bar, metrics, checkpoints, NaN guard."""
from __future__ import annotations

import time

import jax
import numpy as np
from tqdm import tqdm

from gp_jax import checkpoints
from gp_jax.errors import UserError


class NonFiniteLossError(UserError):
  """The loss became NaN/Inf; the last good checkpoint stays the latest."""


def restore_or(mngr, state, label: str):
  """(state, first step): the latest checkpoint if there is one, else `state` at 0."""
  restored, step = checkpoints.restore_latest(mngr, state)
  if restored is None:
    return state, 0
  print(f"{label}: resuming from step {step} ({mngr.directory})")
  return restored, int(step)


def train(*, label: str, state, step_fn, batches, start: int, steps: int, batch_size: int,
          mngr, writer, log_every: int, checkpoint_every: int, progress: bool,
          learning_rate_flag: str):
  """Runs `step_fn` from `start` to `steps`; batch `s` is `batches[s]`.

  Logs every `log_every` steps, checkpoints every `checkpoint_every` and at the
  end. A non-finite loss stops before the next checkpoint is written.
  """
  bar = tqdm(total=steps, initial=start, desc=label, unit="step", mininterval=1.0,
             disable=not progress)
  t0, last = time.perf_counter(), start
  for step in range(start, steps):
    state, metrics = step_fn(state, batches[step])
    done = step + 1
    checkpoint = done % checkpoint_every == 0 or done == steps
    if done % log_every == 0 or checkpoint:
      metrics = jax.device_get(metrics)
      if not np.isfinite(metrics["loss"]):
        raise NonFiniteLossError(
            f"non-finite {label} loss at step {done}; the last good checkpoint (step "
            f"{mngr.latest_step()}) is kept: lower {learning_rate_flag} and rerun")
      now = time.perf_counter()
      metrics["images_per_sec"] = (done - last) * batch_size / max(now - t0, 1e-9)
      t0, last = now, done
      writer.write(label, done, metrics)
      bar.set_postfix(loss=f"{metrics['loss']:.3f}", acc=f"{metrics['accuracy']:.3f}",
                      img_s=f"{metrics['images_per_sec']:.0f}")
      if checkpoint:
        checkpoints.save(mngr, done, state)
    bar.update(1)
  bar.close()
  mngr.wait_until_finished()
  return state
