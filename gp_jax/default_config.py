"""The fields every experiment config shares; `configs/*.py` start from here."""
import ml_collections


def base_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.dataset = ml_collections.ConfigDict()
  config.dataset.name = "digits"
  config.dataset.resolution = 0  # 0: the dataset's default resolution

  config.model = ml_collections.ConfigDict()
  config.model.arch = "resnet20"
  config.model.width_multiplier = 1.0

  config.channels = ml_collections.ConfigDict()
  config.channels.divisor = 1          # widths round to a multiple of this
  config.channels.fixed_groups = ()    # group/layer name patterns never pruned
  config.channels.grid_levels = 31     # keep-ratio grid, as MetaPruning
  config.channels.grid_low = 0.1
  config.channels.grid_high = 1.0
  return config
