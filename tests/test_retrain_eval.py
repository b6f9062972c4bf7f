"""Retrain + evaluate: sliced networks from the search result, report.json, the CLI, bad input."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from gp_jax import artifacts, evaluate
from gp_jax.config.build import spec_from_config
from gp_jax.net import costs
from gp_jax.runtime import metrics
from gp_jax.stages import eval as eval_stage
from gp_jax.stages import retrain as retrain_stage
from gp_jax.stages import search as search_stage
from tests.conftest import link_pruningnet, tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def retrained(trained_workdir, tmp_path_factory):
  config = tiny_config()
  config.search.method = "random"
  workdir = str(tmp_path_factory.mktemp("rt") / "w")
  link_pruningnet(trained_workdir, workdir)
  search_stage.run(config, workdir)
  retrain_stage.run(config, workdir)
  return config, workdir


def test_retrain_trains_sliced_networks_and_report_is_complete(retrained):
  config, workdir = retrained
  spec = spec_from_config(config)
  with open(os.path.join(workdir, "search", "result.json")) as f:
    result = json.load(f)
  for role in ("pruned", "uniform", "unpruned"):
    assert sorted(os.listdir(os.path.join(workdir, "retrain", role))) == ["3", "6", "network.json"]
  report = eval_stage.run(config, workdir)
  with open(os.path.join(workdir, "report.json")) as f:
    assert json.load(f) == report
  for row in (report, report["baseline"], report["unpruned"]):
    for key in ("top1", "top5", "macs", "params", "latency_ms", "macs_ratio"):
      assert key in row
    assert 0 <= row["top1"] <= row["top5"] <= 1 and row["latency_ms"] > 0
  assert report["widths"] == result["widths"]
  assert report["macs"] == costs.macs(spec, result["widths"]) == result["macs"]
  assert report["macs_ratio"] <= 0.5 + 1e-9
  assert report["params"] == costs.params(spec, result["widths"])
  assert report["unpruned"]["macs"] == costs.macs(spec)
  assert report["baseline"]["macs_ratio"] <= 0.5 + 1e-9
  table = evaluate.format_table(report)
  assert "unpruned" in table and "uniform" in table and "random (pruned)" in table


def test_evaluate_cli_from_checkpoint_alone(retrained):
  _, workdir = retrained
  proc = subprocess.run([sys.executable, "-m", "gp_jax.evaluate",
                         f"--checkpoint={workdir}/retrain/pruned/3"],
                        cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-2000:]
  row = json.loads(proc.stdout)
  assert row["step"] == 3 and row["role"] == "pruned" and 0 <= row["top1"] <= 1
  bad = subprocess.run([sys.executable, "-m", "gp_jax.evaluate",
                        f"--checkpoint={workdir}/retrain/pruned/99"],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
  assert "no checkpoint 99" in bad.stderr


def test_init_from_pruningnet_matches_its_proxy(trained_workdir, tmp_path):
  """Sliced PruningNet weights (with recalibrated BN) reproduce the masked PruningNet."""
  import jax.numpy as jnp
  from gp_jax.data import loader, datasets
  from gp_jax.net import models
  from gp_jax.hypernet.pruningnet import pruningnet_from_config
  config = tiny_config()
  spec = spec_from_config(config)
  splits = datasets.load_splits(config.dataset, spec.resolution)
  widths = np.maximum(np.asarray(spec.max_widths) // 2, 1)
  widths[-1] = spec.max_widths[-1]
  sliced_vars = retrain_stage.pruningnet_variables(config, spec, widths, trained_workdir, splits)
  images = jnp.asarray(splits.test.images[:8])
  sliced = models.ConvNet(spec, tuple(int(w) for w in widths)).apply(sliced_vars, images)
  params, _ = artifacts.load_pruningnet(config, spec, trained_workdir)
  model = pruningnet_from_config(spec, config, bn_momentum=0.0)
  recal = loader.stacked_batches(
        loader.train_batches(splits.train, config.pruningnet.batch_size, seed=config.seed,
                           augment=False), 0, config.pruningnet.recal_batches)
  from gp_jax.hypernet import candidates
  stats = candidates.recalibrate_batch_stats(model, params, jnp.asarray(widths),
                                             jnp.asarray(recal["image"]))
  masked = model.apply({"params": params, "batch_stats": stats}, images,
                       jnp.asarray(widths), train=False)
  np.testing.assert_allclose(sliced, masked, rtol=1e-4, atol=1e-4)


def test_retrain_without_search_result_exits_2(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "gp_jax.main", "--config=configs/digits_resnet20.py",
                         f"--workdir={tmp_path}", "--stages=retrain"],
                        cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2 and "no search result" in proc.stderr
  assert len(proc.stderr.strip().splitlines()) == 1


def test_export_cli_writes_checked_artifacts_and_their_latencies(retrained):
  config, workdir = retrained
  eval_stage.run(config, workdir)  # report.json, which the export adds its latencies to
  out = os.path.join(workdir, "export")
  proc = subprocess.run([sys.executable, "-m", "gp_jax.export", f"--workdir={workdir}",
                         f"--out={out}"], cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(os.path.join(workdir, "report.json")) as f:
    report = json.load(f)
  for role, row in (("pruned", report), ("uniform", report["baseline"]),
                    ("unpruned", report["unpruned"])):
    files = sorted(os.listdir(os.path.join(out, role)))
    assert files == ["model.json", "model.onnx", "model.stablehlo"]
    with open(os.path.join(out, role, "model.json")) as f:
      info = json.load(f)
    assert info["widths"] == row["widths"] and info["macs"] == row["macs"]
    top1 = info["checks"]["test_top1"]
    assert top1["flax"] == pytest.approx(row["top1"])  # the network evaluate scored
    assert abs(top1["onnx"] - top1["flax"]) * row["test_images"] <= 1
    assert set(info["latency_ms"]) == {"flax", "stablehlo", "onnx"}
    assert row["export"]["latency_ms"] == info["latency_ms"]
  # The artifact runs with jax alone, from the file.
  blob = open(os.path.join(out, "pruned", "model.stablehlo"), "rb").read()
  shape = [2] + info["input"]["shape"][1:]
  logits = jax.export.deserialize(bytearray(blob)).call(np.zeros(shape, info["input"]["dtype"]))
  assert logits.shape == (2, 10)


def test_distillation_loss_mixes_labels_and_soft_targets():
  import jax.numpy as jnp
  from gp_jax.runtime import losses, optim
  from gp_jax.net import models
  logits = jnp.array([[2.0, 0.5, -1.0]])
  assert float(losses.distillation(logits, logits, 4.0)) == pytest.approx(0.0, abs=1e-6)
  other = jnp.array([[0.0, 3.0, 0.0]])
  assert float(losses.distillation(logits, other, 4.0)) > 0
  assert jnp.all(jax.grad(lambda t: losses.distillation(logits, t, 2.0))(other) == 0)
  # In the retrain step: weight 0 is the labels alone, weight 1 the teacher alone.
  config = tiny_config()
  spec = spec_from_config(config)
  student = models.ConvNet(spec, tuple(spec.max_widths))
  teacher = models.ConvNet(spec, tuple(spec.max_widths))
  from tests.helpers import random_variables
  s_vars, t_vars = random_variables(student, 0), random_variables(teacher, 1)
  batch = {"image": jnp.asarray(np.random.default_rng(0).normal(size=(4, 16, 16, 1)),
                                jnp.float32), "label": jnp.array([0, 1, 2, 3])}
  tx = optim.make_optimizer(config.retrain, 4)
  schedule = optim.learning_rate_schedule(config.retrain, 4)
  state = retrain_stage.RetrainState.create(apply_fn=student.apply, params=s_vars["params"],
                                            tx=tx, batch_stats=s_vars["batch_stats"],
                                            teacher=t_vars)
  s_logits, _ = student.apply(s_vars, batch["image"], train=True, mutable=["batch_stats"])
  t_logits = teacher.apply(t_vars, batch["image"], train=False)
  for weight, expected in (
      (0.0, losses.classification(s_logits, batch["label"], 10, 0.0)[0]),
      (1.0, losses.distillation(s_logits, t_logits, 3.0))):
    step = retrain_stage.make_train_step(student, 10, 0.0, schedule, teacher, weight, 3.0)
    _, metrics = step(state, batch)
    assert float(metrics["loss"]) == pytest.approx(float(expected), rel=1e-5)


def _workdir_with_result(source, target):
  os.makedirs(os.path.join(target, "search"))
  with open(os.path.join(source, "search", "result.json")) as f:
    result = f.read()
  with open(os.path.join(target, "search", "result.json"), "w") as f:
    f.write(result)


def test_prune_the_unpruned_network_of_the_same_run_and_fine_tune_it(retrained, tmp_path):
  """retrain.init_checkpoint=unpruned: the full network trains first, from scratch at
  learning_rate; the pruned one starts from its most important channels, at
  finetune_learning_rate (tiny here: it barely moves from that start), and learns
  from it (distillation; a teacher or start from another run's directory:
  test_trained.py's end-to-end run)."""
  from gp_jax.net import importance
  from gp_jax.config import validation
  _, workdir = retrained
  config = tiny_config()
  r = config.retrain
  r.baseline, r.unpruned = "", False
  r.init, r.init_checkpoint = "checkpoint", "unpruned"
  r.finetune_learning_rate, r.weight_decay, r.momentum = 1e-9, 0.0, 0.0
  r.distill.teacher = "unpruned"
  validation.validate(config)
  spec = spec_from_config(config)
  w = str(tmp_path / "w")
  _workdir_with_result(workdir, w)
  records = retrain_stage.networks_to_train(config, spec, artifacts.read_search_result(spec, w), w)
  assert [(x["role"], x["init"]) for x in records] == [("unpruned", "scratch"),
                                                      ("pruned", "checkpoint")]
  retrain_stage.run(config, w)
  _, widths, pruned, _, _ = artifacts.load_network(os.path.join(w, "retrain", "pruned"))
  _, _, full, _, _ = artifacts.load_network(os.path.join(w, "retrain", "unpruned"))
  expected = importance.prune_variables(full, spec, widths, "l1")
  for a, b in zip(jax.tree.leaves(pruned["params"]), jax.tree.leaves(expected["params"])):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
  # the unpruned network itself trained at learning_rate (0.1), from its own init
  rows = [m for m in metrics.read_metrics(w) if m.get("stage") == "retrain/unpruned"
          and "learning_rate" in m]
  assert rows and max(m["learning_rate"] for m in rows) > 1e-3


def test_bad_teacher_or_init_checkpoint_is_one_line(retrained, tmp_path):
  from gp_jax.config import validation
  from gp_jax.runtime.errors import UserError
  _, workdir = retrained
  config = tiny_config()
  config.retrain.init = "checkpoint"
  with pytest.raises(UserError, match="needs retrain.init_checkpoint"):
    validation.validate(config)
  config.retrain.init_checkpoint = str(tmp_path / "nope")
  with pytest.raises(UserError, match="is not a retrain checkpoint"):
    validation.validate(config)
  config.retrain.init_checkpoint = os.path.join(workdir, "retrain", "pruned")
  with pytest.raises(UserError, match=r"layer \S+ has \d+ channels there"):
    validation.validate(config)
  config.retrain.init = "scratch"
  other = tmp_path / "other"
  other.mkdir()
  with open(os.path.join(workdir, "retrain", "unpruned", "network.json")) as f:
    record = json.load(f)
  record["num_classes"] = 3
  (other / "network.json").write_text(json.dumps(record))
  config.retrain.distill.teacher = str(other)
  with pytest.raises(UserError, match="num_classes=3"):
    validation.validate(config)
  proc = subprocess.run([sys.executable, "-m", "gp_jax.main", "--config=tests/tiny_config.py",
                         f"--workdir={tmp_path}/w", f"--config.retrain.distill.teacher={other}"],
                        cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
  assert str(other) in proc.stderr and not os.path.exists(tmp_path / "w")
