"""Scaling out: meshes of fake CPU devices, two processes on 127.0.0.1, launch scripts.

Each multi-device run is a subprocess (the device count is fixed when jax
starts) with a time limit; the multi-process run uses only 127.0.0.1.
"""
import json
import os
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest

from gp_jax import artifacts
from gp_jax.config.build import spec_from_config
from gp_jax.hypernet import pruningnet as pn_lib
from gp_jax.runtime import seeds, sharding
from gp_jax.runtime.errors import UserError
from gp_jax.runtime.metrics import read_metrics
from tests.conftest import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Losses and parameters of different meshes differ only by the order of float
# additions in the cross-device reductions, which training amplifies where a
# ReLU sits at a constant channel's zero: on the tiny config's first batch, one
# process with 4 in-process devices moved some gradient entries by 3% from one
# device's (8 devices: 10%), as did scaling the images by 1 + 3e-7. So the
# references are one-device runs. The gradient norm is the most sensitive figure
# (with AVX-512 kernels it differed by 1.5e-4 relative after 4 steps while the
# losses agreed to 1e-6); a real sharding error (a gradient summed instead of
# averaged, a replica left out) moves it by far more. Parameters are compared by
# what training changed (trained - initial, all leaves together, an L2 norm); a
# one-device run on 12 of the 16 images per batch moved it by 137%.
# Against the one-device run, with the test session's XLA settings as with XLA's
# defaults, the meshes' losses, grad norms and updates agree to about 1e-7, 1e-6
# and 3e-6: the tolerances leave an order of magnitude and more.
LOSS_RTOL, GRAD_NORM_RTOL, UPDATE_RTOL = 1e-5, 1e-3, 5e-2


def _env(devices: int) -> dict:
  # The test session's XLA settings (tests/conftest.py: optimisations off, loop
  # emitters) are inherited, as in every other subprocess of the suite: they compile
  # the multi-device programs in about half the time, and the figures compared below
  # agree as closely as with XLA's defaults.
  return dict(os.environ, JAX_PLATFORMS="cpu", JAX_NUM_CPU_DEVICES=str(devices),
              PYTHONPATH=ROOT)


def _losses(workdir):
  return [(r["step"], r["loss"]) for r in read_metrics(workdir, "pruningnet")]


def _grad_norms(workdir):
  return [r["grad_norm"] for r in read_metrics(workdir, "pruningnet")]


def _assert_same_training(workdir, reference):
  np.testing.assert_allclose(_losses(workdir), _losses(reference), rtol=LOSS_RTOL)
  np.testing.assert_allclose(_grad_norms(workdir), _grad_norms(reference), rtol=GRAD_NORM_RTOL)


def _params(workdir):
  config = tiny_config()
  return artifacts.load_pruningnet(config, spec_from_config(config), workdir)[0]


def _assert_same_updates(trained, reference):
  """|(trained - init) - (reference - init)| <= UPDATE_RTOL |reference - init| over
  all parameters together (an L2 norm), and the same tree of shapes."""
  config = tiny_config()
  spec = spec_from_config(config)
  init = pn_lib.init_params(pn_lib.pruningnet_from_config(spec, config), spec,
                            seeds.seed(config, "init"))
  diff = ref = 0.0
  for x, y, z in zip(*(jax.tree.leaves(t) for t in (trained, reference, init)), strict=True):
    x, y, z = (np.asarray(v, np.float64) for v in (x, y, z))
    assert x.shape == y.shape == z.shape
    diff, ref = diff + np.sum((x - y) ** 2), ref + np.sum((y - z) ** 2)
  assert ref > 0 and np.sqrt(diff / ref) <= UPDATE_RTOL, np.sqrt(diff / ref)


@pytest.mark.parametrize("data,model,devices,expected", [
    (-1, 1, 8, (8, 1)), (-1, 2, 8, (4, 2)), (2, -1, 8, (2, 4)), (1, 1, 1, (1, 1)),
    (8, 1, 8, (8, 1))])
def test_mesh_shape_resolves_minus_one(data, model, devices, expected):
  mesh = ml_collections.ConfigDict({"data": data, "model": model})
  assert sharding.mesh_shape(mesh, devices) == expected


@pytest.mark.parametrize("data,model,devices,message", [
    (-1, -1, 8, "at most one"), (3, 1, 8, "does not divide"), (2, 2, 8, "must use all 8"),
    (-1, 3, 8, "does not divide")])
def test_mesh_shape_rejects_what_does_not_fit(data, model, devices, message):
  mesh = ml_collections.ConfigDict({"data": data, "model": model})
  with pytest.raises(UserError, match=message):
    sharding.mesh_shape(mesh, devices)


def test_a_mesh_of_8_devices_trains_like_one_device(tmp_path):
  one = tmp_path / "one_device"
  proc = subprocess.run([sys.executable, "-m", "gp_jax.main", f"--workdir={one}",
                         "--config=tests/tiny_config.py", "--stages=pruningnet"], cwd=ROOT,
                        env=_env(1), capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  proc = subprocess.run([sys.executable, "-m", "tests.mesh_worker", str(tmp_path)], cwd=ROOT,
                        env=_env(8), capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  report = json.loads(proc.stdout.strip().splitlines()[-1])
  assert report["devices"] == 8
  reference_params = _params(one)
  assert len(_losses(one)) == 2
  workdir = tmp_path / "mesh_4x2"
  _assert_same_training(workdir, one)
  # The checkpoint of the sharded run restores on this one device.
  _assert_same_updates(_params(workdir), reference_params)
  # Each head's output matrix: half of it on each device of the model axis.
  split = [(full, local) for full, local in report["heads"]["4x2"]]
  assert split and all(local == [full[0], full[1] // 2] for full, local in split)


def test_two_processes_agree_with_one_device_and_restore_in_one(tmp_path):
  overrides = ["--config=tests/tiny_config.py", "--stages=pruningnet,search",
               "--config.search.evaluations=4",  # one population of 4 (4 devices in two processes)
               "--config.search.rl.greedy_every=0"]  # (no side evaluation: one round)
  single = tmp_path / "one_device"
  proc = subprocess.run([sys.executable, "-m", "gp_jax.main", f"--workdir={single}",
                         *overrides], cwd=ROOT, env=_env(1), capture_output=True, text=True,
                        timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  multi = tmp_path / "two_processes"
  proc = subprocess.run(["bash", "launch/local_multiprocess.sh", "2", "--devices_per_process=2",
                         f"--workdir={multi}", *overrides], cwd=ROOT, env=_env(2),
                        capture_output=True, text=True, timeout=900)
  log = (multi / "logs" / "process_1.log").read_text() if (multi / "logs").exists() else ""
  assert proc.returncode == 0, proc.stderr[-2000:] + log[-2000:]
  assert "pruningnet: held-out top-1" in proc.stdout  # process 0 reports
  _assert_same_training(multi, single)
  rows = [[json.loads(l) for l in open(w / "search" / "candidates.jsonl")] for w in (multi, single)]
  assert len(rows[0]) == len(rows[1]) == 4
  for a, b in zip(*rows):
    assert a["widths"] == b["widths"]
    assert a["proxy_top1"] == pytest.approx(b["proxy_top1"], abs=1e-6)
  # Only process 0 wrote metrics: one row per logged step, not two.
  assert [r["step"] for r in read_metrics(multi, "pruningnet")] == [2, 4]
  # The checkpoint written by two processes restores in this single process.
  _assert_same_updates(_params(multi), _params(single))


def _script(*args, env=None):
  return subprocess.run(["bash", *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
                        env=env)


def test_local_multiprocess_dry_run_prints_one_command_per_process():
  proc = _script("launch/local_multiprocess.sh", "3", "--dry-run", "--port=4567",
                 "--config=configs/digits_resnet20.py", "--workdir=/tmp/W")
  assert proc.returncode == 0, proc.stderr
  lines = proc.stdout.strip().splitlines()
  assert len(lines) == 3
  for i, line in enumerate(lines):
    assert f"--process_id={i}" in line and "--num_processes=3" in line
    assert "--coordinator_address=127.0.0.1:4567" in line and "--workdir=/tmp/W" in line
  bad = _script("launch/local_multiprocess.sh", "zero", "--workdir=/tmp/W")
  assert bad.returncode == 2 and "number of processes" in bad.stderr


def test_cluster_scripts_dry_run_print_their_commands():
  tpu = _script("launch/tpu_pod.sh", "--tpu=pod", "--zone=us-central2-b", "--create=v4-32",
                "--setup", "--dry-run", "--config=configs/imagenet_resnet50.py",
                "--workdir=/mnt/W")
  assert tpu.returncode == 0, tpu.stderr
  lines = tpu.stdout.strip().splitlines()
  assert "create pod" in lines[0] and "v4-32" in lines[0]
  assert "--worker=all" in lines[-1] and "--coordinator_address=auto" in lines[-1]
  assert "imagenet_resnet50" in lines[-1]
  assert _script("launch/tpu_pod.sh", "--dry-run").returncode == 2  # no --tpu/--zone
  env = dict(os.environ, SLURM_NTASKS_PER_NODE="8", SLURM_GPUS_PER_NODE="8")
  per_gpu = _script("launch/slurm_gpu.sbatch", "--dry-run", "--config=c.py", "--workdir=/W",
                    env=env)
  assert per_gpu.returncode == 0, per_gpu.stderr
  assert per_gpu.stdout.startswith("srun ") and "--coordinator_address=auto" in per_gpu.stdout
  env["SLURM_NTASKS_PER_NODE"] = "1"
  per_node = _script("launch/slurm_gpu.sbatch", "--dry-run", "--config=c.py", "--workdir=/W",
                     env=env)
  assert "--process_id=" in per_node.stdout and "unset" in per_node.stdout


@pytest.mark.parametrize("flags,devices,message", [
    (["--num_processes=2"], 1, "need --coordinator_address"),
    (["--coordinator_address=127.0.0.1:1", "--num_processes=2", "--process_id=2"], 1,
     "--process_id must be in"),
    (["--config.mesh.model=3"], 1, "does not divide the 1 devices"),
    (["--config.pruningnet.batch_size=15"], 2, "divisible by the mesh's data axis (2"),
])
def test_bad_scaling_flags_fail_in_one_line_before_writing(tmp_path, flags, devices, message):
  workdir = tmp_path / "W"
  proc = subprocess.run([sys.executable, "-m", "gp_jax.main", "--config=tests/tiny_config.py",
                         f"--workdir={workdir}", "--stages=pruningnet", *flags], cwd=ROOT,
                        env=_env(devices), capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr
  assert not workdir.exists()


def test_sigterm_on_one_process_stops_both_after_a_checkpoint(tmp_path):
  """Process 1 alone gets SIGTERM before step 1; both save at the next logging step
  (2) and exit 75, so neither waits forever on the other."""
  import socket
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  workdir = tmp_path / "W"
  procs = []
  for i in range(2):
    env = _env(1)
    if i == 1:
      env["GP_JAX_FAULT"] = "pruningnet:1:TERM"
    procs.append(subprocess.Popen(
        [sys.executable, "-m", "gp_jax.main", "--config=tests/tiny_config.py",
         f"--workdir={workdir}", "--stages=pruningnet",
         f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", f"--process_id={i}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
  try:
    outs = [p.communicate(timeout=900) for p in procs]
  finally:
    for p in procs:
      p.kill()
  assert [p.returncode for p in procs] == [75, 75], [o[1][-1500:] for o in outs]
  assert "preempted (SIGTERM) during pruningnet at step 2" in outs[0][1]
  assert sorted(os.listdir(workdir / "pruningnet")) == ["2"]


@pytest.mark.parametrize("env,expected", [
    ({}, ""), ({"SLURM_NTASKS": "16", "SLURM_PROCID": "0"}, ""),  # inside the batch script
    ({"SLURM_STEP_NUM_TASKS": "16", "SLURM_PROCID": "3"}, "slurm"),
    ({"TPU_WORKER_HOSTNAMES": "t0"}, ""), ({"TPU_WORKER_HOSTNAMES": "t0,t1,t2,t3"}, "tpu_pod")])
def test_cluster_detection(monkeypatch, env, expected):
  from gp_jax.runtime import distributed
  for name in ("SLURM_NTASKS", "SLURM_STEP_NUM_TASKS", "SLURM_PROCID", "TPU_WORKER_HOSTNAMES"):
    monkeypatch.delenv(name, raising=False)
  for name, value in env.items():
    monkeypatch.setenv(name, value)
  assert distributed.cluster_detected() == expected
