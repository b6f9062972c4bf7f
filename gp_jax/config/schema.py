"""The config schema: every field's default, rule (type, range or choices) and help,
declared once in `FIELDS`. `base_config()`, which `configs/*.py` start from, and
`gp_jax.config.validation` both derive from it; names come from the registries that own
them (dataset kinds, search methods, schedules, constraints, metrics), resolved at
validation, so that reading a config imports ml_collections and nothing heavier.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import ml_collections

from gp_jax.config.rules import (Rule, boolean, choice, fractions, integer, mesh_axis, number,
                                 patterns, range_pair, ratios, registry, text)


@dataclasses.dataclass(frozen=True)
class Field:
  path: str      # dotted: "search.rl.hidden"
  default: Any
  rule: Rule
  help: str = ""


def _path(v):
  return Rule(lambda x: isinstance(x, str), v, (3,))


def _train(prefix: str, *, steps: int, weight_decay: float, log_every: int,
           checkpoint_every: int, max_to_keep: int, warmup_steps: int):
  """The optimiser fields the pruningnet and retrain sections share."""
  return [
      Field(f"{prefix}.steps", steps, integer()),
      Field(f"{prefix}.batch_size", 64, integer()),
      Field(f"{prefix}.learning_rate", 0.1, number(0, math.inf, low_open=True)),
      Field(f"{prefix}.schedule", "cosine", registry("gp_jax.runtime.optim:SCHEDULES"),
            "a learning-rate schedule (optim.py)"),
      Field(f"{prefix}.decay_at", (0.5, 0.75), fractions(),
            'schedule "step": x0.1 at these fractions of training'),
      Field(f"{prefix}.warmup_steps", warmup_steps, integer(0)),
      Field(f"{prefix}.momentum", 0.9, number(0, 1, high_open=True)),
      Field(f"{prefix}.nesterov", True, boolean()),
      Field(f"{prefix}.weight_decay", weight_decay, number(0, 1)),
      Field(f"{prefix}.label_smoothing", 0.0, number(0, 1, high_open=True)),
      Field(f"{prefix}.log_every", log_every, integer()),
      Field(f"{prefix}.checkpoint_every", checkpoint_every, integer()),
      Field(f"{prefix}.max_to_keep", max_to_keep, integer()),
  ]


_PRUNINGNET_TRAIN = {f.path.split(".")[1]: f for f in _train(
    "pruningnet", steps=600, weight_decay=5e-5, log_every=20, checkpoint_every=200,
    max_to_keep=3, warmup_steps=30)}
_RETRAIN_TRAIN = {f.path.split(".")[1]: f for f in _train(
    "retrain", steps=500, weight_decay=5e-4, log_every=25, checkpoint_every=250,
    max_to_keep=2, warmup_steps=25)}
_P, _R = _PRUNINGNET_TRAIN, _RETRAIN_TRAIN

# Digits-scale defaults; configs/imagenet_*.py and the others override them.
FIELDS: tuple[Field, ...] = (
    Field("seed", 0, integer(0)),
    Field("dataset.name", "digits", registry("gp_jax.data.datasets:KINDS"),
          "a dataset kind (data/datasets.py)"),
    Field("dataset.resolution", 0, integer(0), "0: the dataset's default resolution"),
    Field("dataset.holdout_size", 300, integer(), "held-out search split carved from train"),
    Field("dataset.data_dir", "", _path("a directory path (or '')"),
          'tfds data dir ("" = tfds default); not for digits'),
    Field("dataset.path", "", _path("a file or folder path (or '')"),
          "npz: FILE.npz; image_folder: DIR (see data/datasets.py)"),
    Field("dataset.flip", True, boolean(),
          "random horizontal flips in training (never on digits)"),
    Field("dataset.worker_count", 0, integer(0),
          "grain worker processes decoding images (0: inline)"),
    Field("dataset.lighting", 0.0, number(0, 1),
          "ImageNet PCA lighting noise (MetaPruning: 0.1)"),
    Field("model.arch", "resnet20", text(),
          "a built-in architecture, or module:function for your own (docs/extending.md)"),
    Field("model.width_multiplier", 1.0, number(0, 8, low_open=True)),
    Field("model.padding", "same", choice(("same", "symmetric")),
          "how convs pad: XLA's SAME, or symmetric as PyTorch's (for imported weights)"),
    Field("channels.divisor", 1, integer(), "widths round to a multiple of this"),
    Field("channels.fixed_groups", (), patterns(), "group/layer name patterns never pruned"),
    Field("channels.grid_levels", 31, integer(2), "keep-ratio grid, as MetaPruning"),
    Field("channels.grid_low", 0.1, number(0, 1, low_open=True)),
    Field("channels.grid_high", 1.0, number(0, 1, low_open=True)),
    Field("progress", True, boolean(), "progress bars on the terminal"),
    Field("cpu_low_memory", False, boolean(),
          "on the CPU: compile for a lower peak memory (gp_jax/runtime/xla_flags.py; BENCHMARKS.md "
          "table 5 says which networks it helps)"),
    # Devices: the batch (and search populations) split over `data`, the
    # PruningNet's kernel heads over `model` (docs/scaling.md).
    Field("mesh.data", -1, mesh_axis(), "-1: all remaining devices"),
    Field("mesh.model", 1, mesh_axis()),

    _P["steps"], _P["batch_size"],
    Field("pruningnet.configs_per_step", 1, integer(),
          "configurations sampled per step, each on its batch slice"),
    # Universally Slimmable Networks (Yu & Huang, ICCV 2019): the "sandwich rule".
    Field("pruningnet.sandwich", False, boolean(),
          "every step also trains the largest and smallest grid configuration; each "
          "configuration sees the whole batch (losses summed)"),
    # Slimmable networks (Yu et al., ICLR 2019) and BigNAS: in-place distillation.
    Field("pruningnet.distill", "none", choice(("none", "inplace")),
          "none | inplace: the largest configuration's predictions (no gradient) are the "
          "other configurations' targets; needs sandwich"),
    Field("pruningnet.macs_range", (), range_pair(),
          "() or (low, high): reject samples outside these ratios of the constraint"),
    _P["learning_rate"], _P["schedule"], _P["decay_at"], _P["warmup_steps"],
    _P["momentum"], _P["nesterov"], _P["weight_decay"],
    Field("pruningnet.momentum_dtype", "float32", choice(("float32", "bfloat16")),
          "bfloat16: half the optimizer memory"),
    _P["label_smoothing"],
    Field("pruningnet.gcn_features", 64, integer(), "GCN embedding width"),
    Field("pruningnet.gcn_layers", 2, integer()),
    Field("pruningnet.head_hidden", 32, integer(), "hidden width of each layer's kernel head"),
    _P["log_every"], _P["checkpoint_every"], _P["max_to_keep"],
    Field("pruningnet.recal_batches", 4, integer(),
          "training batches for BN recalibration of a candidate"),
    Field("pruningnet.eval_batch_size", 100, integer()),

    Field("search.method", "graph_rl", registry("gp_jax.search.methods:METHODS"),
          "graph_rl | amc | evolution | random | uniform (search/methods.py)"),
    Field("search.constraint", "macs", registry("gp_jax.constraints:NAMES"),
          "what the budget counts; latency is predicted on this device from "
          "W/latency_table.json (gp_jax/net/latency.py, `latency.*`)"),
    Field("search.targets", (0.5,), ratios(),
          "ratios of the full network's cost; one search (and result file) each"),
    Field("search.macs_tolerance", 0.03, number(0, 1, low_open=True, high_open=True),
          "results land in [target - tolerance, target] of the constraint's ratio"),
    # AMC runs 800 (train_episode); 400 = its 100 warm-up episodes + 300 learned
    # ones, where its noise has long decayed (0.5 * 0.95^45 < 0.05), and fits a CPU.
    Field("search.stream", 0, integer(0),
          "another exploration stream for the same seed's PruningNet and images (replicates)"),
    Field("search.evaluations", 400, integer(),
          "candidates scored per target (the search budget; RL: episodes)"),
    Field("search.population", 16, integer(), "candidates per vmapped call (random, evolution)"),
    Field("search.reward", "top1", registry("gp_jax.hypernet.candidates:METRICS"),
          "top1 (as MetaPruning/AMC) | top5 | neg_loss (held-out cross-entropy)"),
    Field("search.recal_batches", 2, integer(), "BN recalibration: batches of training images"),
    Field("search.recal_batch_size", 64, integer(), "... of this size"),
    Field("search.eval_batch_size", 100, integer(), "held-out evaluation batch"),
    Field("search.eval_examples", 0, integer(0),
          "held-out images scoring each candidate; 0: all of them, or half with "
          "search.rescore_top"),
    Field("search.rescore_top", 10, integer(0),
          "re-score the best N distinct candidates on held-out images the search never "
          "saw and pick the best there (0: pick by the search's own score)"),
    Field("search.report_examples", 0, integer(0),
          "held-out images after the selection part that re-score; 0: the rest"),
    Field("search.vmap_chunk", 0, integer(0),
          "candidates vmapped together; 0: 1 on CPU, all on GPU/TPU"),

    # The DDPG agent (search/rl.py, search/ddpg.py). Defaults are AMC's own
    # (mit-han-lab/amc amc_search.py argparse defaults, lib/agent.py), named per field.
    Field("search.rl.state", "", registry("gp_jax.search.methods:RL_STATES", ("",)),
          '"": the method\'s own (graph_rl: gcn, amc: handcrafted); controls: '
          "gcn_untrained | gcn_shuffled (search/rl.py)"),
    Field("search.rl.episodes_per_round", 0, integer(0),
          "episodes per vmapped rollout; the actor is updated after each round (AMC: 1). "
          "0: 4 on CPU (candidates are scored one by one there anyway), search.population "
          "on GPU/TPU (one call scores them all)"),
    Field("search.rl.hidden", 300, integer(), "AMC --hidden1/--hidden2"),
    Field("search.rl.actor_lr", 1e-4, number(0, 1, low_open=True), "AMC --lr_a"),
    Field("search.rl.critic_lr", 1e-3, number(0, 1, low_open=True), "AMC --lr_c"),
    Field("search.rl.tau", 0.01, number(0, 1, low_open=True), "AMC --tau (target networks)"),
    Field("search.rl.discount", 1.0, number(0, 1), "AMC --discount"),
    Field("search.rl.batch_size", 64, integer(), "AMC --bsize"),
    Field("search.rl.replay_episodes", 100, integer(),
          "AMC --rmsize (per layer): a FIFO of the last 100 episodes"),
    Field("search.rl.warmup_episodes", 100, integer(0),
          "AMC --warmup: uniform random actions first"),
    Field("search.rl.noise_init", 0.5, number(0, 10, low_open=True),
          "AMC --init_delta: truncated-normal exploration sigma"),
    # AMC's --delta_decay is 0.95; we depart: with 0.95 the noise is gone 80 episodes
    # after the warm-up and the greedy policy stalls (tests/test_rl.py's synthetic
    # reward: no closer to the optimum after 800 episodes than after 400); 0.99 keeps
    # exploring through a 300-episode budget and ends closer (docs/pipeline.md, the search).
    Field("search.rl.noise_decay", 0.99, number(0, 1, low_open=True),
          "sigma's factor per episode after the warm-up"),
    Field("search.rl.baseline_alpha", 0.5, number(0, 1, low_open=True),
          "AMC moving_alpha: reward baseline, batch means"),
    # Where AMC's code (lib/agent.py, lib/memory.py) and this agent could differ;
    # tests/test_rl.py's synthetic reward compares them (STUDY.md, the agent's table).
    Field("search.rl.critic_action", "hidden", choice(("hidden", "first")),
          "where the critic takes the action: hidden (DDPG) | first (AMC: fc11(s)+fc12(a))"),
    Field("search.rl.output_init", "small", choice(("small", "default")),
          "output layers: small (+-3e-3) | default (PyTorch's; AMC's init_w is unused)"),
    Field("search.rl.action_range", "bounded", choice(("bounded", "unit")),
          "actor output: bounded [lower bound, 1] | unit [0, 1] clipped by the wall (AMC)"),
    Field("search.rl.replay_sampling", "with_replacement",
          choice(("with_replacement", "without_replacement")),
          "replay batches (AMC's memory: without replacement)"),
    Field("search.rl.reward_norm", "baseline", choice(("baseline", "std")),
          "baseline: minus a moving average (AMC) | std: also over a moving std"),
    Field("search.rl.scalars", "all", registry("gp_jax.search.methods:RL_SCALARS"),
          "the environment's scalars in the state; controls: no_step (no t/T) | none"),
    Field("search.rl.macs_reward", 0.0, number(-100, 100),
          "reward = score + macs_reward * MACs ratio (AMC: 0)"),
    Field("search.rl.greedy_every", 1, integer(0),
          "score the noise-free policy every N rounds (0: never)"),
    Field("search.evolution.parents", 4, integer(),
          "top-k kept as parents (MetaPruning: 10 of 50)"),
    Field("search.evolution.mutation_prob", 0.1, number(0, 1)),

    Field("retrain.init", "scratch", registry("gp_jax.config.build:INITS"),
          "scratch (as MetaPruning) | pruningnet (generated weights) | checkpoint (a "
          "trained full network, its most important channels kept: retrain.init_checkpoint)"),
    Field("retrain.init_checkpoint", "", _path("'', 'unpruned' or a checkpoint directory"),
          "retrain.init=checkpoint: unpruned (the full network, trained first in this run) "
          "| W/retrain/unpruned of a run of the same network"),
    Field("retrain.finetune_learning_rate", 0.0, number(0, math.inf),
          "peak learning rate of a network that starts from a trained checkpoint "
          "(retrain.init=checkpoint; its weights are trained already); 0: learning_rate"),
    # Li et al. 2017 (filter L1 norms) | Liu et al. 2017 (network slimming: BN scales)
    Field("retrain.importance", "l1", registry("gp_jax.net.importance:METHODS"),
          "which channels a pruned checkpoint keeps: l1 (kernel norms) | bn_scale"),
    # Hinton et al. 2015: soft targets at temperature T, weighted against the labels.
    Field("retrain.distill.teacher", "", _path("'', 'unpruned' or a checkpoint directory"),
          "'' | unpruned (trained first in this run) | W/retrain/<role> of another run"),
    Field("retrain.distill.weight", 0.9, number(0, 1),
          "loss = (1 - weight) * cross-entropy + weight * T^2 * KL(teacher || student)"),
    Field("retrain.distill.temperature", 4.0, number(0, 100, low_open=True)),
    Field("retrain.baseline", "uniform", registry("gp_jax.config.build:BASELINES"),
          '"" | uniform: also train the uniform net at the same cost'),
    Field("retrain.unpruned", True, boolean(),
          "also train the full network (the table's reference row)"),
    Field("retrain.use_holdout", True, boolean(),
          "retrain on train + the search's held-out split"),
    *_R.values(),

    Field("eval.batch_size", 100, integer(), "test-set evaluation batch"),
    Field("eval.latency_batch_size", 32, integer(),
          "latency: median over timed batches of this size ..."),
    Field("eval.latency_runs", 20, integer(), "... after warm-up"),
    # The per-layer latency table of `search.constraint=latency` (gp_jax/net/latency.py),
    # measured at eval.latency_batch_size.
    Field("latency.grid_points", 8, integer(2),
          "widths measured per channel group at most (interpolated between)"),
    Field("latency.runs", 10, integer(), "timed calls per measurement (median)"),
    Field("latency.monotone", True, boolean(),
          "predict from each layer's running maximum over narrower widths (never "
          "rewards more channels; conservative); False: its measured times"),
)


def rules() -> dict[str, Rule]:
  """{field path: its rule}, for gp_jax.config.validation."""
  return {f.path: f.rule for f in FIELDS}


def base_config() -> ml_collections.ConfigDict:
  """Every field at its default."""
  config = ml_collections.ConfigDict()
  for f in FIELDS:
    *sections, name = f.path.split(".")
    node = config
    for s in sections:
      if s not in node:
        node[s] = ml_collections.ConfigDict()
      node = node[s]
    node[name] = f.default
  return config


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
  """A stage's optimiser section `c` from an epoch-based recipe: `epochs` over
  `examples` training images at `batch_size` give `c.steps`; `decay_at` (fractions
  of the steps) serves the step schedule; `checkpoints` spaces `c.checkpoint_every`."""
  c.steps = epochs_to_steps(epochs, examples, batch_size)
  c.batch_size, c.learning_rate, c.schedule = batch_size, learning_rate, schedule
  c.weight_decay, c.label_smoothing, c.decay_at = weight_decay, label_smoothing, decay_at
  c.warmup_steps = epochs_to_steps(warmup_epochs, examples, batch_size) if warmup_epochs else 0
  c.nesterov = False  # as MetaPruning's SGD
  c.checkpoint_every = max(1, c.steps // checkpoints)
  c.log_every = 100


IMAGENET_TRAIN = 1_281_167
IMAGENET_HOLDOUT = 50_000


def resnet_recipe(config, learning_rate: float = 0.1, weight_decay: float = 1e-4):
  """MetaPruning's ResNet PruningNet recipe (resnet/training/train.py: 32 epochs, batch
  256, x0.1 at epochs 8/16/24, label smoothing 0.1) and the standard 90-epoch retrain
  (x0.1 at epochs 30/60/80)."""
  set_training(config.pruningnet, epochs=32, examples=IMAGENET_TRAIN - IMAGENET_HOLDOUT,
               batch_size=256, learning_rate=learning_rate, schedule="step",
               weight_decay=weight_decay, label_smoothing=0.1, decay_at=(0.25, 0.5, 0.75))
  set_training(config.retrain, epochs=90, examples=IMAGENET_TRAIN, batch_size=256,
               learning_rate=learning_rate, schedule="step", weight_decay=weight_decay,
               label_smoothing=0.1, decay_at=(1 / 3, 2 / 3, 8 / 9))
  return config


def mobilenet_recipe(config):
  """MetaPruning's MobileNet PruningNet recipe (64 epochs, batch 512, lr 0.25 linear to
  0, no weight decay, label smoothing 0.1) and the usual 250-epoch retrain."""
  set_training(config.pruningnet, epochs=64, examples=IMAGENET_TRAIN - IMAGENET_HOLDOUT,
               batch_size=512, learning_rate=0.25, schedule="linear", weight_decay=0.0,
               label_smoothing=0.1)
  set_training(config.retrain, epochs=250, examples=IMAGENET_TRAIN, batch_size=512,
               learning_rate=0.25, schedule="linear", weight_decay=4e-5, label_smoothing=0.1)
  return config


def imagenet_config(arch: str, width: float) -> ml_collections.ConfigDict:
  """An ImageNet config for `arch` at width multiplier `width`: data, search budget
  and eval at ImageNet scale; each configs/imagenet_*.py sets its training recipe."""
  config = base_config()
  config.dataset.name = "imagenet2012"
  config.dataset.holdout_size = IMAGENET_HOLDOUT  # 50 per class on average, as MetaPruning
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
