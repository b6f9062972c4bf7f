"""Pruning a trained network by channel importance: a permutation that changes nothing,
the kept channels are the most important, on residual and depthwise networks."""
import jax.numpy as jnp
import numpy as np
import pytest

from gp_jax.net import importance, models
from tests.helpers import random_variables, random_widths, small_spec


@pytest.mark.parametrize("arch", ["resnet20", "mobilenetv2"])
def test_keeping_every_channel_reproduces_the_logits(arch):
  spec = small_spec(arch, resolution=16, width_multiplier=0.25 if arch != "resnet20" else 0.5)
  full = models.ConvNet(spec)
  variables = random_variables(full)
  images = jnp.asarray(np.random.default_rng(0).normal(size=(4, 16, 16, 3)), jnp.float32)
  reference = full.apply(variables, images, train=False)
  for method in importance.METHODS:
    kept = importance.prune_variables(variables, spec, spec.max_widths, method)
    sliced = models.ConvNet(spec, tuple(spec.max_widths))
    np.testing.assert_allclose(sliced.apply(kept, images, train=False), reference,
                               rtol=1e-5, atol=1e-5)
    # a real reordering happened (otherwise the check above says nothing)
    permuted = importance.permute_by_importance(
        variables, spec, importance.channel_importance(variables, spec, method))
    assert any(not np.array_equal(a, b) for a, b in zip(
        importance._leaves(permuted).values(), importance._leaves(variables).values()))


def test_the_kept_channels_are_the_most_important():
  spec = small_spec("resnet20", resolution=16, width_multiplier=0.5)
  variables = random_variables(models.ConvNet(spec), seed=1)
  widths = random_widths(spec, np.random.default_rng(2), low=0.3)
  scores = importance.channel_importance(variables, spec, "l1")
  kept = importance.prune_variables(variables, spec, widths, "l1")
  # The stem's group spans the stem and the residual convs of stage 1: its importance
  # sums their kernels' L1 norms; the kept stem kernel's channels are its top ones.
  stem = next(i for i, g in enumerate(spec.groups) if "stem" in g.layers)
  top = np.sort(np.argsort(-scores[stem], kind="stable")[:widths[stem]])
  full_kernel = np.asarray(variables["params"]["stem"]["conv"]["kernel"])
  kept_kernel = np.asarray(kept["params"]["stem"]["conv"]["kernel"])
  assert kept_kernel.shape[-1] == widths[stem]
  got = sorted(int(np.flatnonzero((full_kernel == kept_kernel[..., [j]]).all((0, 1, 2)))[0])
               for j in range(widths[stem]))
  assert got == list(top)
  layers = [l for l in spec.layers if l.out_group == stem and l.kind == "conv"]
  assert len(layers) > 1  # a residual group: several producers summed
  # The classes keep their order (the logits check above also fails otherwise).
  np.testing.assert_array_equal(kept["params"]["fc"]["dense"]["bias"],
                                variables["params"]["fc"]["dense"]["bias"])
