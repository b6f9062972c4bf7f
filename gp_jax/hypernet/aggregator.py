"""The graph aggregator: a GCN over the layer graph, one embedding per layer.

jraph's `GraphConvolution` (self-edges, symmetric normalisation) wrapped in a
linen module, as flax's ogbg_molpcba example wraps jraph.
"""
import flax.linen as nn
import jax.numpy as jnp
import jraph


class GraphAggregator(nn.Module):
  """Node features -> node embeddings that mix information from neighbours."""
  features: int = 64
  num_layers: int = 2

  @nn.compact
  def __call__(self, graph: jraph.GraphsTuple) -> jnp.ndarray:
    graph = graph._replace(nodes=nn.Dense(self.features, name="embed")(graph.nodes))
    for i in range(self.num_layers):
      update = nn.Dense(self.features, name=f"gcn{i}")
      conv = jraph.GraphConvolution(update_node_fn=update, add_self_edges=True,
                                    symmetric_normalization=True)
      out = conv(graph)
      # Residual + layer norm keeps deep GCN stacks from over-smoothing.
      nodes = nn.LayerNorm(name=f"norm{i}")(graph.nodes + nn.relu(out.nodes))
      graph = graph._replace(nodes=nodes)
    return graph.nodes
