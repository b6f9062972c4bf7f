"""ResNet-50 (torchvision v1.5 layout) on ImageNet at 224x224, as MetaPruning prunes it.

4.09 GMACs, 25.6M params at full width; widths round to multiples of 8.

    python -m gp_jax.summary --config=configs/imagenet_resnet50.py
    python -m gp_jax.main --config=configs/imagenet_resnet50.py --workdir=W

The argument is the width multiplier of the full network (default 1.0).
"""
from gp_jax.default_config import imagenet_config


def get_config(arg=None):
  return imagenet_config("resnet50", arg)
