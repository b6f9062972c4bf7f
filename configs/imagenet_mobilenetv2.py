"""MobileNetV2 on ImageNet at 224x224; default base is MetaPruning's 1.4-wide net.

The 1.4 base has 582 MMACs and 6.1M params (PruningNet 143M); `:1.0` gives the
standard MobileNetV2 (301 MMACs, 3.5M params). Widths round to multiples of 8.

    python -m gp_jax.summary --config=configs/imagenet_mobilenetv2.py
    python -m gp_jax.main --config=configs/imagenet_mobilenetv2.py --workdir=W
    python -m gp_jax.main --config=configs/imagenet_mobilenetv2.py:1.0,smoke --workdir=W

The argument is `[<width multiplier>][,smoke]`.

Recipe: the PruningNet as MetaPruning's mobilenetv2/training/train.py (64 epochs,
batch 512, lr 0.25 decaying linearly to 0, no weight decay, label smoothing 0.1,
random-resized crop + lighting 0.1 + flip): 153,896 steps, 78.8M images.
Search: 1,000 candidates on 10,000 held-out images. Retrain from scratch: the
usual MobileNet recipe (250 epochs, batch 512, lr 0.25 linear, weight decay 4e-5,
label smoothing 0.1).
"""
from gp_jax.config.schema import apply_smoke, imagenet_config, mobilenet_recipe, parse_arg


def get_config(arg=None):
  width, smoke = parse_arg(arg)
  config = mobilenet_recipe(imagenet_config("mobilenetv2", width or 1.4))
  # On a CPU the lower-memory schedule also runs this PruningNet's step faster
  # (BENCHMARKS.md tables 1-2 and 5).
  config.cpu_low_memory = True
  return apply_smoke(config) if smoke else config
