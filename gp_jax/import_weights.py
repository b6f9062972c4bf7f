"""Brings a network trained in PyTorch into gp_jax: a torchvision ResNet or MobileNetV2
`state_dict` becomes a network directory (network.json + an orbax checkpoint) that
`retrain.init_checkpoint`, `retrain.distill.teacher` and `gp_jax.evaluate` take.

    python -m gp_jax.import_weights --config=configs/imagenet_resnet50.py \\
        --weights=resnet50.pth --out=imported/resnet50
    python -m gp_jax.main --config=configs/imagenet_resnet50.py --workdir=W \\
        --config.model.padding=symmetric --config.retrain.init=checkpoint \\
        --config.retrain.init_checkpoint=imported/resnet50

`--weights` is a .pth/.pt file (read with torch, which must then be installed) or an
.npz of the same keys (`np.savez(f, **{k: v.numpy() for k, v in sd.items()})`).
PyTorch pads symmetrically, so the network is imported with `model.padding=symmetric`
and every run on it must pass that flag too (a mismatch is a one-line error).
"""
from __future__ import annotations

import os

import numpy as np
from absl import flags
from ml_collections import config_flags

from gp_jax import artifacts
from gp_jax.config import validation
from gp_jax.config.build import spec_from_config
from gp_jax.net import models, torch_weights
from gp_jax.runtime import checkpoints, cli
from gp_jax.runtime.errors import UserError


def read_state_dict(path: str) -> dict:
  """{key: numpy array} of a .pth/.pt (torch) or .npz file."""
  if not os.path.exists(path):
    raise UserError(f"no weights file {path}")
  if path.endswith(".npz"):
    with np.load(path) as f:
      return {k: f[k] for k in f.files}
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise UserError(f"reading {path} needs torch (pip install torch), or save the "
                    "state_dict as an .npz of numpy arrays and pass that") from None
  try:
    loaded = torch.load(path, map_location="cpu", weights_only=True)
  except Exception as e:  # pylint: disable=broad-except  # a foreign or truncated file
    raise UserError(f"cannot read {path} with torch.load ({type(e).__name__}: {e})") from None
  loaded = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else loaded
  if not isinstance(loaded, dict):
    raise UserError(f"{path} holds a {type(loaded).__name__}, not a state_dict; save "
                    "model.state_dict()")
  return {k: v.detach().cpu().numpy() for k, v in loaded.items() if hasattr(v, "numpy")}


def import_weights(config, weights: str, out: str) -> dict:
  """Writes `out`/network.json and a checkpoint of the full network of `config`'s
  architecture with the weights of `weights`; returns the record."""
  if os.path.isdir(out) and os.listdir(out):
    raise UserError(f"{out} is not empty; pass a new --out")
  config.model.padding = "symmetric"  # as PyTorch pads
  validation.validate(config)
  spec = spec_from_config(config)
  variables = torch_weights.convert(read_state_dict(weights), spec)
  torch_weights.check_shapes(variables, models.variable_shapes(spec), spec)
  record = artifacts.network_record(config, spec, spec.max_widths, "unpruned", "imported")
  record["imported_from"] = os.path.abspath(weights)
  artifacts.write_network_record(out, record)
  ckpts = checkpoints.Checkpoints(out, keep=1)
  ckpts.save(0, variables)
  ckpts.finish()
  return record


def run():
  """The `gp-jax-import` console script."""
  config = config_flags.DEFINE_config_file("config", None, "The config of the network.")
  weights = flags.DEFINE_string("weights", None, "A state_dict: .pth/.pt or .npz.")
  out = flags.DEFINE_string("out", None, "The network directory to write.")

  def main(argv):
    if len(argv) > 1:
      raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not (config.value and weights.value and out.value):
      raise UserError("pass --config=CONFIG --weights=FILE --out=DIR")
    record = import_weights(config.value, weights.value, out.value)
    print(f"imported {record['arch']} ({record['params'] / 1e6:.2f}M params) into "
          f"{out.value}; pass it with --config.model.padding=symmetric")

  cli.run(main)


if __name__ == "__main__":
  run()
