"""The benchmark's reference: a PruningNet step written in PyTorch eager the way
MetaPruning writes it, built from the same `ArchSpec`.

Each conv layer has an FC head (2 -> hidden -> full kernel size) that takes the
layer's (output, input) keep-ratios and generates the *max-size* kernel, which
is sliced to the sampled widths every step and run with `F.conv2d`. BatchNorm
uses the sliced channels' batch statistics and sliced affine parameters; the
classifier is an ordinary weight sliced on its input. Search candidates are
recalibrated as MetaPruning does: BN running statistics reset, then a cumulative
average over the recalibration batches, then evaluation with them.

Only `benchmarks.bench` imports this; torch is installed by `make bench`, not a
runtime dependency.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gp_jax.net.spec import ArchSpec


class MetaPruningStyleNet(nn.Module):
  """PruningNet of `spec`: per-layer FC heads generating max-size weights."""

  def __init__(self, spec: ArchSpec, head_hidden: int = 32):
    super().__init__()
    self.spec = spec
    self.heads = nn.ModuleDict()
    self.bn_weight, self.bn_bias = nn.ParameterDict(), nn.ParameterDict()
    self.running = {}
    self.dense_weight, self.dense_bias = nn.ParameterDict(), nn.ParameterDict()
    for op in spec.ops:
      key = op.name.replace(".", "_")
      if op.kind in ("conv", "depthwise"):
        in_max = 1 if op.kind == "depthwise" else spec.ops[op.inputs[0]].channels
        size = op.channels * in_max * op.kernel * op.kernel
        self.heads[key] = nn.Sequential(nn.Linear(2, head_hidden), nn.ReLU(),
                                        nn.Linear(head_hidden, size))
      if op.kind == "dense":
        in_max = spec.ops[op.inputs[0]].channels
        self.dense_weight[key] = nn.Parameter(torch.randn(op.channels, in_max) * 0.01)
        self.dense_bias[key] = nn.Parameter(torch.zeros(op.channels))
      if op.batch_norm:
        self.bn_weight[key] = nn.Parameter(torch.ones(op.channels))
        self.bn_bias[key] = nn.Parameter(torch.zeros(op.channels))
        self.running[key] = [torch.zeros(op.channels), torch.ones(op.channels), 0]

  def to_device(self, device):
    """The module and its running statistics (plain tensors, not buffers) on `device`."""
    self.to(device)
    self.running = {k: [v[0].to(device), v[1].to(device), v[2]] for k, v in self.running.items()}
    return self

  def reset_running_stats(self):
    for stats in self.running.values():
      stats[0].zero_()
      stats[1].fill_(1.0)
      stats[2] = 0

  def _bn(self, key, y, mode):
    w = y.shape[1]
    weight, bias = self.bn_weight[key][:w], self.bn_bias[key][:w]
    mean, var, count = self.running[key]
    if mode == "eval":
      return F.batch_norm(y, mean[:w], var[:w], weight, bias, training=False)
    if mode == "recal":  # cumulative average (momentum=None), as MetaPruning's search
      batch_mean = y.mean(dim=(0, 2, 3))
      batch_var = y.var(dim=(0, 2, 3), unbiased=True)
      mean[:w] = (mean[:w] * count + batch_mean) / (count + 1)
      var[:w] = (var[:w] * count + batch_var) / (count + 1)
      self.running[key][2] = count + 1
    return F.batch_norm(y, None, None, weight, bias, training=True)

  def forward(self, images, widths, mode: str = "train"):
    """`widths`: (num_groups,) ints; mode: train | recal | eval."""
    spec, outs = self.spec, []
    for op in spec.ops:
      key = op.name.replace(".", "_")
      if op.kind == "input":
        y = images
      elif op.kind in ("conv", "depthwise"):
        x = outs[op.inputs[0]]
        w_out = int(widths[op.group]) if op.kind == "conv" else x.shape[1]
        in_max = spec.ops[op.inputs[0]].channels
        ratios = torch.tensor([w_out / op.channels, x.shape[1] / in_max], dtype=images.dtype,
                              device=images.device)
        kernel = self.heads[key](ratios)
        if op.kind == "depthwise":
          kernel = kernel.view(op.channels, 1, op.kernel, op.kernel)[:w_out]
          y = F.conv2d(x, kernel, stride=op.stride, padding=op.kernel // 2, groups=w_out)
        else:
          kernel = kernel.view(op.channels, in_max, op.kernel, op.kernel)[:w_out, :x.shape[1]]
          y = F.conv2d(x, kernel, stride=op.stride, padding=op.kernel // 2)
        if op.batch_norm:
          y = self._bn(key, y, mode)
      elif op.kind == "dense":
        x = outs[op.inputs[0]].flatten(1)
        w_out = int(widths[op.group])
        y = F.linear(x, self.dense_weight[key][:w_out, :x.shape[1]],
                     self.dense_bias[key][:w_out])[:, :, None, None]
      elif op.kind == "add":
        y = sum(outs[i] for i in op.inputs)
      elif op.kind == "max_pool":
        y = F.max_pool2d(outs[op.inputs[0]], op.kernel, op.stride, padding=op.kernel // 2)
      elif op.kind == "global_pool":
        y = outs[op.inputs[0]].mean(dim=(2, 3), keepdim=True)
      else:
        raise ValueError(op.kind)
      if op.activation == "relu":
        y = F.relu(y)
      elif op.activation == "relu6":
        y = F.relu6(y)
      outs.append(y)
    return outs[-1].flatten(1)


def count_params(model: nn.Module) -> int:
  return sum(p.numel() for p in model.parameters())


def make_step(model, *, learning_rate=0.1, momentum=0.9, weight_decay=1e-4):
  """`step(images, labels, widths) -> loss`: one SGD step on one sampled configuration."""
  opt = torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=momentum,
                        weight_decay=weight_decay)

  def step(images, labels, widths):
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(images, widths, "train"), labels, label_smoothing=0.1)
    loss.backward()
    opt.step()
    return float(loss)

  return step


@torch.no_grad()
def score_candidate(model, widths, recal_batches, eval_images, eval_labels) -> float:
  """MetaPruning's candidate evaluation: reset BN stats, recalibrate, evaluate top-1."""
  model.reset_running_stats()
  for images in recal_batches:
    model(images, widths, "recal")
  logits = model(eval_images, widths, "eval")
  return float((logits.argmax(-1) == eval_labels).float().mean())


def to_nchw(images: np.ndarray) -> torch.Tensor:
  return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
