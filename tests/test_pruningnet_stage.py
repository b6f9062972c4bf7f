"""The pruningnet stage through `gp_jax.main`: outputs in the workdir, resume, overrides."""
import glob
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--config.progress=False", "--config.dataset.resolution=16",
        "--config.pruningnet.batch_size=16", "--config.pruningnet.checkpoint_every=2",
        "--config.pruningnet.log_every=1", "--config.pruningnet.gcn_features=16",
        "--config.pruningnet.head_hidden=8", "--config.pruningnet.recal_batches=1"]


def run_main(workdir, *args):
  return subprocess.run(
      [sys.executable, "-m", "gp_jax.main", "--config=configs/digits_resnet20.py",
       f"--workdir={workdir}", "--stages=pruningnet", *TINY, *args],
      cwd=ROOT, capture_output=True, text=True, timeout=900)


def steps_logged(workdir, stage="pruningnet"):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [r["step"] for r in map(json.loads, f) if r["stage"] == stage]


def test_trains_writes_outputs_and_resumes(tmp_path):
  workdir = str(tmp_path / "w")
  first = run_main(workdir, "--config.pruningnet.steps=4")
  assert first.returncode == 0, first.stderr[-3000:]
  assert sorted(os.listdir(os.path.join(workdir, "pruningnet"))) == ["2", "4"]
  assert steps_logged(workdir) == [1, 2, 3, 4]
  assert glob.glob(os.path.join(workdir, "tensorboard", "events.out.tfevents.*"))
  assert "held-out top-1" in first.stdout
  evals = [r for r in map(json.loads, open(os.path.join(workdir, "metrics.jsonl")))
           if r["stage"] == "pruningnet_eval"]
  assert 0.0 <= evals[0]["holdout_top1_uniform_1"] <= 1.0

  second = run_main(workdir, "--config.pruningnet.steps=6")
  assert second.returncode == 0, second.stderr[-3000:]
  assert "resuming from step 4" in second.stdout
  assert steps_logged(workdir) == [1, 2, 3, 4, 5, 6]
  assert "6" in os.listdir(os.path.join(workdir, "pruningnet"))

  # Run again: complete, nothing to do; unless the final checkpoint is unreadable.
  third = run_main(workdir, "--config.pruningnet.steps=6")
  assert third.returncode == 0, third.stderr[-3000:]
  assert "complete at step 6; skipping" in third.stdout
  assert steps_logged(workdir) == [1, 2, 3, 4, 5, 6]
  biggest = max(glob.glob(os.path.join(workdir, "pruningnet", "6", "**", "d", "*"),
                          recursive=True), key=os.path.getsize)
  os.truncate(biggest, os.path.getsize(biggest) // 3)
  fourth = run_main(workdir, "--config.pruningnet.steps=6")
  assert fourth.returncode == 0, fourth.stderr[-3000:]
  assert "skipping" not in fourth.stdout and "resuming from step 4" in fourth.stdout
  assert steps_logged(workdir) == [1, 2, 3, 4, 5, 6]


def test_bad_stage_and_override_exit_2(tmp_path):
  proc = run_main(str(tmp_path / "w"), "--stages=prunignet")
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines() == [
      proc.stderr.strip().splitlines()[0]] and "pruningnet" in proc.stderr
  proc = run_main(str(tmp_path / "w2"), "--config.pruningnet.configs_per_step=3")
  assert proc.returncode == 2 and "divisible" in proc.stderr
  assert len(proc.stderr.strip().splitlines()) == 1
  assert not os.path.exists(tmp_path / "w") and not os.path.exists(tmp_path / "w2")
