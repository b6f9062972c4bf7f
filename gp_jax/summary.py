"""Describes a config's network: MACs, params, channel groups, layer graph.

    python -m gp_jax.summary --config=configs/digits_resnet20.py          # a compact table
    python -m gp_jax.summary --config=configs/digits_resnet20.py --json   # one JSON object
"""
import json

from absl import flags
from ml_collections import config_flags

from gp_jax.config.build import fixed_groups_from_config, spec_from_config
from gp_jax.hypernet.layer_graph import build_layer_graph
from gp_jax.hypernet.pruningnet import count_pruningnet_params
from gp_jax.net import costs
from gp_jax.runtime import cli

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_JSON = flags.DEFINE_bool("json", False, "Print one JSON object instead of the table.")
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


def _count(n: int) -> str:
  for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
    if n >= scale:
      return f"{n / scale:.2f}{unit}"
  return str(n)


def format_summary(s: dict) -> str:
  """A few lines: the network, then one line per channel group."""
  lines = [f"{s['arch']} at {s['resolution']}x{s['resolution']}, {s['num_classes']} classes: "
           f"{_count(s['macs'])} MACs, {_count(s['params'])} params, {s['num_layers']} layers "
           f"({s['graph']['edges']} graph edges), {s['num_groups']} channel groups "
           f"({s['num_prunable_groups']} prunable); PruningNet "
           f"{_count(s['pruningnet_params'])} params",
           f"  {'group':<24}{'width':>6}  layers"]
  for g in s["groups"]:
    layers = ", ".join(g["layers"][:3]) + (f" +{len(g['layers']) - 3}" if len(g["layers"]) > 3
                                           else "")
    lines.append(f"  {g['name']:<24}{g['max_width']:>6}  {layers}"
                 + ("  (fixed)" if g["fixed"] else ""))
  return "\n".join(lines)


def main(argv):
  del argv
  summary = summarize(cli.load_config(_CONFIG))
  print(json.dumps(summary, indent=1) if _JSON.value else format_summary(summary))


def run():
  """The `gp-jax-summary` console script."""
  cli.run(main)


if __name__ == "__main__":
  run()
