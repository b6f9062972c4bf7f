"""Multi-host runs: joining the JAX processes, who writes, and agreeing across processes.

Every process runs the same program on its own devices. `initialize` joins them
(explicit flags, or auto-detection on a TPU pod / under SLURM). Process 0 is
the *primary*: it alone writes metrics, plots, result files and takes the
workdir lock; all processes take part in every computation and in orbax saves
and restores. Stages end with `barrier`, so a later stage never reads a file
the primary is still writing.
"""
from __future__ import annotations

import os

import jax
import numpy as np
from jax.experimental import multihost_utils

from gp_jax.runtime import preemption
from gp_jax.runtime.errors import UserError


def cluster_detected() -> str:
  """The launcher that started several processes ('' when there is none)."""
  # A step of several tasks started by srun (not the batch script itself, whose
  # job may have many tasks but which runs once).
  if int(os.environ.get("SLURM_STEP_NUM_TASKS", "1") or 1) > 1 and "SLURM_PROCID" in os.environ:
    return "slurm"
  hosts = os.environ.get("TPU_WORKER_HOSTNAMES", "")
  if len([h for h in hosts.split(",") if h.strip()]) > 1:
    return "tpu_pod"
  return ""


def initialize(coordinator_address: str = "", num_processes: int = 0,
               process_id: int = -1) -> None:
  """Joins the processes of a multi-host run; a no-op for a single process.

  With `coordinator_address` (host:port of process 0) the three values are
  given explicitly. `coordinator_address="auto"` lets `jax.distributed.initialize()`
  find them (TPU pods, SLURM, Open MPI, ...), as the launch scripts do. Empty:
  the same when SLURM's srun or a TPU pod is detected, else a single process.
  """
  if coordinator_address and coordinator_address != "auto":
    if num_processes < 1 or not 0 <= process_id < num_processes:
      raise UserError(f"--process_id must be in [0, --num_processes) with --num_processes "
                      f">= 1, got {process_id} of {num_processes}")
    if num_processes > 1:
      _join(dict(coordinator_address=coordinator_address, num_processes=num_processes,
                 process_id=process_id))
  elif num_processes > 1 or process_id >= 0:
    raise UserError("--num_processes/--process_id need --coordinator_address=HOST:PORT "
                    "(the address of process 0)")
  elif coordinator_address == "auto" or cluster_detected():
    _join({})


def _join(kwargs) -> None:
  # Cross-process collectives between CPU devices (tests, laptops) go through
  # gloo; GPU and TPU devices have their own.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(**kwargs)
  # jax's own preemption notifier takes SIGTERM over; ours saves and exits 75, with
  # every process agreeing on the step (see `any_process` in train_loop and search).
  preemption.install()


def is_primary() -> bool:
  return jax.process_index() == 0


def barrier(name: str) -> None:
  """Waits until every process reaches `name`."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


def any_process(flag: bool) -> bool:
  """True on every process if `flag` is true on any (e.g. one got SIGTERM)."""
  if jax.process_count() == 1:
    return bool(flag)
  return bool(np.any(multihost_utils.process_allgather(np.asarray([flag], np.int32))))
