"""Fault injection for the resume tests: kill this process at a chosen step.

Set `GP_JAX_FAULT=<label>:<step>[:KILL|TERM]` (e.g. `pruningnet:6:KILL`) and
the loop labelled `<label>` sends itself that signal (default KILL) just
before it runs step (or search round) `<step>`. Unset, this does nothing.
"""
from __future__ import annotations

import os
import signal

ENV = "GP_JAX_FAULT"


def maybe_inject(label: str, step: int) -> None:
  spec = os.environ.get(ENV)
  if not spec:
    return
  parts = spec.split(":")
  if parts[0] == label and int(parts[1]) == step:
    name = parts[2] if len(parts) > 2 else "KILL"
    os.kill(os.getpid(), getattr(signal, "SIG" + name))
