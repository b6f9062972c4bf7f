"""Architecture specs: channel-group inference, edges, and bad specs."""
import pytest

from gp_jax.net import architectures
from gp_jax.net.spec import SpecBuilder
from gp_jax.runtime.errors import UserError
from tests.helpers import small_spec


def group_of(spec, layer_name):
  for layer in spec.layers:
    if layer.name == layer_name:
      return layer.out_group
  raise KeyError(layer_name)


def test_resnet20_groups_tie_each_stage_residual_stream():
  spec = small_spec("resnet20")
  stem = group_of(spec, "stem")
  for i in (1, 2, 3):
    assert group_of(spec, f"stage1.block{i}.conv2") == stem
  stage2 = group_of(spec, "stage2.block1.shortcut")
  assert stage2 != stem
  for i in (1, 2, 3):
    assert group_of(spec, f"stage2.block{i}.conv2") == stage2
  # Each block's inner conv is free: 9 of them + 3 streams + logits.
  assert spec.num_groups == 13
  assert len({group_of(spec, f"stage{s}.block{b}.conv1")
              for s in (1, 2, 3) for b in (1, 2, 3)}) == 9
  assert [g.fixed for g in spec.groups].count(True) == 1
  assert spec.groups[group_of(spec, "fc")].fixed


def test_mobilenetv2_depthwise_follows_producer_and_residuals_tie():
  spec = small_spec("mobilenetv2")
  assert group_of(spec, "block1.dw") == group_of(spec, "stem")
  assert group_of(spec, "block2.dw") == group_of(spec, "block2.expand")
  # block3 adds its input (block2's output) back: the projects share a group.
  assert group_of(spec, "block3.project") == group_of(spec, "block2.project")
  assert group_of(spec, "block4.project") != group_of(spec, "block3.project")
  assert spec.num_groups == 26


def test_mobilenetv1_depthwise_tied_to_previous_pointwise():
  spec = small_spec("mobilenetv1")
  assert group_of(spec, "block1.dw") == group_of(spec, "stem")
  for i in range(2, 14):
    assert group_of(spec, f"block{i}.dw") == group_of(spec, f"block{i - 1}.pw")
  assert spec.num_groups == 15  # stem + 13 pointwise + logits


def test_resnet50_group_counts():
  spec = small_spec("resnet50", num_classes=1000)
  # 16 blocks x 2 free inner groups + 4 stage streams + stem + logits.
  assert spec.num_groups == 16 * 2 + 4 + 1 + 1
  assert len(spec.layers) == 54


def test_shortcut_edges_reach_later_blocks():
  spec = small_spec("resnet20")
  names = [l.name for l in spec.layers]
  edges = {(names[a], names[b]) for a, b in spec.layer_edges()}
  assert ("stem", "stage1.block1.conv1") in edges
  # The stem output flows through two identity adds into block 3.
  assert ("stem", "stage1.block3.conv1") in edges
  assert ("stage1.block1.conv2", "stage1.block3.conv1") in edges
  assert ("stage1.block1.conv1", "stage1.block1.conv2") in edges
  assert ("stage1.block1.conv1", "stage1.block2.conv1") not in edges


def test_tricky_topology_add_of_adds_and_depthwise_after_add():
  b = SpecBuilder("toy", resolution=8, in_channels=3, num_classes=4)
  x = b.conv(b.input(), 8, name="a")
  y = b.conv(x, 8, name="b")
  z = b.conv(x, 8, name="c")
  s = b.add(x, y, name="add1")
  s = b.add(s, z, name="add2")
  d = b.depthwise(s, name="dw")
  e = b.conv(d, 6, name="e")
  b.dense(b.global_pool(e), 4, name="fc")
  spec = b.build()
  assert group_of(spec, "a") == group_of(spec, "b") == group_of(spec, "c") == group_of(spec, "dw")
  assert group_of(spec, "e") != group_of(spec, "a")
  assert spec.num_groups == 3


@pytest.mark.parametrize("case", ["mismatch", "dead", "duplicate", "no_classifier"])
def test_bad_specs_name_the_layers(case):
  b = SpecBuilder("bad", resolution=8, in_channels=3, num_classes=4)
  x = b.conv(b.input(), 8, name="a")
  with pytest.raises(UserError) as err:
    if case == "mismatch":
      y = b.conv(x, 6, name="b")
      b.add(x, y, name="sum")
    elif case == "dead":
      b.conv(x, 6, name="orphan")
      b.dense(b.global_pool(x), 4, name="fc")
      b.build()
    elif case == "duplicate":
      b.conv(x, 6, name="a")
    else:
      b.build()
  message = str(err.value)
  assert "\n" not in message
  expected = {"mismatch": "a: 8ch", "dead": "orphan", "duplicate": "'a'",
              "no_classifier": "dense classifier"}[case]
  assert expected in message


def test_unknown_architecture_suggests_close_match():
  with pytest.raises(UserError, match="Did you mean 'resnet50'"):
    architectures.get_spec("resnet_50", num_classes=10, resolution=32, in_channels=3)


def test_specs_are_hashable_and_cached():
  a = small_spec("mobilenetv1")
  b = small_spec("mobilenetv1")
  assert a is b and hash(a) == hash(b)
