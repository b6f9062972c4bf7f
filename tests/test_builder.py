"""The spec builder as a user meets it: inferred groups, user networks, bad specs."""
import dataclasses

import pytest

from gp_jax.net import architectures, costs
from gp_jax.net.spec import ArchSpec, SpecBuilder
from gp_jax.runtime.errors import UserError
from tests.test_spec import group_of


def builder():
  return SpecBuilder("t", resolution=8, in_channels=3, num_classes=4)


def test_branch_that_rejoins():
  b = builder()
  x = b.conv(b.input(), 8, name="x")
  a = b.conv(x, 4, name="a")
  bb = b.conv(a, 8, name="b")
  c = b.conv(x, 8, name="c")
  y = b.add(bb, c, name="join")
  b.dense(b.global_pool(y), 4, name="fc")
  spec = b.build()
  assert group_of(spec, "b") == group_of(spec, "c")
  assert len({group_of(spec, n) for n in ("x", "a", "b")}) == 3
  names = [l.name for l in spec.layers]
  edges = {(names[i], names[j]) for i, j in spec.layer_edges()}
  assert {("x", "a"), ("x", "c"), ("a", "b"), ("b", "fc"), ("c", "fc")} <= edges


def test_block_output_feeding_two_later_adds():
  b = builder()
  x = b.conv(b.input(), 8, name="x")
  y = b.conv(x, 8, name="y")
  s1 = b.add(x, y, name="s1")
  z = b.conv(s1, 8, name="z")
  s2 = b.add(x, z, name="s2")  # x feeds two adds
  w = b.conv(s2, 8, name="w")
  s3 = b.add(s1, w, name="s3")
  b.dense(b.global_pool(s3), 4, name="fc")
  spec = b.build()
  assert len({group_of(spec, n) for n in ("x", "y", "z", "w")}) == 1
  assert spec.num_groups == 2


def test_concat_is_refused_with_a_reason():
  b = builder()
  x = b.conv(b.input(), 8, name="x")
  with pytest.raises(UserError, match="concat 'cat' is not supported"):
    b.concat(x, x, name="cat")


def test_a_cycle_names_the_op():
  spec = architectures.get_spec("tests.toy_net:branchy", num_classes=4, resolution=8,
                                in_channels=3)
  ops = list(spec.ops)
  ops[2] = dataclasses.replace(ops[2], inputs=(5,))
  with pytest.raises(UserError, match=f"op '{ops[2].name}' reads {ops[5].name}"):
    ArchSpec(spec.name, spec.resolution, spec.in_channels, spec.num_classes,
             tuple(ops), spec.groups)


def test_user_function_by_module_path():
  spec = architectures.get_spec("tests.toy_net:branchy", num_classes=4, resolution=16,
                                in_channels=1)
  assert group_of(spec, "left.expand") == group_of(spec, "right.dw") == group_of(spec, "stem")
  assert spec.num_groups == 4  # stem/left.expand/dw/join, left.reduce, head, logits
  assert costs.macs(spec) > 0


@pytest.mark.parametrize("arch,match", [
    ("tests.nope:branchy", "cannot import module 'tests.nope'"),
    ("tests.toy_net:missing", "has no function 'missing'"),
    ("tests.toy_net:not_a_spec", "returned str, not an ArchSpec"),
])
def test_bad_user_functions(arch, match):
  with pytest.raises(UserError, match=match):
    architectures.get_spec(arch, num_classes=4, resolution=16, in_channels=1)


def test_user_network_runs_the_whole_pipeline(tmp_path):
  from gp_jax.stages import eval as eval_stage, pruningnet, retrain, search
  from tests.conftest import tiny_config
  config = tiny_config()
  config.model.arch = "tests.toy_net:branchy"
  config.channels.divisor = 1
  config.search.method = "evolution"
  config.retrain.unpruned = False
  workdir = str(tmp_path)
  pruningnet.run(config, workdir)
  [result] = search.run(config, workdir)
  assert result["arch"] == "branchy" and result["macs_ratio"] <= 0.5
  retrain.run(config, workdir)
  report = eval_stage.run(config, workdir)
  assert report["widths"] == result["widths"] and "baseline" in report
  assert 0 <= report["top1"] <= 1
