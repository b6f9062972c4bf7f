"""Small helpers shared by tests."""
import jax
import numpy as np

from gp_jax.net import architectures, channels, models


def small_spec(arch: str, resolution: int = 32, in_channels: int = 3,
               num_classes: int = 10, width_multiplier: float = 1.0):
  return architectures.get_spec(arch, num_classes=num_classes,
                                resolution=resolution, in_channels=in_channels,
                                width_multiplier=width_multiplier)


def random_widths(spec, rng: np.random.Generator, low=0.1, divisor=1):
  keep = rng.uniform(low, 1.0, spec.num_groups)
  return channels.widths_from_keep_ratios(
      spec, keep, divisor=divisor, fixed=channels.fixed_groups_mask(spec))


def random_variables(net, seed: int = 0):
  """Variables of the `models.ConvNet` `net`, drawn with numpy so that nothing is
  compiled (jitted, flax's init of ResNet-50 compiled for 4-5 s here, most of a
  model test): kernels N(0, 1/fan_in) as flax's lecun_normal, biases and BN means
  0.1 N(0, 1), BN scales and variances U(0.5, 1.5), so that eval-mode logits are
  far from trivial."""
  shapes = jax.eval_shape(lambda: models.init_variables(net, jax.random.key(0)))
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    name = jax.tree_util.keystr(path)
    if name.endswith("['kernel']"):
      x = rng.standard_normal(leaf.shape) / np.sqrt(np.prod(leaf.shape[:-1]))
    elif name.endswith("['bias']") or name.endswith("['mean']"):
      x = 0.1 * rng.standard_normal(leaf.shape)
    elif name.endswith("['scale']") or name.endswith("['var']"):
      x = rng.uniform(0.5, 1.5, leaf.shape)
    else:
      raise ValueError(f"random_variables: no distribution for {name}")
    return jax.device_put(x.astype(leaf.dtype))

  return jax.tree_util.tree_map_with_path(draw, shapes)
