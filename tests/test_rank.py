"""The ranking benchmark: its statistics on known inputs, the PruningNet's sandwich
and in-place distillation, and `benchmarks.rank` end to end with a resume."""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import rank_stats
from gp_jax.config.build import spec_from_config
from gp_jax.hypernet.pruningnet import create_state, pruningnet_from_config
from gp_jax.runtime import losses, optim
from gp_jax.stages import pruningnet as pruningnet_stage
from tests import tiny_config, user_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_kendall_and_spearman_on_known_inputs():
  a = [1, 2, 3, 4, 5]
  assert rank_stats.kendall_tau(a, a) == pytest.approx(1.0)
  assert rank_stats.kendall_tau(a, a[::-1]) == pytest.approx(-1.0)
  # two adjacent swaps: 2 of the 10 pairs discordant -> (8 - 2) / 10
  assert rank_stats.kendall_tau(a, [1, 3, 2, 5, 4]) == pytest.approx(0.6)
  # sum of squared rank differences 4 -> 1 - 6 * 4 / (5 * 24)
  assert rank_stats.spearman_rho(a, [1, 3, 2, 5, 4]) == pytest.approx(0.8)


def test_bootstrap_interval_brackets_the_estimate():
  assert rank_stats.bootstrap_interval([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]) == pytest.approx(
      (1.0, 1.0))
  rng = np.random.default_rng(0)
  x = rng.normal(size=40)
  y = x + rng.normal(size=40)
  lo, hi = rank_stats.bootstrap_interval(x, y)
  tau = rank_stats.kendall_tau(x, y)
  assert lo < tau < hi and 0.0 < lo and hi < 1.0
  # a constant side has no tau: no interval either
  assert np.isnan(rank_stats.bootstrap_interval([1, 1, 1], [1, 2, 3])[0])


def test_paired_tau_difference_is_tighter_than_separate_intervals():
  rng = np.random.default_rng(1)
  truth = rng.normal(size=30)
  shared = truth + rng.normal(size=30)  # both proxies carry the same error...
  better = shared + 0.5 * truth  # ...and one adds some more signal
  d = rank_stats.paired_tau_difference(better, shared, truth)
  gap = rank_stats.kendall_tau(better, truth) - rank_stats.kendall_tau(shared, truth)
  assert d["difference"] == pytest.approx(gap) and gap > 0
  lo, hi = d["ci"]
  assert lo <= gap <= hi
  separate = rank_stats.bootstrap_interval(better, truth)
  assert hi - lo < separate[1] - separate[0]
  same = rank_stats.paired_tau_difference(shared, shared, truth)
  assert same["difference"] == 0.0 and same["ci"] == [0.0, 0.0]


def test_best_variant_beats_today_then_ranks_its_top_half():
  v = {"today": {"kendall_tau": 0.05, "top_half_tau": 0.0},
       "high_tau": {"kendall_tau": 0.45, "top_half_tau": 0.1, "tau_gain_ci": [0.05, 0.8]},
       "top_half": {"kendall_tau": 0.40, "top_half_tau": 0.4, "tau_gain_ci": [0.02, 0.7]},
       "lucky": {"kendall_tau": 0.50, "top_half_tau": 0.9, "tau_gain_ci": [-0.1, 0.9]}}
  assert rank_stats.best_variant(v) == "top_half"  # lucky's gain may be zero
  del v["top_half"], v["high_tau"]
  assert rank_stats.best_variant(v) == "lucky"  # none beats today: the highest tau


def test_ranking_stats_top_half_gain_and_regret():
  proxy = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
  truth = [0.80, 0.85, 0.70, 0.75, 0.60, 0.65, 0.50, 0.55]
  s = rank_stats.ranking_stats(proxy, truth, top=2)
  assert list(rank_stats.top_half(proxy)) == [0, 1, 2, 3]
  assert s["top_half_tau"] == pytest.approx(rank_stats.kendall_tau(proxy[:4], truth[:4]))
  assert s["top5_gain"] == pytest.approx(np.mean(truth[:2]) - np.mean(truth))
  assert s["regret"] == pytest.approx(0.05)  # best is 0.85, the proxy's best retrains 0.80
  assert s["tau_ci"][0] <= s["kendall_tau"] <= s["tau_ci"][1]


def test_soft_targets_carry_no_gradient():
  logits = jnp.array([[1.0, 2.0, 0.5]])
  target = jax.nn.softmax(jnp.array([[0.2, 0.1, 3.0]]))
  g = jax.grad(lambda t: losses.soft_cross_entropy(logits, t))(target)
  assert jnp.all(g == 0)
  assert jnp.any(jax.grad(lambda l: losses.soft_cross_entropy(l, target))(logits) != 0)


class _Spy:
  """Records the widths and batch size of every configuration the step runs."""

  def __init__(self, model):
    self.model, self.calls = model, []

  def apply(self, variables, images, widths, train, mutable):
    self.calls.append((np.asarray(widths), images.shape[0]))
    return self.model.apply(variables, images, widths, train=train, mutable=mutable)


def test_sandwich_step_trains_the_largest_and_smallest_and_distills():
  config = tiny_config.get_config()
  spec = spec_from_config(config)
  model = pruningnet_from_config(spec, config)
  extremes = pruningnet_stage.grid_extremes(spec, config)
  sampler = pruningnet_stage.make_sampler(spec, config)
  schedule = optim.learning_rate_schedule(config.pruningnet, 4)
  state = create_state(model, spec, optim.make_optimizer(config.pruningnet, 4), 0)
  rng = np.random.default_rng(0)
  batch = {"image": jnp.asarray(rng.normal(size=(8, 16, 16, 1)), jnp.float32),
           "label": jnp.asarray(rng.integers(0, 10, 8))}
  loss = {}
  for distill in (False, True):
    spy = _Spy(model)
    step = pruningnet_stage.make_train_step(
        spy, spec, sampler, schedule, configs_per_step=1, label_smoothing=0.0, seed=0,
        sandwich=extremes, distill=distill)
    new_state, metrics = step(state, batch)
    assert len(spy.calls) == 3  # largest, smallest, one sampled
    np.testing.assert_array_equal(spy.calls[0][0], spec.max_widths)
    np.testing.assert_array_equal(spy.calls[1][0], extremes[1])
    assert all(n == 8 for _, n in spy.calls)  # each configuration sees the whole batch
    assert new_state.step == 1
    loss[distill] = float(metrics["loss"])
  assert (extremes[1] < extremes[0]).any()
  # the same configurations and batch: only the others' targets differ
  assert np.isfinite(loss[True]) and loss[True] != pytest.approx(loss[False])


def _rank(workdir, *args):
  return subprocess.run(
      [sys.executable, "-m", "benchmarks.rank", "--config=tests/tiny_config.py",
       f"--config.dataset.path={workdir}/shapes.npz", "--config.dataset.name=npz",
       "--config.dataset.holdout_size=20", "--config.search.eval_examples=10",
       f"--workdir={workdir}/w", "--target=0.5", "--configs=3", "--probe=2", "--recipes=e1",
       "--retrain_steps=1", "--pruningnet_steps=2", "--variants=today",
       f"--output={workdir}/R.md", f"--json={workdir}/rank.json", f"--plots={workdir}/plots",
       *args], cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_rank_end_to_end_resumes_a_half_written_ground_truth(tmp_path):
  user_data.write_npz(tmp_path / "shapes.npz")
  first = _rank(tmp_path, "--phase=recipe")  # the probe: 2 of the 4 configurations
  assert first.returncode == 0, first.stderr[-3000:]
  assert first.stdout.count("rank: e1 configuration") == 4
  half = json.loads((tmp_path / "rank.json").read_text())
  assert half["recipe"] == "" and half["probes"][0]["configs"] == 2
  assert "Incomplete" in (tmp_path / "R.md").read_text()

  second = _rank(tmp_path, "--recipe=e1")
  assert second.returncode == 0, second.stderr[-3000:]
  retrained = [l for l in second.stdout.splitlines() if l.startswith("rank: e1 configuration")]
  assert len(retrained) == 4 and not any("configuration 0 " in l or "configuration 1 " in l
                                         for l in retrained)  # the probe's units are reused
  out = json.loads((tmp_path / "rank.json").read_text())
  assert out["recipe"] == "e1" and out["complete"] == 4
  truth = out["ground_truth"]
  assert len(truth) == 4 and truth[-1]["kind"] == "uniform"
  assert all(len(t["top1"]) == 2 and 0 <= min(t["top1"]) <= 1 for t in truth)
  assert all(0.45 <= t["macs_ratio"] <= 0.5 + 1e-6 for t in truth[:3])
  for name in ("today",):
    v = out["variants"][name]
    assert len(v["proxy"]) == 4 and "kendall_tau" in v and "regret" in v
  assert out["variants"]["today"]["recal_images"] == 128
  assert "| today |" in (tmp_path / "R.md").read_text() or "**today**" in (
      tmp_path / "R.md").read_text()

  changed = _rank(tmp_path, "--recipe=e2", "--report_only")  # the recipe never changes
  assert changed.returncode == 2 and "uses recipe e1" in changed.stderr

  # A fresh workdir resumes from the committed rank.json alone: nothing is retrained.
  moved = _rank(tmp_path, f"--workdir={tmp_path}/fresh")
  assert moved.returncode == 0, moved.stderr[-3000:]
  assert "rank: e1 configuration" not in moved.stdout and "rank: variant" not in moved.stdout
  again = json.loads((tmp_path / "rank.json").read_text())
  assert again["ground_truth"] == out["ground_truth"] and again["recipe"] == "e1"
  assert again["variants"]["today"]["proxy"] == out["variants"]["today"]["proxy"]


def test_a_unit_is_claimed_once_and_taken_over_from_a_dead_or_reused_pid(tmp_path):
  from benchmarks import claims as rank  # no flags: the suite imports the other benchmarks
  d = str(tmp_path / "unit")
  assert rank.claim(d) and rank.claim(d)  # ours, twice
  holder = subprocess.Popen(["sleep", "30"])
  try:
    (tmp_path / "unit" / ".claim").write_text(f"{holder.pid} {rank._start_time(holder.pid)}")
    assert not rank.claim(d)  # a live holder keeps it
    (tmp_path / "unit" / ".claim").write_text(f"{holder.pid} 1")  # its pid, another process
    assert rank.claim(d)
  finally:
    holder.kill()
    holder.wait()
  (tmp_path / "unit" / ".claim").write_text(f"{holder.pid} {rank._start_time(holder.pid)}")
  assert rank.claim(d)  # the holder died
  rank.release(d)
  assert not os.path.exists(tmp_path / "unit" / ".claim")
