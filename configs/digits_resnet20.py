"""ResNet-20 on scikit-learn's digits (8x8 upsampled to 32x32): the offline default.

Runs on a laptop CPU in minutes; used by `make demo` and the tests.

    python -m gp_jax.summary --config=configs/digits_resnet20.py
    python -m gp_jax.main --config=configs/digits_resnet20.py --workdir=runs/demo
    # under a latency budget measured on this machine (README "Budgets"; 28 min on a
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
  # Multiples of 4: XLA's CPU convs run odd widths (11, 23, 45) slower than the
  # full 16/32/64 net; multiples of 4 make the pruned net really faster
  # (measured: 0.48 MACs -> 1.27x lower latency, divisor 1 -> 0.84x).
  config.channels.divisor = 4
  # Demo-sized search: AMC's 100 warm-up episodes + 100 learned ones, the greedy
  # policy scored every 2 rounds (the Fashion-MNIST study runs 300).
  config.search.evaluations = 200
  config.search.rl.greedy_every = 2
  return apply_smoke(config) if smoke else config
