"""The tests' tiny digits config (16x16 inputs, a few steps per stage).

    python -m gp_jax.main --config=tests/tiny_config.py --workdir=W
"""
from configs import digits_resnet20


def get_config(arg=None):
  del arg
  config = digits_resnet20.get_config()
  config.progress = False
  config.dataset.resolution = 16
  p = config.pruningnet
  p.steps, p.batch_size, p.log_every, p.checkpoint_every = 4, 16, 2, 4
  p.gcn_features, p.head_hidden, p.recal_batches = 16, 8, 1
  s = config.search
  s.evaluations, s.population, s.recal_batches, s.recal_batch_size = 16, 4, 1, 16
  s.eval_batch_size = 100
  s.rl.warmup_episodes, s.rl.hidden, s.rl.batch_size = 4, 16, 8
  s.rl.greedy_every = 1  # a greedy score after every round, so the tests see several
  r = config.retrain
  r.steps, r.batch_size, r.log_every, r.checkpoint_every = 6, 16, 2, 3
  config.eval.latency_runs, config.eval.latency_batch_size = 3, 4
  return config
