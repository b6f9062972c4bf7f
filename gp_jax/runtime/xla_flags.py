"""Process-wide XLA:CPU flags a config can ask for.

XLA reads `XLA_FLAGS` once, when JAX starts its backend, and these two flags
have no per-program form (XLA:CPU ignores the scheduler option passed to
`jax.jit(compiler_options=...)`), so `apply` sets them in the environment of a
process whose backend has not started yet: `gp_jax.main` calls it first thing.

`config.cpu_low_memory = True` compiles every program for a lower peak memory:
copy insertion with region analysis (no defensive copies of donated parameters
that are read after their update is scheduled) and the sequential scheduler
instead of the concurrency-optimised one (fewer buffers live at once). On the
large ImageNet PruningNets (ResNet-50, MobileNetV2) it halves the step's
temporaries and runs the step faster; on the small digits network it is as often
slower as faster, so the digits config leaves it off (BENCHMARKS.md tables 1-2
and 5 have the figures per network and machine). The flags are for the CPU only;
other backends ignore them.

Per program, `run_unoptimised` compiles a program that runs once (a random
initialisation) without XLA's optimisations: optimising the many threefry draws
of a network's initialiser took longer than compiling its train step.
"""
from __future__ import annotations

import os

from absl import logging

LOW_MEMORY_CPU = {
    "--xla_cpu_copy_insertion_use_region_analysis": "true",
    "--xla_cpu_enable_concurrency_optimized_scheduler": "false",
}


def _backend_started() -> bool:
  from jax._src import xla_bridge  # pylint: disable=import-outside-toplevel
  return xla_bridge.backends_are_initialized()


def with_flags(xla_flags: str, flags: dict[str, str]) -> str:
  """`xla_flags` (an XLA_FLAGS value) plus `flags`; a flag already set there wins."""
  present = {f.split("=", 1)[0] for f in xla_flags.split()}
  extra = [f"{name}={value}" for name, value in flags.items() if name not in present]
  return " ".join([*xla_flags.split(), *extra])


def apply(config) -> bool:
  """Sets the flags `config` asks for in XLA_FLAGS; True when they take effect.

  After the backend has started they cannot: a warning says how to set them.
  """
  if not config.get("cpu_low_memory", False):
    return False
  wanted = with_flags(os.environ.get("XLA_FLAGS", ""), LOW_MEMORY_CPU)
  if wanted == os.environ.get("XLA_FLAGS", ""):
    return True  # already there (a launcher or the user set them)
  if _backend_started():
    logging.warning("cpu_low_memory has no effect: JAX's backend has already started; "
                    "start Python with XLA_FLAGS='%s'", wanted)
    return False
  os.environ["XLA_FLAGS"] = wanted
  return True


# What `jax_disable_most_optimizations` passes to XLA, for one program.
UNOPTIMISED = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def run_unoptimised(fn, *args, **jit_kwargs):
  """`jax.jit(fn, **jit_kwargs)(*args)`, compiled without XLA's optimisations: for a
  program that runs once, where compiling is most of its cost. Its float results
  may differ from the optimised program's in the last bit."""
  import jax  # pylint: disable=import-outside-toplevel
  return jax.jit(fn, **jit_kwargs).lower(*args).compile(compiler_options=UNOPTIMISED)(*args)
