"""MobileNetV1 on ImageNet at 224x224 (569 MMACs, 4.2M params at width 1.0).

    python -m gp_jax.summary --config=configs/imagenet_mobilenetv1.py
    python -m gp_jax.summary --config=configs/imagenet_mobilenetv1.py:0.5

The argument is the width multiplier (default 1.0); widths round to multiples of 8.
"""
from gp_jax.default_config import base_config


def get_config(arg=None):
  config = base_config()
  config.dataset.name = "imagenet2012"
  config.model.arch = "mobilenetv1"
  config.model.width_multiplier = float(arg) if arg else 1.0
  config.channels.divisor = 8
  return config
