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
    assert r["predicted_ms_measured"] > 0 and r["predicted_ms_monotone"] > 0
    assert r["measured_ms"] > 0
  for key in ("spearman", "spearman_monotone", "spearman_macs", "spearman_repeat"):
    assert -1 <= row[key] <= 1
  fits = row["fits"]
  assert set(fits) == {"measured", "monotone"} and all(f["scale"] > 0 for f in fits.values())
  text = (tmp_path / "BENCHMARKS.md").read_text()
  assert "predicted vs measured latency" in text and "rank corr. monotone table (default)" in text


def test_conv_forms_worker_times_every_form_and_names_the_one_used():
  """The `convs` table's worker, in process on tiny layers (the bench runs it on
  the networks' shapes): every form of each kind is timed both ways, and the
  form it names as used is the one `models.Layer` picks."""
  from benchmarks.tables import convs
  cases = [("tiny", "3x3 stem", 2, 6, 3, 16, 3, 1), ("tiny", "3x3", 2, 6, 8, 8, 3, 1),
           ("tiny", "1x1", 2, 6, 4, 8, 1, 1), ("tiny", "depthwise 3x3 /2", 2, 6, 4, 4, 3, 2)]
  rows = convs.worker_conv_forms(cases, runs=1, rounds=1)["rows"]
  assert [r["used"] for r in rows] == ["xla + per-tap kernel gradient", "xla",
                                       "one matrix product", "shifted products"]
  assert sorted(rows[0]["ms"]) == sorted(
      f"{form}|{p}" for form in ("xla", "xla + per-tap kernel gradient", "im2col")
      for p in ("forward", "forward+backward"))
  assert all(ms > 0 for r in rows for ms in r["ms"].values())
  text = convs.table_convs({"layers": rows, "networks": {
      "n": {"cpu_forms_step_s": 0.1, "xla_step_s": 0.2, "speedup": 2.0,
            "cpu_forms_compile_s": 1.0, "xla_compile_s": 1.0}}})
  assert "| tiny | 1x1 | 2, 6, 4, 8 |" in text and "2.00x" in text


def test_xla_options_table_shows_a_failed_option_as_such():
  from benchmarks.tables import xla_options
  row = {"flags": "--x", "error": None, "step_images_per_s": 100.0, "candidates_per_s": 2.0}
  text = xla_options.table_xla_options({
      "default": {**row, "flags": ""}, "faster": {**row, "step_images_per_s": 150.0},
      "broken": {"flags": "--y", "error": "unknown flag", "step_images_per_s": None,
                 "candidates_per_s": None}})
  assert "| faster | `--x` | 150.0 | 1.50x | 2.00 | 1.00x |" in text
  assert "failed: unknown flag" in text


def test_dense_rules_table_shows_each_rule_against_xla_and_the_fastest():
  from benchmarks.tables import dense_rules
  rows = {rule: {"step_s": t, "dense_convs": n} for rule, t, n in (
      ("none (XLA's conv)", 0.2, 0), ("stems", 0.1, 1), ("every one", 0.4, 19))}
  text = dense_rules.table_dense_rules({"net a": rows, "net b": {**rows, "stems": {
      "step_s": 0.5, "dense_convs": 1}}})
  assert "| stems | 100 ms (2.00x, 1 convs) | 500 ms (0.40x, 1 convs) |" in text
  assert "Fastest here: net a: stems; net b: none (XLA's conv)." in text


def test_gpu_script_smoke_runs_every_worker_on_the_cpu(tmp_path):
  """benchmarks/gpu.sh --smoke: the GPU benchmark's every worker on tiny shapes, so the
  script a lent GPU runs cannot rot between lendings."""
  env = {**os.environ, "PYTHON": sys.executable, "GPU_BENCH_OUT": str(tmp_path),
         "GPU_WHEELS": str(tmp_path / "no_wheels"), "OUT": str(tmp_path / "out")}
  os.makedirs(tmp_path / "out")
  proc = subprocess.run(["bash", "benchmarks/gpu.sh", "--smoke"], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
  with open(tmp_path / "bench_gpu.json") as f:
    result = json.load(f)
  assert (tmp_path / "out" / "bench_gpu.json").exists()  # copied for the device tool
  rows = result["rows"]
  assert result["quick"] and rows["step mobilenetv2 b256"]["compilations"] == 1
  assert rows["step mobilenetv2 b256"]["configurations"] > 1
  c = rows["candidates mobilenetv2"]
  assert all(c[f"{m}_candidates_per_s"] > 0 for m in ("1", "2", "map"))
  assert [r["target"] for r in rows["latency mobilenetv2"]["rows"]] == [1.0, 0.5]
  from benchmarks import gpu
  text = gpu.table_gpu(result)
  assert "smoke shapes" in text and "| step mobilenetv2 b256 |" in text
  assert "lax.map in one program" in text
  assert "Not measured yet" in gpu.table_gpu(None)
