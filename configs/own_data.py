"""Your own images: an npz file or an ImageNet-style folder, ResNet-20 by default.

    python -m gp_jax.main --config=configs/own_data.py:/path/to/data.npz --workdir=W
    python -m gp_jax.main --config=configs/own_data.py:/path/to/images --workdir=W
    python -m gp_jax.main --config=configs/own_data.py:/path/to/data.npz,smoke --workdir=W

npz: `x_train`, `y_train`, `x_test`, `y_test` (images uint8 (N, H, W) or (N, H, W, C));
a folder: `train/<class>/*` and `val/<class>/*` (or `test/`). See docs/own_data.md.
Resolution, channels and classes come from the data (`dataset.resolution=0`);
nothing is resized unless you set `--config.dataset.resolution`.

Recipe, sized from the number of training images n (batch 64, lr 0.1 cosine, SGD
with Nesterov momentum): held out for the search min(n/10, 5000) images; the
PruningNet and each retrain run max(2, min(30, 150,000 / n)) epochs (about 2,300
steps or more: 30 epochs of 5,000 images, 2 of 75,000); the search scores 300
candidates (AMC's 100 warm-up episodes + 200) at 0.5 MACs. On 60,000 28x28
images (Fashion-MNIST's size) that is the Fashion-MNIST config's recipe, about
25 minutes on a 2-core CPU; change the network with `--config.model.arch` and
`--config.model.width_multiplier`.
"""
import os

from gp_jax.config.schema import apply_smoke, base_config, set_training
from gp_jax.runtime.errors import UserError


def epochs_for(train_images: int) -> float:
  return max(2.0, min(30.0, 150_000 / max(train_images, 1)))


def get_config(arg=None):
  path, _, flag = str(arg or "").rpartition(",") if str(arg or "").endswith(",smoke") \
      else (str(arg or ""), "", "")
  if not path:
    raise UserError("configs/own_data.py needs the data: --config=configs/own_data.py:"
                    "/path/to/data.npz (or an image folder with train/ and val/)")
  config = base_config()
  config.dataset.name = "npz" if path.endswith(".npz") else "image_folder"
  config.dataset.path = os.path.expanduser(path)
  config.dataset.resolution = 0  # the data's own
  from gp_jax.data import datasets  # pylint: disable=import-outside-toplevel  # reads the data
  info = datasets.info(config.dataset)
  n = info.train_examples
  config.dataset.holdout_size = max(1, min(n // 10, 5_000))
  config.model.arch = "resnet20"
  config.channels.divisor = 4
  epochs = epochs_for(n)
  for section, images in ((config.pruningnet, n - config.dataset.holdout_size),
                          (config.retrain, n)):
    set_training(section, epochs=epochs, examples=images, batch_size=min(64, images // 2),
                 learning_rate=0.1, schedule="cosine", weight_decay=5e-4,
                 label_smoothing=0.0, warmup_epochs=min(0.05 * epochs, 1.0), checkpoints=10)
    section.nesterov = True
  config.pruningnet.weight_decay = 5e-5
  config.pruningnet.log_every = config.retrain.log_every = 50
  config.search.evaluations = 300
  config.search.targets = (0.5,)
  return apply_smoke(config) if flag == "smoke" else config
