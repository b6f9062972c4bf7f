"""ResNet-56 (x0.5 width) on Fashion-MNIST: the study's larger search space.

    make fashion-mnist      # once
    python -m gp_jax.main --config=configs/fashion_mnist_resnet56.py --workdir=W
    python -m gp_jax.main --config=configs/fashion_mnist_resnet56.py:smoke --workdir=W

The same data and recipe as configs/fashion_mnist_resnet20.py, on a network with 30
prunable channel groups instead of 12 (27 block-internal convs and the 3 stages'
residual streams) and widths in steps of 2 instead of 4, so that a few hundred
random samples no longer cover the space: AMC and AGMC showed their margins on
ResNet-56. About 3.1x ResNet-20's MACs at every width, so every stage takes about
that much longer than the ResNet-20 config's (STUDY.md has the measured times).
"""
from configs import fashion_mnist_resnet20
from gp_jax.config.schema import apply_smoke, parse_arg


def get_config(arg=None):
  width, smoke = parse_arg(arg)
  config = fashion_mnist_resnet20.get_config(str(width or 0.5))
  config.model.arch = "resnet56"
  config.channels.divisor = 2
  return apply_smoke(config) if smoke else config
