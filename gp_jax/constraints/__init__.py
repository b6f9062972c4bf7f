"""The budget's constraints, registered by name: what a search target is a ratio of.

Each constraint is one module that says everything the rest of the package asks
of it: how its `costs.Cost` is built (`build`), whether that needs a measurement
on this device before a target can be checked (`measured_on_device`), and the
fields it adds to a search result, a candidate row, a round's metrics and a
network record. A new constraint is one module and one line here; nothing else
names a constraint.
"""
from __future__ import annotations

from gp_jax.constraints.base import Constraint
from gp_jax.constraints.latency import Latency
from gp_jax.constraints.macs import Macs
from gp_jax.constraints.params import Params
from gp_jax.runtime.errors import unknown_name

REGISTRY: dict[str, Constraint] = {c.name: c for c in (Macs(), Params(), Latency())}
NAMES = tuple(REGISTRY)


def get(name: str) -> Constraint:
  if name not in REGISTRY:
    raise unknown_name("constraint", name, REGISTRY)
  return REGISTRY[name]
