"""Channel configurations: a keep-ratio (or a width) per channel group.

A configuration is a vector with one entry per group of the spec. Widths round
to a multiple of `divisor` and never go below one channel (nor below `divisor`
when the group is wider than it). Fixed groups always keep their full width.
Inside compiled code a configuration is a `(num_groups,)` int array of widths,
turned into masks: same shapes for every configuration.
"""
from __future__ import annotations

import fnmatch

import jax
import jax.numpy as jnp
import numpy as np

from gp_jax.net.spec import ArchSpec
from gp_jax.runtime.errors import UserError


def keep_ratio_grid(levels: int = 31, low: float = 0.1, high: float = 1.0) -> np.ndarray:
  """The grid keep-ratios are sampled from (MetaPruning: 31 levels, 0.10..1.00)."""
  if not (isinstance(levels, int) and levels >= 1):
    raise UserError(f"keep-ratio grid needs levels >= 1, got {levels!r}")
  if not 0 < low <= high <= 1:
    raise UserError(f"keep-ratio grid needs 0 < low <= high <= 1, got low={low}, high={high}")
  return np.linspace(low, high, levels)


def fixed_groups_mask(spec: ArchSpec, patterns=()) -> np.ndarray:
  """Boolean per group: True where the group is never pruned.

  The spec's own fixed groups (the logits) plus every group whose name matches
  one of `patterns` (shell-style, e.g. "stage4.*" or "fc").
  """
  fixed = np.array([g.fixed for g in spec.groups])
  for pattern in patterns:
    hits = [i for i, g in enumerate(spec.groups)
            if fnmatch.fnmatchcase(g.name, pattern)
            or any(fnmatch.fnmatchcase(l, pattern) for l in g.layers)]
    if not hits:
      raise UserError(f"channels.fixed_groups pattern '{pattern}' matches no group "
                      f"or layer of {spec.name}; run gp_jax.summary to list them")
    fixed[hits] = True
  return fixed


def widths_from_keep_ratios(spec: ArchSpec, keep_ratios, *, divisor: int = 1,
                            fixed=None):
  """Widths (int array, one per group; batched over leading axes) for keep-ratios.

  Jit-friendly.

  Validates shape and range when given host values (numpy / lists).
  """
  if divisor < 1:
    raise UserError(f"channels.divisor must be >= 1, got {divisor}")
  max_widths = np.asarray(spec.max_widths)
  on_device = isinstance(keep_ratios, jax.Array)  # tracers are jax.Arrays too
  if not on_device:
    keep_ratios = np.asarray(keep_ratios, dtype=np.float64)
    check_keep_ratios(spec, keep_ratios)
  xp = jnp if on_device else np
  raw = xp.floor(keep_ratios * max_widths / divisor + 0.5) * divisor
  low = np.minimum(divisor, max_widths)
  widths = xp.clip(raw, low, max_widths).astype(xp.int32)
  if fixed is not None:
    widths = xp.where(np.asarray(fixed), max_widths.astype(np.int32), widths)
  return widths


def check_keep_ratios(spec: ArchSpec, keep_ratios) -> None:
  """A (num_groups,) configuration, or a (..., num_groups) population of them."""
  keep_ratios = np.asarray(keep_ratios)
  if keep_ratios.ndim < 1 or keep_ratios.shape[-1] != spec.num_groups:
    raise UserError(f"{spec.name} has {spec.num_groups} channel groups, got a "
                    f"configuration of shape {keep_ratios.shape}")
  bad = ~((keep_ratios > 0) & (keep_ratios <= 1))
  if bad.any():
    i = int(np.argmax(bad)) % spec.num_groups
    keep_ratios = keep_ratios.reshape(-1, spec.num_groups)[int(np.argmax(bad)) // spec.num_groups]
    raise UserError(f"keep-ratio of group '{spec.groups[i].name}' is "
                    f"{keep_ratios[i]}; keep-ratios must be in (0, 1]")


def check_widths(spec: ArchSpec, widths) -> np.ndarray:
  """Validates a host-side width vector and returns it as an int array."""
  widths = np.asarray(widths)
  if widths.shape != (spec.num_groups,):
    raise UserError(f"{spec.name} has {spec.num_groups} channel groups, got "
                    f"widths of shape {widths.shape}")
  if not np.issubdtype(widths.dtype, np.integer):
    if not np.all(widths == np.round(widths)):
      raise UserError("widths must be whole channel counts")
    widths = widths.astype(np.int64)
  max_widths = np.asarray(spec.max_widths)
  bad = (widths < 1) | (widths > max_widths)
  if bad.any():
    i = int(np.argmax(bad))
    raise UserError(f"width of group '{spec.groups[i].name}' is {widths[i]}; "
                    f"it must be in [1, {max_widths[i]}]")
  return widths


def keep_ratios_from_widths(spec: ArchSpec, widths) -> np.ndarray:
  return np.asarray(widths) / np.asarray(spec.max_widths)


def group_masks(spec: ArchSpec, widths, dtype=jnp.float32) -> jax.Array:
  """Masks of shape (num_groups, max_group_width): row g has widths[g] ones first."""
  channel = jnp.arange(spec.max_group_width)
  return (channel[None, :] < jnp.asarray(widths)[:, None]).astype(dtype)
