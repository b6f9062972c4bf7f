"""One run per workdir: an advisory lock on `<workdir>/.lock`.

The lock is an `fcntl.flock` on the file, which the kernel releases when the
holder dies, so a lock left by a killed run is stale by construction: the next
run takes it over (and says so). The file records who holds it, for the error
message a second run gets. On a shared filesystem without flock support the
lock is as good as that filesystem's flock.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time

from gp_jax.runtime.errors import UserError

LOCK_FILE = ".lock"


def _describe(info: dict) -> str:
  started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("time", 0)))
  return f"pid {info.get('pid', '?')} on {info.get('host', '?')} (started {started})"


@contextlib.contextmanager
def hold(workdir: str):
  """Holds the workdir's lock for the duration; a UserError if another run holds it."""
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, LOCK_FILE)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      raise UserError(f"workdir {workdir} is in use by {_describe(_read(fd))}; wait for "
                      "that run to finish or pass another --workdir") from None
    previous = _read(fd)
    if previous:
      print(f"warning: taking over a stale lock on {workdir} from {_describe(previous)}, "
            "which is no longer running", file=sys.stderr)
    info = {"pid": os.getpid(), "host": socket.gethostname(), "time": time.time(),
            "argv": sys.argv}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    try:
      yield
    finally:
      os.ftruncate(fd, 0)  # a clean exit leaves an empty (free, not stale) lock file
  finally:
    os.close(fd)  # releases the flock


def _read(fd: int) -> dict:
  try:
    raw = os.pread(fd, 65536, 0)
    return json.loads(raw) if raw.strip() else {}
  except (OSError, ValueError):
    return {}
