"""MobileNetV2 on ImageNet at 224x224; default base is MetaPruning's 1.4-wide net.

The 1.4 base has 582 MMACs and 6.1M params; `:1.0` gives the standard
MobileNetV2 (301 MMACs, 3.5M params). Widths round to multiples of 8.

    python -m gp_jax.summary --config=configs/imagenet_mobilenetv2.py
    python -m gp_jax.summary --config=configs/imagenet_mobilenetv2.py:1.0
"""
from gp_jax.default_config import imagenet_config


def get_config(arg=None):
  return imagenet_config("mobilenetv2", arg, default_width=1.4)
