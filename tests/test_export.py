"""Export: BatchNorm folding, StableHLO and ONNX artifacts equal to the Flax network,
the portable conv forms, and the CLI's bad input."""
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from gp_jax import export
from gp_jax.config.build import spec_from_config
from gp_jax.net import folding, models
from tests.conftest import tiny_config
from tests.helpers import random_variables, random_widths, small_spec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NORM = ((0.45, 0.5, 0.55), (0.22, 0.25, 0.2))


def sliced_network(spec, seed=0):
  """A random configuration of `spec` with random weights and BN statistics."""
  widths = tuple(int(w) for w in random_widths(spec, np.random.default_rng(seed), low=0.3))
  net = models.ConvNet(spec, widths, input_norm=NORM if spec.in_channels == 3 else None)
  variables = random_variables(net, seed)
  return net, widths, variables


def images(spec, batch, seed=1):
  shape = (batch, spec.resolution, spec.resolution, spec.in_channels)
  return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


def assert_close_logits(actual, reference):
  reference = np.asarray(reference)
  assert float(np.std(reference)) > 1e-3  # logits are not trivially ~0
  scale = max(1.0, float(np.abs(reference).max()))
  np.testing.assert_allclose(np.asarray(actual), reference, rtol=0,
                             atol=export.LOGIT_RTOL * scale)


@pytest.mark.parametrize("arch", ["resnet20", "mobilenetv2", "tests.toy_net:branchy"])
def test_folded_batch_norm_equals_the_unfolded_network(arch):
  spec = small_spec(arch, resolution=16)
  net, widths, variables = sliced_network(spec)
  folded_net = models.ConvNet(spec, widths, input_norm=NORM, folded=True)
  folded = folding.fold_batch_norm(spec, variables)
  assert "batch_stats" not in folded
  assert not any("bn" in layer for layer in folded["params"].values())
  x = images(spec, 3)
  assert_close_logits(jax.jit(folded_net.apply)(folded, x), jax.jit(net.apply)(variables, x))


def _smoke_spec(name):
  import importlib
  return spec_from_config(importlib.import_module(f"configs.{name}").get_config("smoke"))


def _toy_spec():
  config = tiny_config()
  config.model.arch = "tests.toy_net:branchy"
  return spec_from_config(config)


KINDS = {"resnet20": lambda: spec_from_config(tiny_config()),
         "mobilenetv2_smoke": lambda: _smoke_spec("imagenet_mobilenetv2"),
         "resnet50_smoke": lambda: _smoke_spec("imagenet_resnet50"),
         "user_branchy": _toy_spec}


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_network_kind_exports_to_both_formats(kind):
  spec = KINDS[kind]()
  net, widths, variables = sliced_network(spec)
  fn = export.inference_fn(spec, widths, variables, net.input_norm)
  flax_apply = jax.jit(lambda x: net.apply(variables, x))
  blob = export.to_stablehlo(fn, spec)
  exported = jax.export.deserialize(bytearray(blob))
  assert tuple(exported.platforms) == export.PLATFORMS
  # Every conv is XLA's own (portable) form, not the CPU-only shifted/matmul forms
  # (the module holds one lowering per platform).
  convs = sum(op.kind in ("conv", "depthwise") for op in spec.ops)
  assert exported.mlir_module().count("stablehlo.convolution") == convs * len(export.PLATFORMS)
  runners = {"stablehlo": export.load_stablehlo(blob),
             "onnx": export.load_onnx(export.to_onnx(fn, spec))}
  for batch in (1, 5):  # the batch dimension is symbolic
    x = images(spec, batch)
    reference = flax_apply(x)
    for name, call in runners.items():
      out = np.asarray(call(x))
      assert out.shape == (batch, spec.num_classes), name
      assert_close_logits(out, reference)


def run_export(*args):
  return subprocess.run([sys.executable, "-m", "gp_jax.export", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)


def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path):
  empty = tmp_path / "not_a_checkpoint"
  empty.mkdir()
  busy = tmp_path / "busy"
  busy.mkdir()
  (busy / "keep.txt").write_text("mine")
  cases = [([f"--checkpoint={empty}", f"--out={tmp_path / 'a'}"], "network.json"),
           ([f"--checkpoint={empty}", f"--out={tmp_path / 'b'}", "--format=tflite"],
            "unknown --format tflite"),
           ([f"--checkpoint={empty}", f"--out={busy}"], "--overwrite")]
  for args, message in cases:
    proc = run_export(*args)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr
  assert sorted(os.listdir(tmp_path)) == ["busy", "not_a_checkpoint"]
  assert os.listdir(busy) == ["keep.txt"]


def test_a_primitive_without_an_onnx_rule_names_the_layer(monkeypatch):
  spec = small_spec("resnet20", resolution=8)
  net, widths, variables = sliced_network(spec)
  fn = export.inference_fn(spec, widths, variables, None)

  def convert(*args, **kwargs):  # as jax2onnx fails on a primitive it has no plugin for
    raise NotImplementedError("No ONNX handler for primitive 'conv_general_dilated'")

  import jax2onnx
  monkeypatch.setattr(jax2onnx, "to_onnx", convert)
  with pytest.raises(export.UserError, match=r"layer stem does not convert to onnx"):
    export.to_onnx(fn, spec, np.float32)
