"""ResNet-20 on scikit-learn's digits (8x8 upsampled to 16x16): the offline default.

Runs on a laptop CPU in minutes; used by `make demo` and the tests (`make demo`
from a fresh clone, venv included: 4.5 min on a 2-core AMD EPYC, 2026-12-01;
8.9 on another EPYC, 2026-11-27).

    python -m gp_jax.summary --config=configs/digits_resnet20.py
    python -m gp_jax.main --config=configs/digits_resnet20.py --workdir=runs/demo
    # under a latency budget measured on this machine (docs/budgets.md; 28 min on a
    # 2-core AMD EPYC, the latency table 2 of them):
    python -m gp_jax.main --config=configs/digits_resnet20.py --workdir=W \
        --config.search.constraint=latency --config.search.targets='(0.6,)'
"""
from gp_jax.default_config import apply_smoke, base_config, parse_arg


def get_config(arg=None):
  _, smoke = parse_arg(arg)  # `:smoke`: seconds instead of minutes
  config = base_config()
  config.dataset.name = "digits"
  config.model.arch = "resnet20"
  # The images are 8x8: at 16x16 (not the dataset's default 32x32) every stage of
  # ResNet-20 still sees at least 4x4, and each step costs 4.5x less (a retrain
  # step at batch 64: 143 against 639 ms, 2-core AMD EPYC), which brings `make
  # demo` from 28.6 to about 10 minutes on that machine (docs/budgets.md).
  config.dataset.resolution = 16
  # Multiples of 4: XLA's CPU convs run odd widths (11, 23, 45) slower than the
  # full 16/32/64 net; multiples of 4 make the pruned net really faster
  # (measured at 32x32: 0.48 MACs -> 1.27x lower latency, divisor 1 -> 0.84x).
  config.channels.divisor = 4
  # Demo-sized search: AMC's 100 warm-up episodes + 100 learned ones, the greedy
  # policy scored every 2 rounds (the Fashion-MNIST study runs 300).
  config.search.evaluations = 200
  config.search.rl.greedy_every = 2
  return apply_smoke(config) if smoke else config
