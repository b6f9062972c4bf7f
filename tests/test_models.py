"""Masked and sliced networks derived from the spec agree; one compile serves all configurations."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gp_jax.net import costs, models
from tests.helpers import random_variables, random_widths, small_spec

ARCHS = ["resnet20", "resnet56", "mobilenetv1", "mobilenetv2", "resnet50",
         "configs.imagenet_vgg16:vgg16", "configs.imagenet_resnet18:resnet18",
         "tests.toy_net:branchy"]


@pytest.mark.parametrize("arch", ARCHS)
def test_masked_equals_sliced(arch):
  spec = small_spec(arch, resolution=32)
  net = models.ConvNet(spec)
  variables = random_variables(net)
  images = jax.random.normal(jax.random.key(1), (4, 32, 32, 3))
  masked_apply = jax.jit(lambda v, x, w: net.apply(v, x, w))
  rng = np.random.default_rng(42)
  for _ in range(2):
    widths = random_widths(spec, rng)
    masked = masked_apply(variables, images, jnp.asarray(widths))
    sliced_net = models.ConvNet(spec, tuple(int(w) for w in widths))
    sliced_vars = models.slice_variables(variables, spec, widths)
    sliced = jax.jit(sliced_net.apply)(sliced_vars, images)
    assert float(jnp.std(masked)) > 1e-3  # logits are not trivially ~0
    np.testing.assert_allclose(masked, sliced, rtol=1e-4, atol=1e-4)
    assert models.count_params(sliced_vars) == costs.params(spec, widths)
  # Full width without masks is the unpruned network.
  full = jax.jit(net.apply)(variables, images)
  # Logits reach ~130 here: float32 summation-order noise is ~1e-7 of that scale.
  scale = float(jnp.max(jnp.abs(full)))
  np.testing.assert_allclose(
      full, masked_apply(variables, images, jnp.asarray(spec.max_widths)),
      rtol=1e-5, atol=1e-6 * scale)


def test_one_compilation_serves_every_configuration_and_vmaps():
  spec = small_spec("resnet20")
  net = models.ConvNet(spec)
  variables = random_variables(net)
  images = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
  traces = []

  @jax.jit
  def logits(widths):
    traces.append(1)  # runs only when jax traces (= compiles) the function
    return net.apply(variables, images, widths)

  rng = np.random.default_rng(0)
  population = np.stack([random_widths(spec, rng) for _ in range(12)])
  assert len({tuple(w) for w in population}) == 12
  one_by_one = [logits(jnp.asarray(w)) for w in population]
  assert len(traces) == 1
  batched = jax.jit(jax.vmap(lambda w: net.apply(variables, images, w)))(
      jnp.asarray(population))
  np.testing.assert_allclose(np.stack(one_by_one), batched, rtol=1e-5, atol=1e-5)


def test_sliced_net_rejects_dynamic_widths():
  spec = small_spec("resnet20")
  net = models.ConvNet(spec, spec.max_widths)
  variables = random_variables(net)
  with pytest.raises(ValueError, match="static widths"):
    net.apply(variables, jnp.zeros((1, 32, 32, 3)), jnp.asarray(spec.max_widths))


@pytest.mark.parametrize("size,kernel,stride", [(8, 3, 1), (8, 3, 2), (7, 3, 2), (9, 5, 2),
                                                (6, 5, 1), (5, 1, 2)])
def test_depthwise_by_shifts_equals_xla_grouped_conv(size, kernel, stride):
  kx, kk = jax.random.split(jax.random.key(size * 10 + kernel + stride))
  x = jax.random.normal(kx, (2, size, size, 6))
  k = jax.random.normal(kk, (kernel, kernel, 1, 6))
  expected = jax.lax.conv_general_dilated(x, k, (stride, stride), "SAME",
                                          feature_group_count=6,
                                          dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(models.depthwise_conv(x, k, stride), expected,
                             rtol=1e-5, atol=1e-5)
  grads = [jax.grad(lambda a, b: (f(a, b) ** 2).sum(), argnums=(0, 1))(x, k)
           for f in (lambda a, b: models.depthwise_conv(a, b, stride),
                     lambda a, b: jax.lax.conv_general_dilated(
                         a, b, (stride, stride), "SAME", feature_group_count=6,
                         dimension_numbers=("NHWC", "HWIO", "NHWC")))]
  for g_shift, g_conv in zip(*grads):
    np.testing.assert_allclose(g_shift, g_conv, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("size,stride,use_bias", [(8, 1, False), (8, 2, False), (7, 2, True),
                                                  (5, 1, True)])
def test_pointwise_as_dot_equals_linen_conv(size, stride, use_bias):
  kx, kp = jax.random.split(jax.random.key(size + stride))
  x = jax.random.normal(kx, (2, size, size, 6))
  kwargs = dict(features=5, kernel_size=(1, 1), strides=stride, padding="SAME",
                use_bias=use_bias, feature_group_count=1, dtype=jnp.float32)
  conv = nn.Conv(**kwargs)
  variables = conv.init(kp, x)
  if use_bias:
    variables = jax.tree.map(lambda v: v + 0.5, variables)
  dot = models.CustomConv(kwargs, models.pointwise_conv)
  # Same parameter tree (checkpoints and slicing do not care which one ran) ...
  assert (jax.tree.map(jnp.shape, dot.init(kp, x))
          == jax.tree.map(jnp.shape, variables))
  np.testing.assert_allclose(dot.apply(variables, x), conv.apply(variables, x),
                             rtol=1e-5, atol=1e-5)
  # ... and with a generated kernel, the gradients agree too.
  kernel = variables["params"]["kernel"]
  rest = {"params": {k: v for k, v in variables["params"].items() if k != "kernel"}}
  grads = [jax.grad(lambda a, b, f=f: (f(a, b) ** 2).sum(), argnums=(0, 1))(x, kernel)
           for f in (lambda a, b: dot.apply(rest, a, b),
                     lambda a, b: conv.apply({"params": {**rest["params"], "kernel": b}}, a))]
  for g_dot, g_conv in zip(*grads):
    np.testing.assert_allclose(g_dot, g_conv, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("size,kernel,stride,cin,cout,use_bias", [
    (8, 3, 1, 24, 32, False), (8, 3, 2, 6, 5, False), (7, 3, 2, 3, 8, True),
    (9, 7, 2, 3, 4, False), (6, 5, 1, 4, 4, True), (5, 3, 1, 1, 4, False)])
def test_dense_conv_equals_linen_conv(size, kernel, stride, cin, cout, use_bias):
  """XLA's forward and input gradient, the kernel gradient as per-tap products:
  outputs and both gradients equal nn.Conv's (odd sizes, strides, a 7x7 stem)."""
  kx, kp = jax.random.split(jax.random.key(size + kernel + stride))
  x = jax.random.normal(kx, (2, size, size, cin))
  kwargs = dict(features=cout, kernel_size=(kernel, kernel), strides=stride, padding="SAME",
                use_bias=use_bias, feature_group_count=1, dtype=jnp.float32)
  conv = nn.Conv(**kwargs)
  variables = conv.init(kp, x)
  dense = models.CustomConv(kwargs, models.dense_conv)
  assert jax.tree.map(jnp.shape, dense.init(kp, x)) == jax.tree.map(jnp.shape, variables)
  np.testing.assert_array_equal(dense.apply(variables, x), conv.apply(variables, x))
  kernel_ = variables["params"]["kernel"]
  rest = {"params": {k: v for k, v in variables["params"].items() if k != "kernel"}}
  grads = [jax.jit(jax.grad(lambda a, b, f=f: (f(a, b) ** 2).sum(), argnums=(0, 1)))(x, kernel_)
           for f in (lambda a, b: dense.apply(rest, a, b),
                     lambda a, b: conv.apply({"params": {**rest["params"], "kernel": b}}, a))]
  for g_dense, g_conv in zip(*grads):
    np.testing.assert_allclose(g_dense, g_conv, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("every_dense_conv", [False, True])
def test_cpu_forms_give_the_portable_nets_gradients(every_dense_conv, monkeypatch):
  """A masked ResNet-20 (a stem, dense 3x3 convs strided and not, 1x1 shortcuts)
  has the same loss gradients with the CPU forms as with XLA's own convs
  everywhere: with the forms the CPU picks, and with the dense form on every
  3x3 conv (the rule picks it for few of ResNet-20's)."""
  spec = small_spec("resnet20", resolution=16)
  assert models.dense_by_shifted_grad(3, 16, 1)  # the stem
  assert models.dense_by_shifted_grad(128, 256, 2) and not models.dense_by_shifted_grad(16, 32, 2)
  assert not models.dense_by_shifted_grad(256, 256, 1)
  if every_dense_conv:
    monkeypatch.setattr(models, "dense_by_shifted_grad", lambda cin, cout, stride: True)
  images = jax.random.normal(jax.random.key(1), (4, 16, 16, 3))
  widths = jnp.asarray(spec.max_widths)
  nets = [models.ConvNet(spec, portable=p) for p in (False, True)]
  variables = random_variables(nets[1])

  def loss(net, params):
    logits, _ = net.apply({**variables, "params": params}, images, widths, train=True,
                          mutable=["batch_stats"])
    return (logits ** 2).mean()

  grads = [jax.jit(jax.grad(lambda p, n=n: loss(n, p)))(variables["params"]) for n in nets]
  assert jax.tree.structure(grads[0]) == jax.tree.structure(grads[1])
  for g_cpu, g_xla in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1])):
    np.testing.assert_allclose(g_cpu, g_xla, rtol=2e-4, atol=2e-4)
