"""Weights from PyTorch: symmetric padding as PyTorch pads, the torchvision layouts'
mapping onto gp_jax specs, the import command's files and errors; and, where torch and
torchvision are installed, the same logits as torchvision's own networks."""
import os

import jax
import numpy as np
import pytest

from gp_jax import artifacts
from gp_jax.import_weights import import_weights
from gp_jax.config.build import spec_from_config
from gp_jax.net import models, torch_weights
from gp_jax.net.architectures import get_spec
from gp_jax.runtime.errors import UserError
from tests.helpers import random_variables
from tests.conftest import tiny_config

RESNET18 = "configs.imagenet_resnet18:resnet18"


def _spec(arch, padding="symmetric", resolution=32, classes=10, width=1.0):
  return get_spec(arch, num_classes=classes, resolution=resolution, in_channels=3,
                  width_multiplier=width, padding=padding)


def test_symmetric_padding_pads_as_pytorch_in_every_conv_form():
  """Each CPU form (shifted products, per-tap gradients) pads as XLA's conv does under
  the same explicit padding, which is PyTorch's; SAME pads otherwise at stride 2."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 8, 8, 4)).astype(np.float32)
  pad = models.conv_padding("symmetric", 3)
  xla_conv = models._xla_conv  # pylint: disable=protected-access
  assert pad == ((1, 1), (1, 1)) and models.conv_padding("same", 3) == "SAME"
  dw = rng.normal(size=(3, 3, 1, 4)).astype(np.float32)
  dense = rng.normal(size=(3, 3, 4, 5)).astype(np.float32)
  for stride in (1, 2):
    want_dw = jax.lax.conv_general_dilated(x, dw, (stride, stride), pad,
                                           dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                           feature_group_count=4)
    np.testing.assert_allclose(models.depthwise_conv(x, dw, stride, pad), want_dw, atol=1e-5)
    want = xla_conv(x, dense, stride, pad)
    np.testing.assert_allclose(models.dense_conv(x, dense, stride, pad), want, atol=1e-5)
    g = jax.grad(lambda k: models.dense_conv(x, k, stride, pad).sum())(dense)
    g_want = jax.grad(lambda k: xla_conv(x, k, stride, pad).sum())(dense)
    np.testing.assert_allclose(g, g_want, rtol=1e-4, atol=1e-4)
  same = xla_conv(x, dense, 2, "SAME")
  assert same.shape == want.shape and not np.allclose(same, want)


@pytest.mark.parametrize("arch", [RESNET18, "resnet50", "mobilenetv2"])
def test_padding_changes_the_logits_not_the_shapes_or_counts(arch):
  same, sym = _spec(arch, "same"), _spec(arch, "symmetric")
  assert same.layers == sym.layers and sym.padding == "symmetric"
  variables = random_variables(models.ConvNet(same, same.max_widths), seed=0)
  x = np.random.default_rng(1).normal(size=(2, 32, 32, 3)).astype(np.float32)
  a = models.ConvNet(same, same.max_widths).apply(variables, x)
  b = models.ConvNet(sym, sym.max_widths).apply(variables, x)
  assert a.shape == b.shape and not np.allclose(a, b, atol=1e-4)


def _torch_layout(spec, variables) -> dict:
  """gp_jax variables as a torchvision state_dict: the converter's inverse, written
  from torchvision's conventions ((out, in, k, k) kernels, (classes, C) linear)."""
  sd = {}
  for name, (conv, bn) in torch_weights.layer_prefixes(spec).items():
    p = variables["params"][name]
    if "dense" in p:
      k = np.asarray(p["dense"]["kernel"])
      sd[f"{conv}.weight"] = k.reshape(-1, k.shape[-1]).T
      sd[f"{conv}.bias"] = np.asarray(p["dense"]["bias"])
      continue
    sd[f"{conv}.weight"] = np.asarray(p["conv"]["kernel"]).transpose(3, 2, 0, 1)
    if bn is not None:
      s = variables["batch_stats"][name]["bn"]
      sd.update({f"{bn}.weight": np.asarray(p["bn"]["scale"]),
                 f"{bn}.bias": np.asarray(p["bn"]["bias"]),
                 f"{bn}.running_mean": np.asarray(s["mean"]),
                 f"{bn}.running_var": np.asarray(s["var"]),
                 f"{bn}.num_batches_tracked": np.asarray(7)})
  return sd


@pytest.mark.parametrize("arch,keys", [
    (RESNET18, ("conv1.weight", "layer2.0.downsample.0.weight", "layer4.1.bn2.running_var",
                "fc.weight")),
    ("resnet50", ("layer1.0.conv3.weight", "layer3.5.bn3.weight", "layer4.0.downsample.1.bias")),
    ("mobilenetv2", ("features.0.0.weight", "features.1.conv.0.0.weight",
                     "features.1.conv.1.weight", "features.2.conv.0.1.running_mean",
                     "features.17.conv.3.weight", "features.18.0.weight",
                     "classifier.1.weight"))])
def test_torchvision_keys_map_onto_the_spec_and_back(arch, keys):
  spec = _spec(arch)
  variables = random_variables(models.ConvNet(spec), seed=2)
  sd = _torch_layout(spec, variables)
  assert set(keys) <= set(sd)
  converted = torch_weights.convert(sd, spec)
  torch_weights.check_shapes(converted, models.variable_shapes(spec), spec)
  jax.tree.map(np.testing.assert_array_equal, converted, jax.tree.map(np.asarray, variables))


def test_a_state_dict_that_does_not_fit_names_what_differs():
  spec = _spec(RESNET18)
  sd = _torch_layout(spec, random_variables(models.ConvNet(spec), seed=0))
  with pytest.raises(UserError, match=r"lacks 1 keys .*layer3\.1\.bn1\.running_mean"):
    torch_weights.convert({k: v for k, v in sd.items() if k != "layer3.1.bn1.running_mean"},
                          spec)
  with pytest.raises(UserError, match=r"1 keys resnet18 does not use: layer5\.0\.conv1\.weight"):
    torch_weights.convert({**sd, "layer5.0.conv1.weight": sd["conv1.weight"]}, spec)
  narrow = _spec(RESNET18, width=0.5)
  with pytest.raises(UserError, match=r"layer stem \(\w+/\w+\): the state_dict gives "
                                      r"\(.*64,?\), resnet18 here has \(.*32,?\)"):
    torch_weights.check_shapes(torch_weights.convert(sd, narrow),
                               models.variable_shapes(narrow), narrow)
  with pytest.raises(UserError, match=r"lacks 30 keys resnet20 needs: layer1\.2\.conv1"):
    torch_weights.convert(sd, _spec("resnet20"))  # a deeper CIFAR ResNet: named alike
  with pytest.raises(UserError, match="mobilenetv1's layer block1.pw has no counterpart"):
    torch_weights.convert(sd, _spec("mobilenetv1"))


def test_import_writes_a_network_the_pipeline_loads(tmp_path):
  """`gp_jax.import_weights` from an .npz: network.json with symmetric padding and a
  checkpoint that `load_network` (init_checkpoint, teacher, evaluate) restores."""
  config = tiny_config()  # digits at 16x16
  config.model.arch, config.model.width_multiplier = RESNET18, 0.125
  config.model.padding = "symmetric"
  spec = spec_from_config(config)
  variables = random_variables(models.ConvNet(spec), seed=3)
  path = str(tmp_path / "sd.npz")
  np.savez(path, **_torch_layout(spec, variables))
  out = str(tmp_path / "imported")
  config.model.padding = "same"  # the import sets it
  record = import_weights(config, path, out)
  assert record["padding"] == "symmetric" and record["imported_from"] == path
  got_spec, widths, loaded, _, step = artifacts.load_network(out)
  assert step == 0 and widths == spec.max_widths and got_spec.padding == "symmetric"
  jax.tree.map(np.testing.assert_array_equal, jax.tree.map(np.asarray, loaded),
               jax.tree.map(np.asarray, variables))
  with pytest.raises(UserError, match="is not empty"):
    import_weights(config, path, out)
  with pytest.raises(UserError, match="no weights file"):
    import_weights(config, str(tmp_path / "none.npz"), str(tmp_path / "o2"))
  assert not os.path.exists(tmp_path / "o2")


def _torchvision_layout(torch, arch: str):
  """torchvision's ResNet-18, ResNet-50 (v1.5) and MobileNetV2, 10 classes, written with
  torch.nn under torchvision's module names (torchvision itself is not installed here:
  its wheels must match torch's build); so the state_dict keys and the padding are
  torchvision's."""
  nn = torch.nn

  def cbr(cin, cout, k, s, groups=1, act=nn.ReLU6):  # Conv2dNormActivation
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), act(inplace=True))

  if arch == "mobilenetv2":
    class InvertedResidual(nn.Module):
      def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        layers = [cbr(cin, hidden, 1, 1)] if t != 1 else []
        layers += [cbr(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.res = stride == 1 and cin == cout

      def forward(self, x):
        return x + self.conv(x) if self.res else self.conv(x)

    features, cin = [cbr(3, 32, 3, 2)], 32
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
      for i in range(n):
        features.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
        cin = c
    features.append(cbr(cin, 1280, 1, 1))

    class MobileNetV2(nn.Module):
      def __init__(self):
        super().__init__()
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 10))

      def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))

    return MobileNetV2()

  bottleneck = arch == "resnet50"

  class Block(nn.Module):
    def __init__(self, cin, width, stride):
      super().__init__()
      cout = width * 4 if bottleneck else width
      if bottleneck:  # v1.5: the stride on the 3x3 conv
        self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout)
      else:
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
      self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                       nn.BatchNorm2d(cout))
                         if stride != 1 or cin != cout else None)

    def forward(self, x):
      y = torch.relu(self.bn1(self.conv1(x)))
      y = self.bn2(self.conv2(y))
      if bottleneck:
        y = self.bn3(self.conv3(torch.relu(y)))
      return torch.relu(y + (x if self.downsample is None else self.downsample(x)))

  class ResNet(nn.Module):
    def __init__(self):
      super().__init__()
      self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
      self.bn1 = nn.BatchNorm2d(64)
      self.maxpool = nn.MaxPool2d(3, 2, 1)
      cin = 64
      for s, (width, blocks) in enumerate(zip((64, 128, 256, 512),
                                              (3, 4, 6, 3) if bottleneck else (2, 2, 2, 2))):
        layer = []
        for i in range(blocks):
          layer.append(Block(cin, width, 2 if (s > 0 and i == 0) else 1))
          cin = width * 4 if bottleneck else width
        setattr(self, f"layer{s + 1}", nn.Sequential(*layer))
      self.fc = nn.Linear(cin, 10)

    def forward(self, x):
      x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
      for s in range(1, 5):
        x = getattr(self, f"layer{s}")(x)
      return self.fc(x.mean((2, 3)))

  return ResNet()


@pytest.mark.parametrize("arch", [RESNET18, "resnet50", "mobilenetv2"])
def test_logits_match_pytorch(arch):
  """A network of torchvision's layout in PyTorch, random weights and BatchNorm
  statistics, converted: the same logits (eval mode) on the same images."""
  torch = pytest.importorskip("torch")
  torch.manual_seed(0)
  net = _torchvision_layout(torch, arch.split(":")[-1]).eval()
  with torch.no_grad():
    for m in net.modules():
      if isinstance(m, torch.nn.BatchNorm2d):
        m.running_mean.uniform_(-0.5, 0.5)
        m.running_var.uniform_(0.5, 1.5)
        m.weight.uniform_(0.5, 1.5)
        m.bias.uniform_(-0.2, 0.2)
  spec = _spec(arch, resolution=64)
  variables = torch_weights.convert(
      {k: v.numpy() for k, v in net.state_dict().items()}, spec)
  x = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype(np.float32)
  with torch.no_grad():
    want = net(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
  got = models.ConvNet(spec, spec.max_widths).apply(variables, x)
  np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)
  same = models.ConvNet(_spec(arch, "same", resolution=64), spec.max_widths).apply(variables, x)
  assert not np.allclose(same, want, rtol=1e-3, atol=1e-3)  # SAME padding would not match
