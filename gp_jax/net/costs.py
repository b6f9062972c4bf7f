"""Analytic MACs and parameter counts of any channel configuration, from the spec,
and `Cost`: the one interface the search's budget goes through (MACs, params or
a measured latency table, `gp_jax.net.latency`).

Conventions match the published figures (torchvision, the MobileNet papers):
MACs count the multiply-accumulates of conv and dense layers only; params count
conv/dense weights and biases plus BatchNorm's scale and offset (not its running
statistics). Works on numpy and on traced jax arrays (used inside search).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from gp_jax.net.spec import ArchSpec, Layer


def _as_widths(spec: ArchSpec, widths):
  if widths is None:
    return spec.max_widths
  if isinstance(widths, jax.Array):
    # float32: int32 products overflow on ImageNet-sized networks.
    return widths.astype(jnp.float32)
  if isinstance(widths, np.ndarray) and widths.ndim == 2:
    # A population (N, num_groups): one float64 vector per group, counts per candidate.
    return list(widths.T.astype(np.float64))
  return [int(w) for w in widths]  # Python ints: numpy int32 sums would overflow


def _widths_in_out(layer: Layer, spec: ArchSpec, widths):
  w_in = spec.in_channels if layer.in_group == -1 else widths[layer.in_group]
  w_out = widths[layer.out_group]
  return w_in, w_out


def layer_widths(spec: ArchSpec, widths=None) -> list:
  """(input width, output width) of each layer (in `spec.layers` order) at `widths`."""
  widths = _as_widths(spec, widths)
  return [_widths_in_out(layer, spec, widths) for layer in spec.layers]


def layer_macs(spec: ArchSpec, widths=None) -> list:
  """MACs of each layer (in `spec.layers` order) for `widths` (default: full)."""
  widths = _as_widths(spec, widths)
  out = []
  for layer in spec.layers:
    w_in, w_out = _widths_in_out(layer, spec, widths)
    spatial = layer.out_resolution ** 2
    if layer.kind == "conv":
      out.append(layer.kernel ** 2 * w_in * w_out * spatial)
    elif layer.kind == "depthwise":
      out.append(layer.kernel ** 2 * w_out * spatial)
    else:  # dense, over a kernel x kernel x channels (flattened) input
      out.append(layer.kernel ** 2 * w_in * w_out)
  return out


def macs(spec: ArchSpec, widths=None):
  """Total MACs of the network at `widths` (one per channel group)."""
  return sum(layer_macs(spec, widths))


def layer_params(spec: ArchSpec, widths=None) -> list:
  """Trainable parameters of each layer (BatchNorm scale+offset included)."""
  widths = _as_widths(spec, widths)
  out = []
  for layer in spec.layers:
    w_in, w_out = _widths_in_out(layer, spec, widths)
    if layer.kind == "conv":
      weights = layer.kernel ** 2 * w_in * w_out
    elif layer.kind == "depthwise":
      weights = layer.kernel ** 2 * w_out
    else:
      weights = layer.kernel ** 2 * w_in * w_out
    # A BatchNorm carries scale + offset; without one the layer has a bias.
    extra = 2 * w_out if layer.batch_norm else w_out
    out.append(weights + extra)
  return out


def params(spec: ArchSpec, widths=None):
  """Total trainable parameters at `widths` (BatchNorm scale+offset included)."""
  return sum(layer_params(spec, widths))


def population_macs(spec: ArchSpec, widths) -> np.ndarray:
  """MACs of each row of an (N, num_groups) width array."""
  out = macs(spec, np.asarray(widths).reshape(-1, spec.num_groups))
  return np.broadcast_to(np.asarray(out, dtype=np.float64), (len(widths),)).copy()


def macs_ratio(spec: ArchSpec, widths) -> float:
  return macs(spec, widths) / macs(spec)


@dataclasses.dataclass(frozen=True, eq=False)
class Cost:
  """An additive cost of a configuration: `scale * sum(per-layer values) + constant`.

  MACs and params are exact sums over layers; a latency table (gp_jax.net.latency)
  is a per-layer lookup plus a calibrated scale and constant for what the layers
  leave out (pooling, adds, dispatch). Every budget in the search (the RL action
  wall, the random/evolution window, the uniform bisection, the PruningNet's
  sampler) goes through one of these, so all of them honour the chosen constraint.
  """
  spec: ArchSpec
  name: str                      # its constraint's (gp_jax/constraints/)
  per_layer: Callable            # (spec, widths) -> list, one value per spec.layers
  unit: str = ""
  scale: float = 1.0
  constant: float = 0.0

  def layers(self, widths=None) -> list:
    return [self.scale * v for v in self.per_layer(self.spec, widths)]

  def total(self, widths=None):
    """The cost at `widths` (None: full; works on ints, numpy and traced arrays)."""
    return sum(self.layers(widths)) + self.constant

  @property
  def full(self) -> float:
    return float(self.total(None))

  def ratio(self, widths):
    return self.total(widths) / self.full

  def population_ratio(self, widths) -> np.ndarray:
    """Ratio of each row of an (N, num_groups) width array."""
    out = self.total(np.asarray(widths).reshape(-1, self.spec.num_groups))
    return np.broadcast_to(np.asarray(out, dtype=np.float64) / self.full,
                           (len(widths),)).copy()


def macs_cost(spec: ArchSpec) -> Cost:
  return Cost(spec, "macs", layer_macs, unit="MACs")


def params_cost(spec: ArchSpec) -> Cost:
  return Cost(spec, "params", layer_params, unit="params")
