"""Shared command-line plumbing: absl flags + ml_collections configs, one-line errors.

Any `UserError` (and any bad flag or config override) ends the program with a
single line on stderr and exit code 2, before anything is written. SIGTERM
makes the running stage save and exit with code 75 (resume by rerunning).
"""
from __future__ import annotations

import sys

from absl import app, flags, logging

from gp_jax.runtime import preemption
from gp_jax.runtime.errors import UserError

EXIT_USER_ERROR = 2


def _fail(message: str, code: int = EXIT_USER_ERROR):
  print(f"error: {message}", file=sys.stderr)
  sys.exit(code)


def _parse_flags(argv):
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    _fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
  except UserError as e:
    _fail(str(e))
  except Exception as e:  # pylint: disable=broad-except  # a config file that fails to load
    detail = " ".join(str(e.args[0] if e.args else e).replace("\\n", " ").replace("\\'", "'").split())
    kind = "unknown config field" if isinstance(e, AttributeError) else type(e).__name__
    _fail(f"bad --config or override ({kind}): {detail.replace(chr(39), '')}")


def load_config(holder):
  """The config behind a `config_flags` holder, or a one-line UserError."""
  try:
    config = holder.value
    config.to_dict()  # a config that failed to load raises on first access
    return config
  except OSError as e:
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    reason = lines[-1] if lines else str(e)
    raise UserError(f"could not load --config: {reason}") from None


def run(main):
  """`absl.app.run(main)`, mapping user errors to one line and exit code 2, and
  SIGTERM (after the running stage has saved) to one line and exit code 75."""
  def guarded(argv):
    preemption.install()
    if not flags.FLAGS["verbosity"].present:
      # Quiet by default: jax and orbax log every backend probe and file at INFO.
      logging.set_verbosity(logging.WARNING)
    try:
      return main(argv)
    except UserError as e:
      _fail(str(e))
    except preemption.Preempted as e:
      _fail(str(e), preemption.EXIT_PREEMPTED)
  app.run(guarded, flags_parser=_parse_flags)
