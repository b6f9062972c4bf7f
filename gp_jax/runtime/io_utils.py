"""Atomic file outputs: written to a temporary name, then renamed into place."""
from __future__ import annotations

import json
import os
import tempfile


def _atomic(path: str, write) -> None:
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
  try:
    with os.fdopen(fd, "w") as f:
      write(f)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_json(path: str, obj) -> None:
  _atomic(path, lambda f: json.dump(obj, f, indent=1))


def write_jsonl(path: str, rows) -> None:
  _atomic(path, lambda f: f.writelines(json.dumps(r) + "\n" for r in rows))


def read_json(path: str):
  with open(path) as f:
    return json.load(f)


def read_jsonl(path: str) -> list:
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def save_figure(fig, path: str) -> None:
  """Saves a matplotlib figure atomically as PNG."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".png")
  os.close(fd)
  try:
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_text(path: str, text: str) -> None:
  _atomic(path, lambda f: f.write(text))
