"""The fields every experiment config shares; `configs/*.py` start from here."""
import ml_collections


def base_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.dataset = ml_collections.ConfigDict()
  config.dataset.name = "digits"
  config.dataset.resolution = 0  # 0: the dataset's default resolution
  config.dataset.holdout_size = 300  # held-out search split carved from train

  config.model = ml_collections.ConfigDict()
  config.model.arch = "resnet20"
  config.model.width_multiplier = 1.0

  config.channels = ml_collections.ConfigDict()
  config.channels.divisor = 1          # widths round to a multiple of this
  config.channels.fixed_groups = ()    # group/layer name patterns never pruned
  config.channels.grid_levels = 31     # keep-ratio grid, as MetaPruning
  config.channels.grid_low = 0.1
  config.channels.grid_high = 1.0

  config.progress = True  # progress bars on the terminal
  add_pruningnet(config)
  return config


def add_pruningnet(config: ml_collections.ConfigDict) -> None:
  """PruningNet stage defaults (digits scale; ImageNet configs override)."""
  c = config.pruningnet = ml_collections.ConfigDict()
  c.steps = 600
  c.batch_size = 64
  c.configs_per_step = 1      # configurations sampled per step, each on its batch slice
  c.macs_range = ()           # () or (low, high): reject samples outside these MACs ratios
  c.learning_rate = 0.1
  c.schedule = "cosine"       # cosine | step | linear | constant
  c.warmup_steps = 30
  c.momentum = 0.9
  c.nesterov = True
  c.weight_decay = 5e-5
  c.label_smoothing = 0.0
  c.gcn_features = 64         # GCN embedding width
  c.gcn_layers = 2
  c.head_hidden = 32          # hidden width of each layer's kernel head
  c.log_every = 20
  c.checkpoint_every = 200
  c.max_to_keep = 3
  c.recal_batches = 4         # training batches for BN recalibration of a candidate
  c.eval_batch_size = 100
