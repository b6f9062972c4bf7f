"""ResNet-50 (torchvision v1.5 layout) on ImageNet at 224x224, as MetaPruning prunes it.

4.09 GMACs, 25.6M params at full width; widths round to multiples of 8;
PruningNet 776M params.

    python -m gp_jax.summary --config=configs/imagenet_resnet50.py
    python -m gp_jax.main --config=configs/imagenet_resnet50.py --workdir=W
    python -m gp_jax.main --config=configs/imagenet_resnet50.py:smoke --workdir=W  # seconds

The argument is `[<width multiplier>][,smoke]`; `smoke` shrinks resolution,
width, batches and steps to a CPU smoke test of the same code path.

Recipe: the PruningNet as MetaPruning's resnet/training/train.py (32 epochs,
batch 256, lr 0.1 x0.1 at epochs 8/16/24, weight decay 1e-4, label smoothing
0.1, random-resized crop + lighting 0.1 + flip): 153,896 steps, 39.4M images,
about a third of a 90-epoch ResNet-50 training. Search: 1,000 candidates (as
MetaPruning's 20 x 50 evolution), each recalibrated on 1,000 training images and
scored on 10,000 held-out ones. Retrain from scratch: the standard 90-epoch
ResNet-50 recipe (batch 256, lr 0.1 x0.1 at epochs 30/60/80). Needs ImageNet as
ArrayRecord files (see docs/datasets.md).
"""
from gp_jax.config.schema import apply_smoke, imagenet_config, parse_arg, resnet_recipe


def get_config(arg=None):
  width, smoke = parse_arg(arg)
  config = resnet_recipe(imagenet_config("resnet50", width or 1.0))
  # The 776M-parameter PruningNet: on a CPU, XLA's lower-memory schedule is also faster.
  config.cpu_low_memory = True
  return apply_smoke(config) if smoke else config
