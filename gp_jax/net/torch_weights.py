"""Weights trained in PyTorch as gp_jax variables: a `state_dict` of torchvision's
ResNet (basic blocks: 18/34; bottlenecks: 50) or MobileNetV2 layout, mapped onto the
gp_jax spec of the same network (docs/trained_networks.md).

PyTorch pads convolutions and max pools symmetrically (kernel // 2 on each side);
the spec that takes these weights must too (`model.padding=symmetric`), else the
stride-2 layers see shifted windows. Only the layout is read here: numpy arrays by
key, so converting needs no torch (`gp_jax.import_weights` loads a .pth with torch
when it is installed, or an .npz of the same keys).
"""
from __future__ import annotations

import re

import numpy as np

from gp_jax.net.spec import ArchSpec
from gp_jax.runtime.errors import UserError

# Buffers torch keeps that a gp_jax network has no use for.
IGNORED = ("num_batches_tracked",)


def _resnet_prefixes(name: str) -> tuple[str, str]:
  """(conv prefix, BatchNorm prefix) in torchvision's ResNet of gp_jax layer `name`."""
  if name == "stem":
    return "conv1", "bn1"
  m = re.fullmatch(r"stage(\d+)\.block(\d+)\.(conv\d|shortcut)", name)
  if not m:
    raise KeyError(name)
  block = f"layer{m.group(1)}.{int(m.group(2)) - 1}"
  if m.group(3) == "shortcut":
    return f"{block}.downsample.0", f"{block}.downsample.1"
  k = m.group(3)[-1]
  return f"{block}.conv{k}", f"{block}.bn{k}"


def _mobilenet_v2_prefixes(name: str, expands: set[int], last: int) -> tuple[str, str]:
  """The same for torchvision's MobileNetV2 (`expands`: the blocks with a 1x1 expansion;
  `last`: the index of its final 1x1 conv in `features`)."""
  if name == "stem":
    return "features.0.0", "features.0.1"
  if name == "head":
    return f"features.{last}.0", f"features.{last}.1"
  m = re.fullmatch(r"block(\d+)\.(expand|dw|project)", name)
  if not m:
    raise KeyError(name)
  b, part = int(m.group(1)), m.group(2)
  shift = 1 if b in expands else 0  # the expansion is conv.0 when there is one
  if part == "expand":
    return f"features.{b}.conv.0.0", f"features.{b}.conv.0.1"
  if part == "dw":
    return f"features.{b}.conv.{shift}.0", f"features.{b}.conv.{shift}.1"
  return f"features.{b}.conv.{shift + 1}", f"features.{b}.conv.{shift + 2}"


def layer_prefixes(spec: ArchSpec) -> dict[str, tuple[str, str | None]]:
  """{gp_jax layer name: (torch prefix of its weights, of its BatchNorm or None)}."""
  layers = [op for op in spec.ops if op.is_layer]
  names = {op.name for op in layers}
  if any(n.startswith("stage") for n in names):
    prefix = _resnet_prefixes
    classifier = "fc"
  elif any(n.startswith("block") for n in names):
    expands = {int(re.match(r"block(\d+)", n).group(1)) for n in names if n.endswith(".expand")}
    last = max(int(re.match(r"block(\d+)", n).group(1)) for n in names
               if n.startswith("block")) + 1
    prefix = lambda n: _mobilenet_v2_prefixes(n, expands, last)  # noqa: E731
    classifier = "classifier.1"
  else:
    raise UserError(f"no torchvision layout is known for {spec.name}; the converter reads "
                    "ResNet (torchvision.models.resnet*) and MobileNetV2 state_dicts")
  out = {}
  for op in layers:
    if op.kind == "dense":
      out[op.name] = (classifier, None)
      continue
    try:
      conv, bn = prefix(op.name)
    except KeyError:
      raise UserError(f"{spec.name}'s layer {op.name} has no counterpart in torchvision's "
                      "layout; the converter reads torchvision's ResNet and MobileNetV2") from None
    out[op.name] = (conv, bn if op.batch_norm else None)
  return out


def convert(state_dict: dict, spec: ArchSpec) -> dict:
  """{params, batch_stats} of the full-width network of `spec` from a torchvision
  `state_dict` (name -> array). A one-line error names the missing keys, the
  unexpected ones, or the first layer whose shape differs."""
  arrays = {k: np.asarray(v) for k, v in state_dict.items()
            if not k.endswith(IGNORED)}
  params, stats, used = {}, {}, set()

  def take(key: str):
    used.add(key)
    return arrays[key].astype(np.float32)

  prefixes = layer_prefixes(spec)
  wanted = []
  for name, (conv, bn) in prefixes.items():
    wanted += [f"{conv}.weight"] + ([f"{conv}.bias"] if bn is None else [])
    if bn is not None:
      wanted += [f"{bn}.{k}" for k in ("weight", "bias", "running_mean", "running_var")]
  missing = [k for k in wanted if k not in arrays]
  if missing:
    raise UserError(f"the state_dict lacks {len(missing)} keys {spec.name} needs: "
                    f"{', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}; is it "
                    f"torchvision's {spec.name} layout?")
  unexpected = sorted(set(arrays) - set(wanted))
  if unexpected:
    raise UserError(f"the state_dict has {len(unexpected)} keys {spec.name} does not use: "
                    f"{', '.join(unexpected[:6])}{' ...' if len(unexpected) > 6 else ''}; "
                    "is the model.arch (and width) right?")
  for op in spec.ops:
    if not op.is_layer:
      continue
    conv, bn = prefixes[op.name]
    w = take(f"{conv}.weight")
    if op.kind == "dense":  # (classes, C) -> (1, 1, C, classes): after the global pool
      layer = {"dense": {"kernel": w.T.reshape(1, 1, *w.T.shape),
                         "bias": take(f"{conv}.bias")}}
    else:  # (out, in / groups, k, k) -> (k, k, in / groups, out)
      layer = {"conv": {"kernel": w.transpose(2, 3, 1, 0)}}
      if bn is None:
        layer["conv"]["bias"] = take(f"{conv}.bias")
      else:
        layer["bn"] = {"scale": take(f"{bn}.weight"), "bias": take(f"{bn}.bias")}
        stats[op.name] = {"bn": {"mean": take(f"{bn}.running_mean"),
                                 "var": take(f"{bn}.running_var")}}
    params[op.name] = layer
  return {"params": params, "batch_stats": stats}


def check_shapes(variables: dict, expected: dict, spec: ArchSpec) -> None:
  """A one-line error at the first array whose shape differs from `expected` (the
  spec's variable shapes): another width or number of classes."""
  for name in [op.name for op in spec.ops if op.is_layer]:  # the first layer that differs
    for part in ("params", "batch_stats"):
      for path, want in _leaves(expected[part].get(name, {})):
        got = _get(variables[part].get(name, {}), path)
        if got is None or tuple(got.shape) != tuple(want.shape):
          shape = None if got is None else tuple(got.shape)
          raise UserError(f"layer {name} ({'/'.join(path)}): the state_dict gives {shape}, "
                          f"{spec.name} here has {tuple(want.shape)}; check model.arch, "
                          "model.width_multiplier and the dataset's classes")


def _leaves(tree, path=()):
  if isinstance(tree, dict):
    for k, v in tree.items():
      yield from _leaves(v, path + (k,))
  else:
    yield path, tree


def _get(tree, path):
  for k in path:
    if not isinstance(tree, dict) or k not in tree:
      return None
    tree = tree[k]
  return tree
