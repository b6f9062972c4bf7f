"""Flax linen networks derived from an `ArchSpec`, in two forms.

* **masked** (`ConvNet(spec)`): full-width parameters; the channel configuration
  is a `(num_groups,)` width array given at call time and applied as channel
  masks after every layer. Shapes never depend on the configuration, so one
  compiled function serves every configuration and can be `vmap`ped over them.
* **sliced** (`ConvNet(spec, widths=(...))`): every layer has its configured
  width: the physically smaller network that is retrained and deployed.

Both forms have the same parameter tree (same names, smaller shapes when
sliced), so `slice_variables` turns full-width variables into a configuration's
by keeping the first k channels along every axis.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gp_jax.net import channels
from gp_jax.net.spec import ArchSpec, Op

ACTIVATIONS = {"none": lambda x: x, "relu": nn.relu, "relu6": nn.relu6}
BN_EPSILON = 1e-5


class GeneratedConv(nn.Module):
  """linen's Conv applied with a given (generated) kernel; its bias, if any, is a
  parameter here, at the same path ("<layer>/conv/bias") as in the plain network."""
  conv_kwargs: dict

  @nn.compact
  def __call__(self, x, kernel):
    variables = {"kernel": kernel}
    if self.conv_kwargs["use_bias"]:
      variables["bias"] = self.param("bias", nn.initializers.zeros,
                                     (self.conv_kwargs["features"],))
    return nn.Conv(**self.conv_kwargs, parent=None).apply({"params": variables}, x)


def depthwise_by_shifts() -> bool:
  """XLA:CPU runs grouped-conv gradients very slowly (a 3x3 depthwise layer at
  112x112x96, batch 8: 1.08 s); as a sum of shifted products it takes 0.20 s,
  and the forward pass 0.04 s instead of 0.30 s. Other backends use the conv."""
  return jax.default_backend() == "cpu"


def conv_padding(mode: str, kernel: int):
  """lax/linen padding of a `kernel` x `kernel` window under a spec's padding mode:
  "SAME", or ((k // 2, k // 2),) * 2 for "symmetric" (hashable: a static argument)."""
  if mode == "same":
    return "SAME"
  return ((kernel // 2, kernel // 2),) * 2


def same_padding_taps(x, k: int, stride: int, padding="SAME"):
  """The k*k strided windows of `x` (NHWC) under `padding` (XLA's "SAME", or explicit
  ((top, bottom), (left, right)) pairs): yields (i, j, x_ij), x_ij of the output's
  spatial shape, with conv(x, w)[n, p, q, :] = sum_ij x_ij[n, p, q, :] @ w[i, j]."""
  n, h, w, c = x.shape
  if padding == "SAME":
    out_h, out_w = -(-h // stride), -(-w // stride)
    pads = []
    for size, out in ((h, out_h), (w, out_w)):
      total = max((out - 1) * stride + k - size, 0)
      pads.append((total // 2, total - total // 2))
  else:
    pads = [tuple(p) for p in padding]
    out_h = (h + sum(pads[0]) - k) // stride + 1
    out_w = (w + sum(pads[1]) - k) // stride + 1
  xp = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
  for i in range(k):
    for j in range(k):
      yield i, j, jax.lax.slice(
          xp, (0, i, j, 0), (n, i + (out_h - 1) * stride + 1, j + (out_w - 1) * stride + 1, c),
          (1, stride, stride, 1))


def depthwise_conv(x, kernel, stride: int, padding="SAME"):
  """NHWC depthwise conv with `kernel` (k, k, 1, C) under `padding` (see
  `same_padding_taps`), as a sum of k*k strided slices times per-channel weights
  (elementwise, so it fuses)."""
  y = None
  for i, j, tap in same_padding_taps(x, kernel.shape[0], stride, padding):
    tap = tap * kernel[i, j, 0]
    y = tap if y is None else y + tap
  return y


# On by default on the CPU; a user can switch it off (docs/pipeline.md). It changes only the
# order of float additions in the kernel gradient: on one mesh its gradients equal
# XLA's conv's to 1e-6 (relative), while the mesh itself moves some gradient
# entries by up to 3% (a ReLU at a constant channel's zero, see tests/test_scaling.py).
DENSE_CONV_ON_CPU = True


def dense_by_shifted_grad(in_channels: int, out_channels: int, stride: int) -> bool:
  """XLA:CPU computes some k x k dense convs' kernel gradients slowly; `dense_conv`
  keeps XLA's conv for the forward pass and the input gradient and computes the
  kernel gradient as matrix products. Chosen by the whole PruningNet step, not
  by layers timed alone (BENCHMARKS.md, tables 8 and 8b): on digits ResNet-20
  the form on its stride-1 convs made the step slower although each was faster
  alone; with this rule the step is as fast as with XLA's conv (digits and
  ResNet-50), so its gain on the whole step is not shown yet.
  Other backends use the conv; so does the CPU when `DENSE_CONV_ON_CPU` is unset."""
  return (DENSE_CONV_ON_CPU and jax.default_backend() == "cpu"
          and (in_channels < 8 or (stride > 1 and in_channels * out_channels >= 128 * 128)))


def _xla_conv(x, kernel, stride: int, padding="SAME"):
  return jax.lax.conv_general_dilated(x, kernel, (stride, stride), padding,
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def dense_conv(x, kernel, stride: int, padding="SAME"):
  """NHWC k x k conv with `kernel` (k, k, Cin, Cout) under `padding`: XLA's conv
  forward (the same op as `nn.Conv`'s); its kernel gradient per tap,
  dK[i, j] = x_ij^T @ dY (one (Cin, N*H*W) x (N*H*W, Cout) product each, or
  all taps in one product when Cin is a stem's few channels)."""
  return _xla_conv(x, kernel, stride, padding)


def _dense_conv_fwd(x, kernel, stride, padding):
  return _xla_conv(x, kernel, stride, padding), (x, kernel)


def _dense_conv_bwd(stride, padding, residuals, dy):
  x, kernel = residuals
  _, input_vjp = jax.vjp(lambda x: _xla_conv(x, kernel, stride, padding), x)
  dy2 = dy.reshape(-1, dy.shape[-1])
  taps = [tap.reshape(-1, tap.shape[-1])
          for _, _, tap in same_padding_taps(x, kernel.shape[0], stride, padding)]
  if x.shape[-1] < 8:
    # A stem (1-3 input channels): k*k products of Cin rows each waste the
    # matrix unit; one (k*k*Cin, N*H*W) x (N*H*W, Cout) product does not.
    dk = jnp.concatenate(taps, axis=1).T @ dy2
  else:
    dk = jnp.stack([tap.T @ dy2 for tap in taps])
  return input_vjp(dy)[0], dk.reshape(kernel.shape).astype(kernel.dtype)


dense_conv.defvjp(_dense_conv_fwd, _dense_conv_bwd)


def pointwise_as_dot() -> bool:
  """XLA:CPU runs 1x1 convs faster as one (N*H*W, Cin) x (Cin, Cout) matrix
  product: e.g. 8x56x56x256 -> 64 with gradients 48 -> 12 ms; the masked
  ResNet-50 forward + backward at batch 8, 1.70 -> 1.10 s, MobileNetV2-1.4's
  0.99 -> 0.80 s. (A 4-d einsum instead made MobileNetV2's backward slower, 1.23 s.)
  Other backends use the conv."""
  return jax.default_backend() == "cpu"


def pointwise_conv(x, kernel, stride: int, padding="SAME"):
  """NHWC 1x1 conv with `kernel` (1, 1, Cin, Cout) as a 2-d matrix product over
  channels; a strided one subsamples first, as "SAME" padding does (and a 1x1
  window's symmetric padding, which is none)."""
  del padding
  if stride > 1:
    x = x[:, ::stride, ::stride, :]
  n, h, w, c = x.shape
  return (x.reshape(n * h * w, c) @ kernel[0, 0]).reshape(n, h, w, -1)


class CustomConv(nn.Module):
  """A conv with linen Conv's parameters ("kernel" (k, k, Cin or 1, Cout), "bias")
  computed by `fn(x, kernel, stride)` (`depthwise_conv`, `pointwise_conv`,
  `dense_conv`);
  `kernel`, when given, is a generated kernel."""
  conv_kwargs: dict
  fn: Callable

  @nn.compact
  def __call__(self, x, kernel=None):
    kw = self.conv_kwargs
    dtype = kw["dtype"]
    if kernel is None:
      cin = x.shape[-1] // kw["feature_group_count"]
      shape = (*kw["kernel_size"], cin, kw["features"])
      kernel = self.param("kernel", nn.initializers.lecun_normal(), shape, jnp.float32)
    y = self.fn(x.astype(dtype), kernel.astype(dtype), kw["strides"], kw["padding"])
    if kw["use_bias"]:
      y = y + self.param("bias", nn.initializers.zeros, (kw["features"],)).astype(dtype)
    return y


class Layer(nn.Module):
  """A conv / depthwise conv / dense layer with its BatchNorm.

  `kernel`, when given, replaces the conv's own kernel parameter: this is how
  the PruningNet runs the network with generated weights.
  """
  op: Op
  features: int
  dtype: Any = jnp.float32
  bn_momentum: float = 0.9
  # XLA's own conv for every kind, whatever the backend (export: an artifact made
  # on a CPU host must not bake in the CPU-only forms below).
  portable: bool = False
  # Inference form: BatchNorm folded into the conv's kernel and bias (`folding`).
  folded: bool = False
  padding: str = "same"  # the spec's (ArchSpec.padding)

  @nn.compact
  def __call__(self, x, *, train: bool, kernel=None):
    op = self.op
    if op.kind == "dense":  # kernel (h, w, channels, features): sliceable per channel
      return nn.DenseGeneral(self.features, axis=(-3, -2, -1), dtype=self.dtype,
                             name="dense")(x)
    batch_norm = op.batch_norm and not self.folded
    conv_kwargs = dict(
        features=self.features, kernel_size=(op.kernel, op.kernel),
        strides=op.stride, padding=conv_padding(self.padding, op.kernel),
        use_bias=not batch_norm,
        feature_group_count=self.features if op.kind == "depthwise" else 1,
        dtype=self.dtype)
    if op.kind == "depthwise" and not self.portable and depthwise_by_shifts():
      y = CustomConv(conv_kwargs, depthwise_conv, name="conv")(x, kernel)
    elif (op.kind == "conv" and op.kernel == 1 and not self.portable
          and pointwise_as_dot()):
      y = CustomConv(conv_kwargs, pointwise_conv, name="conv")(x, kernel)
    elif (op.kind == "conv" and not self.portable
          and dense_by_shifted_grad(x.shape[-1], self.features, op.stride)):
      y = CustomConv(conv_kwargs, dense_conv, name="conv")(x, kernel)
    elif kernel is None:
      y = nn.Conv(**conv_kwargs, name="conv")(x)
    else:
      y = GeneratedConv(conv_kwargs, name="conv")(x, kernel)
    if batch_norm:
      y = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                       epsilon=BN_EPSILON, dtype=self.dtype, name="bn")(y)
    return y


DEFAULT_INPUT_NORM = ((0.5,), (0.5,))


def normalize_images(images, input_norm, dtype=jnp.float32):
  """uint8 images -> (x / 255 - mean) / std; float images pass through."""
  x = images.astype(dtype)
  if images.dtype == jnp.uint8:
    mean, std = input_norm or DEFAULT_INPUT_NORM
    x = (x - 255.0 * jnp.asarray(mean, dtype)) / (255.0 * jnp.asarray(std, dtype))
  return x


class ConvNet(nn.Module):
  """The network of `spec`; masked when `widths` is None, sliced otherwise."""
  spec: ArchSpec
  widths: Optional[tuple[int, ...]] = None
  dtype: Any = jnp.float32
  # 0.0 makes one train-mode call store that batch's exact statistics
  # (used to recalibrate BatchNorm for a configuration).
  bn_momentum: float = 0.9
  # For uint8 images: ((mean...), (std...)) in [0, 1] units, applied here on the
  # device, so the host pipeline transfers bytes (see data/info.py).
  input_norm: Optional[tuple] = None
  portable: bool = False  # see Layer
  folded: bool = False  # see Layer

  @nn.compact
  def __call__(self, images, group_widths=None, *, train: bool = False,
               kernels=None):
    """Logits for NHWC `images`.

    Masked form: `group_widths` is the `(num_groups,)` int width array of the
    configuration (None means full width). Sliced form: it must be None.
    `kernels` optionally maps layer names to full-size generated conv kernels.
    """
    kernels = kernels or {}
    spec = self.spec
    masked = self.widths is None
    if masked:
      widths = spec.max_widths
      masks = None
      if group_widths is not None:
        masks = channels.group_masks(spec, group_widths, self.dtype)
    else:
      if group_widths is not None:
        raise ValueError("a sliced ConvNet has static widths; pass no group_widths")
      widths = self.widths
      masks = None
    outputs = []
    for op in spec.ops:
      if op.kind == "input":
        y = normalize_images(images, self.input_norm, self.dtype)
      elif op.is_layer:
        x = outputs[op.inputs[0]]
        y = Layer(op, widths[op.group], self.dtype, self.bn_momentum, self.portable,
                  self.folded, spec.padding, name=op.name)(x, train=train,
                                                           kernel=kernels.get(op.name))
        if op.kind == "dense":
          y = y.reshape(y.shape[0], 1, 1, y.shape[-1])
        if masks is not None:
          y = y * masks[op.group, :y.shape[-1]]
      elif op.kind == "add":
        y = sum(outputs[i] for i in op.inputs)
      elif op.kind == "max_pool":
        # window_shape by keyword: jax2onnx's max_pool patch takes it so.
        y = nn.max_pool(outputs[op.inputs[0]], window_shape=(op.kernel, op.kernel),
                        strides=(op.stride, op.stride),
                        padding=conv_padding(spec.padding, op.kernel))
      elif op.kind == "global_pool":
        y = jnp.mean(outputs[op.inputs[0]], axis=(1, 2), keepdims=True)
      else:
        raise ValueError(f"unknown op kind {op.kind}")
      outputs.append(ACTIVATIONS[op.activation](y))
    logits = outputs[-1]
    return logits.reshape(logits.shape[0], -1).astype(jnp.float32)


def input_shape(spec: ArchSpec, batch: int = 1) -> tuple[int, ...]:
  return (batch, spec.resolution, spec.resolution, spec.in_channels)


def init_variables(model: ConvNet, rng, batch: int = 1):
  """Initial params and batch_stats of `model` for a dummy batch."""
  return model.init(rng, jnp.zeros(input_shape(model.spec, batch)), train=False)


def variable_shapes(spec: ArchSpec, widths=None):
  """Shape/dtype tree of the (sliced when `widths` is given) network's variables."""
  model = ConvNet(spec, None if widths is None else tuple(int(w) for w in widths))
  return jax.eval_shape(lambda rng: init_variables(model, rng), jax.random.key(0))


def slice_variables(full_variables, spec: ArchSpec, widths):
  """Full-width variables -> those of the sliced network: first k channels of every axis."""
  target = variable_shapes(spec, widths)

  def cut(leaf, shape):
    return leaf[tuple(slice(0, s) for s in shape.shape)]

  return jax.tree.map(cut, full_variables, target)


def count_params(variables) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(variables["params"])))
