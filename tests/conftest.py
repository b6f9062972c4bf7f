"""Fixtures shared by the stage tests: a tiny digits config and one trained PruningNet.

The suite is bound by XLA compilation on one core (most of a smoke run is
compiling), so before jax is imported, here and in every process a test starts
(they inherit the environment):
- XLA's backend optimisations are off: the tests check what the programs compute,
  not how fast, and compiling without them takes markedly less time. `make bench`
  and every user run keep them on.
- XLA:CPU's older loop emitters compile the fusions (`--xla_cpu_use_fusion_emitters
  =false`): with the optimisations off they compile the smoke configs' PruningNet
  stages faster and shorten the whole suite; with the optimisations on they do not
  help (BENCHMARKS.md table 9), so user runs keep XLA's default.
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
