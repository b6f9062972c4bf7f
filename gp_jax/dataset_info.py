"""What the model side needs to know about each dataset (no data is read here)."""
import dataclasses

from gp_jax.errors import unknown_name


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  num_classes: int
  channels: int
  resolution: int  # default input resolution fed to the network
  train_examples: int  # the train split, before the held-out search split is carved


DATASETS = {
    # scikit-learn's bundled 8x8 digits, upsampled to 32x32: works offline.
    "digits": DatasetInfo(num_classes=10, channels=1, resolution=32,
                          train_examples=1797 - 360),
    "cifar10": DatasetInfo(num_classes=10, channels=3, resolution=32,
                           train_examples=50_000),
    "imagenet2012": DatasetInfo(num_classes=1000, channels=3, resolution=224,
                                train_examples=1_281_167),
}


def get_dataset_info(name: str) -> DatasetInfo:
  if name not in DATASETS:
    raise unknown_name("dataset", name, DATASETS)
  return DATASETS[name]
