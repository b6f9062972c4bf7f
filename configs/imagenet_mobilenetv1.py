"""MobileNetV1 on ImageNet at 224x224 (569 MMACs, 4.2M params at width 1.0).

    python -m gp_jax.summary --config=configs/imagenet_mobilenetv1.py
    python -m gp_jax.summary --config=configs/imagenet_mobilenetv1.py:0.5

The argument is the width multiplier (default 1.0); widths round to multiples of 8.
"""
from gp_jax.default_config import imagenet_config


def get_config(arg=None):
  return imagenet_config("mobilenetv1", arg)
