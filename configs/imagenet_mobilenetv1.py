"""MobileNetV1 on ImageNet at 224x224, as MetaPruning prunes it.

569 MMACs, 4.2M params at width 1.0 (PruningNet 106M); widths round to multiples of 8.

    python -m gp_jax.summary --config=configs/imagenet_mobilenetv1.py
    python -m gp_jax.main --config=configs/imagenet_mobilenetv1.py --workdir=W
    python -m gp_jax.main --config=configs/imagenet_mobilenetv1.py:smoke --workdir=W

The argument is `[<width multiplier>][,smoke]`.

Recipe: the MobileNetV2 one (`schema.mobilenet_recipe`): PruningNet 64
epochs at batch 512, lr 0.25 linear, label smoothing 0.1 (153,896 steps);
search 1,000 candidates; retrain 250 epochs.
"""
from gp_jax.config.schema import apply_smoke, imagenet_config, mobilenet_recipe, parse_arg


def get_config(arg=None):
  width, smoke = parse_arg(arg)
  config = mobilenet_recipe(imagenet_config("mobilenetv1", width or 1.0))
  return apply_smoke(config) if smoke else config
