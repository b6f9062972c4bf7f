"""The registry of search methods, by name (as jaxpruner registers its algorithms).

Each entry is a class with `from_context(SearchContext)` that follows the
`base.SearchMethod` protocol; a new method is one class and one line here.

    uniform    one keep-ratio for every group (baselines.Uniform)
    random     random configurations in the MACs window (baselines.RandomSearch)
    evolution  MetaPruning's evolutionary search (baselines.Evolution)
    graph_rl   DDPG whose state is the GCN embedding (rl.GraphRL; the paper's method)
    amc        DDPG with AMC's hand-crafted states (rl.AMC; the ablation)

The RL methods' state can be swapped with `search.rl.state` (rl.STATES), e.g.
`graph_rl` with `gcn_untrained` or `gcn_shuffled` for the controls.
"""
from __future__ import annotations

from gp_jax.runtime.errors import unknown_name
from gp_jax.search import baselines, rl
from gp_jax.search.base import SearchContext, SearchMethod

METHODS = {
    "graph_rl": rl.GraphRL,
    "amc": rl.AMC,
    "evolution": baselines.Evolution,
    "random": baselines.RandomSearch,
    "uniform": baselines.Uniform,
}
RL_STATES = rl.STATES
RL_SCALARS = tuple(rl.SCALARS)
# The methods that take the `search.rl.*` options (validation asks here).
RL_METHODS = tuple(name for name, cls in METHODS.items() if issubclass(cls, rl.RLSearch))
uniform_widths = baselines.uniform_widths
uniform_keep_ratio = baselines.uniform_keep_ratio


def build_method(name: str, ctx: SearchContext) -> SearchMethod:
  if name not in METHODS:
    raise unknown_name("search method", name, METHODS)
  return METHODS[name].from_context(ctx)


def method_label(search_config) -> str:
  """The label a method's files and random stream carry (the RL state variant included)."""
  name = search_config.method
  cls = METHODS.get(name)
  if cls is None or not issubclass(cls, rl.RLSearch):
    return name
  state = search_config.rl.state
  label = f"{name}+{state}" if state and state != cls.default_state else name
  scalars = search_config.rl.get("scalars", "all")
  return label if scalars == "all" else f"{label}+{scalars}"
