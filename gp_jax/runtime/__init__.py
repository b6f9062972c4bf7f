"""The runtime layer: how work runs, whatever the network: errors, files, checkpoints,
the train loop, optimisers and losses, sharding, multi-host, metrics, timing,
preemption, the workdir lock, XLA flags. It imports no other layer of gp_jax."""
