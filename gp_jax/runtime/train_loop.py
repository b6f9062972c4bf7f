"""The training loop the stages share: resume, progress bar, metrics, checkpoints,
NaN guard, preemption."""
from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np
from tqdm import tqdm

from gp_jax.runtime import distributed, faults, preemption
from gp_jax.runtime.errors import UserError


class NonFiniteLossError(UserError):
  """The loss became NaN/Inf; the last good checkpoint stays the latest."""


def restore_or(ckpts, state, label: str, writer=None, init=None):
  """(state, first step): the newest readable checkpoint if there is one, else `state` at 0.

  With `init`, `state` is only the restore target (ShapeDtypeStructs with
  shardings will do) and `init()` makes the initial state when nothing is
  restored, so a resumed run never allocates it. On resume, metric rows this
  stage logged after the checkpoint are dropped (they are logged again), so
  metrics.jsonl reads as one uninterrupted run.
  """
  restored, step = ckpts.restore_latest(state)
  if restored is None:
    step = 0
  else:
    print(f"{label}: resuming from step {step} ({ckpts.directory})")
  if writer is not None:
    writer.drop_after(label, int(step))
  if restored is None:
    return (state if init is None else init()), 0
  return restored, int(step)


@dataclasses.dataclass(frozen=True)
class Loop:
  """How one stage's loop runs."""
  label: str  # names its progress bar, metric rows and errors ("retrain/pruned")
  steps: int  # the step it ends at
  batch_size: int  # the global batch (for images/s)
  log_every: int  # metrics (and the NaN check) every this many steps
  checkpoint_every: int  # and a checkpoint every this many, and at the end
  progress: bool  # a progress bar
  learning_rate_flag: str  # the flag a non-finite loss tells the user to lower

  @classmethod
  def from_config(cls, config, section: str, label: str) -> "Loop":
    """The loop of `config.<section>` (`pruningnet` or `retrain`); the bar is drawn by
    the primary process only, unless `config.progress` is False."""
    c = config[section]
    return cls(label=label, steps=c.steps, batch_size=c.batch_size, log_every=c.log_every,
               checkpoint_every=c.checkpoint_every,
               progress=config.get("progress", True) and distributed.is_primary(),
               learning_rate_flag=f"--config.{section}.learning_rate")


def train(loop: Loop, state, step_fn, batches, start: int, ckpts, writer):
  """Runs `step_fn` (state, batch) -> (state, metrics) from step `start` to
  `loop.steps` on `batches`, an iterator whose first batch is batch `start` (see
  `loader.iterate`); `ckpts` (runtime.checkpoints) saves the state, `writer`
  (runtime.metrics) logs the metrics.

  Logs every `log_every` steps, checkpoints every `checkpoint_every` and at the
  end. A non-finite loss stops before the next checkpoint is written. SIGTERM
  saves a checkpoint after the current step and raises `preemption.Preempted`.
  """
  label, steps, log_every = loop.label, loop.steps, loop.log_every
  bar = tqdm(total=steps, initial=start, desc=label, unit="step", mininterval=1.0,
             disable=not loop.progress)
  t0, last = time.perf_counter(), start
  for step in range(start, steps):
    faults.maybe_inject(label, step)
    state, metrics = step_fn(state, next(batches))
    done = step + 1
    if jax.process_count() == 1:
      stopping = preemption.requested()
    else:  # every process must agree to save and stop: asked at logging steps only
      stopping = ((done % log_every == 0 or done == steps)
                  and distributed.any_process(preemption.requested()))
    checkpoint = done % loop.checkpoint_every == 0 or done == steps or stopping
    if done % log_every == 0 or checkpoint:
      metrics = jax.device_get(metrics)
      bad = sorted(k for k, v in metrics.items() if not np.all(np.isfinite(v)))
      if bad:  # ReLU can hide NaN weights from the loss, so the gradients count too
        ckpts.finish()  # the save in flight holds finite, checked state
        raise NonFiniteLossError(
            f"non-finite {label} {'/'.join(bad)} detected at step {done} (checked every "
            f"{log_every} steps); the last good checkpoint (step {ckpts.latest_step()}) "
            f"stays the latest: lower {loop.learning_rate_flag} and rerun")
      now = time.perf_counter()
      metrics["images_per_sec"] = (done - last) * loop.batch_size / max(now - t0, 1e-9)
      t0, last = now, done
      writer.write(label, done, metrics)
      bar.set_postfix(loss=f"{metrics['loss']:.3f}", acc=f"{metrics['accuracy']:.3f}",
                      img_s=f"{metrics['images_per_sec']:.0f}")
      if checkpoint:
        ckpts.save(done, state)
    bar.update(1)
    if stopping:
      bar.close()
      ckpts.finish()
      writer.flush()
      raise preemption.stop(f"during {label} at step {done}")
  bar.close()
  ckpts.finish()
  return state
