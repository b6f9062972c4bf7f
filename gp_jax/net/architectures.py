"""The networks gp_jax prunes, each written once with `SpecBuilder`.

Everything else (masked and sliced Flax models, the layer graph, MACs and
params) is derived from the specs built here.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib

from gp_jax.net.spec import ArchSpec, SpecBuilder
from gp_jax.runtime.errors import unknown_name, UserError


def make_divisible(value: float, divisor: int = 8) -> int:
  """Rounds a channel count to a multiple of `divisor` (as MobileNet does).

  Never goes below `divisor` nor more than 10% below `value`.
  """
  rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
  if rounded < 0.9 * value:
    rounded += divisor
  return rounded


def cifar_resnet(depth: int, *, num_classes: int, resolution: int,
                 in_channels: int, width_multiplier: float = 1.0) -> ArchSpec:
  """ResNet-20/32/56/110 for 32x32 inputs (He et al. 2016, section 4.2).

  Three stages of (depth - 2) / 6 basic blocks with 16/32/64 channels. Where a
  block changes shape its shortcut is a 1x1 projection conv (option B), so the
  residual stream of each stage is one prunable channel group.
  """
  if (depth - 2) % 6:
    raise UserError(f"CIFAR ResNet depth must be 6n+2 (20, 32, 56, 110), got {depth}")
  blocks = (depth - 2) // 6
  b = SpecBuilder(f"resnet{depth}", resolution=resolution,
                  in_channels=in_channels, num_classes=num_classes)
  widths = [max(1, round(c * width_multiplier)) for c in (16, 32, 64)]
  x = b.conv(b.input(), widths[0], kernel=3, name="stem")
  for s, width in enumerate(widths):
    for i in range(blocks):
      stride = 2 if (s > 0 and i == 0) else 1
      p = f"stage{s + 1}.block{i + 1}"
      y = b.conv(x, width, kernel=3, stride=stride, name=f"{p}.conv1")
      y = b.conv(y, width, kernel=3, activation="none", name=f"{p}.conv2")
      if stride != 1 or x.channels != width:
        x = b.conv(x, width, kernel=1, stride=stride, activation="none",
                   name=f"{p}.shortcut")
      x = b.add(x, y, activation="relu", name=f"{p}.add")
  b.dense(b.global_pool(x), num_classes, name="fc")
  return b.build()


def resnet50(*, num_classes: int, resolution: int, in_channels: int,
             width_multiplier: float = 1.0) -> ArchSpec:
  """ResNet-50 v1.5 as torchvision builds it: bottlenecks, stride on the 3x3 conv,
  projection shortcuts where the shape changes."""
  b = SpecBuilder("resnet50", resolution=resolution, in_channels=in_channels,
                  num_classes=num_classes)
  w = lambda c: max(1, round(c * width_multiplier))
  x = b.conv(b.input(), w(64), kernel=7, stride=2, name="stem")
  x = b.max_pool(x, kernel=3, stride=2, name="stem.pool")
  for s, (mid, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
    for i in range(blocks):
      stride = 2 if (s > 0 and i == 0) else 1
      p = f"stage{s + 1}.block{i + 1}"
      y = b.conv(x, w(mid), kernel=1, name=f"{p}.conv1")
      y = b.conv(y, w(mid), kernel=3, stride=stride, name=f"{p}.conv2")
      y = b.conv(y, w(mid * 4), kernel=1, activation="none", name=f"{p}.conv3")
      if i == 0:
        x = b.conv(x, w(mid * 4), kernel=1, stride=stride, activation="none",
                   name=f"{p}.shortcut")
      x = b.add(x, y, activation="relu", name=f"{p}.add")
  b.dense(b.global_pool(x), num_classes, name="fc")
  return b.build()


def mobilenet_v1(*, num_classes: int, resolution: int, in_channels: int,
                 width_multiplier: float = 1.0) -> ArchSpec:
  """MobileNetV1 (Howard et al. 2017): a 3x3 stem then 13 depthwise-separable blocks."""
  b = SpecBuilder("mobilenetv1", resolution=resolution, in_channels=in_channels,
                  num_classes=num_classes)
  w = lambda c: make_divisible(c * width_multiplier, 8)
  x = b.conv(b.input(), w(32), kernel=3, stride=2, name="stem")
  blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + \
           [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
  for i, (channels, stride) in enumerate(blocks):
    p = f"block{i + 1}"
    x = b.depthwise(x, kernel=3, stride=stride, name=f"{p}.dw")
    x = b.conv(x, w(channels), kernel=1, name=f"{p}.pw")
  b.dense(b.global_pool(x), num_classes, name="fc")
  return b.build()


def mobilenet_v2(*, num_classes: int, resolution: int, in_channels: int,
                 width_multiplier: float = 1.0) -> ArchSpec:
  """MobileNetV2 (Sandler et al. 2018) as torchvision builds it.

  Inverted residual blocks (1x1 expand, 3x3 depthwise, linear 1x1 project);
  blocks with the same input and output shape add their input back, tying the
  project conv's channels to the block input's group. The last conv has
  1280 * max(1, width_multiplier) channels (1792 for MetaPruning's 1.4 base).
  """
  b = SpecBuilder("mobilenetv2", resolution=resolution, in_channels=in_channels,
                  num_classes=num_classes)
  w = lambda c: make_divisible(c * width_multiplier, 8)
  x = b.conv(b.input(), w(32), kernel=3, stride=2, activation="relu6", name="stem")
  # (expansion t, output channels c, repeats n, first stride s), from the paper.
  settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
              (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
  block = 0
  for t, c, n, s in settings:
    for i in range(n):
      block += 1
      p = f"block{block}"
      stride = s if i == 0 else 1
      y = x
      if t != 1:
        y = b.conv(y, x.channels * t, kernel=1, activation="relu6", name=f"{p}.expand")
      y = b.depthwise(y, kernel=3, stride=stride, activation="relu6", name=f"{p}.dw")
      y = b.conv(y, w(c), kernel=1, activation="none", name=f"{p}.project")
      x = b.add(x, y, name=f"{p}.add") if (stride == 1 and x.channels == y.channels) else y
  x = b.conv(x, make_divisible(1280 * max(1.0, width_multiplier), 8), kernel=1,
             activation="relu6", name="head")
  b.dense(b.global_pool(x), num_classes, name="fc")
  return b.build()


ARCHITECTURES = {
    "resnet20": functools.partial(cifar_resnet, 20),
    "resnet56": functools.partial(cifar_resnet, 56),
    "resnet50": resnet50,
    "mobilenetv1": mobilenet_v1,
    "mobilenetv2": mobilenet_v2,
}


def resolve_builder(arch: str):
  """The spec-building function for `arch`: a registered name, or "module:function".

  A user's function takes keyword arguments num_classes, resolution,
  in_channels, width_multiplier and returns an ArchSpec built with SpecBuilder.
  """
  if ":" not in arch:
    if arch not in ARCHITECTURES:
      raise unknown_name("architecture", arch,
                         list(ARCHITECTURES) + ["<module>:<function>"])
    return ARCHITECTURES[arch]
  module_name, _, fn_name = arch.partition(":")
  try:
    module = importlib.import_module(module_name)
  except ImportError as e:
    raise UserError(f"model.arch '{arch}': cannot import module '{module_name}' ({e}); "
                    "run from the directory that contains it or add it to PYTHONPATH") from None
  fn = getattr(module, fn_name, None)
  if not callable(fn):
    raise UserError(f"model.arch '{arch}': module '{module_name}' has no function '{fn_name}'")
  return fn


PADDINGS = ("same", "symmetric")  # model.padding: see ArchSpec.padding


@functools.lru_cache(maxsize=None)
def get_spec(arch: str, *, num_classes: int, resolution: int, in_channels: int,
             width_multiplier: float = 1.0, padding: str = "same") -> ArchSpec:
  """The spec of a named architecture or a user's "module:function" (cached).

  Args:
    arch: a name of `ARCHITECTURES` ("resnet20", "mobilenetv2", ...) or
      "module:function", a builder of the user's (docs/extending.md).
    num_classes, resolution, in_channels: the dataset's (datasets.info).
    width_multiplier: scales every group's maximum width (rounded to the divisor).
    padding: "same" or "symmetric" (PyTorch's; `ArchSpec.padding`).
  """
  if padding not in PADDINGS:
    raise unknown_name("model.padding", padding, PADDINGS)
  build = resolve_builder(arch)
  if not width_multiplier > 0:
    raise UserError(f"model.width_multiplier must be > 0, got {width_multiplier}")
  if resolution < 1 or num_classes < 1 or in_channels < 1:
    raise UserError("resolution, num_classes and in_channels must be >= 1, got "
                    f"{resolution}, {num_classes}, {in_channels}")
  spec = build(num_classes=num_classes, resolution=resolution, in_channels=in_channels,
               width_multiplier=width_multiplier)
  if not isinstance(spec, ArchSpec):
    raise UserError(f"model.arch '{arch}' returned {type(spec).__name__}, not an ArchSpec "
                    "(end the function with `return builder.build()`)")
  return spec if padding == spec.padding else dataclasses.replace(spec, padding=padding)
