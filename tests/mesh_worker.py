"""Runs the tiny PruningNet stage on meshes of 8 fake CPU devices (a subprocess of
tests/test_scaling.py): JAX_NUM_CPU_DEVICES=8 python -m tests.mesh_worker OUT_DIR

Writes OUT_DIR/mesh_<data>x<model>/ (a workdir each) and prints one JSON line:
{"devices": 8, "heads": {mesh: [[full shape, per-device shape], ...]}}.
"""
import json
import sys

import jax

from gp_jax.config.build import spec_from_config
from gp_jax.hypernet import pruningnet as pn_lib
from gp_jax.hypernet.pruningnet import pruningnet_from_config
from gp_jax.runtime import optim, sharding
from gp_jax.stages import pruningnet as pruningnet_stage
from tests.tiny_config import get_config

# One mesh with both axes: data parallel over 4 and the kernel heads split over 2
# (data-only meshes, across processes too, are test_scaling's two-process test).
MESHES = ((4, 2),)


def head_shards(config):
  """[full shape, shape on device 0] of every kernel-head output matrix."""
  spec = spec_from_config(config)
  mesh = sharding.make_mesh(config)
  state, _ = pn_lib.create_sharded_state(
      pruningnet_from_config(spec, config), spec, optim.make_optimizer(config.pruningnet, 1),
      config.seed, mesh)
  out = []
  for path, x in jax.tree_util.tree_leaves_with_path(state.params):
    if sharding.is_head_output(path) and x.ndim == 2:
      out.append([list(x.shape), list(x.addressable_shards[0].data.shape)])
  return out


def main(out_dir):
  report = {"devices": jax.device_count(), "heads": {}}
  for data, model in MESHES:
    config = get_config()
    config.mesh.data, config.mesh.model = data, model
    pruningnet_stage.run(config, f"{out_dir}/mesh_{data}x{model}")
    report["heads"][f"{data}x{model}"] = head_shards(config)
  print(json.dumps(report))


if __name__ == "__main__":
  main(sys.argv[1])
