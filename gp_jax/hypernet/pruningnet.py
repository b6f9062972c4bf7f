"""The PruningNet: GCN embeddings of the layer graph -> generated conv weights.

For a channel configuration (widths per group) the layer graph's node features
encode the configuration; the GCN turns them into one embedding per layer; each
conv layer's own MLP head maps its embedding to that layer's full-size kernel.
The masked network then runs with the generated kernels, so channels beyond
the sampled widths are zeroed. BatchNorm affine parameters and the classifier
are ordinary parameters.
"""
from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.training import train_state

from gp_jax.data import datasets
from gp_jax.hypernet import layer_graph as lg
from gp_jax.hypernet.aggregator import GraphAggregator
from gp_jax.net.models import ConvNet
from gp_jax.net.spec import ArchSpec
from gp_jax.runtime import sharding


def kernel_shape(layer) -> tuple[int, ...]:
  """Full-size HWIO kernel shape of a conv or depthwise layer."""
  cin = 1 if layer.kind == "depthwise" else layer.in_channels
  return (layer.kernel, layer.kernel, cin, layer.out_channels)


class KernelHead(nn.Module):
  """One layer's hypernetwork head: embedding -> MLP -> full-size kernel."""
  shape: tuple[int, ...]
  hidden: int = 32

  @nn.compact
  def __call__(self, embedding):
    fan_in = int(np.prod(self.shape[:-1]))
    std = math.sqrt(2.0 / fan_in)  # He init scale for the generated kernel
    size = int(np.prod(self.shape))
    h = nn.relu(nn.Dense(self.hidden, name="hidden")(embedding))
    # The bias is a He-initialised kernel; the embedding modulates it.
    flat = nn.Dense(
        size, name="out",
        kernel_init=nn.initializers.normal(std / math.sqrt(self.hidden)),
        bias_init=nn.initializers.normal(std))(h)
    return flat.reshape(self.shape)


class PruningNet(nn.Module):
  spec: ArchSpec
  graph: Any  # lg.LayerGraph (static numpy arrays)
  gcn_features: int = 64
  gcn_layers: int = 2
  head_hidden: int = 32
  bn_momentum: float = 0.9
  dtype: Any = jnp.float32
  input_norm: Any = None  # see models.ConvNet

  def setup(self):
    self.aggregator = GraphAggregator(self.gcn_features, self.gcn_layers)
    self.heads = {layer.name: KernelHead(kernel_shape(layer), self.head_hidden)
                  for layer in self.spec.layers if layer.kind in ("conv", "depthwise")}
    self.net = ConvNet(self.spec, dtype=self.dtype, bn_momentum=self.bn_momentum,
                       input_norm=self.input_norm)

  def embeddings(self, widths):
    """(num_layers, gcn_features): the GCN's node embeddings for `widths`."""
    return self.aggregator(lg.graph_for_widths(self.graph, widths))

  def kernels(self, widths):
    """Full-size generated kernels of every conv layer for `widths`."""
    emb = self.embeddings(widths)
    return {layer.name: self.heads[layer.name](emb[i])
            for i, layer in enumerate(self.spec.layers) if layer.name in self.heads}

  def __call__(self, images, widths, *, train: bool):
    """Logits of the network configured by `widths`, run with generated kernels."""
    return self.net(images, widths, train=train, kernels=self.kernels(widths))


def pruningnet_from_config(spec: ArchSpec, config, bn_momentum: float = 0.9) -> PruningNet:
  c = config.pruningnet
  return PruningNet(spec, lg.build_layer_graph(spec), gcn_features=c.gcn_features,
                    gcn_layers=c.gcn_layers, head_hidden=c.head_hidden,
                    bn_momentum=bn_momentum,
                    input_norm=datasets.info(config.dataset).input_norm)


def count_pruningnet_params(spec: ArchSpec, config) -> int:
  """PruningNet parameters, counted from shapes (nothing is allocated)."""
  model = pruningnet_from_config(spec, config)
  images = jax.ShapeDtypeStruct((1, spec.resolution, spec.resolution, spec.in_channels),
                                jnp.float32)
  shapes = jax.eval_shape(
      lambda k, x: model.init(k, x, jnp.asarray(spec.max_widths), train=False),
      jax.random.key(0), images)
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(shapes["params"])))


def init_params(model, spec, seed: int):
  images = jnp.zeros((1, spec.resolution, spec.resolution, spec.in_channels))
  return model.init(jax.random.key(seed), images, jnp.asarray(spec.max_widths),
                    train=False)["params"]


def create_state(model, spec, tx, seed: int) -> train_state.TrainState:
  return train_state.TrainState.create(apply_fn=model.apply,
                                       params=init_params(model, spec, seed), tx=tx)


def create_sharded_state(model, spec, tx, seed: int, mesh, shardings=None):
  """(state, shardings): the train state created directly on the mesh (kernel
  heads split over `model`), never whole on one device; `shardings`, when the
  caller has them, are `sharding.state_shardings` of the state.

  Two programs, not one: the random-init temporaries of the parameters (about
  1.7x their size) are freed before the optimizer state is allocated, which
  lowers the start-up peak (ResNet-50 on one CPU device: 11.8 -> 8.0 GiB).
  """
  if shardings is None:
    shardings = sharding.state_shardings(
        mesh, jax.eval_shape(lambda: create_state(model, spec, tx, seed)))
  params = jax.jit(lambda: init_params(model, spec, seed), out_shardings=shardings.params)()
  create = lambda p: train_state.TrainState.create(  # pylint: disable=unnecessary-lambda-assignment
      apply_fn=model.apply, params=p, tx=tx)
  return jax.jit(create, out_shardings=shardings, donate_argnums=0)(params), shardings
