"""VGG-16 on ImageNet at 224x224, defined here with the spec builder (an example of
pruning your own network): 15.47 GMACs, 138.4M params, as torchvision's vgg16.

    python -m gp_jax.summary --config=configs/imagenet_vgg16.py
    python -m gp_jax.main --config=configs/imagenet_vgg16.py --workdir=W

`model.arch` names this file's `vgg16` function; the argument is the width multiplier.

Recipe: the ResNet schedule (`schema.resnet_recipe`: PruningNet 32 epochs,
retrain 90 at batch 256, x0.1 at 30/60/80) at torchvision's VGG lr 0.01 and weight
decay 5e-4.
"""
from gp_jax.config.schema import apply_smoke, imagenet_config, parse_arg, resnet_recipe
from gp_jax.net.spec import SpecBuilder

STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


def vgg16(*, num_classes, resolution, in_channels, width_multiplier=1.0):
  """Five stages of 3x3 convs (no BatchNorm, as torchvision's vgg16) + three FC layers."""
  b = SpecBuilder("vgg16", resolution=resolution, in_channels=in_channels,
                  num_classes=num_classes)
  x = b.input()
  for s, widths in enumerate(STAGES):
    for i, width in enumerate(widths):
      x = b.conv(x, max(1, round(width * width_multiplier)), kernel=3, batch_norm=False,
                 name=f"stage{s + 1}.conv{i + 1}")
    x = b.max_pool(x, kernel=2, stride=2, name=f"stage{s + 1}.pool")
  x = b.dense(x, 4096, activation="relu", name="fc1")  # reads the flattened 7x7x512
  x = b.dense(x, 4096, activation="relu", name="fc2")
  b.dense(x, num_classes, name="fc3")
  return b.build()


def get_config(arg=None):
  width, smoke = parse_arg(arg)
  # torchvision's VGG recipe: lr 0.01 (0.1 diverges without BatchNorm), weight decay 5e-4.
  config = resnet_recipe(imagenet_config("configs.imagenet_vgg16:vgg16", width or 1.0),
                         learning_rate=0.01, weight_decay=5e-4)
  return apply_smoke(config) if smoke else config
