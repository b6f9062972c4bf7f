"""The run's random streams, each named here and derived from `config.seed`.

A stream's seed is `config.seed` plus its offset. The offsets are the ones the
stages have always used, so a run reproduces the figures of earlier runs; streams
that share an offset feed different generators (a jax key, grain's shuffle), so
they draw nothing in common.
"""
STREAMS = {
    "init": 0,              # initial weights: the PruningNet's, a retrained network's
    "train_data": 0,        # training batches' order (data.train_batches: augmentation +1)
    "sampler": 0,           # the PruningNet's sampled configurations, folded with the step
    "recal_retrain": 0,     # BN recalibration of a network built from generated weights
    "recal_pruningnet": 1,  # BN recalibration for the PruningNet's held-out check
    "recal_search": 2,      # BN recalibration of every search candidate
    "search": 0,            # a search method's own stream (search.base.stream_seed)
}


# `search.stream` k > 0 moves the search's stream by k times this, far from every
# other seed's: replicate searches on one PruningNet and one set of scoring images.
STREAM_STRIDE = 1_000_003


def seed(config, stream: str) -> int:
  """The seed of `stream` in the run of `config`."""
  base = int(config.seed) + STREAMS[stream]
  if stream == "search":
    base += STREAM_STRIDE * int(config.search.get("stream", 0))
  return base
