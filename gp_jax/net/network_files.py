"""Where a retrained network's files are, and whether a network fits a config's spec.

`W/retrain/<role>/network.json` (beside the orbax checkpoints) records what rebuilds
the network: architecture, widths, dataset facts. Validation reads it to reject a
teacher or an init checkpoint that cannot serve the config before anything runs.
"""
from __future__ import annotations

import os

from gp_jax.net.spec import ArchSpec
from gp_jax.runtime import io_utils
from gp_jax.runtime.errors import UserError

NETWORK_FILE = "network.json"


def locate_network(path: str) -> tuple[str, int | None]:
  """(network directory, step or None for the latest) for a role or step directory."""
  path = os.path.abspath(path)
  if os.path.exists(os.path.join(path, NETWORK_FILE)):
    return path, None
  parent, leaf = os.path.split(path)
  if leaf.isdigit() and os.path.exists(os.path.join(parent, NETWORK_FILE)):
    return parent, int(leaf)
  raise UserError(f"{path} is not a retrain checkpoint (no {NETWORK_FILE} in it or its "
                  "parent); pass W/retrain/<pruned|uniform|unpruned>[/<step>]")


def read_record(path: str) -> dict:
  directory, _ = locate_network(path)
  return io_utils.read_json(os.path.join(directory, NETWORK_FILE))


def check_fits(path: str, spec: ArchSpec, what: str, arch: str | None = None) -> dict:
  """The record of the network at `path`; a one-line UserError naming the path and the
  first mismatch if it does not serve `spec` (same classes, input and, with `arch`,
  the config's model.arch, that architecture at full width with the same padding: its
  first differing layer)."""
  record = read_record(path)
  facts = {"num_classes": spec.num_classes, "resolution": spec.resolution,
           "channels": spec.in_channels}
  for key, want in facts.items():
    got = record.get(key, want if key == "channels" else None)
    if got != want:
      raise UserError(f"{what} {path} has {key}={got}, this config's network {want}; pass a "
                      "network trained on the same data")
  if arch is not None:
    if record.get("arch") != arch:
      raise UserError(f"{what} {path} is a {record.get('arch')}, this config's network a "
                      f"{arch}; pass a checkpoint of the same architecture")
    if record.get("padding", "same") != spec.padding:
      raise UserError(f"{what} {path} pads {record.get('padding')}, this config "
                      f"{spec.padding}; pass --config.model.padding={record.get('padding')}")
    widths = list(record.get("widths", ()))
    for i, (group, width) in enumerate(zip(spec.groups, spec.max_widths)):
      got = widths[i] if len(widths) == spec.num_groups else None
      if got != width:
        raise UserError(f"{what} {path}: layer {group.layers[0]} has {got} channels there, "
                        f"{width} in this config's full network; pass the unpruned network "
                        "(W/retrain/unpruned) of the same architecture and width")
  return record
