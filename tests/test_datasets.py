"""tfds + grain pipelines: every ImageNet config and CIFAR-10 in `:smoke` form runs
every stage on `tfds.testing.mock_data`; per-process sharding; missing datasets."""
import importlib
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from gp_jax.data import augment, loader, splits
from gp_jax.stages import eval as eval_stage, pruningnet, retrain, search

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MOCK_EXAMPLES = 24


# The ImageNet and CIFAR-10 data paths (tfds mock data, grain, their augmentations
# and recipes) through every stage, each on ResNet-20: the network is not what is
# tested here, and every ImageNet network is elsewhere at a fraction of the compile
# time: test_models (masked equals sliced), test_export, test_torch_weights
# (ResNet-50's logits against PyTorch's), test_bench's GPU-script smoke
# (MobileNetV2's PruningNet step, candidate scoring and latency).
@pytest.mark.parametrize("name", ["imagenet_mobilenetv2", "cifar10_resnet56"])
def test_smoke_config_runs_every_stage_on_mock_data(name, tmp_path):
  config = importlib.import_module(f"configs.{name}").get_config("smoke")
  config.search.rl.greedy_every = 0  # its own compilations; test_search checks it
  config.model.arch = "resnet20"
  workdir = str(tmp_path / "w")
  if name == "imagenet_mobilenetv2":
    config.dataset.worker_count = 1  # decode in a grain worker process
  else:
    config.dataset.worker_count = 0
  with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
    pn = pruningnet.run(config, workdir)
    [result] = search.run(config, workdir)
    retrain.run(config, workdir)
    report = eval_stage.run(config, workdir)
  assert set(pn) == {"holdout_top1_uniform_1", "holdout_top1_uniform_0.5"}
  assert result["macs_ratio"] <= config.search.targets[0] + 1e-9
  assert report["test_images"] == MOCK_EXAMPLES and 0 <= report["top1"] <= report["top5"] <= 1
  assert report["widths"] == result["widths"]


class Numbered:
  """A random-access source whose record i has label i."""

  def __init__(self, n):
    self.n = n

  def __len__(self):
    return self.n

  def __getitem__(self, i):
    return {"image": np.full((8, 8, 3), i % 256, np.uint8), "label": i}


def keep(record, rng):
  del rng
  return augment._out(record["image"], record["label"])  # pylint: disable=protected-access


def test_process_slices_make_the_single_process_global_batch():
  split = splits.SourceSplit(Numbered(96), np.arange(96), keep, lambda r: r)
  whole = loader.train_batches(split, 8, seed=3)
  parts = [loader.train_batches(split, 8, seed=3, process_index=i, process_count=2)
             for i in range(2)]
  assert parts[0][0]["image"].shape == (4, 8, 8, 3)  # global batch 8 split over 2 processes
  for step in (0, 1, 11, 12, 30):  # across epoch boundaries too
    joined = np.concatenate([p[step]["label"] for p in parts])
    np.testing.assert_array_equal(joined, whole[step]["label"])
    assert not set(parts[0][step]["label"]) & set(parts[1][step]["label"])
  epoch = np.concatenate([whole[s]["label"] for s in range(12)])
  assert sorted(epoch) == list(range(96))  # one epoch sees every example once


def test_iterate_with_workers_equals_inline_and_resumes_mid_stream():
  split = splits.SourceSplit(Numbered(40), np.arange(40), keep, lambda r: r)
  ds = loader.train_batches(split, 4, seed=1)
  inline = loader.iterate(ds, 5, worker_count=0)
  workers = loader.iterate(ds, 5, worker_count=2)
  for _ in range(6):
    a, b = next(inline), next(workers)
    np.testing.assert_array_equal(a["label"], b["label"])
  np.testing.assert_array_equal(next(loader.iterate(ds, 3))["label"], ds[3]["label"])


def test_augmentations_give_uint8_images_of_the_right_size():
  rng = np.random.default_rng(0)
  record = {"image": rng.integers(0, 255, (37, 53, 3), dtype=np.uint8), "label": 3}
  for fn in (lambda r: augment.random_resized_crop_flip(r, rng, size=24, lighting=0.1),
             lambda r: augment.resize_center_crop(r, size=24),
             lambda r: augment.pad_crop_flip(r, rng, size=24),
             lambda r: augment.resize_only(r, size=24)):
    out = fn(record)
    assert out["image"].shape == (24, 24, 3) and out["image"].dtype == np.uint8
    assert out["label"] == 3


@pytest.mark.parametrize("config_name,needle", [
    ("imagenet_resnet50", "tfds build imagenet2012 --file_format=array_record"),
    ("cifar10_resnet56", "tfds build cifar10 --file_format=array_record"),
])
def test_missing_dataset_is_one_line_with_the_prepare_command(config_name, needle, tmp_path):
  empty = tmp_path / "no_data"
  empty.mkdir()
  workdir = tmp_path / "w"
  proc = subprocess.run(
      [sys.executable, "-m", "gp_jax.main", f"--config=configs/{config_name}.py:smoke",
       f"--workdir={workdir}", f"--config.dataset.data_dir={empty}"],
      cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 2, proc.stderr[-2000:]
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and needle in lines[0] and f"--data_dir={empty}" in lines[0]
  if config_name.startswith("imagenet"):
    assert "--manual_dir=" in lines[0]
  assert not workdir.exists()


def test_digits_read_from_scikit_learns_file_equal_its_loader():
  """data/digits.py reads scikit-learn's bundled file with numpy (no sklearn import);
  the images and labels are the ones sklearn's own loader returns."""
  from sklearn.datasets import load_digits
  from gp_jax.data import digits
  images, labels = digits._raw_digits()  # pylint: disable=protected-access
  expected = load_digits()
  assert images.shape == (1797, 8, 8)
  np.testing.assert_array_equal(images, expected.images)
  np.testing.assert_array_equal(labels, expected.target)
