"""The kinds of value a config field takes: each `Rule` checks a value, says what
it requires (for the one-line error) and lists values it must reject (from which
tests/test_config_validation.py generates malformed configs)."""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable


@dataclasses.dataclass(frozen=True)
class Rule:
  """A field's check, what it requires (for the message), and values it must reject."""
  check: Callable[[Any], bool]
  requirement: str
  bad_values: tuple  # used by the tests' generated malformed configs
  choices: tuple = ()  # for names: the error suggests the closest one


def _is_int(v) -> bool:
  return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
  return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def integer(low: int = 1) -> Rule:
  word = {0: "a non-negative integer", 1: "a positive integer"}.get(low, f"an integer >= {low}")
  return Rule(lambda v: _is_int(v) and v >= low, word, (low - 1, 2.5, "many"))


def number(low: float, high: float, *, low_open: bool = False,
           high_open: bool = False) -> Rule:
  def check(v):
    return (_is_number(v) and (v > low if low_open else v >= low)
            and (v < high if high_open else v <= high))
  bounds = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
  if math.isinf(high):
    bounds = f"{'>' if low_open else '>='} {low:g}"
  bad = [low - 1, float("nan"), "high"]
  if low_open:
    bad.append(low)
  if math.isfinite(high):
    bad.append(high if high_open else high + 1)
  return Rule(check, f"a number {bounds}", tuple(bad))


def boolean() -> Rule:
  return Rule(lambda v: isinstance(v, bool), "True or False", ("maybe", 2))


def choice(options) -> Rule:
  options = tuple(options)
  typo = options[0][1:] + options[0][0] if len(options[0]) > 1 else options[0] + "x"
  return Rule(lambda v: isinstance(v, str) and v in options,
              "one of " + ", ".join(map(repr, options)), (typo, 3), options)


class registry:  # pylint: disable=invalid-name
  """`choice` over the names of a registry that lives in another module ("module:ATTR",
  optionally with `extra` names), resolved on first use, at validation: reading a
  config imports no registry (and so no jax)."""

  def __init__(self, path: str, extra: tuple = ()):
    self.path, self.extra, self._rule = path, tuple(extra), None

  def _resolve(self) -> Rule:
    if self._rule is None:
      import importlib  # pylint: disable=import-outside-toplevel
      module, _, attr = self.path.partition(":")
      self._rule = choice(self.extra + tuple(getattr(importlib.import_module(module), attr)))
    return self._rule

  def __getattr__(self, name):
    if name in ("check", "requirement", "bad_values", "choices"):
      return getattr(self._resolve(), name)
    raise AttributeError(name)


def text() -> Rule:
  return Rule(lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string", ("", 3))


def ratios() -> Rule:
  def check(v):
    return (isinstance(v, (tuple, list)) and len(v) > 0
            and all(_is_number(t) and 0 < t <= 1 for t in v))
  return Rule(check, "a non-empty tuple of MACs ratios in (0, 1], e.g. (0.5,)",
              ((), (0.0,), (1.5,), (0.5, -0.2), "half"))


def range_pair() -> Rule:
  def check(v):
    return isinstance(v, (tuple, list)) and (
        len(v) == 0 or (len(v) == 2 and all(_is_number(t) for t in v)
                        and 0 < v[0] < v[1] <= 1))
  return Rule(check, "() or (low, high) with 0 < low < high <= 1",
              ((0.5,), (0.8, 0.2), (0.0, 0.5), (0.2, 1.5)))


def patterns() -> Rule:
  def check(v):
    return isinstance(v, str) or (isinstance(v, (tuple, list))
                                  and all(isinstance(p, str) for p in v))
  # A pattern matching no group is rejected by the cross-field checks.
  return Rule(check, "a tuple of group-name patterns", (3, ("no_such_group*",)))


def fractions() -> Rule:
  def check(v):
    return isinstance(v, (tuple, list)) and all(_is_number(t) and 0 < t < 1 for t in v)
  return Rule(check, "a tuple of training fractions in (0, 1)", ((1.5,), "half"))


def mesh_axis() -> Rule:
  return Rule(lambda v: _is_int(v) and (v == -1 or v >= 1),
              "a positive number of devices, or -1 for all remaining ones", (0, -2, 2.5, "all"))
