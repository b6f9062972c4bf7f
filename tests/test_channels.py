"""Channel configurations: rounding, fixed groups, validation, jit-friendliness."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gp_jax.net import channels
from gp_jax.runtime.errors import UserError
from tests.helpers import small_spec


def test_widths_round_to_divisor_and_never_below_one():
  spec = small_spec("mobilenetv2", resolution=224, num_classes=1000, width_multiplier=1.4)
  fixed = channels.fixed_groups_mask(spec)
  keep = np.full(spec.num_groups, 0.1)
  widths = channels.widths_from_keep_ratios(spec, keep, divisor=8, fixed=fixed)
  free = ~fixed
  assert np.all(widths[free] % 8 == 0)
  assert np.all(widths >= 8)
  assert widths[fixed][0] == 1000
  w1 = channels.widths_from_keep_ratios(small_spec("resnet20"), np.full(13, 0.01) + 0.0)
  assert w1.min() >= 1


def test_keep_ratio_one_is_full_width():
  spec = small_spec("resnet56")
  widths = channels.widths_from_keep_ratios(spec, np.ones(spec.num_groups))
  assert tuple(widths) == spec.max_widths


def test_jit_widths_equal_host_widths():
  spec = small_spec("mobilenetv1")
  fixed = channels.fixed_groups_mask(spec)
  keep = np.random.default_rng(0).uniform(0.1, 1, spec.num_groups)
  host = channels.widths_from_keep_ratios(spec, keep, divisor=8, fixed=fixed)
  jitted = jax.jit(lambda k: channels.widths_from_keep_ratios(
      spec, k, divisor=8, fixed=fixed))(jnp.asarray(keep, jnp.float32))
  np.testing.assert_array_equal(host, np.asarray(jitted))


def test_fixed_group_patterns():
  spec = small_spec("resnet20")
  fixed = channels.fixed_groups_mask(spec, ("stage3.*",))
  names = [g.name for g, f in zip(spec.groups, fixed) if f]
  assert "fc" in names and "stage3.block1.conv1" in names
  assert "stage2.block1.conv1" not in names
  with pytest.raises(UserError, match="matches no group"):
    channels.fixed_groups_mask(spec, ("stage7.*",))


@pytest.mark.parametrize("keep,match", [
    (np.ones(5), "13 channel groups"),
    (np.full(13, 1.5), "must be in \\(0, 1\\]"),
    (np.zeros(13), "must be in \\(0, 1\\]"),
])
def test_bad_keep_ratios(keep, match):
  with pytest.raises(UserError, match=match):
    channels.widths_from_keep_ratios(small_spec("resnet20"), keep)


@pytest.mark.parametrize("widths,match", [
    ([16] * 12, "13 channel groups"),
    ([0] + [16] * 12, "must be in \\[1, 16\\]"),
    ([16] * 12 + [11], "must be in \\[1, 10\\]"),
])
def test_bad_widths(widths, match):
  with pytest.raises(UserError, match=match):
    channels.check_widths(small_spec("resnet20"), widths)


def test_group_masks():
  spec = small_spec("resnet20")
  widths = np.asarray(spec.max_widths) // 2
  masks = channels.group_masks(spec, widths)
  assert masks.shape == (13, 64)
  np.testing.assert_array_equal(np.asarray(masks).sum(1), widths)
  assert masks[0, 7] == 1 and masks[0, 8] == 0


def test_grid():
  grid = channels.keep_ratio_grid()
  assert len(grid) == 31 and grid[0] == pytest.approx(0.1) and grid[-1] == 1.0
  with pytest.raises(UserError):
    channels.keep_ratio_grid(5, 0.0, 1.0)
