"""Pruning a trained network: keep each channel group's most important channels.

A group's channels are ranked by the L1 norm of the kernels that produce them,
summed over every layer that shares the group (`l1`, as in Li et al., "Pruning
Filters for Efficient ConvNets"), or by the magnitude of their BatchNorm scales
summed the same way (`bn_scale`, as in network slimming). Every variable's
channel axes are then permuted, consistently across residual groups, depthwise
layers and BatchNorm statistics, so that the most important channels come first;
slicing the first `width` channels of each group (`models.slice_variables`) then
keeps them. A permutation changes nothing the network computes.
"""
from __future__ import annotations

import functools

import jax
import numpy as np

from gp_jax.net import channels, models
from gp_jax.net.spec import ArchSpec
from gp_jax.runtime.errors import unknown_name

METHODS = ("l1", "bn_scale")


@functools.lru_cache(maxsize=8)
def group_axes(spec: ArchSpec) -> dict[int, dict[str, list[int]]]:
  """{group: {variable path: the axes of that variable that run over the group's channels}},
  found by narrowing each group by one channel and seeing which axes shrink."""
  def shapes(widths):
    tree = models.variable_shapes(spec, widths)
    return {jax.tree_util.keystr(p): s.shape
            for p, s in jax.tree_util.tree_flatten_with_path(tree)[0]}

  full = shapes(None)
  out = {}
  for g, width in enumerate(spec.max_widths):
    if width < 2:
      continue
    narrow = list(spec.max_widths)
    narrow[g] -= 1
    axes = {path: [i for i, (a, b) in enumerate(zip(shape, full[path])) if a != b]
            for path, shape in shapes(tuple(narrow)).items()}
    out[g] = {path: a for path, a in axes.items() if a}
  return out


def _leaves(variables) -> dict[str, np.ndarray]:
  return {jax.tree_util.keystr(p): np.asarray(v)
          for p, v in jax.tree_util.tree_flatten_with_path(variables)[0]}


def channel_importance(variables, spec: ArchSpec, method: str = "l1") -> dict[int, np.ndarray]:
  """{group: (channels,) importance}: each producing layer's kernel L1 norm per output
  channel (`l1`) or |BatchNorm scale| (`bn_scale`), summed over the group's layers."""
  if method not in METHODS:
    raise unknown_name("importance method", method, METHODS)
  leaves = _leaves(variables)
  out = {}
  for g, paths in group_axes(spec).items():
    score = np.zeros(spec.max_widths[g], np.float64)
    for path, axes in paths.items():
      leaf = leaves[path]
      last = leaf.ndim - 1
      produced = last in axes  # the group is (also) this variable's output channels
      if method == "l1" and produced and path.endswith("['kernel']") and "params" in path:
        score += np.abs(leaf).reshape(-1, leaf.shape[-1]).sum(0)
      elif method == "bn_scale" and produced and path.endswith("['scale']"):
        score += np.abs(leaf)
    out[g] = score
  return out


def permute_by_importance(variables, spec: ArchSpec, importance: dict[int, np.ndarray]):
  """`variables` with every group's channels reordered, most important first (a stable
  sort: ties keep their order). The classifier's output (the classes) keeps its order."""
  fixed = channels.fixed_groups_mask(spec)
  order = {g: np.argsort(-imp, kind="stable") for g, imp in importance.items()
           if not fixed[g]}
  axes_of = {}
  for g, paths in group_axes(spec).items():
    if g not in order:
      continue
    for path, axes in paths.items():
      for axis in axes:
        axes_of.setdefault(path, []).append((axis, g))

  def permute(path, leaf):
    leaf = np.asarray(leaf)
    for axis, g in axes_of.get(jax.tree_util.keystr(path), []):
      leaf = np.take(leaf, order[g], axis=axis)
    return leaf

  return jax.tree_util.tree_map_with_path(permute, variables)


def prune_variables(variables, spec: ArchSpec, widths, method: str = "l1"):
  """A trained full-width network's variables -> the sliced network of `widths`, keeping
  in every group its `widths[g]` most important channels."""
  permuted = permute_by_importance(variables, spec, channel_importance(variables, spec, method))
  return models.slice_variables(permuted, spec, tuple(int(w) for w in widths))
