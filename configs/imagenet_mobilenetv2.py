"""MobileNetV2 on ImageNet at 224x224; default base is MetaPruning's 1.4-wide net.

The 1.4 base has 582 MMACs and 6.1M params; `:1.0` gives the standard
MobileNetV2 (301 MMACs, 3.5M params). Widths round to multiples of 8.

    python -m gp_jax.summary --config=configs/imagenet_mobilenetv2.py
    python -m gp_jax.summary --config=configs/imagenet_mobilenetv2.py:1.0
"""
from gp_jax.default_config import base_config


def get_config(arg=None):
  config = base_config()
  config.dataset.name = "imagenet2012"
  config.model.arch = "mobilenetv2"
  config.model.width_multiplier = float(arg) if arg else 1.4
  config.channels.divisor = 8
  return config
