"""Rank agreement between a proxy score and the retrained truth, with intervals."""
from __future__ import annotations

import numpy as np
from scipy import stats


def kendall_tau(a, b) -> float:
  """Kendall's tau-b (ties counted as neither concordant nor discordant); nan if either
  side is constant."""
  return float(stats.kendalltau(np.asarray(a, float), np.asarray(b, float)).statistic)


def spearman_rho(a, b) -> float:
  return float(stats.spearmanr(np.asarray(a, float), np.asarray(b, float)).statistic)


def bootstrap_interval(a, b, statistic=kendall_tau, resamples: int = 2000, level: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
  """Percentile bootstrap interval of `statistic(a, b)` over the pairs resampled with
  replacement (resamples where it is undefined, all ties, are dropped)."""
  a, b = np.asarray(a, float), np.asarray(b, float)
  rng = np.random.default_rng(seed)
  values = []
  for _ in range(resamples):
    idx = rng.integers(0, len(a), len(a))
    v = statistic(a[idx], b[idx])
    if np.isfinite(v):
      values.append(v)
  if not values:
    return float("nan"), float("nan")
  lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
  return float(lo), float(hi)


def paired_tau_difference(proxy_a, proxy_b, truth, resamples: int = 2000,
                          level: float = 0.95, seed: int = 0) -> dict:
  """tau(a, truth) - tau(b, truth) with a percentile bootstrap interval, both proxies
  resampled on the same configurations each time: the two share the truth's noise,
  so their difference is far tighter than two separate intervals suggest."""
  both = np.column_stack([np.asarray(proxy_a, float), np.asarray(proxy_b, float)])

  def gain(pair, t):
    return kendall_tau(pair[:, 0], t) - kendall_tau(pair[:, 1], t)

  lo, hi = bootstrap_interval(both, truth, gain, resamples, level, seed)
  return {"difference": float(gain(both, np.asarray(truth, float))), "ci": [lo, hi]}


def top_half(proxy) -> np.ndarray:
  """Indices of the proxy's top half (ceil(n/2) best; the earlier index wins a tie)."""
  order = np.argsort(-np.asarray(proxy, float), kind="stable")
  return np.sort(order[:(len(order) + 1) // 2])


def ranking_stats(proxy, truth, top: int = 5) -> dict:
  """How well `proxy` ranks `truth` (both per configuration): tau with its bootstrap
  interval, Spearman's rho, tau within the proxy's top half, the truth of the proxy's
  top `top` minus the mean truth, and the regret (best truth minus the truth of the
  proxy's best)."""
  proxy, truth = np.asarray(proxy, float), np.asarray(truth, float)
  half = top_half(proxy)
  order = np.argsort(-proxy, kind="stable")
  return {
      "kendall_tau": kendall_tau(proxy, truth),
      "tau_ci": list(bootstrap_interval(proxy, truth)),
      "spearman": spearman_rho(proxy, truth),
      "top_half_tau": kendall_tau(proxy[half], truth[half]),
      "top5_gain": float(truth[order[:top]].mean() - truth.mean()),
      "regret": float(truth.max() - truth[order[0]]),
  }


def best_variant(variants: dict) -> str | None:
  """Among the variants whose tau beats today's with a paired interval above zero,
  the one that ranks best within its own top half (where a search picks); with none
  such, the highest tau."""
  finite = {k: v for k, v in variants.items() if np.isfinite(v.get("kendall_tau", np.nan))}
  better = {k: v for k, v in finite.items()
            if v.get("tau_gain_ci") and v["tau_gain_ci"][0] > 0
            and np.isfinite(v["top_half_tau"])}
  if better:
    return max(better, key=lambda k: better[k]["top_half_tau"])
  return max(finite, key=lambda k: finite[k]["kendall_tau"]) if finite else None
