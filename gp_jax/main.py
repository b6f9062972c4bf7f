"""Runs the GraphPruning pipeline stages for a config into a workdir.

    python -m gp_jax.main --config=configs/digits_resnet20.py --workdir=W \
        [--stages=pruningnet] [--config.pruningnet.steps=50]

Each stage reads the previous stage's output from the workdir, writes its own,
and resumes when run again (after a kill, SIGTERM (exit 75) or a crash). The
config is validated before anything is written; one run at a time holds the
workdir's lock.
"""
import jax
from absl import flags, logging
from ml_collections import config_flags

from gp_jax import cli, data, evaluate, preemption, validation, workdir_lock
from gp_jax.errors import UserError, unknown_name
from gp_jax.stages import pruningnet, retrain, search

# name -> run(config, workdir)
STAGES = {"pruningnet": pruningnet.run, "search": search.run, "retrain": retrain.run,
          "eval": evaluate.run_stage}

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints and results.")
_STAGES = flags.DEFINE_list("stages", ",".join(STAGES), "Stages to run, in order.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
  config = cli.load_config(_CONFIG)
  for stage in _STAGES.value:
    if stage not in STAGES:
      raise unknown_name("stage", stage, STAGES)
  validation.validate(config)  # every check before anything is written
  if set(_STAGES.value) & {"pruningnet", "search", "retrain"}:
    data.check_available(config.dataset)
  with workdir_lock.hold(_WORKDIR.value):
    logging.info("JAX devices: %s", jax.devices())
    for stage in _STAGES.value:
      if preemption.requested():
        raise preemption.stop(f"before stage {stage}")
      STAGES[stage](config, _WORKDIR.value)


if __name__ == "__main__":
  cli.run(main)
