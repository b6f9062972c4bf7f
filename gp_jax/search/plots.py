"""Plots of a search: keep-ratio per group, proxy accuracy vs the budget's cost."""
from __future__ import annotations

import glob
import os

import numpy as np

from gp_jax import constraints
from gp_jax.runtime import io_utils

AXIS = {name: c.label for name, c in constraints.REGISTRY.items()}  # per search.constraint


def _pyplot():
  """matplotlib.pyplot on the file-only backend, imported when a plot is drawn (it
  is half a second of every `gp_jax.main` process's start otherwise)."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")  # files only, no display
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  return plt


def keep_ratio_plot(spec, fixed, best_widths, uniform_widths, result, path):
  """Bars: the best configuration's keep-ratio per prunable group beside uniform."""
  free = np.flatnonzero(~np.asarray(fixed))
  max_w = np.asarray(spec.max_widths, dtype=float)
  best = np.asarray(best_widths)[free] / max_w[free]
  uniform = np.asarray(uniform_widths)[free] / max_w[free]
  x = np.arange(len(free))
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(free) + 2), 3.6))
  ax.bar(x - 0.2, best, 0.4, label=f"{result['method']} (proxy top-1 {result['proxy_top1']:.3f})")
  ax.bar(x + 0.2, uniform, 0.4, label="uniform", color="0.7")
  ax.set_xticks(x, [spec.groups[g].name for g in free], rotation=75, fontsize=7)
  ax.set_ylim(0, 1.05)
  ax.set_ylabel("keep-ratio")
  ax.set_title(f"{spec.name}: keep-ratio per channel group at "
               f"{result['cost_ratio']:.3f} {AXIS[result['constraint']]} "
               f"(target {result['target_ratio']:g})")
  ax.legend(fontsize=8)
  io_utils.save_figure(fig, path)
  plt.close(fig)


def accuracy_vs_cost_plot(cost_ratio, scores, best, target, path, title="",
                          ylabel="proxy top-1 (held-out)", xlabel="MACs ratio"):
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(5.5, 3.8))
  ax.scatter(cost_ratio, scores, s=10, alpha=0.6, label="candidates")
  ax.scatter([cost_ratio[best]], [scores[best]], s=60, marker="*", color="C3", label="best")
  ax.axvline(target, color="0.5", ls="--", lw=1, label="target")
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.set_title(title)
  ax.legend(fontsize=8)
  io_utils.save_figure(fig, path)
  plt.close(fig)


def read_curves(search_dir: str, tag: str) -> list[dict]:
  """Every method's curve record searched at `tag` in a workdir's search/ folder."""
  paths = sorted(glob.glob(os.path.join(search_dir, f"curve_*_{tag}.json")))
  return [io_utils.read_json(p) for p in paths]


def search_curves_plot(curves, path, title="", warmup=None):
  """Best reward so far against evaluations for each method, and the RL methods'
  greedy (noise-free) policy reward per round, dashed, in the same colour."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(7, 4.2))
  for i, curve in enumerate(sorted(curves, key=lambda c: c["label"])):
    color = f"C{i % 10}"
    best = curve["best_so_far"]
    if len(best) == 1:  # uniform: one configuration, a level to compare with
      ax.axhline(best[0], color=color, lw=1.2, ls=":", label=f"{curve['label']}")
    else:
      ax.plot(np.arange(1, len(best) + 1), best, color=color, lw=1.6,
              label=f"{curve['label']} best so far")
    if curve.get("greedy_rewards"):
      ax.plot(curve["greedy_evaluations"], curve["greedy_rewards"], color=color, lw=0.9,
              ls="--", alpha=0.8, label=f"{curve['label']} greedy policy")
    if warmup is None and curve.get("warmup_episodes"):
      warmup = curve["warmup_episodes"]
  if warmup:
    ax.axvline(warmup, color="0.6", ls=":", lw=1, label="end of RL warm-up")
  reward = curves[0]["reward"] if curves else "reward"
  ax.set_xlabel("evaluations (candidates scored)")
  ax.set_ylabel(f"held-out {reward}")
  ax.set_title(title)
  ax.legend(fontsize=7, loc="lower right")
  io_utils.save_figure(fig, path)
  plt.close(fig)
