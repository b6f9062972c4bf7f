"""The study: its plan, score cache and random-pool figures, the report from study.json,
and the harness end to end on digits (resumed), with the paired reading's statistics."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
from absl import flags

from benchmarks import study, study_report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _flags(**values):
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
  for k, v in values.items():
    setattr(flags.FLAGS, k, v)


def test_plan_runs_the_first_space_and_its_controls_first():
  _flags(streams=2, control_replicates=3)
  groups = study.planned(["resnet20x0.5", "resnet56x0.5"], [4, 2])
  assert list(groups) == [("resnet20x0.5", 0), ("resnet20x0.5", 1), ("resnet56x0.5", 0)]
  reps = groups[("resnet20x0.5", 1)]
  assert [(r.index, r.seed, r.stream) for r in reps] == [(2, 1, 0), (3, 1, 1)]
  labels = {r.index: set(v) for r, v in reps.items()}
  assert set(study.CONTROLS) <= labels[2] and not set(study.CONTROLS) & labels[3]
  assert all(study.POOL in v and "graph_rl" in v for w in groups.values() for v in w.values())
  assert not any(set(study.CONTROLS) & set(v) for v in groups[("resnet56x0.5", 0)].values())


def test_schedule_puts_the_methods_and_retrains_before_the_controls():
  _flags(streams=2, control_replicates=3)
  steps = study.schedule(["resnet20x0.5", "resnet56x0.5"], [4, 2])
  assert [(k, sp, seed) for k, sp, seed, _ in steps] == [
      ("search", "resnet20x0.5", 0), ("search", "resnet20x0.5", 1),
      ("retrain", "resnet20x0.5", None),
      ("search", "resnet20x0.5", 0), ("search", "resnet20x0.5", 1),  # the controls
      ("search", "resnet56x0.5", 0), ("retrain", "resnet56x0.5", None)]
  first, controls = steps[0][3], steps[3][3]
  assert all(set(v) == {*study.METHODS, study.POOL} for v in first.values())
  assert [r.index for r in steps[4][3]] == [2]  # control replicates 0-2 only
  assert all(set(v) == set(study.CONTROLS) for v in controls.values())
  # every label of the plan is scheduled exactly once
  planned = study.planned(["resnet20x0.5", "resnet56x0.5"], [4, 2])
  scheduled = {}
  for kind, space, seed, work in steps:
    for rep, labels in (work or {}).items():
      scheduled.setdefault(rep, []).extend(labels)
  assert {r: sorted(v) for w in planned.values() for r, v in w.items()} == {
      r: sorted(v) for r, v in scheduled.items()}


def test_every_run_is_a_valid_config():
  _flags(smoke=True, evaluations=4, pool=8, target=0.6, pruningnet_steps=2)
  config = study.space_config("digits", 1, "today")
  assert config.search.eval_examples <= config.dataset.holdout_size // 2  # a report part
  for label in [*study.RUNS, study.POOL]:
    cfg = study.run_config(config, label, stream=1, evaluations=8 if label == study.POOL else None)
    assert cfg.search.stream == 1 and cfg.search.method == study.RUNS.get(label, ("random",))[0]
  assert study.run_config(config, "amc+no_step", 0).search.rl.scalars == "no_step"
  assert study.run_config(config, study.POOL, 0, 8).search.evaluations == 8


def test_score_cache_scores_each_configuration_once_and_keeps_it(tmp_path):
  calls = []

  def score(widths):
    calls.append(len(widths))
    return {"top1": widths.sum(1) / 100.0, "neg_loss": -widths[:, 0] / 10.0}

  path = str(tmp_path / "scores.jsonl")
  cache = study.ScoreCache(path, score)
  got = cache(np.asarray([[1, 2], [3, 4], [1, 2]]))
  assert calls == [2] and np.allclose(got["top1"], [0.03, 0.07, 0.03])
  got = study.ScoreCache(path, score)(np.asarray([[3, 4], [5, 6]]))  # read back
  assert calls == [2, 1] and np.allclose(got["neg_loss"], [-0.3, -0.5])


def test_rescore_depth_covers_every_likely_top_k():
  depth = study.rescore_depth(1200, 300, 10)
  assert 10 < depth < 150
  rng = np.random.default_rng(0)
  worst = max(np.sort(rng.choice(1200, 300, replace=False))[9] for _ in range(2000))
  assert worst < depth  # rank of the 10th best drawn, 0 = the pool's best
  assert study.rescore_depth(20, 20, 10) == 10


def _study_json(replicates=4, missing_random_in=()):
  rng = np.random.default_rng(0)
  rows = []
  for r in range(replicates):
    base = 0.80 + 0.01 * rng.normal()
    methods = {"random": {"selection": base, "report": base - 0.002},
               "graph_rl": {"selection": base + 0.006, "report": base + 0.004 +
                            0.0005 * rng.normal(), "retrained_top1": [0.86, 0.87]},
               "amc": {"selection": base + 0.001, "report": base + 0.0005 * rng.normal()},
               "uniform": {"selection": base - 0.02, "report": base - 0.02}}
    methods["random"]["retrained_top1"] = [0.855, 0.865]
    if r in missing_random_in:
      del methods["random"]
    rows.append({"space": "resnet20x0.5", "replicate": r, "seed": r // 2, "stream": r % 2,
                 "target": 0.3, "methods": methods})
  return {"replicates": rows, "minutes": 12.0, "host_cpu": "cpu", "cores": 2, "jax": "x",
          "date": "d", "setup": {"spaces": {"resnet20x0.5": "c.py"}, "replicates": [4],
                                 "streams": 2, "target": 0.3, "evaluations": 300,
                                 "pool": 1200, "variant": "today", "retrain_recipe": "e4",
                                 "retrain_seeds": [0, 1], "control_replicates": 0}}


def test_report_reads_paired_replicates_and_says_what_is_missing():
  text = study_report.render(_study_json(missing_random_in=(3,)))
  assert "**Not finished** (1 of 4 replicates" in text and "resnet20x0.5 #3" in text
  row = next(l for l in text.splitlines() if l.startswith("| graph_rl | random | 3 |"))
  assert row.endswith("| win |") or row.endswith("| undecided |")
  assert "| uniform | random | 3 |" in text and "| loss |" in text
  assert "Retrained picks" in text
  assert "| evolution | random | 0 | – |" in text


def test_paired_reading_calls_wins_losses_equivalence_and_doubt():
  from benchmarks import study_stats as st
  rng = np.random.default_rng(0)
  base = rng.normal(80, 1, 10)
  assert st.paired(base + 0.6 + rng.normal(0, 0.1, 10), base).verdict == "win"
  assert st.paired(base - 0.6 + rng.normal(0, 0.1, 10), base).verdict == "loss"
  assert st.paired(base + rng.normal(0, 0.05, 10), base).verdict == "equivalent"
  noisy = st.paired(base + np.array([1.5, -1.2, 0.8, -0.9, 0.3, -0.4, 1.1, -1.0, 0.2, -0.1]),
                    base)
  assert noisy.verdict == "undecided" and noisy.low < 0 < noisy.high
  # significant but smaller than the effect a win needs: not a win
  assert st.paired(base + 0.15 + rng.normal(0, 0.01, 10), base, margin=0.1).verdict == \
      "undecided"
  r = st.paired([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
  assert r.n == 3 and r.mean == 2.0 and r.sd == 1.0
  assert abs(r.high - r.mean - 4.303 / np.sqrt(3)) < 1e-3  # t(0.975, 2) = 4.303


def test_random_search_as_the_expected_best_of_n_of_a_pool():
  from benchmarks import study_stats as st
  p = st.best_of_n_probabilities(30, 5)
  assert abs(p.sum() - 1) < 1e-12 and np.all(p[:4] == 0) and p[-1] == p.max()
  assert np.allclose(st.best_of_n_probabilities(7, 1), 1 / 7)
  assert st.best_of_n_probabilities(7, 7)[-1] == 1.0
  rng = np.random.default_rng(1)
  selection = rng.normal(size=30).round(1)  # ties: the earlier wins
  report = selection + rng.normal(0, 0.5, 30)
  draws = []
  for _ in range(40000):
    idx = np.sort(rng.choice(30, 5, replace=False))
    draws.append(report[idx[np.argmax(selection[idx])]])
  assert abs(st.expected_best_of_n(selection, 5, report) - np.mean(draws)) < 0.01
  assert st.expected_best_of_n(selection, 30) == selection.max()


def test_study_end_to_end_on_digits_resumes_without_new_work(tmp_path):
  """Two replicates on one PruningNet (two streams), every method and the random pool,
  two picks of the first retrained; a rerun finds everything done. (The controls run
  the same code with other config values: test_every_run_is_a_valid_config.)"""
  args = [sys.executable, "-m", "benchmarks.study", "--spaces=digits", "--replicates=2",
          "--streams=2", "--evaluations=4", "--pool=8", "--control_replicates=0",
          "--retrain_replicates=1", "--retrain_seeds=0", "--retrain_steps=2",
          "--retrained=random",
          "--pruningnet_steps=2", "--smoke", "--target=0.6", f"--workdir={tmp_path}/w",
          f"--json={tmp_path}/study.json", f"--output={tmp_path}/STUDY.md",
          f"--rank_json={tmp_path}/rank.json", f"--ledger={tmp_path}/ledger.json"]
  # the PruningNet recipe, scorer and retrain recipe default to the ranking's choices
  (tmp_path / "rank.json").write_text(json.dumps({"best": "today", "recipe": "e1"}))
  first = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
  with open(tmp_path / "study.json") as f:
    study = json.load(f)
  rows = study["replicates"]
  assert (study["setup"]["variant"], study["setup"]["retrain_recipe"]) == ("today", "e1")
  assert [(r["replicate"], r["seed"], r["stream"]) for r in rows] == [(0, 0, 0), (1, 0, 1)]
  core = {"graph_rl", "amc", "evolution", "uniform", "random"}
  assert set(rows[0]["methods"]) == set(rows[1]["methods"]) == core
  for row in rows:
    for m in row["methods"].values():
      assert 0 <= m["selection"] <= 1 and 0 <= m["report"] <= 1
  assert rows[0]["methods"]["random"]["pool"] == 8
  retrained = {k for k, m in rows[0]["methods"].items() if "retrained_top1" in m}
  assert retrained == {"random"}
  assert not any("retrained_top1" in m for m in rows[1]["methods"].values())
  text = (tmp_path / "STUDY.md").read_text()
  assert "## `digits`" in text and "| graph_rl | amc | 2 |" in text
  cached = (tmp_path / "w" / "digits" / "pn0" / "scores_selection.jsonl").read_text()
  assert len(cached.splitlines()) == len({l.split('"scores"')[0] for l in cached.splitlines()})
  # A new session: the workdir is gone, the ledger (committed) holds the finished pieces
  # but one search. Only that search runs again, on its PruningNet rebuilt bit for bit
  # (a different one would drop the group's pieces: test_a_rebuilt_pruningnet_...).
  ledger = json.loads((tmp_path / "ledger.json").read_text())
  lost = "digits/pn0/s1/amc/search/result_0.6.json"
  assert lost in ledger["records"] and not any(
      k.endswith((".jsonl", ".msgpack")) for k in ledger["records"])
  del ledger["records"][lost]
  (tmp_path / "ledger.json").write_text(json.dumps(ledger))
  shutil.rmtree(tmp_path / "w")
  second = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-3000:]
  ran = [l for l in second.stdout.splitlines() if l.startswith("study: digits replicate")]
  assert len(ran) == 1 and "replicate 1 amc" in ran[0] and "dropped" not in second.stdout
  again = json.loads((tmp_path / "study.json").read_text())["replicates"]
  assert again[0] == rows[0] and again[1]["methods"]["amc"] == rows[1]["methods"]["amc"]
  assert lost in json.loads((tmp_path / "ledger.json").read_text())["records"]


def test_a_rebuilt_pruningnet_that_differs_drops_its_groups_pieces(tmp_path):
  from benchmarks import ledger, study
  params = {"w": np.ones((2, 3), np.float32)}
  group = tmp_path / "pn0"
  kept = {"pruningnet_minutes.json", "s0/amc/minutes.json"}
  dropped = {"s0/amc/search/result_0.3.json", "s0/random_pool/random.json",
             "s0/retrain/amc_s0/report.json", "scores_selection.jsonl"}
  for rel in kept | dropped:
    (group / rel).parent.mkdir(parents=True, exist_ok=True)
    (group / rel).write_text("{}")
  (group / "s0/amc/search/state_amc_0.3").mkdir()
  study.same_pruningnet(str(group), params)  # the first: recorded, nothing dropped
  assert all((group / rel).exists() for rel in kept | dropped)
  study.same_pruningnet(str(group), {"w": np.ones((2, 3), np.float32)})  # the same
  assert all((group / rel).exists() for rel in kept | dropped)
  study.same_pruningnet(str(group), {"w": np.full((2, 3), 1.0000001, np.float32)})
  assert all((group / rel).exists() for rel in kept)
  assert not any((group / rel).exists() for rel in dropped)
  assert not (group / "s0/amc/search/state_amc_0.3").exists()
  assert json.loads((group / "pruningnet_fingerprint.json").read_text())["sha256"] == (
      ledger.fingerprint({"w": np.full((2, 3), 1.0000001, np.float32)}))
