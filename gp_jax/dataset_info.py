"""What the model side needs to know about each dataset (no data is read here)."""
import dataclasses
from typing import Optional

from gp_jax.errors import unknown_name


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  num_classes: int
  channels: int
  resolution: int  # default input resolution fed to the network
  train_examples: int  # the train split, before the held-out search split is carved
  # ((mean per channel), (std per channel)) in [0, 1] units for uint8 images,
  # applied on the device; None: the pipeline yields normalised floats (digits).
  input_norm: Optional[tuple] = None


DATASETS = {
    # scikit-learn's bundled 8x8 digits, upsampled to 32x32: works offline.
    "digits": DatasetInfo(num_classes=10, channels=1, resolution=32,
                          train_examples=1797 - 360),
    "cifar10": DatasetInfo(num_classes=10, channels=3, resolution=32, train_examples=50_000,
                           input_norm=((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))),
    "imagenet2012": DatasetInfo(num_classes=1000, channels=3, resolution=224,
                                train_examples=1_281_167,
                                input_norm=((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))),
}


def get_dataset_info(name: str) -> DatasetInfo:
  if name not in DATASETS:
    raise unknown_name("dataset", name, DATASETS)
  return DATASETS[name]
