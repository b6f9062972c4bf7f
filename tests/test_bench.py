"""`python -m benchmarks.bench` runs (quick form) and writes bench.json + BENCHMARKS.md."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bench_pipeline_quick_writes_both_files(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "benchmarks.bench", "--quick", "--only=pipeline",
                         f"--out={tmp_path}"], cwd=ROOT, capture_output=True, text=True,
                        timeout=900)
  assert proc.returncode == 0, proc.stderr[-2000:]
  with open(tmp_path / "bench.json") as f:
    results = json.load(f)
  r = results["pipeline"]
  assert r["decode_only_images_per_s"] > 0 and r["inline_images_per_s"] > 0
  assert r[f"workers_{r['workers']}_images_per_s"] > 0
  text = (tmp_path / "BENCHMARKS.md").read_text()
  assert "Input pipeline: decode + augment throughput" in text and "images/s" in text


def test_bench_unknown_table_is_one_line(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "benchmarks.bench", "--only=pipelin",
                         f"--out={tmp_path}"], cwd=ROOT, capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 2 and "pipeline" in proc.stderr
  assert len(proc.stderr.strip().splitlines()) == 1
  assert not os.listdir(tmp_path)


def test_bench_sharding_table_splits_the_heads_over_model(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "benchmarks.bench", "--only=sharding",
                         f"--out={tmp_path}"], cwd=ROOT, capture_output=True, text=True,
                        timeout=900)
  assert proc.returncode == 0, proc.stderr[-2000:]
  with open(tmp_path / "bench.json") as f:
    rows = json.load(f)["sharding"]["rows"]
  assert list(rows) == ["1", "2", "4", "8"]
  heads = [rows[m]["largest_head_bytes"] for m in rows]
  assert heads == [heads[0] // m for m in (1, 2, 4, 8)]  # the largest head: 1/model each
  states = [rows[m]["state_bytes"] for m in rows]
  assert all(b < a for a, b in zip(states, states[1:]))  # the rest stays replicated
  assert states[-1] > states[0] / 8
  assert "(data, model) mesh" in (tmp_path / "BENCHMARKS.md").read_text()


def test_bench_latency_model_quick_compares_prediction_and_measurement(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "benchmarks.bench", "--quick",
                         "--only=latency_model", f"--out={tmp_path}"], cwd=ROOT,
                        capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-2000:]
  with open(tmp_path / "bench.json") as f:
    (row,) = json.load(f)["latency_model"].values()
  assert len(row["rows"]) == 4 and row["measured_shapes"] > 0 and row["build_s"] > 0
  for r in row["rows"]:
    assert r["predicted_ms"] > 0 and r["measured_ms"] > 0
  for key in ("spearman", "spearman_macs", "spearman_repeat"):
    assert -1 <= row[key] <= 1
  assert "predicted vs measured latency" in (tmp_path / "BENCHMARKS.md").read_text()
