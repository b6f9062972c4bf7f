"""A user-defined network for the tests: a stem, a branch that rejoins, a depthwise conv."""
from gp_jax.net.spec import SpecBuilder


def branchy(*, num_classes, resolution, in_channels, width_multiplier=1.0):
  b = SpecBuilder("branchy", resolution=resolution, in_channels=in_channels,
                  num_classes=num_classes)
  x = b.conv(b.input(), 12, kernel=3, name="stem")
  left = b.conv(x, 8, kernel=1, name="left.reduce")
  left = b.conv(left, 12, kernel=3, activation="none", name="left.expand")
  right = b.depthwise(x, kernel=3, activation="none", name="right.dw")
  x = b.add(left, right, activation="relu", name="join")
  x = b.conv(x, 16, kernel=3, stride=2, name="head")
  b.dense(b.global_pool(x), num_classes, name="fc")
  return b.build()


def not_a_spec(**kwargs):
  return "oops"
