"""Peak-memory options: `config.cpu_low_memory` (XLA:CPU flags set before the
backend starts) and resuming without allocating the initial state."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gp_jax.runtime import checkpoints, host_memory, sharding, train_loop, xla_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A fresh process: imports jax, applies the config's flags, then compiles 16
# random-normal draws and prints XLA's temporary bytes for them.
_PROBE = """
import sys, jax, ml_collections
from gp_jax.runtime import xla_flags
applied = xla_flags.apply(ml_collections.ConfigDict({"cpu_low_memory": sys.argv[1] == "1"}))
def draws():
  return [jax.random.normal(k, (1 << 18,)) for k in jax.random.split(jax.random.key(0), 16)]
print(int(applied), jax.jit(draws).lower().compile().memory_analysis().temp_size_in_bytes)
"""


def probe(low_memory: bool):
  # What a user's process gets: no test-session XLA flags or optimisation switch.
  env = {k: v for k, v in os.environ.items()
         if k not in ("XLA_FLAGS", "JAX_DISABLE_MOST_OPTIMIZATIONS")}
  out = subprocess.run([sys.executable, "-c", _PROBE, "1" if low_memory else "0"], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=600, check=True)
  applied, temp = out.stdout.split()
  return bool(int(applied)), int(temp)


def test_cpu_low_memory_lowers_xla_temporaries_in_a_fresh_process():
  applied, lean = probe(True)
  not_applied, default = probe(False)
  assert applied and not not_applied
  # 16 draws of 1 MiB each: the concurrency-optimised schedule keeps many
  # draws' temporaries live at once, the sequential one about one.
  assert lean < default / 2, (lean, default)


def test_with_flags_adds_missing_flags_and_keeps_the_users_own():
  mine = "--xla_cpu_enable_concurrency_optimized_scheduler=true --xla_dump_to=/tmp/d"
  merged = xla_flags.with_flags(mine, xla_flags.LOW_MEMORY_CPU).split()
  assert "--xla_cpu_enable_concurrency_optimized_scheduler=true" in merged
  assert "--xla_cpu_enable_concurrency_optimized_scheduler=false" not in merged
  assert "--xla_cpu_copy_insertion_use_region_analysis=true" in merged
  assert "--xla_dump_to=/tmp/d" in merged


def test_apply_after_the_backend_started_warns_and_changes_nothing(monkeypatch):
  jax.devices()  # this process's backend is running
  monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/d")
  config = ml_collections.ConfigDict({"cpu_low_memory": True})
  assert not xla_flags.apply(config)
  assert os.environ["XLA_FLAGS"] == "--xla_dump_to=/tmp/d"
  assert not xla_flags.apply(ml_collections.ConfigDict({"cpu_low_memory": False}))


def test_release_freed_runs_on_this_platform():
  # glibc (Linux CI): malloc_trim exists and returns 0 or 1; elsewhere False.
  assert host_memory.release_freed() in (True, False)


def test_restore_or_builds_the_initial_state_only_when_nothing_is_restored(tmp_path):
  state = {"w": jnp.arange(6.0).reshape(2, 3), "step": jnp.int32(4)}
  abstract = sharding.with_shardings(
      jax.eval_shape(lambda: state),
      jax.tree.map(lambda _: sharding.replicated(sharding.local_mesh()), state))
  ckpts = checkpoints.Checkpoints(str(tmp_path / "ckpt"))
  built = []

  def init():
    built.append(1)
    return state

  fresh, start = train_loop.restore_or(ckpts, abstract, "test", init=init)
  assert start == 0 and built == [1] and fresh is state
  ckpts.save(4, state)
  ckpts.finish()
  restored, start = train_loop.restore_or(ckpts, abstract, "test", init=init)
  assert start == 4 and built == [1]  # not built again
  assert isinstance(restored["w"], jax.Array)  # arrays, not the abstract target
  np.testing.assert_array_equal(restored["w"], state["w"])
