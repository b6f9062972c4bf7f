"""The summary CLI: correct figures per config, one-line errors with exit code 2."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_summary(*args):
  return subprocess.run([sys.executable, "-m", "gp_jax.summary", "--json", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("config,arch,macs,params,groups", [
    # The digits default runs at 16x16: every conv's MACs / 4, the classifier's 640 not.
    ("configs/digits_resnet20.py", "resnet20", (40_518_272 - 640) // 4 + 640, 272_186, 13),
    ("configs/digits_resnet20.py --config.dataset.resolution=32", "resnet20", 40_518_272,
     272_186, 13),
    ("configs/imagenet_resnet50.py", "resnet50", 4_089_184_256, 25_557_032, 38),
    ("configs/imagenet_mobilenetv1.py", "mobilenetv1", 568_740_352, 4_231_976, 15),
    ("configs/imagenet_mobilenetv2.py:1.0", "mobilenetv2", 300_774_272, 3_504_872, 26),
    ("configs/imagenet_mobilenetv2.py", "mobilenetv2", 582_195_824, 6_108_776, 26),
    ("configs/imagenet_vgg16.py", "vgg16", 15_470_264_320, 138_357_544, 16),
    ("configs/imagenet_resnet18.py", "resnet18", 1_814_073_344, 11_689_512, 13),
])
def test_summary_figures(config, arch, macs, params, groups):
  proc = run_summary(*f"--config={config}".split())
  assert proc.returncode == 0, proc.stderr
  summary = json.loads(proc.stdout)
  assert summary["arch"] == arch
  assert summary["macs"] == macs and summary["params"] == params
  assert summary["num_groups"] == groups == len(summary["groups"])
  assert summary["graph"]["nodes"] == summary["num_layers"]
  assert summary["graph"]["edges"] >= summary["num_layers"] - 1
  assert sum(len(g["layers"]) for g in summary["groups"]) == summary["num_layers"]


@pytest.mark.parametrize("args,needle", [
    (["--config=configs/digits_resnet20.py", "--config.model.arch=resnet21"], "resnet20"),
    (["--config=configs/digits_resnet20.py", "--config.dataset.name=mnist"], "digits"),
    (["--config=configs/digits_resnet20.py", "--config.model.width_multiplier=0"], "> 0"),
    (["--config=configs/digits_resnet20.py", "--config.channels.fixed_groups=nope"], "nope"),
    (["--config=configs/digits_resnet20.py", "--config.model.archx=x"], "arch"),
    (["--config=configs/missing.py"], "missing.py"),
])
def test_bad_input_is_one_line_and_exit_2(args, needle):
  proc = run_summary(*args)
  assert proc.returncode == 2
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
  assert needle in lines[0]
  assert proc.stdout == ""
