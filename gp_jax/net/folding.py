"""BatchNorm folded into the preceding conv: the inference form of a network.

In inference BatchNorm is a per-channel affine map, `scale * (y - mean) /
sqrt(var + eps) + bias`, so it folds into the conv before it: the kernel's output
channels are multiplied by `s = scale / sqrt(var + eps)` and the conv gets the bias
`bias - mean * s` (plus `s` times its own bias, if it had one). The folded
variables belong to `ConvNet(..., folded=True)`, which builds convs with a bias
and no BatchNorm.
"""
from __future__ import annotations

import jax.numpy as jnp

from gp_jax.net.models import BN_EPSILON
from gp_jax.net.spec import ArchSpec


def fold_batch_norm(spec: ArchSpec, variables) -> dict:
  """Variables of a (sliced or full) network -> those of its folded form."""
  params, stats = variables["params"], variables.get("batch_stats", {})
  folded = {}
  for op in spec.ops:
    if not op.is_layer:
      continue
    layer = params[op.name]
    if op.kind == "dense" or not op.batch_norm:
      folded[op.name] = layer
      continue
    bn, moments = layer["bn"], stats[op.name]["bn"]
    s = bn["scale"] / jnp.sqrt(moments["var"] + BN_EPSILON)
    bias = bn["bias"] - moments["mean"] * s
    if "bias" in layer["conv"]:
      bias = bias + layer["conv"]["bias"] * s
    folded[op.name] = {"conv": {"kernel": layer["conv"]["kernel"] * s, "bias": bias}}
  return {"params": folded}
