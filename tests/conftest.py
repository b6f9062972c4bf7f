"""Fixtures shared by the stage tests: a tiny digits config and one trained PruningNet.

The suite is bound by XLA compilation on one core (a 2-core EPYC spends three
quarters of a smoke run compiling), so before jax is imported, here and in every
process a test starts (they inherit the environment):
- XLA's backend optimisations are off: the tests check what the programs compute,
  not how fast, and compiling without them took 0.64x the time for the ResNet-50
  smoke PruningNet stage. `make bench` and every user run keep them on.
- XLA:CPU's older loop emitters compile the fusions (`--xla_cpu_use_fusion_emitters
  =false`): with the optimisations off, the smoke configs' PruningNet stage compiled
  in 0.71x (MobileNetV2), 0.79x (ResNet-50) and 0.88x (ResNet-56) the time, and the
  suite took 12.0 instead of 13.9 minutes (2-core AMD EPYC, 2026-12-01). With the
  optimisations on they compiled no faster or slower (1.5x, ResNet-56), so user
  runs keep XLA's default.
- one persistent compilation cache serves the whole session, fresh each session,
  so a program compiled by one test or subprocess (the resume and multi-process
  tests rerun the same pipeline) is loaded, not compiled again.
"""
import atexit
import os
import shutil
import tempfile

if "JAX_COMPILATION_CACHE_DIR" not in os.environ:  # pytest-xdist workers inherit it
  _cache = tempfile.mkdtemp(prefix="gp_jax_test_xla_cache_")
  atexit.register(shutil.rmtree, _cache, ignore_errors=True)
  os.environ.update(JAX_COMPILATION_CACHE_DIR=_cache,
                    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                    JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1",
                    JAX_DISABLE_MOST_OPTIMIZATIONS="1",
                    XLA_FLAGS=" ".join([os.environ.get("XLA_FLAGS", ""),
                                        "--xla_cpu_use_fusion_emitters=false"]).strip())

import pytest  # noqa: E402

from tests import tiny_config as tiny_config_file  # noqa: E402
from gp_jax.stages import pruningnet as pruningnet_stage  # noqa: E402


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
