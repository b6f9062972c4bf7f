"""ResNet-18 on ImageNet at 224x224, defined here with the spec builder (an example of
pruning your own network): 1.81 GMACs, 11.7M params, as torchvision's resnet18.

    python -m gp_jax.summary --config=configs/imagenet_resnet18.py
    python -m gp_jax.main --config=configs/imagenet_resnet18.py --workdir=W

`model.arch` names this file's `resnet18` function; the argument is the width multiplier.
Channel groups are inferred: each stage's residual stream is one group.

Recipe: the ResNet-50 one (`schema.resnet_recipe`: PruningNet 32 epochs as
MetaPruning's ResNets, retrain 90 epochs at batch 256, lr 0.1 x0.1 at 30/60/80).
"""
from gp_jax.config.schema import apply_smoke, imagenet_config, parse_arg, resnet_recipe
from gp_jax.net.spec import SpecBuilder


def resnet18(*, num_classes, resolution, in_channels, width_multiplier=1.0):
  b = SpecBuilder("resnet18", resolution=resolution, in_channels=in_channels,
                  num_classes=num_classes)
  w = lambda c: max(1, round(c * width_multiplier))
  x = b.conv(b.input(), w(64), kernel=7, stride=2, name="stem")
  x = b.max_pool(x, kernel=3, stride=2, name="stem.pool")
  for s, width in enumerate((64, 128, 256, 512)):
    for i in range(2):
      stride = 2 if (s > 0 and i == 0) else 1
      p = f"stage{s + 1}.block{i + 1}"
      y = b.conv(x, w(width), kernel=3, stride=stride, name=f"{p}.conv1")
      y = b.conv(y, w(width), kernel=3, activation="none", name=f"{p}.conv2")
      if stride != 1 or x.channels != w(width):
        x = b.conv(x, w(width), kernel=1, stride=stride, activation="none",
                   name=f"{p}.shortcut")
      x = b.add(x, y, activation="relu", name=f"{p}.add")
  b.dense(b.global_pool(x), num_classes, name="fc")
  return b.build()


def get_config(arg=None):
  width, smoke = parse_arg(arg)
  config = resnet_recipe(imagenet_config("configs.imagenet_resnet18:resnet18", width or 1.0))
  return apply_smoke(config) if smoke else config
