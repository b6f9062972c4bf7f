"""benchmarks/trained.py: the starts of a pruned network with and without distillation,
end to end on digits (resumed), and its table in BENCHMARKS.md."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np

from benchmarks.tables import trained as table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_table_shows_each_start_with_and_without_distillation():
  units = [{"key": ["full", s], "top1": 0.9, "minutes": 1.0} for s in (0, 1)]
  units += [{"key": [0.3, "searched", init, d, s], "top1": 0.8 + 0.01 * s, "minutes": 2.0}
            for init in ("scratch", "checkpoint") for d in ("off", "on") for s in (0, 1)]
  data = {"config": "c.py", "units": units, "finetune_lr": 0.01, "date": "d",
          "host_cpu": "cpu", "cores": 2, "jax": "x"}
  text = table.replace_section("# Benchmarks\n", data)
  assert "| 0.3 | searched | from scratch | 80.50 ± 0.71 (2) | 80.50 ± 0.71 (2) |" in text
  assert text.index("from scratch") < text.index("pruned from the trained network")
  assert "The full network (the teacher): 90.00 ± 0.00 (2)" in text
  assert table.replace_section(text, data) == text  # replaced, not appended again
  assert "Incomplete" not in text
  # checkpoint off: +0.00 on both seeds; on: +0.00 too; scratch on: +0.00. No start beats
  # the baseline, so there is no best.
  assert ("| pruned from the trained network, fine-tuned | off | +0.00 [+0.00, +0.00] (2) |"
          in text)
  assert "none yet" in text
  assert "**Incomplete**: 10 of 12 units" in table.render({**data, "planned": 12})


def test_the_best_start_is_the_highest_paired_gain_past_its_interval():
  def unit(init, d, s, top1, t=0.3, conf="searched"):
    return {"key": [t, conf, init, d, s], "top1": top1, "minutes": 1.0}
  units = [unit("scratch", "off", s, 0.80 + 0.01 * s) for s in range(3)]
  units += [unit("checkpoint", "off", s, 0.81 + 0.01 * s + 0.001 * (s == 1)) for s in range(3)]
  units += [unit("scratch", "on", s, 0.85 + 0.03 * (s == 0)) for s in range(3)]  # noisy
  diffs = table.paired_differences(units)
  assert np.allclose(diffs[("checkpoint", "off")][0.3], [1.0, 1.1, 1.0])
  assert np.allclose(diffs[("scratch", "on")][0.3], [8.0, 4.0, 3.0])
  # scratch+distillation gains more on average (5.0), but its interval (3 pairs, sd 2.6)
  # reaches below zero; the checkpoint's +1.03 is tight
  assert table.best_start(units) == ("checkpoint", "off")
  text = table.render({"config": "c.py", "units": units, "finetune_lr": 0.01, "date": "d",
                       "host_cpu": "cpu", "cores": 2, "jax": "x"})
  assert "**pruned from the trained network, fine-tuned, distillation off**" in text
  assert table.best_start(units[:3]) is None


def test_trained_end_to_end_on_digits_resumes(tmp_path):
  bench = tmp_path / "bench.json"
  bench.write_text(json.dumps({"machine": {}}))
  (tmp_path / "B.md").write_text("# Benchmarks\n")
  # The two paths of the issue: a trained network's channels, and its soft targets (the
  # other starts are the retrain stage's, tested in test_retrain_eval.py).
  args = [sys.executable, "-m", "benchmarks.trained", "--config=configs/digits_resnet20.py:smoke",
          "--targets=0.6", "--configurations=uniform", "--inits=checkpoint",
          "--distill=off,on", "--seeds=0", "--steps=2", f"--workdir={tmp_path}/w",
          f"--json={bench}", f"--output={tmp_path}/B.md", f"--ledger={tmp_path}/ledger.json"]
  first = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
  data = json.loads(bench.read_text())
  assert "machine" in data  # the other tables' figures stay
  keys = sorted(tuple(map(str, u["key"])) for u in data["trained"]["units"])
  assert keys == sorted([("full", "0")] + [("0.6", "uniform", "checkpoint", d, "0")
                                           for d in ("off", "on")])
  assert not (tmp_path / "w" / "search").exists()  # no unit needed a PruningNet
  assert all(0 <= u["top1"] <= 1 for u in data["trained"]["units"])
  text = (tmp_path / "B.md").read_text()
  assert "## 11. Pruned networks" in text and "| 0.6 | uniform | pruned from the" in text
  record = json.loads((tmp_path / "w" / "units" / "0.6_uniform_checkpoint_on_s0" / "retrain"
                       / "pruned" / "network.json").read_text())
  assert record["init"] == "checkpoint"
  # A new session: the workdir is gone; the ledger holds every unit but the distilled
  # one. It runs again, and so does its teacher, whose weights went with the workdir.
  ledger = json.loads((tmp_path / "ledger.json").read_text())
  lost = "units/0.6_uniform_checkpoint_on_s0/unit.json"
  assert {lost, "full_s0/unit.json"} <= set(ledger["records"])
  del ledger["records"][lost]
  (tmp_path / "ledger.json").write_text(json.dumps(ledger))
  shutil.rmtree(tmp_path / "w")
  second = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-3000:]
  ran = sorted(l.split(":")[1] for l in second.stdout.splitlines()
               if l.startswith("trained: ") and "test top-1" in l)
  assert ran == [" 0.6 uniform checkpoint on 0", " full 0"], ran
  assert (tmp_path / "w" / "full_s0" / "unit.previous.json").exists()
  again = {tuple(map(str, u["key"])): u["top1"]
           for u in json.loads(bench.read_text())["trained"]["units"]}
  off = ("0.6", "uniform", "checkpoint", "off", "0")
  assert again[off] == {tuple(map(str, u["key"])): u["top1"] for u in data["trained"]["units"]}[off]
