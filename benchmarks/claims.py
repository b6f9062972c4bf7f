"""Claims on the units of a long benchmark, so that several processes share a workdir:
each runs only the units it claimed, and a unit whose holder died is taken over."""
from __future__ import annotations

import os


def _start_time(pid: int) -> str:
  """The process's start time in clock ticks since boot ('' if there is no such process):
  with the pid, it names one process even after the pid is reused."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()[19]
  except (OSError, IndexError):
    return ""


def _holder_alive(text: str) -> bool:
  pid, _, started = text.strip().partition(" ")
  if not pid.isdigit():
    return False
  now = _start_time(int(pid))
  return bool(now) and (not started or now == started)


def claim(directory: str) -> bool:
  """True if this process may run the unit in `directory`: nobody alive holds it."""
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, ".claim")
  me = f"{os.getpid()} {_start_time(os.getpid())}"
  for _ in range(2):
    try:
      fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
      try:
        with open(path) as f:
          holder = f.read()
      except OSError:
        holder = ""
      if holder.strip() == me.strip():
        return True
      if _holder_alive(holder):
        return False
      os.remove(path)  # its holder died: take it over (the unit resumes)
      continue
    with os.fdopen(fd, "w") as f:
      f.write(me)
    return True
  return False


def release(directory: str) -> None:
  path = os.path.join(directory, ".claim")
  if os.path.exists(path):
    os.remove(path)
