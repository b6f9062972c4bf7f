"""Analytic MACs/params: published figures, and XLA's count of the compiled network."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gp_jax.net import costs, models
from tests.helpers import random_widths, small_spec

# (arch, width multiplier, classes, resolution, published MACs, published params, source)
PUBLISHED = [
    ("resnet50", 1.0, 1000, 224, 4.09e9, 25_557_032, "torchvision resnet50"),
    ("mobilenetv2", 1.0, 1000, 224, 300.77e6, 3_504_872, "torchvision mobilenet_v2"),
    ("mobilenetv2", 1.4, 1000, 224, 585e6, 6.06e6, "MobileNetV2 paper / TF-slim 1.4"),
    ("mobilenetv1", 1.0, 1000, 224, 569e6, 4.2e6, "MobileNetV1 paper"),
    ("configs.imagenet_vgg16:vgg16", 1.0, 1000, 224, 15.47e9, 138_357_544, "torchvision vgg16"),
    ("configs.imagenet_resnet18:resnet18", 1.0, 1000, 224, 1.814e9, 11_689_512,
     "torchvision resnet18"),
    ("resnet20", 1.0, 10, 32, 40.55e6, 0.27e6, "He et al. CIFAR ResNet-20"),
    ("resnet56", 1.0, 10, 32, 125.5e6, 0.85e6, "He et al. CIFAR ResNet-56"),
]


@pytest.mark.parametrize("arch,wm,classes,res,pub_macs,pub_params,source", PUBLISHED)
def test_full_width_matches_published(arch, wm, classes, res, pub_macs, pub_params, source):
  spec = small_spec(arch, resolution=res, num_classes=classes, width_multiplier=wm)
  assert costs.macs(spec) == pytest.approx(pub_macs, rel=0.01), source
  assert costs.params(spec) == pytest.approx(pub_params, rel=0.01), source


def test_exact_torchvision_params():
  assert costs.params(small_spec("resnet50", resolution=224, num_classes=1000)) == 25_557_032
  assert costs.params(small_spec("mobilenetv2", resolution=224, num_classes=1000)) == 3_504_872
  assert costs.params(small_spec("configs.imagenet_vgg16:vgg16", resolution=224,
                                 num_classes=1000)) == 138_357_544
  assert costs.params(small_spec("configs.imagenet_resnet18:resnet18", resolution=224,
                                 num_classes=1000)) == 11_689_512


def test_macs_scale_with_widths():
  spec = small_spec("resnet20")
  half = np.maximum(np.asarray(spec.max_widths) // 2, 1)
  half[-1] = spec.max_widths[-1]
  # Almost every conv has both sides halved; the stem's input (3 channels) is not.
  assert 0.24 < costs.macs_ratio(spec, half) < 0.27


def _valid_tap_fraction(in_res, kernel, stride):
  """Fraction of a SAME-padded conv's taps that read real pixels (XLA skips padding)."""
  out = -(-in_res // stride)
  low = max((out - 1) * stride + kernel - in_res, 0) // 2
  taps = sum(1 for o in range(out) for j in range(kernel)
             if 0 <= o * stride - low + j < in_res)
  return (taps / (out * kernel)) ** 2


@pytest.mark.parametrize("arch,res,seed", [
    ("resnet20", 32, 0), ("resnet20", 32, 1), ("mobilenetv2", 64, 0),
    ("mobilenetv1", 64, 2), ("resnet50", 64, 3), ("configs.imagenet_vgg16:vgg16", 32, 4)])
def test_analytic_macs_match_xla_cost_analysis(arch, res, seed):
  spec = small_spec(arch, resolution=res)
  widths = random_widths(spec, np.random.default_rng(seed))
  net = models.ConvNet(spec, tuple(int(w) for w in widths))
  shapes = models.variable_shapes(spec, widths)
  image = jax.ShapeDtypeStruct((1, res, res, 3), jnp.float32)
  compiled = jax.jit(lambda v, x: net.apply(v, x)).lower(shapes, image).compile()
  analysis = compiled.cost_analysis()
  xla_flops = (analysis[0] if isinstance(analysis, (list, tuple)) else analysis)["flops"]
  # XLA counts 2 flops per MAC over the taps that are not padding ...
  matmul_flops = 2 * sum(
      m * _valid_tap_fraction(l.in_resolution, l.kernel, l.stride)
      for m, l in zip(costs.layer_macs(spec, widths), spec.layers))
  # ... plus a few flops per activation for BatchNorm, ReLU, adds.
  activations = sum(l.out_resolution ** 2 * int(widths[l.out_group]) for l in spec.layers)
  elementwise = xla_flops - matmul_flops
  assert 0 <= elementwise <= 12 * activations, (xla_flops, matmul_flops, activations)


def test_int32_and_traced_widths_do_not_overflow():
  spec = small_spec("resnet50", resolution=224, num_classes=1000)
  full = np.asarray(spec.max_widths, dtype=np.int32)
  assert costs.macs(spec, full) == costs.macs(spec) > 2 ** 31
  traced = jax.jit(lambda w: costs.macs(spec, w))(jnp.asarray(full))
  assert float(traced) == pytest.approx(costs.macs(spec), rel=1e-6)
