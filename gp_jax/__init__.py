"""gp_jax: GraphPruning in JAX/Flax.

The public API (`gp_jax/api.py`), loaded on first use so that importing a module
of the package (or a config) does not start the whole pipeline's imports:

    gp_jax.get_config(path)       a config file's config (`path[:arg]`)
    gp_jax.prune(config, workdir) run the pipeline; returns the report
    gp_jax.load(workdir)          the pruned network: .module, .variables, .apply(images)
"""
import importlib

__version__ = "0.1.0"
__all__ = ["get_config", "prune", "load", "PrunedNetwork", "STAGES"]


def __getattr__(name):
  # Loaded by name on first use: `from gp_jax.net import models` inside the package never
  # reaches the API (an import statement here would read as a circle through it).
  if name in __all__:
    return getattr(importlib.import_module("gp_jax.api"), name)
  raise AttributeError(f"module 'gp_jax' has no attribute {name!r}")
