"""Stage `search`: find the best configuration under each target (a ratio of the
full network's MACs, params or predicted latency: `search.constraint`).

The held-out images are split in two: a selection part scores every candidate
during the search, and a report part the search never sees re-scores its
`search.rescore_top` best distinct candidates; the final pick is the report-best
of those, and its report-part score is the one to quote (the selection score of
the best of hundreds of candidates is biased upwards by the choice itself).

Reads the trained PruningNet from W/pruningnet/; writes, per target,
W/search/result_<target>.json and candidates_<target>.jsonl (the first target's
also as result.json / candidates.jsonl), plots under W/plots/, and a
checkpoint of the search state after every round (W/search/state_<method>_<target>/),
so an interrupted search resumes where it stopped.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable

import jax
import numpy as np
from absl import logging
from tqdm import tqdm

from gp_jax import artifacts, constraints
from gp_jax.config import validation
from gp_jax.config.build import make_cost, make_env, spec_from_config
from gp_jax.data import datasets, loader
from gp_jax.hypernet import candidates
from gp_jax.hypernet.pruningnet import pruningnet_from_config
from gp_jax.net import channels, costs
from gp_jax.runtime import checkpoints, distributed, faults, io_utils, preemption, seeds, sharding
from gp_jax.runtime.errors import UserError
from gp_jax.runtime.metrics import MetricWriter
from gp_jax.search import methods, plots
from gp_jax.search.base import SearchContext

STAGE = artifacts.SEARCH


def _log_init(capacity: int, num_groups: int, rounds: int) -> dict:
  return {"widths": np.zeros((capacity, num_groups), np.int32),
          "scores": np.zeros((capacity,), np.float32),   # the reward (search.reward)
          "top1": np.zeros((capacity,), np.float32),
          "macs_ratio": np.zeros((capacity,), np.float32),
          "round": np.zeros((capacity,), np.int32),
          "greedy": np.full((rounds,), np.nan, np.float32),  # RL: the greedy policy's reward
          "count": np.zeros((), np.int64)}


def _log_add(log, widths, rewards, top1, macs_ratio, round_):
  out = {k: np.array(v) for k, v in log.items()}
  n, k = int(log["count"]), len(rewards)
  out["widths"][n:n + k] = widths
  out["scores"][n:n + k] = rewards
  out["top1"][n:n + k] = top1
  out["macs_ratio"][n:n + k] = macs_ratio
  out["round"][n:n + k] = round_
  out["count"] = np.asarray(n + k)
  return out


def search_target(config, spec, target: float, pn_model, scorer: "Scorer", workdir: str,
                  writer, cost) -> dict:
  """Runs (or resumes) one search to completion; returns its result record.

  `pn_model` is the PruningNet module (its GCN gives the RL states), `scorer` scores
  candidates with its parameters, `writer` takes the metric rows, and `cost` is the
  budget's `Cost` (its constraint names the target's ratio)."""
  c = config.search
  env = make_env(config, spec, target, cost)
  grid = channels.keep_ratio_grid(config.channels.grid_levels, config.channels.grid_low,
                                  config.channels.grid_high)
  # The RL state needs only the GCN (replicated): a host copy keeps the agent's
  # small computations local to each process.
  gcn_params = jax.tree.map(np.asarray, {"aggregator": scorer.params["aggregator"]})
  method = methods.build_method(c.method, SearchContext(
      env=env, search_config=c, seed=seeds.seed(config, "search"), grid=grid, pruningnet=pn_model,
      pruningnet_params=gcn_params))
  rounds, population = method.num_rounds(), method.population()
  state = {"method": method.init_state(),
           "log": _log_init(rounds * population, spec.num_groups, rounds)}
  tag = artifacts.target_tag(target)
  label = f"{STAGE}/{method.label}@{tag}"
  ckpts = checkpoints.Checkpoints(artifacts.search_state_dir(workdir, method.label, target),
                                  keep=2)
  restored, start = ckpts.restore_latest(state)
  if restored is not None:
    state = jax.tree.map(np.asarray, restored)
    state["method"] = _rewrap(state["method"], method.init_state())
    print(f"search: {method.label} @ {tag}: resuming after round {start}")
  start = int(start or 0)
  writer.drop_after(label, start)
  bar = tqdm(total=rounds, initial=start, desc=f"search {method.label}@{tag}", unit="round",
             disable=not (config.get("progress", True) and distributed.is_primary()))
  greedy_every = c.rl.greedy_every
  for round_ in range(start, rounds):
    faults.maybe_inject(STAGE, round_)
    t0 = time.perf_counter()
    widths, extra = method.propose(state["method"], round_, state["log"])
    scores = scorer.score(widths)
    rewards = scores[c.reward]
    seconds = time.perf_counter() - t0
    macs_ratio = costs.population_macs(spec, widths) / costs.macs(spec)
    state = {"method": method.observe(state["method"], round_, widths, rewards, extra),
             "log": _log_add(state["log"], widths, rewards, scores["top1"], macs_ratio,
                             round_)}
    greedy_widths = None
    if greedy_every and (round_ + 1) % greedy_every == 0:
      greedy_widths = method.greedy(state["method"])
    metrics = {}
    if greedy_widths is not None:  # scored on the side: not in the search's budget
      greedy = float(scorer.score(greedy_widths)[c.reward][0])
      state["log"]["greedy"][round_] = greedy
      metrics["greedy_reward"] = greedy
    ckpts.save(round_ + 1, state)
    log = state["log"]
    best = float(log["scores"][:int(log["count"])].max())
    writer.write(label, round_ + 1, {
        **metrics, "round_mean_reward": rewards.mean(), "round_max_reward": rewards.max(),
        "best_reward": best, "round_mean_top1": scores["top1"].mean(),
        "round_mean_macs_ratio": macs_ratio.mean(),
        **constraints.get(env.cost.name).round_metrics(env.cost, widths),
        "candidates_per_sec": len(rewards) / max(seconds, 1e-9)})
    bar.set_postfix(best=f"{best:.3f}", mean=f"{rewards.mean():.3f}")
    bar.update(1)
    if distributed.any_process(preemption.requested()) and round_ + 1 < rounds:
      bar.close()
      ckpts.finish()
      raise preemption.stop(f"during search {method.label} @ {tag} after round {round_ + 1}")
  bar.close()
  ckpts.finish()
  return _finish(config, spec, env, method, state["log"], target, workdir, scorer)


def _rewrap(restored, template):
  """Restores the method state's original pytree types (e.g. AgentState)."""
  leaves = jax.tree.leaves(restored)
  return jax.tree.unflatten(jax.tree.structure(template), leaves)


def curve_record(method, log, reward: str, population: int) -> dict:
  """The search's learning curves: best reward so far after each evaluation, and
  the greedy policy's reward after each round where it was scored."""
  n = int(log["count"])
  scores = log["scores"][:n]
  rounds = np.flatnonzero(~np.isnan(log["greedy"]))
  record = {"label": method.label, "method": method.name, "reward": reward,
            "best_so_far": [float(x) for x in np.maximum.accumulate(scores)],
            "greedy_rewards": [float(log["greedy"][r]) for r in rounds],
            "greedy_evaluations": [int((r + 1) * population) for r in rounds]}
  warmup = getattr(getattr(method, "c", None), "warmup_episodes", None)
  if warmup is not None and warmup > 0:
    record["warmup_mean"] = float(scores[:min(warmup, n)].mean())
    record["warmup_episodes"] = int(min(warmup, n))
  return record


def best_within_budget(scores, cost_ratio, target: float) -> tuple[int, int]:
  """(index of the best score among the candidates within the target, how many were
  over it). The first of equal best scores wins: deterministic. The methods keep
  every candidate in the budget; this makes sure of it for a cost that is not
  monotone in the widths (a latency table), where the RL wall checks its actions
  on a grid. If none fits (not expected), the best of all."""
  within = np.asarray(cost_ratio) <= target + 1e-6
  if not within.any():
    logging.warning("no candidate is within the target %g; reporting the best of all", target)
    return int(np.argmax(scores)), int(len(within))
  return int(np.argmax(np.where(within, scores, -np.inf))), int((~within).sum())


def top_distinct(scores, widths, cost_ratio, target: float, k: int) -> list[int]:
  """Indices of the `k` best-scored distinct configurations within the target, best
  first (a configuration scored twice counts once, with its better score; ties by order)."""
  within = np.asarray(cost_ratio) <= target + 1e-6
  order = np.argsort(-np.where(within, scores, -np.inf), kind="stable")
  seen, picked = set(), []
  for i in order:
    key = tuple(int(w) for w in widths[i])
    if key in seen or not within[i]:
      continue
    seen.add(key)
    picked.append(int(i))
    if len(picked) == k:
      break
  return picked


def report_pick(selection, report) -> int:
  """Position of the final pick among the re-scored: the best report score; a tie goes
  to the better selection score, then to the earlier."""
  selection, report = np.asarray(selection), np.asarray(report)
  best = report.max()
  tied = np.flatnonzero(report == best)
  return int(tied[np.argmax(selection[tied])])


def _finish(config, spec, env, method, log, target, workdir, scorer) -> dict:
  n = int(log["count"])
  widths, scores, macs_ratio = log["widths"][:n], log["scores"][:n], log["macs_ratio"][:n]
  c = config.search
  curves = curve_record(method, log, c.reward, method.population())
  cost = env.cost
  constraint = constraints.get(cost.name)
  cost_ratio = constraint.ratios(cost, widths, macs_ratio)
  best, over_budget = best_within_budget(scores, cost_ratio, target)
  best_selection = float(scores[best])
  rescored = []
  if scorer.report_set is not None and c.rescore_top:
    top = top_distinct(scores, widths, cost_ratio, target, c.rescore_top) or [best]
    report = scorer.rescore(widths[top])
    pick = report_pick(scores[top], report[c.reward])
    rescored = [{"widths": [int(x) for x in widths[i]], "evaluation": int(i),
                 "selection": float(scores[i]), "report": float(report[c.reward][j]),
                 "report_top1": float(report["top1"][j])} for j, i in enumerate(top)]
    best = top[pick]
  best_widths = [int(w) for w in widths[best]]
  result = {
      "method": method.name,
      "label": method.label,
      "arch": spec.name,
      "constraint": cost.name,
      "target_ratio": float(target),
      "cost_ratio": float(cost_ratio[best]),
      "widths": best_widths,
      "keep_ratios": [float(r) for r in channels.keep_ratios_from_widths(spec, best_widths)],
      "group_names": [g.name for g in spec.groups],
      "macs": int(costs.macs(spec, best_widths)),
      "macs_ratio": float(macs_ratio[best]),
      "params": int(costs.params(spec, best_widths)),
      **constraint.result_fields(cost, best_widths, target, float(cost_ratio[best])),
      "reward": c.reward,
      "best_reward": float(scores[best]),  # the pick's selection score
      "best_selection_reward": best_selection,  # the best selection score of all
      **({"selection_reward": float(scores[best]),
          "report_reward": rescored[pick]["report"],
          "report_top1": rescored[pick]["report_top1"],
          "rescored": rescored} if rescored else {}),
      "proxy_top1": float(log["top1"][best]),
      "best_ties": int(np.sum(scores == scores[best])),  # ties broken by evaluation order
      "over_budget": over_budget,  # candidates over the target, never chosen
      "best_evaluation": best,
      "evaluations": n,
      "seed": int(config.seed),
      "stream": int(c.stream),
      "uniform_keep_ratio": float(methods.uniform_keep_ratio(env)),
      **{k: v for k, v in curves.items() if k not in ("label", "method", "reward")},
  }
  if not distributed.is_primary():
    return result
  tag = artifacts.target_tag(target)
  rows = [{"widths": [int(x) for x in w], "macs_ratio": float(m), "reward": float(s),
           "proxy_top1": float(t), "round": int(r),
           **constraint.candidate_fields(x)}
          for w, m, s, t, r, x in zip(widths, macs_ratio, scores, log["top1"][:n],
                                      log["round"][:n], cost_ratio)]
  io_utils.write_jsonl(artifacts.candidates_path(workdir, target), rows)
  io_utils.write_json(artifacts.result_path(workdir, target), result)
  io_utils.write_json(artifacts.curve_path(workdir, method.label, target), curves)
  plots.search_curves_plot(plots.read_curves(artifacts.search_dir(workdir), tag),
                           artifacts.plot_path(workdir, f"search_curves_{tag}"),
                           title=f"{spec.name} @ {tag} {plots.AXIS[cost.name]}")
  uniform_widths = methods.uniform_widths(env)
  plots.keep_ratio_plot(spec, env.fixed, best_widths, uniform_widths, result,
                        artifacts.plot_path(workdir, f"keep_ratios_{tag}"))
  plots.accuracy_vs_cost_plot(
      cost_ratio, scores, best, target,
      artifacts.plot_path(workdir, f"accuracy_vs_{cost.name}_{tag}"),
      title=f"{method.label} @ {tag} {plots.AXIS[cost.name]}", ylabel=f"held-out {c.reward}",
      xlabel=f"{plots.AXIS[cost.name]} ratio")
  return result


def scoring_parts(config, holdout):
  """(selection, report): the held-out images that score candidates during the search,
  and those that re-score its best (None when `search.rescore_top` is 0). The
  selection part is the first `search.eval_examples` images (0: half of them with a
  report part, else all), the report part the next `search.report_examples` (0: the
  rest)."""
  c = config.search
  n = len(holdout)
  if not c.rescore_top:
    return loader.head(holdout, c.eval_examples), None
  chosen = c.eval_examples or n // 2
  if chosen >= n:
    raise UserError(f"search.eval_examples={c.eval_examples} leaves none of the {n} held-out "
                    "images for re-scoring; lower it, raise dataset.holdout_size, or set "
                    "search.rescore_top=0")
  count = min(c.report_examples or n - chosen, n - chosen)
  return (holdout.subset(np.arange(chosen)),
          holdout.subset(np.arange(chosen, chosen + count)))


def score_configurations(config, workdir: str, widths) -> dict:
  """{metric: (P,) numpy} of the configurations `widths` (P, G), scored as the search
  scores candidates (its recalibration and selection images) with W's PruningNet."""
  widths = np.asarray(widths)
  return sharding.run_on_mesh(
      lambda cfg, w, mesh: _score_configurations(cfg, w, mesh, widths), config, workdir)


@dataclasses.dataclass(frozen=True)
class Scorer:
  """Scores configurations with a PruningNet as the search does: BatchNorm statistics
  recalibrated on `recal`, then top-1 (and the loss) on the held-out selection images
  (`eval_set`, `selected` of them); `report_set` (None without re-scoring) holds the
  report part that re-scores the best."""
  score_population: Callable  # (params, widths (P, G), recal, images) -> {metric: (P,)}
  params: Any  # the PruningNet's, placed on the mesh
  recal: Any
  eval_set: Any
  selected: int
  report_set: Any = None
  reported: int = 0

  def score(self, widths) -> dict:
    """{metric: (P,)} of the configurations `widths` (P, G) on the selection images."""
    return self.score_population(self.params, widths, self.recal, self.eval_set)

  def rescore(self, widths) -> dict:
    """The same on the report images."""
    return self.score_population(self.params, widths, self.recal, self.report_set)


def make_scorer(config, spec, pn_params, mesh) -> Scorer:
  """The search's scorer of `pn_params`, its images placed on the mesh: the search's and
  the ranking benchmark's alike."""
  c = config.search
  splits = datasets.load_splits(config.dataset, spec.resolution)
  recal = loader.recalibration_images(splits.train, c.recal_batch_size, c.recal_batches,
                                      seeds.seed(config, "recal_search"))
  selection, report = scoring_parts(config, splits.holdout)
  stack = lambda part: candidates.stack_eval_set(  # noqa: E731
      part, c.eval_batch_size, config.dataset.worker_count)
  replicated = sharding.replicated(mesh)
  recal, eval_set = sharding.put((recal, stack(selection)), replicated)
  report_set = None if report is None else sharding.put(stack(report), replicated)
  score_population = candidates.make_population_scorer(
      pruningnet_from_config(spec, config, bn_momentum=0.0), c.vmap_chunk, mesh)
  return Scorer(score_population, pn_params, recal, eval_set, len(selection), report_set,
                0 if report is None else len(report))


def _score_configurations(config, workdir, mesh, widths) -> dict:
  spec = spec_from_config(config)
  pn_params, _ = artifacts.load_pruningnet(config, spec, workdir, mesh)
  return make_scorer(config, spec, pn_params, mesh).score(widths)


def run(config, workdir: str) -> list[dict]:
  """Searches (or resumes) each target; returns their results.
  `config` is validated: gp_jax.main validates it once; call
  `validation.validate(config)` first when calling a stage yourself."""
  return sharding.run_on_mesh(_run, config, workdir)


def _run(config, workdir, mesh) -> list[dict]:
  c = config.search
  spec = spec_from_config(config)
  pn_params, pn_step = artifacts.load_pruningnet(config, spec, workdir, mesh)
  constraints.get(c.constraint).prepare(config, spec, workdir)  # a latency table, measured
  cost = make_cost(config, spec, workdir)
  if constraints.get(cost.name).measured_on_device:  # reachable: known once measured
    validation.check_targets(config, spec, cost)
  print(f"search: PruningNet from step {pn_step}; method {c.method}, targets "
        f"{', '.join(artifacts.target_tag(t) for t in c.targets)}, {c.evaluations} "
        "evaluations each")
  scorer = make_scorer(config, spec, pn_params, mesh)
  pn_model = pruningnet_from_config(spec, config)
  if scorer.report_set is not None:
    print(f"search: {scorer.selected} held-out images score the candidates, "
          f"{scorer.reported} others re-score the best {c.rescore_top}")
  writer = MetricWriter(workdir, enabled=distributed.is_primary())
  results = []
  for i, target in enumerate(c.targets):
    path = artifacts.result_path(workdir, target)
    if os.path.exists(path):
      previous = io_utils.read_json(path)
      label = methods.method_label(c)
      if (previous.get("label") == label and previous.get("seed") == config.seed
          and previous.get("stream", 0) == c.stream and previous.get("constraint") == cost.name):
        print(f"search: {path} exists; skipping (delete it to search again)")
        results.append(previous)
        continue
      raise UserError(f"{path} holds a {previous.get('label')} result (seed "
                      f"{previous.get('seed')}, stream {previous.get('stream', 0)}, "
                      f"{previous.get('constraint')} budget); use a new --workdir for {label} "
                      f"under {cost.name}")
    results.append(search_target(config, spec, target, pn_model, scorer, workdir, writer,
                                 cost))
  writer.close()
  if distributed.is_primary():
    first = results[0]
    io_utils.write_json(artifacts.result_path(workdir), first)
    with open(artifacts.candidates_path(workdir, c.targets[0])) as f:
      io_utils.write_text(artifacts.candidates_path(workdir), f.read())
  for r in results:
    greedy = r.get("greedy_rewards") or []
    learning = (f"; warm-up mean {r['warmup_mean']:.4f}, last greedy {greedy[-1]:.4f}"
                if greedy and "warmup_mean" in r else "")
    constraint = r["constraint"]
    predicted = (f", predicted {r['latency_ms_predicted']:.2f} ms"
                 if "latency_ms_predicted" in r else "")
    target = r["target_ratio"]
    unseen = (f", {r['report_reward']:.4f} on {r['reward']} of the unseen report images"
              if "report_reward" in r else "")
    print(f"search: {r['label']} @ {target:g} {constraint}: best "
          f"{r['reward']} {r['best_reward']:.4f}{unseen} (proxy "
          f"top-1 {r['proxy_top1']:.3f}) at {constraint} ratio "
          f"{r['cost_ratio']:.3f}{predicted}, MACs ratio "
          f"{r['macs_ratio']:.3f} ({r['evaluations']} evaluations{learning})")
  return results
