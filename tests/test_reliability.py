"""Checkpoint retention and corruption, the NaN guard, the workdir lock, atomic outputs."""
import glob
import json
import os
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gp_jax.runtime import checkpoints, io_utils, metrics, train_loop, workdir_lock
from gp_jax.runtime.errors import UserError
from gp_jax.stages import pruningnet as pruningnet_stage
from tests.conftest import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def state_at(step):
  return {"w": jnp.arange(20000, dtype=jnp.float32) + step, "step": jnp.int32(step)}


def committed(directory):
  return sorted(int(d) for d in os.listdir(directory) if d.isdigit())


def corrupt(directory, step, how):
  root = os.path.join(directory, str(step))
  if how == "truncated":
    big = max(glob.glob(os.path.join(root, "**", "d", "*"), recursive=True),
              key=os.path.getsize)
    os.truncate(big, os.path.getsize(big) // 3)
  else:  # missing files
    for f in glob.glob(os.path.join(root, "**", "d", "*"), recursive=True):
      os.remove(f)


def test_old_checkpoint_survives_until_the_newer_one_commits(tmp_path):
  ckpts = checkpoints.Checkpoints(str(tmp_path / "c"), keep=1)
  ckpts.save(1, state_at(1))
  ckpts.finish()
  assert committed(ckpts.directory) == [1]
  ckpts.save(2, state_at(2))  # async: step 1 must still be there, whatever step 2's state
  assert 1 in committed(ckpts.directory)
  ckpts.finish()
  assert committed(ckpts.directory) == [2]


def test_failed_save_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
  ckpts = checkpoints.Checkpoints(str(tmp_path / "c"), keep=1)
  ckpts.save(1, state_at(1))
  ckpts.finish()

  def failing(*args, **kwargs):
    raise OSError("disk full (simulated)")

  monkeypatch.setattr(ckpts._mngr, "save", failing)  # pylint: disable=protected-access
  with pytest.raises(OSError):
    ckpts.save(2, state_at(2))
  assert committed(ckpts.directory) == [1]
  restored, step = checkpoints.Checkpoints(ckpts.directory).restore_latest(state_at(0))
  assert step == 1 and float(restored["w"][0]) == 1.0


@pytest.mark.parametrize("how", ["truncated", "missing"])
def test_corrupt_latest_falls_back_with_a_warning(tmp_path, capsys, how):
  directory = str(tmp_path / "c")
  ckpts = checkpoints.Checkpoints(directory, keep=3)
  for s in (1, 2, 3):
    ckpts.save(s, state_at(s))
  ckpts.finish()
  corrupt(directory, 3, how)
  reader = checkpoints.Checkpoints(directory, owner=False)
  restored, step = reader.restore_latest(state_at(0))
  assert step == 2 and float(restored["w"][5]) == 7.0
  assert f"checkpoint {directory}/3 is unreadable" in capsys.readouterr().err
  assert committed(directory) == [1, 2, 3]  # a reader moves nothing

  owner = checkpoints.Checkpoints(directory, keep=3)
  restored, step = owner.restore_latest(state_at(0))
  assert step == 2
  assert committed(directory) == [1, 2]  # step 3 moved aside, not deleted
  assert len(os.listdir(directory + ".corrupt")) == 1
  owner.save(3, state_at(3))  # the step number can be written again
  owner.finish()
  assert owner.restore_latest(state_at(0))[1] == 3


def test_every_checkpoint_corrupt_is_a_clear_error(tmp_path):
  directory = str(tmp_path / "c")
  ckpts = checkpoints.Checkpoints(directory, keep=2)
  ckpts.save(1, state_at(1))
  ckpts.finish()
  corrupt(directory, 1, "missing")
  with pytest.raises(UserError, match="every checkpoint .* is unreadable"):
    checkpoints.Checkpoints(directory, owner=False).restore_latest(state_at(0))


class NaNFrom:
  """Training batches whose images turn NaN from step `bad` on."""

  def __init__(self, batches, bad):
    self.batches, self.bad = batches, bad

  def __getitem__(self, step):
    batch = self.batches[step]
    if step >= self.bad:
      batch = {**batch, "image": np.full_like(batch["image"], np.nan)}
    return batch


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(
    tmp_path, monkeypatch):
  config = tiny_config()
  p = config.pruningnet
  p.steps, p.checkpoint_every, p.log_every = 10, 2, 2
  original = pruningnet_stage.loader.train_batches
  monkeypatch.setattr(pruningnet_stage.loader, "train_batches",
                      lambda *a, **k: NaNFrom(original(*a, **k), bad=4))
  workdir = str(tmp_path / "w")
  with pytest.raises(train_loop.NonFiniteLossError) as e:
    pruningnet_stage.run(config, workdir)
  message = str(e.value)
  assert "step 6" in message and "learning_rate" in message and "\n" not in message
  ckpts = checkpoints.Checkpoints(os.path.join(workdir, "pruningnet"), owner=False)
  assert ckpts.latest_step() == 4
  params = ckpts.restore(4)["params"]
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(params))


def test_workdir_lock_blocks_a_second_run_and_takes_over_a_stale_one(tmp_path, capsys):
  workdir = str(tmp_path / "w")
  with workdir_lock.hold(workdir):
    with pytest.raises(UserError, match=f"in use by pid {os.getpid()}"):
      with workdir_lock.hold(workdir):
        pass
  # A run that dies holding the lock leaves a stale lock file behind.
  code = ("import os, signal, sys; from gp_jax.runtime import workdir_lock\n"
          f"with workdir_lock.hold({workdir!r}):\n"
          "  os.kill(os.getpid(), signal.SIGKILL)\n")
  proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60)
  assert proc.returncode == -signal.SIGKILL
  assert os.path.getsize(os.path.join(workdir, workdir_lock.LOCK_FILE)) > 0
  with workdir_lock.hold(workdir):
    assert "taking over a stale lock" in capsys.readouterr().err


def test_second_cli_run_on_a_busy_workdir_exits_2(tmp_path):
  workdir = str(tmp_path / "w")
  code = ("import sys, time; from gp_jax.runtime import workdir_lock\n"
          f"with workdir_lock.hold({workdir!r}):\n"
          "  print('locked', flush=True); time.sleep(120)\n")
  holder = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
  try:
    assert holder.stdout.readline().strip() == "locked"
    proc = subprocess.run(
        [sys.executable, "-m", "gp_jax.main", "--config=tests/tiny_config.py",
         f"--workdir={workdir}", "--stages=pruningnet"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
  finally:
    holder.kill()
    holder.wait()
  assert proc.returncode == 2
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and f"in use by pid {holder.pid}" in lines[0]
  assert os.listdir(workdir) == [workdir_lock.LOCK_FILE]


def test_atomic_writes_leave_the_old_file_when_writing_fails(tmp_path):
  path = str(tmp_path / "result.json")
  io_utils.write_json(path, {"ok": 1})

  class Unserialisable:
    pass

  with pytest.raises(TypeError):
    io_utils.write_json(path, {"ok": 2, "bad": Unserialisable()})
  with open(path) as f:
    assert json.load(f) == {"ok": 1}
  assert os.listdir(tmp_path) == ["result.json"]  # no temporary left behind


def test_metrics_survive_a_line_cut_short_by_a_kill(tmp_path):
  writer = metrics.MetricWriter(str(tmp_path), enabled=True)
  for step in (1, 2, 3):
    writer.write("pruningnet", step, {"loss": 1.0})
  writer.close()
  with open(tmp_path / "metrics.jsonl", "a") as f:
    f.write('{"stage": "pruningnet", "st')  # killed mid-write
  assert [r["step"] for r in metrics.read_metrics(str(tmp_path))] == [1, 2, 3]
  writer = metrics.MetricWriter(str(tmp_path), enabled=True)
  writer.drop_after("pruningnet", 2)
  writer.close()
  with open(tmp_path / "metrics.jsonl") as f:
    assert [json.loads(l)["step"] for l in f] == [1, 2]
