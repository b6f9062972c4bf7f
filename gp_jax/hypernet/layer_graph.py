"""The network as a graph: a node per conv/dense layer, an edge per data flow.

Shortcut edges are included (a layer reading a residual stream is linked to
every layer that fed it). Edges go both ways so a GCN mixes information from
producers and consumers. Node features are the layer's static description plus
the encoding of a channel configuration (the layer's input and output
keep-ratios). Building the graph for a configuration is a gather and a concat:
same shapes for every configuration, so it lives happily inside `jit`/`vmap`.
"""
from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import jraph
import numpy as np

from gp_jax.net import costs
from gp_jax.net.spec import ArchSpec, LAYER_KINDS

STATIC_FEATURES = tuple(f"kind_{k}" for k in LAYER_KINDS) + (
    "kernel", "stride", "log_in_channels", "log_out_channels",
    "in_resolution", "macs_share", "depth")
DYNAMIC_FEATURES = ("in_keep_ratio", "out_keep_ratio")
NUM_FEATURES = len(STATIC_FEATURES) + len(DYNAMIC_FEATURES)


@dataclasses.dataclass(frozen=True, eq=False)
class LayerGraph:
  """Static part of a spec's layer graph (numpy arrays, built once)."""
  static_features: np.ndarray  # (num_nodes, len(STATIC_FEATURES)) float32
  senders: np.ndarray          # (2 * num_flow_edges,) int32, both directions
  receivers: np.ndarray
  in_group: np.ndarray         # (num_nodes,) group of the layer's input, -1 = image
  out_group: np.ndarray        # (num_nodes,) group of the layer's output
  max_widths: np.ndarray       # (num_groups,)
  node_names: tuple[str, ...]

  @property
  def num_nodes(self) -> int:
    return len(self.node_names)

  @property
  def num_flow_edges(self) -> int:
    """Data-flow edges, counted once (the GraphsTuple holds each both ways)."""
    return len(self.senders) // 2


def build_layer_graph(spec: ArchSpec) -> LayerGraph:
  layers = spec.layers
  layer_macs = np.asarray(costs.layer_macs(spec), dtype=np.float64)
  log_scale = math.log2(max(spec.max_group_width, spec.in_channels, 2))
  rows = []
  for i, layer in enumerate(layers):
    kind = [float(layer.kind == k) for k in LAYER_KINDS]
    rows.append(kind + [
        layer.kernel / 7.0,
        layer.stride / 2.0,
        math.log2(layer.in_channels) / log_scale,
        math.log2(layer.out_channels) / log_scale,
        layer.in_resolution / spec.resolution,
        layer_macs[i] / layer_macs.sum(),
        i / max(len(layers) - 1, 1),
    ])
  edges = np.asarray(spec.layer_edges(), dtype=np.int32).reshape(-1, 2)
  senders = np.concatenate([edges[:, 0], edges[:, 1]])
  receivers = np.concatenate([edges[:, 1], edges[:, 0]])
  return LayerGraph(
      static_features=np.asarray(rows, dtype=np.float32),
      senders=senders, receivers=receivers,
      in_group=np.asarray([l.in_group for l in layers], dtype=np.int32),
      out_group=np.asarray([l.out_group for l in layers], dtype=np.int32),
      max_widths=np.asarray(spec.max_widths, dtype=np.int32),
      node_names=tuple(l.name for l in layers))


def config_features(graph: LayerGraph, widths) -> jnp.ndarray:
  """(num_nodes, 2): each layer's input and output keep-ratio under `widths`."""
  keep = jnp.asarray(widths, jnp.float32) / graph.max_widths
  keep_or_image = jnp.concatenate([keep, jnp.ones((1,), jnp.float32)])
  # Index -1 (the image) picks the trailing 1.0: the input is never pruned.
  in_keep = keep_or_image[graph.in_group]
  out_keep = keep[graph.out_group]
  return jnp.stack([in_keep, out_keep], axis=-1)


def graph_for_widths(graph: LayerGraph, widths) -> jraph.GraphsTuple:
  """The layer graph with node features for one channel configuration."""
  nodes = jnp.concatenate(
      [jnp.asarray(graph.static_features), config_features(graph, widths)], axis=-1)
  return jraph.GraphsTuple(
      nodes=nodes, edges=None,
      senders=jnp.asarray(graph.senders), receivers=jnp.asarray(graph.receivers),
      n_node=jnp.asarray([graph.num_nodes]),
      n_edge=jnp.asarray([len(graph.senders)]), globals=None)
