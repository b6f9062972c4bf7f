"""Params: conv/dense weights and biases plus BatchNorm's scale and offset."""
from __future__ import annotations

from gp_jax.constraints.base import Constraint
from gp_jax.net import costs


class Params(Constraint):
  name, label = "params", "params"

  def build(self, config, spec, workdir=None):
    return costs.params_cost(spec)
