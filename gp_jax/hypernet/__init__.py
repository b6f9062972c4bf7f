"""The hypernetwork layer: the layer graph, the GCN aggregator, the PruningNet that
generates weights for any channel configuration, and scoring a configuration with it
(BatchNorm recalibration, held-out top-1). Above `net`."""
