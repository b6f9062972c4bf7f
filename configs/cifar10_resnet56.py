"""ResNet-56 on CIFAR-10 at 32x32 (125.7 MMACs, 0.86M params at full width).

    python -m gp_jax.summary --config=configs/cifar10_resnet56.py
    python -m gp_jax.main --config=configs/cifar10_resnet56.py --workdir=W
    python -m gp_jax.main --config=configs/cifar10_resnet56.py:smoke --workdir=W

The argument is `[<width multiplier>][,smoke]`. Prepare the data once with
`tfds build cifar10 --file_format=array_record` (see docs/datasets.md).

Recipe: 5,000 training images held out for the search. PruningNet 100 epochs
(batch 128, lr 0.1 cosine, weight decay 5e-4; 35,156 steps, about 4.5M
images); search 500 candidates, each recalibrated on 512 training images and
scored on all 5,000 held-out ones; retrain from scratch on all 50,000 images
for 160 epochs (lr 0.1 x0.1 at 50% and 75%), the usual CIFAR ResNet recipe.
"""
from gp_jax.config.schema import apply_smoke, base_config, parse_arg, set_training

CIFAR_TRAIN = 50_000
HOLDOUT = 5_000


def get_config(arg=None):
  width, smoke = parse_arg(arg)
  config = base_config()
  config.dataset.name = "cifar10"
  config.dataset.holdout_size = HOLDOUT
  config.dataset.worker_count = 4
  config.model.arch = "resnet56"
  config.model.width_multiplier = width or 1.0
  config.channels.divisor = 2
  set_training(config.pruningnet, epochs=100, examples=CIFAR_TRAIN - HOLDOUT, batch_size=128,
               learning_rate=0.1, schedule="cosine", weight_decay=5e-4, label_smoothing=0.0,
               warmup_epochs=1)
  set_training(config.retrain, epochs=160, examples=CIFAR_TRAIN, batch_size=128,
               learning_rate=0.1, schedule="step", weight_decay=5e-4, label_smoothing=0.0)
  s = config.search
  s.evaluations, s.population, s.evolution.parents = 500, 50, 10
  s.recal_batches, s.recal_batch_size, s.eval_batch_size = 4, 128, 500
  s.rl.warmup_episodes = 100
  return apply_smoke(config) if smoke else config
