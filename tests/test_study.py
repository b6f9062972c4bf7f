"""The study's bookkeeping: priority order, reach and learning figures, the report."""
import numpy as np
from absl import flags

from benchmarks import study


def test_plan_puts_the_core_comparison_first():
  steps = study.plan([0, 1], [0.3, 0.5], list(study.RUNS), ["graph_rl", "amc", "random"], [0])
  core = {("search", s, r, 0.3) for s in (0, 1) for r in ("graph_rl", "amc", "random", "uniform")}
  assert set(steps[:8]) == core
  assert steps[8][0] == "retrain"
  assert steps[-1] == ("search", 1, "random", 0.5)
  assert steps.index(("search", 0, "random", 0.5)) < steps.index(("search", 1, "evolution", 0.3))
  assert len(steps) == len(set(steps)) == 2 * 7 + 4 + 2 * 3


def test_reach_and_learning_figures():
  assert study.evaluations_to_reach([0.1, 0.3, 0.3, 0.5], 0.3) == 2
  assert study.evaluations_to_reach([0.1, 0.2], 0.3) is None
  assert study.learning_row({"greedy_rewards": [0.1, 0.2, 0.9], "warmup_mean": 0.5},
                            last=1) == (0.5, 0.9, True, 0.1, True)
  assert study.learning_row({"best_reward": 1.0}) is None


def test_report_reads_partial_results(tmp_path, monkeypatch):
  # The report needs only results: not the dataset file, which no clean machine has.
  monkeypatch.setenv("GP_JAX_CACHE_DIR", str(tmp_path / "empty_cache"))
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
  rng = np.random.default_rng(0)

  def result(label):
    best = list(np.maximum.accumulate(rng.uniform(0.5, 0.8, 300)))
    r = {"reward": "top1", "best_reward": best[-1], "best_so_far": best, "label": label}
    if label in study.RL_LABELS:
      r.update(greedy_rewards=[0.6, 0.7], warmup_mean=0.55)
    return r

  results = {(s, label, 0.3): result(label) for s in (0, 1) for label in ("graph_rl", "amc",
                                                                           "random")}
  text = study.report(results, {}, [0, 1], [0.3, 0.5], 12.0, str(tmp_path))
  assert "| graph_rl |" in text and "| evolution | – |" in text
  # 2 RL methods x 2 seeds: above the warm-up (0.65 > 0.55) and the untrained actor (0.6)
  assert text.count("| yes | yes |") == 4


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
