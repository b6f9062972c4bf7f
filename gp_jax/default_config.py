"""The fields every experiment config shares; `configs/*.py` start from here."""
import ml_collections


def base_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.dataset = ml_collections.ConfigDict()
  config.dataset.name = "digits"
  config.dataset.resolution = 0  # 0: the dataset's default resolution
  config.dataset.holdout_size = 300  # held-out search split carved from train
  config.dataset.data_dir = ""       # tfds data dir ("" = tfds default); not for digits
  config.dataset.path = ""           # npz: FILE.npz; image_folder: DIR (see datasets.py)
  config.dataset.flip = True         # random horizontal flips in training (never on digits)
  config.dataset.worker_count = 0    # grain worker processes decoding images (0: inline)
  config.dataset.lighting = 0.0      # ImageNet PCA lighting noise (MetaPruning: 0.1)

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
  # On the CPU: compile for a lower peak memory (gp_jax/xla_flags.py): the ResNet-50
  # and MobileNetV2 PruningNet steps need less and run faster; digits' runs 13% slower.
  config.cpu_low_memory = False

  # Devices: the batch (and search populations) split over `data`, the PruningNet's
  # kernel heads over `model`; -1 takes all remaining devices (see README "Scaling out").
  config.mesh = ml_collections.ConfigDict()
  config.mesh.data = -1
  config.mesh.model = 1
  add_pruningnet(config)
  add_search(config)
  add_retrain(config)
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
  c.decay_at = (0.5, 0.75)    # schedule "step": x0.1 at these fractions of training
  c.warmup_steps = 30
  c.momentum = 0.9
  c.nesterov = True
  c.weight_decay = 5e-5
  c.momentum_dtype = "float32"  # or "bfloat16": half the optimizer memory
  c.label_smoothing = 0.0
  c.gcn_features = 64         # GCN embedding width
  c.gcn_layers = 2
  c.head_hidden = 32          # hidden width of each layer's kernel head
  c.log_every = 20
  c.checkpoint_every = 200
  c.max_to_keep = 3
  c.recal_batches = 4         # training batches for BN recalibration of a candidate
  c.eval_batch_size = 100


def add_search(config: ml_collections.ConfigDict) -> None:
  """Search stage defaults (digits scale)."""
  c = config.search = ml_collections.ConfigDict()
  c.method = "graph_rl"       # graph_rl | amc | evolution | random | uniform (search/methods.py)
  # What the budget counts: macs | params | latency (predicted on this device from
  # W/latency_table.json, see gp_jax/latency.py and `config.latency`).
  c.constraint = "macs"
  c.targets = (0.5,)          # ratios of the full network's cost; one search (and result file) each
  c.macs_tolerance = 0.03     # results land in [target - tolerance, target] (of the constraint's ratio)
  # Candidates scored per target (the search budget; RL: episodes). AMC runs 800
  # (train_episode); 400 = its 100 warm-up episodes + 300 learned ones, which is
  # where its noise has long decayed (0.5 * 0.95^45 < 0.05) and fits a CPU.
  c.evaluations = 400
  c.population = 16           # candidates per vmapped call (random, evolution)
  c.reward = "top1"           # top1 (as MetaPruning/AMC) | top5 | neg_loss (held-out cross-entropy)
  c.recal_batches = 2         # BN recalibration: batches of training images ...
  c.recal_batch_size = 64     # ... of this size
  c.eval_batch_size = 100     # held-out evaluation batch
  c.eval_examples = 0         # held-out images scoring each candidate; 0: all of them
  c.vmap_chunk = 0            # candidates vmapped together; 0: 1 on CPU, all on GPU/TPU

  # The DDPG agent (search/rl.py, search/ddpg.py). Defaults are AMC's own
  # (mit-han-lab/amc amc_search.py argparse defaults, lib/agent.py), named per field.
  c.rl = ml_collections.ConfigDict()
  c.rl.state = ""             # "": the method's own (graph_rl: gcn, amc: handcrafted);
  #                             controls: gcn_untrained | gcn_shuffled (search/rl.py)
  # Episodes per vmapped rollout; the actor is updated after each round. AMC: 1.
  # 0: 4 on CPU (candidates are scored one by one there anyway), search.population
  # on GPU/TPU (one call scores them all).
  c.rl.episodes_per_round = 0
  c.rl.hidden = 300           # AMC --hidden1/--hidden2
  c.rl.actor_lr = 1e-4        # AMC --lr_a
  c.rl.critic_lr = 1e-3       # AMC --lr_c
  c.rl.tau = 0.01             # AMC --tau (target networks)
  c.rl.discount = 1.0         # AMC --discount
  c.rl.batch_size = 64        # AMC --bsize
  c.rl.replay_episodes = 100  # AMC --rmsize (per layer): a FIFO of the last 100 episodes
  c.rl.warmup_episodes = 100  # AMC --warmup: uniform random actions first
  c.rl.noise_init = 0.5       # AMC --init_delta: truncated-normal exploration sigma ...
  # ... times this per episode after the warm-up. AMC's --delta_decay is 0.95; we
  # depart: with 0.95 the noise is gone 80 episodes after the warm-up and the greedy
  # policy stalls (tests/test_rl.py's synthetic reward: no closer to the optimum
  # after 800 episodes than after 400); 0.99 keeps exploring through a 300-episode
  # budget (sigma 0.18 after 100 learned episodes, 0.025 after 300) and ends closer
  # (README, "Stage 2").
  c.rl.noise_decay = 0.99
  c.rl.baseline_alpha = 0.5   # AMC moving_alpha: reward baseline, batch means
  c.rl.macs_reward = 0.0      # reward = score + macs_reward * MACs ratio (AMC: 0)
  c.rl.greedy_every = 1       # score the noise-free policy every N rounds (0: never)

  c.evolution = ml_collections.ConfigDict()
  c.evolution.parents = 4     # top-k kept as parents (MetaPruning: 10 of 50)
  c.evolution.mutation_prob = 0.1


def add_retrain(config: ml_collections.ConfigDict) -> None:
  """Retrain + eval defaults (digits scale)."""
  c = config.retrain = ml_collections.ConfigDict()
  c.init = "scratch"          # scratch (as MetaPruning) | pruningnet (generated weights)
  c.baseline = "uniform"      # "" | uniform: also train the uniform net at the same MACs
  c.unpruned = True           # also train the full network (the table's reference row)
  c.use_holdout = True        # retrain on train + the search's held-out split
  c.steps = 500
  c.batch_size = 64
  c.learning_rate = 0.1
  c.schedule = "cosine"
  c.decay_at = (0.5, 0.75)
  c.warmup_steps = 25
  c.momentum = 0.9
  c.nesterov = True
  c.weight_decay = 5e-4
  c.label_smoothing = 0.0
  c.log_every = 25
  c.checkpoint_every = 250
  c.max_to_keep = 2

  e = config.eval = ml_collections.ConfigDict()
  e.batch_size = 100          # test-set evaluation batch
  e.latency_batch_size = 32   # latency: median over timed batches of this size ...
  e.latency_runs = 20         # ... after warm-up

  # The per-layer latency table of `search.constraint=latency` (gp_jax/latency.py),
  # measured at eval.latency_batch_size.
  t = config.latency = ml_collections.ConfigDict()
  t.grid_points = 8           # widths measured per channel group at most (interpolated between)
  t.runs = 10                 # timed calls per measurement (median)


def parse_arg(arg) -> tuple[float | None, bool]:
  """A config argument `[<width>][,smoke]` -> (width multiplier or None, smoke)."""
  width, smoke = None, False
  for token in str(arg or "").split(","):
    token = token.strip()
    if token == "smoke":
      smoke = True
    elif token:
      try:
        width = float(token)
      except ValueError:
        raise ValueError(f"config argument '{token}' is neither a width multiplier "
                         "nor 'smoke'") from None
  return width, smoke


def epochs_to_steps(epochs: float, examples: int, batch_size: int) -> int:
  return max(1, int(round(epochs * examples / batch_size)))


def apply_smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Shrinks a config to seconds of CPU (tiny resolution, width, batch, steps) while
  keeping every code path: the same dataset pipeline, stages and search method."""
  config.progress = False
  config.dataset.resolution = 32
  config.dataset.holdout_size = 8
  config.model.width_multiplier = 0.25
  config.channels.divisor = 4
  p = config.pruningnet
  p.steps, p.batch_size, p.configs_per_step, p.warmup_steps = 2, 4, 1, 0
  p.log_every, p.checkpoint_every, p.recal_batches, p.eval_batch_size = 1, 2, 1, 4
  p.gcn_features, p.gcn_layers, p.head_hidden = 8, 1, 4
  s = config.search
  s.evaluations, s.population, s.evolution.parents = 2, 2, 1
  s.recal_batches, s.recal_batch_size, s.eval_batch_size, s.eval_examples = 1, 4, 4, 4
  s.rl.warmup_episodes, s.rl.hidden, s.rl.batch_size = 2, 8, 2
  s.rl.episodes_per_round = 2
  r = config.retrain
  r.steps, r.batch_size, r.warmup_steps, r.log_every, r.checkpoint_every = 2, 4, 0, 1, 2
  r.baseline, r.unpruned = "", False
  config.eval.batch_size, config.eval.latency_batch_size, config.eval.latency_runs = 4, 1, 1
  config.latency.grid_points, config.latency.runs = 2, 1
  return config


def set_training(c: ml_collections.ConfigDict, *, epochs: float, examples: int,
                 batch_size: int, learning_rate: float, schedule: str, weight_decay: float,
                 label_smoothing: float, decay_at=(0.5, 0.75), warmup_epochs: float = 0.0,
                 checkpoints: int = 40) -> None:
  """A stage's optimiser section from an epoch-based recipe."""
  c.steps = epochs_to_steps(epochs, examples, batch_size)
  c.batch_size, c.learning_rate, c.schedule = batch_size, learning_rate, schedule
  c.weight_decay, c.label_smoothing, c.decay_at = weight_decay, label_smoothing, decay_at
  c.warmup_steps = epochs_to_steps(warmup_epochs, examples, batch_size) if warmup_epochs else 0
  c.nesterov = False  # as MetaPruning's SGD
  c.checkpoint_every = max(1, c.steps // checkpoints)
  c.log_every = 100


def imagenet_config(arch: str, width: float) -> ml_collections.ConfigDict:
  """An ImageNet config for `arch` at width multiplier `width`: data, search budget
  and eval at ImageNet scale; each configs/imagenet_*.py sets its training recipe."""
  config = base_config()
  config.dataset.name = "imagenet2012"
  config.dataset.holdout_size = 50_000  # 50 per class on average, as MetaPruning
  config.dataset.worker_count = 8
  config.dataset.lighting = 0.1
  config.model.arch = arch
  config.model.width_multiplier = width
  config.channels.divisor = 8  # widths in multiples of 8, as MetaPruning's ImageNet nets
  s = config.search
  s.evaluations, s.population = 1000, 50  # MetaPruning's evolution: 20 x 50
  s.recal_batches, s.recal_batch_size = 10, 100
  s.eval_examples, s.eval_batch_size = 10_000, 250
  s.rl.episodes_per_round = 50  # the population: one call scores a round on GPU/TPU
  s.evolution.parents = 10
  config.eval.batch_size = 250
  return config
