"""The layer graph: nodes, both-way edges, configuration features, jit and jraph."""
import jax
import jax.numpy as jnp
import jraph
import numpy as np

from gp_jax.hypernet import layer_graph
from tests.helpers import random_widths, small_spec


def test_graph_structure_matches_spec():
  spec = small_spec("resnet20")
  graph = layer_graph.build_layer_graph(spec)
  assert graph.num_nodes == len(spec.layers) == 22
  assert graph.num_flow_edges == len(spec.layer_edges())
  pairs = set(zip(graph.senders.tolist(), graph.receivers.tolist()))
  for a, b in spec.layer_edges():
    assert (a, b) in pairs and (b, a) in pairs
  assert graph.static_features.shape == (22, len(layer_graph.STATIC_FEATURES))
  assert np.isclose(graph.static_features[:, layer_graph.STATIC_FEATURES.index("macs_share")].sum(), 1.0)


def test_config_features_follow_widths():
  spec = small_spec("mobilenetv2")
  graph = layer_graph.build_layer_graph(spec)
  widths = random_widths(spec, np.random.default_rng(0))
  tuple_ = layer_graph.graph_for_widths(graph, widths)
  assert tuple_.nodes.shape == (graph.num_nodes, layer_graph.NUM_FEATURES)
  keep = widths / np.asarray(spec.max_widths)
  for i, layer in enumerate(spec.layers):
    in_keep, out_keep = np.asarray(tuple_.nodes[i, -2:])
    assert np.isclose(out_keep, keep[layer.out_group])
    assert np.isclose(in_keep, 1.0 if layer.in_group == -1 else keep[layer.in_group])


def test_graph_builds_under_jit_once_and_feeds_a_gcn():
  spec = small_spec("resnet20")
  graph = layer_graph.build_layer_graph(spec)
  gcn = jraph.GraphConvolution(update_node_fn=lambda n: n * 2.0, add_self_edges=True)
  traces = []

  @jax.jit
  def embed(widths):
    traces.append(1)
    return gcn(layer_graph.graph_for_widths(graph, widths)).nodes

  rng = np.random.default_rng(0)
  outs = [embed(jnp.asarray(random_widths(spec, rng))) for _ in range(5)]
  assert len(traces) == 1
  assert outs[0].shape == (22, layer_graph.NUM_FEATURES)
  assert not np.allclose(outs[0], outs[1])  # the configuration reaches the embedding
