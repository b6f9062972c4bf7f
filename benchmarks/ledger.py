"""A long benchmark's finished pieces, kept in the repository between sessions.

A long benchmark (the study, the trained-network comparison) takes more hours than one
session has, and a session's machine keeps nothing but the repository: its workdir
under runs/ is gone when the next one starts. The small files that mark a finished
piece (a search's result, a retrain's test score, the minutes each took) are all a
rerun needs to skip it, so `save` gathers them from the workdir into one JSON file
that is committed, and `restore` writes back those a workdir lacks. What they were
computed from (checkpoints, score caches) is not kept: a rerun rebuilds what its
remaining pieces need (the benchmark decides what, and whether the rebuilt PruningNet
is the same one: `fingerprint`).
"""
from __future__ import annotations

import fnmatch
import hashlib
import os

import jax
import numpy as np

from gp_jax.runtime import io_utils
from gp_jax.runtime.errors import UserError

# The names of the files that mark a finished piece, in every benchmark's workdir.
RECORDS = ("result_*.json", "random.json", "report.json", "unit.json", "minutes.json",
           "pruningnet_minutes.json", "pruningnet_fingerprint.json")


def is_record(name: str) -> bool:
  return any(fnmatch.fnmatch(name, pattern) for pattern in RECORDS)


def gather(root: str) -> dict:
  """{path relative to `root`: the record's JSON} of every record under `root`."""
  out = {}
  for directory, _, files in os.walk(root):
    for name in files:
      if is_record(name):
        path = os.path.join(directory, name)
        try:
          out[os.path.relpath(path, root)] = io_utils.read_json(path)
        except FileNotFoundError:  # another process sharing the workdir just moved it
          continue
  return dict(sorted(out.items()))


def save(root: str, path: str) -> int:
  """Writes the records under `root` to `path` (the workdir was restored from it first,
  so nothing it held is lost); returns how many."""
  records = gather(root)
  io_utils.write_json(path, {"records": records})
  return len(records)


def restore(root: str, path: str) -> int:
  """Writes the records of `path` that `root` lacks; returns how many ('' or a missing
  file: none)."""
  if not path or not os.path.exists(path):
    return 0
  try:
    records = io_utils.read_json(path)["records"]
  except (ValueError, KeyError, TypeError) as e:
    raise UserError(f"{path} is not a ledger ({e}); restore it with git checkout, or pass "
                    "--ledger='' to start without it") from None
  written = 0
  for rel, record in records.items():
    target = os.path.join(root, rel)
    if os.path.isabs(rel) or os.path.normpath(rel).startswith(".."):
      raise UserError(f"{path}: record {rel!r} lies outside the workdir; restore the "
                      "ledger with git checkout")
    if not os.path.exists(target):
      os.makedirs(os.path.dirname(target), exist_ok=True)
      io_utils.write_json(target, record)
      written += 1
  return written


def fingerprint(params) -> str:
  """A hash of a network's parameters (their paths, shapes, dtypes and bytes): the same
  training rebuilt bit for bit gives the same one."""
  h = hashlib.sha256()
  for key_path, leaf in jax.tree_util.tree_leaves_with_path(params):
    a = np.asarray(leaf)
    h.update(f"{jax.tree_util.keystr(key_path)}{a.shape}{a.dtype}".encode())
    h.update(np.ascontiguousarray(a).tobytes())
  return h.hexdigest()
