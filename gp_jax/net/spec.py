"""Architecture specs: the single description every model, graph and count derives from.

A spec is an ordered list of operations (`Op`) on tensors, written with
`SpecBuilder`. Operations are layers (conv, depthwise conv, dense) or glue
(add, pooling). The builder infers the **channel groups**: tensors whose channel
counts must agree for the network to stay valid. A layer's output starts a new
group; a depthwise conv keeps its input's group; an add ties the groups of its
inputs. One pruning decision is made per group.

Specs are frozen dataclasses of tuples, so they are hashable and can be static
arguments of jitted functions and attributes of Flax modules.
"""
from __future__ import annotations

import dataclasses

from gp_jax.runtime.errors import UserError

LAYER_KINDS = ("conv", "depthwise", "dense")
GLUE_KINDS = ("input", "add", "max_pool", "global_pool")
ACTIVATIONS = ("none", "relu", "relu6")


@dataclasses.dataclass(frozen=True)
class Op:
  """One operation; its output tensor has `channels` channels in channel group `group`.

  `group` is -1 for the network input (its channels are never pruned).
  `resolution` is the spatial size (height = width) of the output tensor.
  """
  name: str
  kind: str
  inputs: tuple[int, ...]
  channels: int
  group: int
  resolution: int
  kernel: int = 1
  stride: int = 1
  batch_norm: bool = False
  activation: str = "none"

  @property
  def is_layer(self) -> bool:
    return self.kind in LAYER_KINDS


@dataclasses.dataclass(frozen=True)
class ChannelGroup:
  """Layers whose output channels are tied; one keep-ratio decides them all."""
  name: str
  channels: int           # max (full-width) channel count
  layers: tuple[str, ...]  # names of the layers whose output is in the group
  fixed: bool             # never pruned (e.g. the logits)


@dataclasses.dataclass(frozen=True)
class Layer:
  """A conv / depthwise / dense layer as the graph and the cost model see it."""
  name: str
  kind: str
  op_index: int
  kernel: int
  stride: int
  in_channels: int
  out_channels: int
  in_resolution: int
  out_resolution: int
  in_group: int   # -1: the network input
  out_group: int
  batch_norm: bool


@dataclasses.dataclass(frozen=True)
class ArchSpec:
  """A network: its operations in execution order and its channel groups."""
  name: str
  resolution: int
  in_channels: int
  num_classes: int
  ops: tuple[Op, ...]
  groups: tuple[ChannelGroup, ...]
  # How convs and max pools pad: "same" (XLA's SAME, extra row and column after)
  # or "symmetric" (kernel // 2 on each side, as PyTorch's layers pad; for weights
  # trained there). Output shapes, and so every count, are the same for odd kernels.
  padding: str = "same"

  def __post_init__(self):
    for i, op in enumerate(self.ops):
      late = [self.ops[j].name if 0 <= j < len(self.ops) else str(j)
              for j in op.inputs if not 0 <= j < i]
      if late:
        raise UserError(f"spec '{self.name}': op '{op.name}' reads {', '.join(late)}, "
                        "which does not come before it (a cycle or a dangling input)")

  @property
  def num_groups(self) -> int:
    return len(self.groups)

  @property
  def max_widths(self) -> tuple[int, ...]:
    return tuple(g.channels for g in self.groups)

  @property
  def max_group_width(self) -> int:
    return max(self.max_widths)

  def group_index(self, name: str) -> int:
    for i, g in enumerate(self.groups):
      if g.name == name:
        return i
    raise KeyError(name)

  @property
  def layers(self) -> tuple[Layer, ...]:
    """The conv/dense layers, in execution order, with their input side resolved."""
    out = []
    for i, op in enumerate(self.ops):
      if not op.is_layer:
        continue
      src = self.ops[op.inputs[0]]
      out.append(Layer(
          name=op.name, kind=op.kind, op_index=i, kernel=op.kernel,
          stride=op.stride, in_channels=src.channels, out_channels=op.channels,
          in_resolution=src.resolution, out_resolution=op.resolution,
          in_group=src.group, out_group=op.group, batch_norm=op.batch_norm))
    return tuple(out)

  def layer_edges(self) -> tuple[tuple[int, int], ...]:
    """Data-flow edges (producer layer index, consumer layer index).

    A tensor made by glue ops (adds, pools) is traced back to every layer that
    contributed to it, so residual shortcuts appear as edges from the layers
    feeding the residual stream to the layers reading it.
    """
    layer_of_op = {l.op_index: j for j, l in enumerate(self.layers)}
    producers: dict[int, frozenset[int]] = {}
    for i, op in enumerate(self.ops):
      if op.is_layer:
        producers[i] = frozenset([layer_of_op[i]])
      else:
        producers[i] = frozenset().union(*(producers[j] for j in op.inputs))
    edges = set()
    for i, op in enumerate(self.ops):
      if op.is_layer:
        for p in producers[op.inputs[0]]:
          edges.add((p, layer_of_op[i]))
    return tuple(sorted(edges))


@dataclasses.dataclass(frozen=True)
class Tensor:
  """A handle to an op's output while a spec is being built."""
  index: int
  channels: int
  resolution: int


class SpecBuilder:
  """Writes a network's forward structure and infers its channel groups.

      b = SpecBuilder("tiny", resolution=32, in_channels=3, num_classes=10)
      x = b.input()
      x = b.conv(x, 16, kernel=3, name="stem")
      y = b.conv(x, 16, kernel=3, activation="none", name="block.conv")
      x = b.add(x, y, activation="relu", name="block.add")
      b.dense(b.global_pool(x), 10, name="fc")
      spec = b.build()
  """

  def __init__(self, name: str, *, resolution: int, in_channels: int,
               num_classes: int):
    self._name = name
    self._resolution = resolution
    self._in_channels = in_channels
    self._num_classes = num_classes
    self._ops: list[dict] = []
    self._parent: list[int] = []  # union-find over provisional groups
    self._names: set[str] = set()

  # -- union-find over provisional group ids --------------------------------
  def _new_group(self) -> int:
    self._parent.append(len(self._parent))
    return len(self._parent) - 1

  def _find(self, g: int) -> int:
    while self._parent[g] != g:
      self._parent[g] = self._parent[self._parent[g]]
      g = self._parent[g]
    return g

  def _add_op(self, *, name, kind, inputs, channels, group, resolution, **kw):
    if name in self._names:
      raise UserError(f"spec '{self._name}': duplicate op name '{name}'")
    self._names.add(name)
    self._ops.append(dict(name=name, kind=kind, inputs=tuple(inputs),
                          channels=channels, group=group,
                          resolution=resolution, **kw))
    return Tensor(len(self._ops) - 1, channels, resolution)

  def _check(self, x: Tensor):
    if not isinstance(x, Tensor) or not 0 <= x.index < len(self._ops):
      raise UserError(f"spec '{self._name}': {x!r} is not a tensor of this spec")

  # -- operations -------------------------------------------------------------
  def input(self) -> Tensor:
    if self._ops:
      raise UserError(f"spec '{self._name}': input() must be the first op")
    return self._add_op(name="input", kind="input", inputs=(),
                        channels=self._in_channels, group=-1,
                        resolution=self._resolution)

  def conv(self, x: Tensor, channels: int, *, kernel: int = 3, stride: int = 1,
           batch_norm: bool = True, activation: str = "relu",
           name: str) -> Tensor:
    """Conv (+ BatchNorm + activation); its output starts a new channel group."""
    self._check(x)
    self._check_layer_args(name, channels, kernel, stride, activation)
    return self._add_op(
        name=name, kind="conv", inputs=(x.index,), channels=channels,
        group=self._new_group(), resolution=-(-x.resolution // stride),
        kernel=kernel, stride=stride, batch_norm=batch_norm,
        activation=activation)

  def depthwise(self, x: Tensor, *, kernel: int = 3, stride: int = 1,
                batch_norm: bool = True, activation: str = "relu",
                name: str) -> Tensor:
    """Depthwise conv: one filter per channel, so it stays in its input's group."""
    self._check(x)
    self._check_layer_args(name, x.channels, kernel, stride, activation)
    group = self._ops[x.index]["group"]
    if group == -1:
      raise UserError(f"spec '{self._name}': depthwise '{name}' on the network "
                      "input is not supported (its channels cannot be pruned)")
    return self._add_op(
        name=name, kind="depthwise", inputs=(x.index,), channels=x.channels,
        group=group, resolution=-(-x.resolution // stride), kernel=kernel,
        stride=stride, batch_norm=batch_norm, activation=activation)

  def dense(self, x: Tensor, features: int, *, activation: str = "none",
            name: str) -> Tensor:
    """Fully connected layer. On a spatial input it reads the flattened tensor
    (as VGG's classifier does); its kernel keeps (height, width, channels) axes
    so pruning the input channels slices it like a conv's."""
    self._check(x)
    self._check_layer_args(name, features, 1, 1, activation)
    return self._add_op(name=name, kind="dense", inputs=(x.index,),
                        channels=features, group=self._new_group(),
                        resolution=1, kernel=x.resolution, activation=activation)

  def concat(self, *xs: Tensor, name: str) -> Tensor:
    """Not supported: the channel offsets of a concat would depend on the
    configuration, which breaks the first-k-channels slicing every layer uses."""
    raise UserError(f"spec '{self._name}': concat '{name}' is not supported: pruned "
                    "branches would shift each other's channels; use add, or prune "
                    "each branch's producer before a fixed-width 1x1 conv")

  def add(self, *xs: Tensor, activation: str = "none", name: str) -> Tensor:
    """Elementwise sum: ties the channel groups of all its inputs."""
    if len(xs) < 2:
      raise UserError(f"spec '{self._name}': add '{name}' needs two or more inputs")
    for x in xs:
      self._check(x)
    shapes = {(x.channels, x.resolution) for x in xs}
    if len(shapes) != 1:
      detail = ", ".join(f"{self._ops[x.index]['name']}: {x.channels}ch@{x.resolution}"
                         for x in xs)
      raise UserError(f"spec '{self._name}': add '{name}' of mismatched shapes ({detail})")
    groups = [self._ops[x.index]["group"] for x in xs]
    if -1 in groups:
      raise UserError(f"spec '{self._name}': add '{name}' reads the network input, "
                      "whose channels cannot be tied to a prunable group")
    root = self._find(groups[0])
    for g in groups[1:]:
      self._parent[self._find(g)] = root
    if activation not in ACTIVATIONS:
      raise UserError(f"spec '{self._name}': unknown activation '{activation}'")
    return self._add_op(name=name, kind="add", inputs=tuple(x.index for x in xs),
                        channels=xs[0].channels, group=groups[0],
                        resolution=xs[0].resolution, activation=activation)

  def max_pool(self, x: Tensor, *, kernel: int = 3, stride: int = 2,
               name: str) -> Tensor:
    self._check(x)
    return self._add_op(name=name, kind="max_pool", inputs=(x.index,),
                        channels=x.channels, group=self._ops[x.index]["group"],
                        resolution=-(-x.resolution // stride), kernel=kernel,
                        stride=stride)

  def global_pool(self, x: Tensor, *, name: str = "global_pool") -> Tensor:
    self._check(x)
    return self._add_op(name=name, kind="global_pool", inputs=(x.index,),
                        channels=x.channels, group=self._ops[x.index]["group"],
                        resolution=1)

  def _check_layer_args(self, name, channels, kernel, stride, activation):
    if not (isinstance(channels, int) and channels >= 1):
      raise UserError(f"spec '{self._name}': layer '{name}' needs a positive "
                      f"integer channel count, got {channels!r}")
    if kernel < 1 or stride < 1:
      raise UserError(f"spec '{self._name}': layer '{name}' needs kernel and "
                      f"stride >= 1, got kernel={kernel}, stride={stride}")
    if activation not in ACTIVATIONS:
      raise UserError(f"spec '{self._name}': layer '{name}' has unknown "
                      f"activation '{activation}'; valid: {', '.join(ACTIVATIONS)}")

  # -- finish -----------------------------------------------------------------
  def build(self) -> ArchSpec:
    """Freezes the spec: numbers groups in order of first appearance.

    The last op must be a dense layer producing the logits; its group is fixed.
    """
    if not self._ops or self._ops[-1]["kind"] != "dense":
      raise UserError(f"spec '{self._name}': the last op must be the dense "
                      "classifier")
    if self._ops[-1]["channels"] != self._num_classes:
      raise UserError(f"spec '{self._name}': the classifier has "
                      f"{self._ops[-1]['channels']} outputs, expected "
                      f"{self._num_classes} classes")
    self._check_all_reach_output()
    renumber: dict[int, int] = {}
    members: dict[int, list[str]] = {}
    channels: dict[int, int] = {}
    ops = []
    for op in self._ops:
      group = op["group"]
      if group != -1:
        root = self._find(group)
        group = renumber.setdefault(root, len(renumber))
        if op["kind"] in LAYER_KINDS:
          members.setdefault(group, []).append(op["name"])
        channels[group] = op["channels"]
      ops.append(Op(**{**op, "group": group}))
    logits_group = ops[-1].group
    groups = tuple(
        ChannelGroup(name=members[g][0], channels=channels[g],
                     layers=tuple(members[g]), fixed=(g == logits_group))
        for g in range(len(renumber)))
    return ArchSpec(name=self._name, resolution=self._resolution,
                    in_channels=self._in_channels,
                    num_classes=self._num_classes, ops=tuple(ops), groups=groups)

  def _check_all_reach_output(self):
    reach = {len(self._ops) - 1}
    for i in range(len(self._ops) - 1, -1, -1):
      if i in reach:
        reach.update(self._ops[i]["inputs"])
    dead = [op["name"] for i, op in enumerate(self._ops) if i not in reach]
    if dead:
      raise UserError(f"spec '{self._name}': op(s) with no path to the output: "
                      f"{', '.join(dead)}")
