"""Prints one JSON object describing a config's network: MACs, params, groups, graph.

    python -m gp_jax.summary --config=configs/digits_resnet20.py
"""
import json

from absl import flags
from ml_collections import config_flags

from gp_jax import cli, costs
from gp_jax.config_lib import fixed_groups_from_config, spec_from_config
from gp_jax.layer_graph import build_layer_graph
from gp_jax.pruningnet import count_pruningnet_params

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
flags.mark_flags_as_required(["config"])


def summarize(config) -> dict:
  spec = spec_from_config(config)
  fixed = fixed_groups_from_config(config, spec)
  graph = build_layer_graph(spec)
  return {
      "arch": spec.name,
      "resolution": spec.resolution,
      "num_classes": spec.num_classes,
      "macs": int(costs.macs(spec)),
      "params": int(costs.params(spec)),
      "num_layers": len(spec.layers),
      "num_groups": spec.num_groups,
      # Known up front: MetaPruning's ResNet-50 heads famously run out of memory.
      "pruningnet_params": count_pruningnet_params(spec, config),
      "num_prunable_groups": int((~fixed).sum()),
      "graph": {"nodes": graph.num_nodes, "edges": graph.num_flow_edges},
      "groups": [{"name": g.name, "max_width": g.channels, "fixed": bool(f),
                  "layers": list(g.layers)}
                 for g, f in zip(spec.groups, fixed)],
  }


def main(argv):
  del argv
  print(json.dumps(summarize(cli.load_config(_CONFIG)), indent=1))


if __name__ == "__main__":
  cli.run(main)
