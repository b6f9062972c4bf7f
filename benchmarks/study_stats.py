"""The study's reading of paired replicates: a method against a baseline, with an
interval, called a win, a loss, equivalent or undecided; and random search as the
expected best of n draws from one scored pool, so no difference carries one random
run's luck."""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy import stats
from scipy.special import gammaln

# A win or a loss needs the 95% interval to exclude 0 and the mean to be at least this
# far from it; equivalence (TOST) is within +- EQUIVALENCE at the 5% level (points).
MIN_EFFECT = 0.3
EQUIVALENCE = 0.2


@dataclasses.dataclass(frozen=True)
class Paired:
  """Differences method - baseline over paired replicates, in points."""
  n: int
  mean: float
  sd: float
  low: float  # the 95% t interval of the mean difference
  high: float
  verdict: str  # "win", "loss", "equivalent" or "undecided"


def paired(method, baseline, min_effect: float = MIN_EFFECT,
           margin: float = EQUIVALENCE, level: float = 0.95) -> Paired:
  """The paired reading of `method` against `baseline` (equal-length sequences of one
  score per replicate, in points). Equivalence is two one-sided t tests at
  1 - level against +-`margin`: the (1 - 2 alpha) interval inside the margin."""
  d = np.asarray(method, float) - np.asarray(baseline, float)
  n = len(d)
  if n < 2:
    return Paired(n, float(d.mean()) if n else float("nan"), float("nan"), float("nan"),
                  float("nan"), "undecided")
  mean, sd = float(d.mean()), float(d.std(ddof=1))
  se = sd / np.sqrt(n)
  t = stats.t.ppf(0.5 + level / 2, n - 1)
  low, high = mean - t * se, mean + t * se
  t_tost = stats.t.ppf(level, n - 1)  # the 90% interval for a 5% TOST
  if low > 0 and mean >= min_effect:
    verdict = "win"
  elif high < 0 and mean <= -min_effect:
    verdict = "loss"
  elif mean - t_tost * se > -margin and mean + t_tost * se < margin:
    verdict = "equivalent"
  else:
    verdict = "undecided"
  return Paired(n, mean, sd, float(low), float(high), verdict)


def best_of_n_probabilities(pool_size: int, n: int) -> np.ndarray:
  """P(the i-th smallest of `pool_size` items is the largest of n drawn without
  replacement), i = 0..pool_size-1: C(i, n-1) / C(pool_size, n)."""
  if not 1 <= n <= pool_size:
    raise ValueError(f"n={n} draws from a pool of {pool_size}")
  i = np.arange(pool_size)
  log = _log_comb(i, n - 1) - _log_comb(pool_size, n)
  p = np.where(i >= n - 1, np.exp(log), 0.0)
  return p / p.sum()  # sums to 1 up to rounding


def _log_comb(a, b):
  a = np.asarray(a, float)
  return gammaln(a + 1) - gammaln(b + 1) - gammaln(np.maximum(a - b, 0) + 1)


def expected_best_of_n(selection, n: int, report=None) -> float:
  """The expected score of random search with n evaluations from a pool of scored
  random configurations: the pick is the best selection score among n drawn without
  replacement; its `report` score (default: the selection score) is averaged over
  every draw. Ties in selection go to the earlier in the pool."""
  selection = np.asarray(selection, float)
  report = selection if report is None else np.asarray(report, float)
  order = np.lexsort((-np.arange(len(selection)), selection))  # ascending; ties: earlier last
  p = best_of_n_probabilities(len(selection), n)
  return float(np.sum(p * report[order]))
