"""Exact resume: a run killed (SIGKILL) or preempted (SIGTERM) in any stage and run
again with the same command ends bit-identical to an uninterrupted run.

The kills are real signals to the `gp_jax.main` subprocess, sent by itself at a
chosen step through `GP_JAX_FAULT` (gp_jax/runtime/faults.py), after its first checkpoint.
"""
import glob
import os
import re
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from gp_jax.runtime import checkpoints, metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIPELINE = ["--config=tests/tiny_config.py", "--stages=pruningnet,search,retrain",
            "--config.pruningnet.steps=8", "--config.pruningnet.checkpoint_every=2",
            "--config.pruningnet.log_every=1", "--config.search.method=graph_rl",
            "--config.retrain.steps=6", "--config.retrain.batch_size=16",
            "--config.retrain.checkpoint_every=2", "--config.retrain.log_every=1",
            "--config.retrain.unpruned=False"]


def run(workdir, *extra, fault=None):
  env = dict(os.environ)
  env.pop("GP_JAX_FAULT", None)
  if fault:
    env["GP_JAX_FAULT"] = fault
  return subprocess.run([sys.executable, "-m", "gp_jax.main", f"--workdir={workdir}",
                         *PIPELINE, *extra], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=900)


def latest(directory):
  ckpts = checkpoints.Checkpoints(directory, owner=False)
  step = ckpts.latest_step()
  return step, ckpts.restore(step)


def assert_same_tree(a, b):
  la, lb = jax.tree.leaves_with_path(a), jax.tree.leaves_with_path(b)
  assert [p for p, _ in la] == [p for p, _ in lb]
  for (path, x), (_, y) in zip(la, lb):
    assert np.array_equal(np.asarray(x), np.asarray(y)), jax.tree_util.keystr(path)


def logged_steps(workdir):
  return [(r["stage"], r["step"]) for r in metrics.read_metrics(workdir)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("uninterrupted") / "w")
  proc = run(workdir)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return workdir


def test_sigkill_in_every_stage_and_a_corrupt_checkpoint_resume_bit_identical(
    reference, tmp_path):
  workdir = str(tmp_path / "w")
  # 1. Killed in the PruningNet's step 8 (checkpoints 2 and 4 done, 6 likely in flight).
  proc = run(workdir, fault="pruningnet:7")
  assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
  steps = sorted(int(d) for d in os.listdir(os.path.join(workdir, "pruningnet")) if d.isdigit())
  assert len(steps) >= 2 and max(steps) <= 6
  # ... and the newest checkpoint then gets truncated on disk.
  newest = os.path.join(workdir, "pruningnet", str(max(steps)))
  data_file = max(glob.glob(os.path.join(newest, "**", "d", "*"), recursive=True),
                  key=os.path.getsize)
  os.truncate(data_file, os.path.getsize(data_file) // 2)

  # 2. Resumes from an older checkpoint (warning names the bad one), killed in search round 3.
  proc = run(workdir, fault="search:2")
  assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
  assert f"checkpoint {newest} is unreadable" in proc.stderr
  assert glob.glob(os.path.join(workdir, "pruningnet.corrupt", f"{max(steps)}-*"))
  assert not os.path.exists(os.path.join(workdir, "search", "result.json"))

  # 3. Search resumes after round 1 or 2 (2's save may have been cut short); retrain
  #    of the pruned net killed at its step 6 (checkpoint 2 done, 4 done or in flight).
  proc = run(workdir, fault="retrain/pruned:5")
  assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
  assert re.search(r"resuming after round [12]\b", proc.stdout), proc.stdout

  # 4. Finishes.
  proc = run(workdir)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert re.search(r"retrain/pruned: resuming from step [24]\b", proc.stdout), proc.stdout

  for stage in ("pruningnet", os.path.join("retrain", "pruned"),
                os.path.join("retrain", "uniform")):
    step_a, state_a = latest(os.path.join(reference, stage))
    step_b, state_b = latest(os.path.join(workdir, stage))
    assert step_a == step_b
    assert_same_tree(state_a, state_b)  # params, optimizer state, BN statistics
  for name in ("result.json", "candidates.jsonl"):
    with open(os.path.join(reference, "search", name)) as a, \
         open(os.path.join(workdir, "search", name)) as b:
      assert a.read() == b.read()
  assert logged_steps(workdir) == logged_steps(reference)


def test_sigterm_saves_exits_75_and_resumes_bit_identical(reference, tmp_path):
  workdir = str(tmp_path / "w")
  proc = run(workdir, "--stages=pruningnet", fault="pruningnet:2:TERM")
  assert proc.returncode == 75, proc.stderr[-3000:]
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and "preempted" in lines[0] and "step 3" in lines[0]
  assert "3" in os.listdir(os.path.join(workdir, "pruningnet"))  # saved off-schedule
  proc = run(workdir, "--stages=pruningnet")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "resuming from step 3" in proc.stdout
  _, state_a = latest(os.path.join(reference, "pruningnet"))
  _, state_b = latest(os.path.join(workdir, "pruningnet"))
  assert_same_tree(state_a, state_b)
