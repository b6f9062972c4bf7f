"""Runs the GraphPruning pipeline stages for a config into a workdir.

    python -m gp_jax.main --config=configs/digits_resnet20.py --workdir=W \
        [--stages=pruningnet] [--config.pruningnet.steps=50] [--config.mesh.model=2]

Multi-host: every process runs the same command, with
`--coordinator_address=HOST:PORT --num_processes=N --process_id=I`, or with
`--coordinator_address=auto` where `jax.distributed.initialize()` finds them
(TPU pods, SLURM's srun); see `launch/` and docs/scaling.md.

Each stage reads the previous stage's output from the workdir, writes its own,
and resumes when run again (after a kill, SIGTERM (exit 75) or a crash). The
config is validated before anything is written; one run at a time holds the
workdir's lock.
"""
import contextlib

import jax
from absl import flags, logging
from ml_collections import config_flags

from gp_jax.api import STAGES  # name -> run(config, workdir)
from gp_jax.config import validation
from gp_jax.data import datasets
from gp_jax.runtime import cli, distributed, preemption, sharding, workdir_lock, xla_flags
from gp_jax.runtime.errors import unknown_name, UserError

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints and results.")
_STAGES = flags.DEFINE_list("stages", ",".join(STAGES), "Stages to run, in order.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", "", "Multi-host: HOST:PORT of process 0 (with --num_processes "
    "and --process_id), or 'auto' (jax.distributed.initialize() finds them); empty: one "
    "process unless an srun step of several tasks or a TPU pod is detected.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", 0, "Multi-host: number of processes.")
_PROCESS_ID = flags.DEFINE_integer("process_id", -1, "Multi-host: this process's index.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
  config = cli.load_config(_CONFIG)
  xla_flags.apply(config)  # before anything starts JAX's backend
  for stage in _STAGES.value:
    if stage not in STAGES:
      raise unknown_name("stage", stage, STAGES)
  validation.validate(config)  # every check before anything is written
  if set(_STAGES.value) & {"pruningnet", "search", "retrain"}:
    datasets.check_available(config.dataset)
  distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  sharding.make_mesh(config)  # the mesh fits the devices, the batches split over it
  # The primary process holds the workdir (the others write only checkpoint shards).
  primary = distributed.is_primary()
  with workdir_lock.hold(_WORKDIR.value) if primary else contextlib.nullcontext():
    logging.info("process %d of %d; JAX devices: %s", jax.process_index(),
                 jax.process_count(), jax.devices())
    for stage in _STAGES.value:
      if distributed.any_process(preemption.requested()):
        raise preemption.stop(f"before stage {stage}")
      STAGES[stage](config, _WORKDIR.value)
      distributed.barrier(f"after stage {stage}")


def run():
  """The `gp-jax` console script."""
  cli.run(main)


if __name__ == "__main__":
  run()
