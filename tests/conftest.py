"""Fixtures shared by the stage tests: a tiny digits config and one trained PruningNet."""
import os

import pytest

from tests import tiny_config as tiny_config_file
from gp_jax.stages import pruningnet as pruningnet_stage


def tiny_config():
  return tiny_config_file.get_config()


@pytest.fixture(scope="session")
def trained_workdir(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("pn"))
  pruningnet_stage.run(tiny_config(), workdir)
  return workdir



def link_pruningnet(trained_workdir, workdir):
  """A fresh workdir that reuses the trained PruningNet."""
  os.makedirs(workdir)
  os.symlink(os.path.join(trained_workdir, "pruningnet"), os.path.join(workdir, "pruningnet"))
