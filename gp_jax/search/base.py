"""What every search method is: a small protocol, its inputs, and its random stream.

A method is driven round by round by the search stage: `propose(state, round,
log)` returns a population of widths (P, G) that the harness scores in one
compiled call, and `observe(...)` folds the rewards back into the method's
state. The state is a pytree of fixed-shape arrays, so a search resumes exactly
from a checkpoint. RL methods also offer `greedy(state)`, the noise-free
policy's configuration, scored on the side to show whether the agent learns.
"""
from __future__ import annotations

import dataclasses
import zlib
from typing import Any, Optional, Protocol

import numpy as np

from gp_jax.search.env import PruningEnv


@dataclasses.dataclass(frozen=True)
class SearchContext:
  """Everything a method may use; a method takes what it needs."""
  env: PruningEnv
  search_config: Any          # config.search
  seed: int                   # the experiment seed (streams derive from it)
  grid: np.ndarray            # the keep-ratio grid (random, evolution)
  pruningnet: Any = None      # the PruningNet module (graph RL states)
  pruningnet_params: Any = None  # its trained {"aggregator": ...} parameters


class SearchMethod(Protocol):
  name: str   # the method's registry name
  label: str  # name plus its variant (e.g. "graph_rl+gcn_shuffled"): keys streams and files

  def num_rounds(self) -> int: ...
  def population(self) -> int: ...
  def init_state(self) -> Any: ...
  def propose(self, state, round_: int, log) -> tuple[np.ndarray, dict]: ...
  def observe(self, state, round_: int, widths, rewards, extra) -> Any:
    """The state after round `round_`'s candidates `widths` (P, G) scored `rewards`
    (P,); `extra` is what `propose` returned beside them (e.g. the actions)."""
  def greedy(self, state) -> Optional[np.ndarray]: ...


def stream_seed(seed: int, label: str) -> int:
  """The seed of method `label`'s own random stream under experiment `seed`.

  Methods never share exploration samples or noise (two methods with one seed
  would otherwise draw the same warm-up episodes); what they share, the
  PruningNet and the held-out data, keeps comparisons paired.
  """
  return int(np.random.SeedSequence([seed, zlib.crc32(label.encode())]).generate_state(1)[0])


def round_rng(stream: int, round_: int, salt: int = 0) -> np.random.Generator:
  return np.random.default_rng([stream, round_, salt])
