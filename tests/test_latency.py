"""Latency budgets: the measured per-layer table, its lookups, its reuse, and a search
under `search.constraint=latency` end to end (a tiny table; no timing asserts)."""
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gp_jax import constraints, evaluate
from gp_jax.config import validation
from gp_jax.config.build import fixed_groups_from_config, make_cost, make_env, spec_from_config
from gp_jax.net import costs, latency, sampling
from gp_jax.runtime.errors import UserError
from gp_jax.search import baselines
from gp_jax.stages import eval as eval_stage
from gp_jax.stages import retrain as retrain_stage
from gp_jax.stages import search as search_stage
from tests.conftest import link_pruningnet, tiny_config
from tests.helpers import small_spec


def _latency_config(**overrides):
  config = tiny_config()
  config.search.constraint = "latency"
  # Median of 3: with 1 call a hiccup (the other test worker compiling) made a
  # layer or a calibration network many times slower.
  config.latency.grid_points, config.latency.runs = 3, 3
  config.eval.latency_batch_size = 8
  for k, v in overrides.items():
    config.search[k] = v
  return config


@pytest.fixture(scope="module")
def table_setup(tmp_path_factory):
  config = _latency_config()
  spec = spec_from_config(config)
  settings = latency.settings_from_config(config, fixed_groups_from_config(config, spec))
  workdir = str(tmp_path_factory.mktemp("lat"))
  table = latency.load_or_build(workdir, spec, settings, progress=False)
  return config, spec, settings, workdir, table


def _reachable_target(config, spec, table) -> float:
  """A target 60% of the way from the smallest net's predicted ratio to 1: a tiny
  table's figures are mostly dispatch, so a fixed target may be out of reach."""
  smallest = make_env(config, spec, 1.0, latency.table_cost(table, spec)).min_cost_ratio()
  return round(smallest + 0.6 * (1 - smallest), 2)


def test_cost_interface_matches_the_analytic_counts():
  spec = small_spec("mobilenetv2", width_multiplier=0.5)
  rng = np.random.default_rng(0)
  widths = np.stack([np.maximum(1, (rng.uniform(0.1, 1, spec.num_groups)
                                    * spec.max_widths).astype(int)) for _ in range(3)])
  for cost, exact in ((costs.macs_cost(spec), costs.macs), (costs.params_cost(spec), costs.params)):
    assert cost.full == exact(spec)
    for w in widths:
      assert cost.total([int(x) for x in w]) == exact(spec, [int(x) for x in w])
    np.testing.assert_allclose(cost.population_ratio(widths),
                               [exact(spec, list(w)) / exact(spec) for w in widths], rtol=1e-12)


def test_table_covers_every_layer_and_its_monotone_form_is_monotone(table_setup):
  _, spec, settings, workdir, table = table_setup
  assert os.path.exists(os.path.join(workdir, latency.TABLE_FILE))
  assert len(table["layer_entry"]) == len(spec.layers)
  # Layers of one shape share an entry: ResNet-20 has 19 convs and a dense layer.
  assert len(table["entries"]) < len(spec.layers)
  widths = latency.measured_widths(spec, settings)
  for layer, e in zip(spec.layers, table["layer_entry"]):
    entry = table["entries"][e]
    assert entry["out"] == widths[layer.out_group]
    ms = np.asarray(entry["ms_monotone"])
    assert (ms > 0).all() and (ms >= np.asarray(entry["ms_measured"])).all()
    for axis in range(ms.ndim):
      assert (np.diff(ms, axis=axis) >= 0).all()
  assert table["key"]["batch"] == 8 and table["key"]["host_cpu"]
  assert set(table["fits"]) == set(latency.PREDICTIONS) and len(table["calibration"]) == 4
  assert all(fit["scale"] > 0 for fit in table["fits"].values())


def test_lookup_is_exact_at_measured_widths_and_interpolates_between(table_setup):
  _, spec, settings, _, table = table_setup
  widths = latency.measured_widths(spec, settings)
  entry_of = dict(zip((l.name for l in spec.layers), table["layer_entry"]))
  layer = next(l for l in spec.layers if l.in_group >= 0 and l.in_group != l.out_group)
  entry = table["entries"][entry_of[layer.name]]
  wi, wo = widths[layer.in_group], widths[layer.out_group]
  w = np.asarray(spec.max_widths).copy()
  w[layer.in_group], w[layer.out_group] = wi[1], wo[0]
  index = [l.name for l in spec.layers].index(layer.name)
  for monotone, field in ((False, "ms_measured"), (True, "ms_monotone")):
    cost = latency.table_cost(table, spec, monotone=monotone)
    got = cost.per_layer(spec, [int(x) for x in w])[index]
    assert got == pytest.approx(entry[field][1][0])
  mid = (wo[0] + wo[1]) / 2
  w[layer.out_group] = int(mid)
  got = latency.table_cost(table, spec, monotone=False).per_layer(
      spec, [int(x) for x in w])[index]
  lo, hi = entry["ms_measured"][1][0], entry["ms_measured"][1][1]
  assert min(lo, hi) - 1e-9 <= got <= max(lo, hi) + 1e-9


def test_calibration_never_predicts_a_network_at_zero_or_less():
  fit = latency._fit([7.0, 5.0, 3.0], [3.0, 2.0, 1.0])  # network = 2 x layers + 1
  assert fit["scale"] == pytest.approx(2.0) and fit["constant_ms"] == pytest.approx(1.0)
  # One slow timing of the full network tilts the line below 0 ms at the smallest
  # one; the line through the origin is used instead.
  fit = latency._fit([100.0, 1.0, 1.0, 1.0], [4.0, 3.0, 2.0, 1.0])
  assert fit["constant_ms"] == 0.0 and fit["scale"] == pytest.approx(406 / 30)


def test_config_picks_the_measured_or_the_monotone_prediction(table_setup):
  config, spec, settings, workdir, table = table_setup
  widths = [int(x) for x in latency.random_widths(spec, settings, 1, seed=5)[0]]
  assert config.latency.monotone  # the default: the conservative prediction
  for monotone in (False, True):
    config.latency.monotone = monotone
    try:
      cost = make_cost(config, spec, workdir)  # the module's table, reused
    finally:
      config.latency.monotone = True
    fit = table["fits"]["monotone" if monotone else "measured"]
    assert cost.scale == fit["scale"] and cost.constant == fit["constant_ms"]
    assert cost.total(widths) == pytest.approx(
        latency.table_cost(table, spec, monotone=monotone).total(widths))


def test_numpy_jax_and_population_predictions_agree(table_setup):
  _, spec, settings, _, table = table_setup
  cost = latency.table_cost(table, spec)
  population = latency.random_widths(spec, settings, 5, seed=3)
  host = np.array([cost.total([int(x) for x in w]) for w in population])
  traced = np.asarray(jax.jit(jax.vmap(cost.total))(jnp.asarray(population)))
  np.testing.assert_allclose(traced, host, rtol=1e-5)
  np.testing.assert_allclose(cost.population_ratio(population), host / cost.full, rtol=1e-12)
  assert cost.total(None) == pytest.approx(cost.full)


def test_every_budget_path_honours_the_latency_cost(table_setup):
  config, spec, settings, _, table = table_setup
  cost = latency.table_cost(table, spec)
  target = _reachable_target(config, spec, table)
  env = make_env(config, spec, target, cost)
  uniform = baselines.uniform_widths(env)
  assert cost.ratio([int(w) for w in uniform]) <= target + 1e-9
  # ... and is the largest uniform net that fits: a little wider does not.
  r = baselines.uniform_keep_ratio(env)
  wider = env.widths(np.where(env.fixed, 1.0, min(1.0, r + 0.1)))
  assert cost.ratio([int(w) for w in wider]) > target
  searcher = baselines.RandomSearch(env, population=6, evaluations=6, seed=0,
                                    grid=np.asarray(settings.grid))
  proposed, _ = searcher.propose(searcher.init_state(), 0, None)
  ratios = cost.population_ratio(proposed)
  assert ((ratios <= target + 1e-9) & (ratios >= target - config.search.macs_tolerance)).all()
  # The PruningNet's sampler keeps a draw inside the range whenever one of its tries
  # is: a range holding the middle fifth of random draws' costs (a tiny table's
  # costs can clump, so a fixed range may hold almost none of them).
  free = sampling.make_sampler(spec, grid=settings.grid, fixed=np.asarray(settings.fixed),
                               divisor=settings.divisor)
  spread = cost.population_ratio(np.asarray(jax.vmap(free)(
      jax.random.split(jax.random.key(1), 512))))
  low, high = np.quantile(spread, [0.4, 0.6])
  sample = sampling.make_sampler(spec, grid=settings.grid, fixed=np.asarray(settings.fixed),
                                 divisor=settings.divisor, macs_range=(low, high), cost=cost,
                                 tries=64)
  drawn = jax.vmap(sample)(jax.random.split(jax.random.key(0), 8))
  hit = cost.population_ratio(np.asarray(drawn))
  assert ((hit >= low - 1e-6) & (hit <= high + 1e-6)).all()


def test_rl_action_wall_keeps_every_episode_within_the_latency_target(table_setup):
  config, spec, _, _, table = table_setup
  cost = latency.table_cost(table, spec)
  target = _reachable_target(config, spec, table)
  env = make_env(config, spec, target, cost)
  bounds = jax.jit(env.action_bounds)
  features = jax.jit(env.scalar_features)
  rng = np.random.default_rng(0)
  for _ in range(3):
    keep = jnp.ones(spec.num_groups)
    for t, group in enumerate(env.free_groups):
      low, high = bounds(keep, t)
      assert float(low) <= float(high)
      keep = keep.at[group].set(rng.uniform(float(low), float(high)))
      assert np.isfinite(np.asarray(features(keep, t, 0.0))).all()
    assert float(env.cost_ratio(keep)) <= target + 1e-5


def _spiked_cost(table, spec, factor=6.0):
  """The table's cost with every layer's second-narrowest measured output width made
  `factor` times slower: a cost that is not monotone in the widths, as measured
  tables can be (on XLA:CPU 4 channels ran slower than 8)."""
  spiked = json.loads(json.dumps(table))
  for entry in spiked["entries"]:
    ms = np.asarray(entry["ms_measured"])
    if ms.shape[-1] > 2:  # a width between the narrowest and the full one
      ms[..., 1] *= factor
    entry["ms_measured"] = ms.tolist()
  return latency.table_cost(spiked, spec, monotone=False)


def test_search_budgets_hold_under_a_cost_that_is_not_monotone(table_setup):
  """The RL wall, the uniform baseline and the choice of the best candidate stay
  within the target when a narrower width costs more than a wider one."""
  config, spec, _, _, table = table_setup
  cost = _spiked_cost(table, spec)
  env = make_env(config, spec, 1.0, cost)
  smallest = env.min_cost_ratio()
  target = round(smallest + 0.3 * (1 - smallest), 3)
  env = make_env(config, spec, target, cost)
  points = np.linspace(env.lower_bound, 1.0, env.wall_points)
  bounds = jax.jit(env.action_bounds)
  with_rest_low = jax.jit(jax.vmap(
      lambda keep, later, group, a: env.cost_ratio(
          jnp.where(later, env.lower_bound, keep).at[group].set(a)),
      in_axes=(None, None, None, 0)))
  gaps = 0
  for episode in range(2):
    keep = jnp.ones(spec.num_groups)
    for t, group in enumerate(env.free_groups):
      low, high = (float(x) for x in bounds(keep, t))
      later = np.zeros(spec.num_groups, bool)
      later[env.free_groups[t + 1:]] = True
      # (every point at once: one shape, one compilation)
      costs_at = np.asarray(with_rest_low(keep, later, group, jnp.asarray(points)))
      # Every action the wall allows keeps the all-lower-bound completion in budget ...
      assert (costs_at[points <= high] <= target + 1e-5).all()
      # ... although some wider action, past one that does not fit, would fit too.
      gaps += int((costs_at[points > high] <= target).any())
      keep = keep.at[group].set(high if episode == 0 else 0.5 * (low + high))
    assert float(env.cost_ratio(keep)) <= target + 1e-5
  assert gaps > 0, "the spiked cost never made the fitting actions non-contiguous"
  r = baselines.uniform_keep_ratio(env)
  assert float(env.cost_ratio(np.where(env.fixed, 1.0, r))) <= target + 1e-9
  wider = [q for q in np.linspace(env.lower_bound, 1.0, 1025) if q > r + 1e-3]
  assert all(float(env.cost_ratio(np.where(env.fixed, 1.0, q))) > target for q in wider)


def test_best_candidate_is_chosen_within_the_budget():
  scores = np.array([0.9, 0.5, 0.8, 0.8])
  assert search_stage.best_within_budget(scores, [1.2, 0.5, 0.6, 0.55], 0.6) == (2, 1)
  assert search_stage.best_within_budget(scores, [0.1, 0.1, 0.1, 0.1], 0.6) == (0, 0)
  assert search_stage.best_within_budget(scores, [0.9, 0.9, 0.9, 0.9], 0.6) == (0, 4)


def test_matching_table_is_reused_and_another_devices_is_rebuilt(table_setup, capsys):
  _, spec, settings, workdir, table = table_setup
  path = os.path.join(workdir, latency.TABLE_FILE)
  assert latency.load_table(path, spec, settings)["seconds"] == table["seconds"]
  other = json.loads(json.dumps(table))
  other["key"]["host_cpu"] = "Some Other CPU @ 9.9GHz"
  other["key"]["batch"] = 64
  foreign = os.path.join(workdir, "foreign.json")
  with open(foreign, "w") as f:
    json.dump(other, f)
  assert latency.load_table(foreign, spec, settings) is None
  out = capsys.readouterr().out
  assert "WARNING" in out and "batch" in out and "host_cpu" in out
  older = json.loads(json.dumps(table))  # format 1: one (monotone) prediction, no fits
  older["key"]["format"] = 1
  del older["fits"]
  with open(foreign, "w") as f:
    json.dump(older, f)
  assert latency.load_table(foreign, spec, settings) is None
  out = capsys.readouterr().out
  assert "WARNING" in out and "format" in out
  with open(foreign, "w") as f:
    f.write("{not json")
  assert latency.load_table(foreign, spec, settings) is None
  assert "unreadable" in capsys.readouterr().out


def test_a_latency_cost_is_built_only_from_a_prepared_table(table_setup, tmp_path):
  """Measuring is the stages' explicit step (`Constraint.prepare`); making the cost
  only reads the table, and says which stage measures it when there is none."""
  config, spec, _, workdir, _ = table_setup
  with pytest.raises(UserError, match="no latency table for this config.*--stages=search"):
    make_cost(config, spec, str(tmp_path))
  assert not os.listdir(tmp_path)  # nothing measured, nothing written
  constraint = constraints.get("latency")
  constraint.prepare(config, spec, workdir)  # the module's table: found, not measured again
  assert make_cost(config, spec, workdir).name == "latency"


def test_unreachable_latency_target_is_a_one_line_error(table_setup):
  config, spec, _, workdir, _ = table_setup
  cost = make_cost(config, spec, workdir)  # reuses the module's table
  # Half the smallest network's predicted ratio (never 0 or less: see _fit), not a
  # fixed 0.01: the tiny table's figures are mostly timing noise and dispatch.
  smallest = make_env(config, spec, 1.0, cost).min_cost_ratio()
  assert smallest > 0
  target = float(f"{smallest / 2:.3g}")
  config = _latency_config(targets=(target,))
  with pytest.raises(UserError, match=f"latency target {target:g} is unreachable"):
    validation.check_targets(config, spec, cost)
  config.search.constraint = "flops"
  with pytest.raises(UserError, match="search.constraint"):
    validation.validate(config)


def test_search_retrain_eval_under_a_latency_budget(table_setup, trained_workdir, tmp_path):
  _, spec, _, table_dir, table = table_setup
  target = _reachable_target(_latency_config(), spec, table)
  config = _latency_config(targets=(target,))
  config.search.method = "random"  # the RL wall under a latency cost: the test above
  workdir = str(tmp_path / "w")
  link_pruningnet(trained_workdir, workdir)
  shutil.copy(os.path.join(table_dir, latency.TABLE_FILE), workdir)  # reused: same key
  (result,) = search_stage.run(config, workdir)
  cost = latency.table_cost(table, spec)
  assert result["constraint"] == "latency" and result["target_ratio"] == target
  assert "target_macs_ratio" not in result
  assert result["latency_ratio"] == pytest.approx(cost.ratio(result["widths"]))
  assert result["latency_ratio"] <= target + 1e-6 and result["over_budget"] == 0
  assert result["latency_ms_predicted"] == pytest.approx(cost.total(result["widths"]))
  assert os.path.exists(os.path.join(workdir, "plots", f"accuracy_vs_latency_{target:g}.png"))
  retrain_stage.run(config, workdir)
  report = eval_stage.run(config, workdir)
  for row in (report, report["baseline"], report["unpruned"]):
    assert row["latency_ms"] > 0 and row["latency_ms_predicted"] > 0
    assert row["latency_ratio"] == pytest.approx(
        row["latency_ms"] / report["unpruned"]["latency_ms"])
  assert report["latency_ratio_predicted"] == pytest.approx(result["latency_ratio"])
  assert report["baseline"]["latency_ratio_predicted"] <= target + 1e-6
  assert "predicted" in evaluate.format_table(report)
