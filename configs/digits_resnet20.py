"""ResNet-20 on scikit-learn's digits (8x8 upsampled to 32x32): the offline default.

Runs on a laptop CPU in minutes; used by `make demo` and the tests.

    python -m gp_jax.summary --config=configs/digits_resnet20.py
    python -m gp_jax.main --config=configs/digits_resnet20.py --workdir=runs/demo
"""
from gp_jax.default_config import base_config


def get_config(arg=None):
  del arg
  config = base_config()
  config.dataset.name = "digits"
  config.model.arch = "resnet20"
  config.channels.divisor = 1
  return config
