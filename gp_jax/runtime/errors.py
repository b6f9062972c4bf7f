"""User-facing errors: one line, saying what is wrong and what to do.

Every check on user input (config values, channel configurations, names)
raises `UserError`; the CLIs print its message on one line and exit with code 2.
"""
import difflib


class UserError(ValueError):
  """Bad input from the user: a config value, a name, a channel configuration."""


def unknown_name(kind: str, name: str, choices) -> UserError:
  """Error for an unknown name, listing the valid choices and the closest match."""
  choices = sorted(choices)
  close = difflib.get_close_matches(str(name), choices, n=1)
  hint = f" Did you mean '{close[0]}'?" if close else ""
  return UserError(
      f"unknown {kind} '{name}'; valid choices: {', '.join(choices)}.{hint}")
