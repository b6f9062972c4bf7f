"""Small helpers shared by tests."""
import jax
import numpy as np

from gp_jax import architectures, channels


def small_spec(arch: str, resolution: int = 32, in_channels: int = 3,
               num_classes: int = 10, width_multiplier: float = 1.0):
  return architectures.get_spec(arch, num_classes=num_classes,
                                resolution=resolution, in_channels=in_channels,
                                width_multiplier=width_multiplier)


def random_widths(spec, rng: np.random.Generator, low=0.1, divisor=1):
  keep = rng.uniform(low, 1.0, spec.num_groups)
  return channels.widths_from_keep_ratios(
      spec, keep, divisor=divisor, fixed=channels.fixed_groups_mask(spec))


def randomize_variables(variables, seed: int = 0):
  """Random BN statistics and scales so eval-mode logits are far from trivial."""
  leaves, treedef = jax.tree_util.tree_flatten_with_path(variables)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  out = []
  for (path, leaf), key in zip(leaves, keys):
    name = jax.tree_util.keystr(path)
    if name.endswith("['var']"):
      leaf = jax.random.uniform(key, leaf.shape, minval=0.5, maxval=1.5)
    elif name.endswith("['mean']") or name.endswith("['bias']"):
      leaf = 0.1 * jax.random.normal(key, leaf.shape)
    elif name.endswith("['scale']"):
      leaf = jax.random.uniform(key, leaf.shape, minval=0.5, maxval=1.5)
    out.append(leaf)
  return jax.tree_util.tree_unflatten(treedef, out)
