"""ResNet-20 on scikit-learn's digits (8x8 upsampled to 16x16): the offline default.

Runs on a laptop CPU in minutes; used by `make demo` and the tests. Expected:
the searched network at 0.5 MACs within a few test images of the unpruned one
(98-99% top-1), `make demo` from a fresh clone in about 5 minutes on a 2-core
AMD EPYC.

    python -m gp_jax.summary --config=configs/digits_resnet20.py
    python -m gp_jax.main --config=configs/digits_resnet20.py --workdir=runs/demo
    # under a latency budget measured on this machine (docs/budgets.md; the latency
    # table is measured first, which makes this run several times longer):
    python -m gp_jax.main --config=configs/digits_resnet20.py --workdir=W \
        --config.search.constraint=latency --config.search.targets='(0.6,)'
"""
from gp_jax.config.schema import apply_smoke, base_config, parse_arg


def get_config(arg=None):
  _, smoke = parse_arg(arg)  # `:smoke`: seconds instead of minutes
  config = base_config()
  config.dataset.name = "digits"
  config.model.arch = "resnet20"
  # The images are 8x8: at 16x16 (not the dataset's default 32x32) every stage of
  # ResNet-20 still sees at least 4x4, and each step costs about a quarter as much,
  # which keeps `make demo` to minutes.
  config.dataset.resolution = 16
  # Multiples of 4: XLA's CPU convs run odd widths (11, 23, 45) slower than the
  # full 16/32/64 net; multiples of 4 make the pruned net really faster
  # (BENCHMARKS.md table 4: the pruned networks' latency).
  config.channels.divisor = 4
  # Demo-sized search: AMC's 100 warm-up episodes + 100 learned ones, the greedy
  # policy scored every 2 rounds (the Fashion-MNIST study runs 300).
  config.search.evaluations = 200
  config.search.rl.greedy_every = 2
  # The PruningNet stays on one random configuration per step: the sandwich with
  # in-place distillation that ranks best on Fashion-MNIST (RANKING.md) trains three
  # per step and would take `make demo` past its minutes, and digits' retrained
  # networks sit within a few test images of each other, where no ranking can show.
  return apply_smoke(config) if smoke else config
