"""SIGTERM (preemption) handling: the running stage saves a checkpoint and exits 75.

`install()` (called by the CLIs) turns SIGTERM into a flag; the training and
search loops check `requested()` after every step/round, save, and raise
`Preempted`, which the CLI reports on one line with exit code 75
(`EX_TEMPFAIL`: run the same command again to resume).
"""
from __future__ import annotations

import signal
import threading

EXIT_PREEMPTED = 75

_requested = threading.Event()


class Preempted(Exception):
  """The stage stopped on SIGTERM after saving; rerunning the command resumes it."""


def _handler(signum, frame):
  del signum, frame
  _requested.set()


def install() -> None:
  """SIGTERM sets the preemption flag instead of killing the process (main thread only)."""
  signal.signal(signal.SIGTERM, _handler)


def requested() -> bool:
  return _requested.is_set()


def stop(where: str) -> Preempted:
  """The exception to raise once the checkpoint of `where` is saved."""
  return Preempted(f"preempted (SIGTERM) {where}; checkpoint saved: run the same "
                   "command again to resume")
