"""The network layer: the architecture spec (the single source), channel groups, MACs
and parameter counts, the masked and sliced models, latency tables, BatchNorm folding,
channel importance and random configurations under a budget. Above `data`."""
