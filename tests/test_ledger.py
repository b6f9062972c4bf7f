"""benchmarks/ledger.py: a long benchmark's finished pieces survive the loss of its
workdir (the end-to-end resumptions are in test_study.py and test_trained.py)."""
import json

import numpy as np
import pytest

from benchmarks import ledger
from gp_jax.runtime.errors import UserError


def _write(root, rel, obj):
  path = root / rel
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(obj))


def test_save_keeps_the_records_only_and_restore_writes_what_is_missing(tmp_path):
  work = tmp_path / "w"
  _write(work, "a/search/result_0.3.json", {"widths": [4, 8]})
  _write(work, "a/retrain/x_s0/report.json", {"top1": 0.9})
  _write(work, "u/unit.json", {"top1": 0.8})
  _write(work, "a/minutes.json", {"minutes": 2.0})
  _write(work, "a/search/state_amc_0.3/meta.json", {"not": "a record"})
  (work / "a" / "scores_selection.jsonl").write_text("{}\n")
  assert ledger.save(str(work), str(tmp_path / "l.json")) == 4
  records = json.loads((tmp_path / "l.json").read_text())["records"]
  assert set(records) == {"a/search/result_0.3.json", "a/retrain/x_s0/report.json",
                          "u/unit.json", "a/minutes.json"}
  fresh = tmp_path / "fresh"
  _write(fresh, "u/unit.json", {"top1": 0.7})  # what a workdir holds wins
  assert ledger.restore(str(fresh), str(tmp_path / "l.json")) == 3
  assert json.loads((fresh / "u/unit.json").read_text()) == {"top1": 0.7}
  assert json.loads((fresh / "a/search/result_0.3.json").read_text()) == {"widths": [4, 8]}
  assert ledger.restore(str(fresh), "") == 0
  assert ledger.restore(str(fresh), str(tmp_path / "none.json")) == 0


def test_restore_refuses_a_malformed_ledger(tmp_path):
  (tmp_path / "l.json").write_text(json.dumps({"records": {"../x/unit.json": {}}}))
  with pytest.raises(UserError, match="outside the workdir"):
    ledger.restore(str(tmp_path / "w"), str(tmp_path / "l.json"))
  (tmp_path / "l.json").write_text("{not json")
  with pytest.raises(UserError, match="is not a ledger"):
    ledger.restore(str(tmp_path / "w"), str(tmp_path / "l.json"))


def test_the_fingerprint_tells_one_bit_and_one_name_apart():
  a = {"conv": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}}
  same = {"conv": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}}
  bit = {"conv": {"kernel": np.nextafter(a["conv"]["kernel"], np.float32(9))}}
  renamed = {"conv2": {"kernel": a["conv"]["kernel"]}}
  assert ledger.fingerprint(a) == ledger.fingerprint(same)
  assert len({ledger.fingerprint(x) for x in (a, bit, renamed)}) == 3
