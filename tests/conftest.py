"""Fixtures shared by the stage tests: a tiny digits config and one trained PruningNet."""
import os

import pytest

from configs import digits_resnet20
from gp_jax.stages import pruningnet as pruningnet_stage


def tiny_config():
  config = digits_resnet20.get_config()
  config.progress = False
  config.dataset.resolution = 16
  p = config.pruningnet
  p.steps, p.batch_size, p.log_every, p.checkpoint_every = 4, 16, 2, 4
  p.gcn_features, p.head_hidden, p.recal_batches = 16, 8, 1
  s = config.search
  s.evaluations, s.population, s.recal_batches, s.recal_batch_size = 16, 4, 1, 16
  s.eval_batch_size = 100
  s.rl.warmup_episodes, s.rl.hidden, s.rl.batch_size = 4, 16, 8
  return config


@pytest.fixture(scope="session")
def trained_workdir(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("pn"))
  pruningnet_stage.run(tiny_config(), workdir)
  return workdir



def link_pruningnet(trained_workdir, workdir):
  """A fresh workdir that reuses the trained PruningNet."""
  os.makedirs(workdir)
  os.symlink(os.path.join(trained_workdir, "pruningnet"), os.path.join(workdir, "pruningnet"))
