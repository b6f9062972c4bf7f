"""Table 11: the pruned network from each start (scratch, the PruningNet's weights, the
trained full network's most important channels), with and without distillation from
the full network (benchmarks/trained.py measures it; bench.json["trained"])."""
from __future__ import annotations

import numpy as np
from scipy import stats

START, END = "<!-- trained: benchmarks/trained.py -->", "<!-- /trained -->"
INIT_NAMES = {"scratch": "from scratch", "pruningnet": "PruningNet's weights",
              "checkpoint": "pruned from the trained network, fine-tuned"}


BASELINE = ("scratch", "off")  # what every other start is compared with


def _cell(values) -> str:
  v = 100 * np.asarray(values, float)
  if not len(v):
    return "–"
  sd = f" ± {v.std(ddof=1):.2f}" if len(v) > 1 else ""
  return f"{v.mean():.2f}{sd} ({len(v)})"


def _interval(diffs) -> tuple[float, float, float] | None:
  """Mean and 95% t interval of paired differences (None below two pairs)."""
  d = np.asarray(diffs, float)
  if len(d) < 2:
    return None
  half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
  return float(d.mean()), float(d.mean() - half), float(d.mean() + half)


def paired_differences(units) -> dict:
  """{(init, distill): {target: [points]}}: each start's test top-1 minus from scratch
  without distillation, on the same configuration and retrain seed."""
  top1 = {tuple(u["key"]): 100 * u["top1"] for u in units if u["key"][0] != "full"}
  out = {}
  for (t, conf, init, distill, seed), v in top1.items():
    base = top1.get((t, conf, *BASELINE, seed))
    if (init, distill) != BASELINE and base is not None:
      out.setdefault((init, distill), {}).setdefault(t, []).append(v - base)
  return out


def best_start(units) -> tuple[str, str] | None:
  """The start whose paired difference to the baseline, over every target, configuration
  and seed, is highest with its 95% interval above zero; None if none is."""
  best, best_mean = None, -np.inf
  for start, by_target in paired_differences(units).items():
    ci = _interval([d for ds in by_target.values() for d in ds])
    if ci and ci[1] > 0 and ci[0] > best_mean:
      best, best_mean = start, ci[0]
  return best


def _fmt(diffs) -> str:
  """The mean difference with its interval and count of pairs."""
  if not len(diffs):
    return "–"
  ci = _interval(diffs)
  if ci is None:
    return f"{diffs[0]:+.2f} (1)"
  return f"{ci[0]:+.2f} [{ci[1]:+.2f}, {ci[2]:+.2f}] ({len(diffs)})"


def render(data: dict) -> str:
  units = data["units"]
  by_key, minutes = {}, {}
  for u in units:
    key = tuple(u["key"][:-1])
    by_key.setdefault(key, []).append(u["top1"])
    if key[0] != "full":
      minutes.setdefault((key[2], key[3]), []).append(u["minutes"])
  lines = ["## 11. Pruned networks: where they start, and distillation", "",
           f"`python -m benchmarks.trained` (`make trained`) on `{data['config']}`: test "
           "top-1 in percent, mean ± std over retrain seeds (their count); the same schedule "
           "for every start, a fine-tune from the trained network at peak learning rate "
           f"{data['finetune_lr']:g}; distillation from the full network of the same seed "
           "(`retrain.distill.teacher`, weight 0.9, T 4). A network pruned from the trained "
           "one has had the full network's epochs before its own: in the pipeline, which "
           "trains the full network anyway (`retrain.unpruned`), that costs no more wall "
           "time, but a scratch retrain given as many epochs in all is not compared here.",
           "",
           "| target | configuration | start | without distillation | with distillation |",
           "|---|---|---|---|---|"]
  combos = sorted({k[:3] for k in by_key if k[0] != "full"}, key=lambda k: (k[0], k[1],
                  list(INIT_NAMES).index(k[2])))
  for t, conf, init in combos:
    lines.append(f"| {t:g} | {conf} | {INIT_NAMES[init]} | "
                 f"{_cell(by_key.get((t, conf, init, 'off'), []))} | "
                 f"{_cell(by_key.get((t, conf, init, 'on'), []))} |")
  full = by_key.get(("full",), [])
  lines += ["", f"The full network (the teacher): {_cell(full)}. Measured {data['date']} on "
            f"{data['host_cpu']}, {data['cores']} cores, jax {data['jax']}."]
  diffs = paired_differences(units)
  targets = sorted({t for by_target in diffs.values() for t in by_target})
  if diffs:
    lines += ["", "Each start against from scratch without distillation: the mean paired "
              "difference in points (same configuration and retrain seed) with its 95% t "
              "interval and the number of pairs, per target and over all (searched and uniform "
              "pooled); and its wall minutes per retrain (2 cores, often beside another job).", "",
              "| start | distillation | " + " | ".join(f"at {t:g}" for t in targets)
              + " | all | minutes |", "|---|---|" + "---|" * (len(targets) + 2)]
    base = minutes.get(BASELINE)
    lines.append(f"| {INIT_NAMES[BASELINE[0]]} | {BASELINE[1]} | " + " | ".join(
        "0" for _ in targets) + " | 0 | " + (f"{np.mean(base):.1f} |" if base else "– |"))
    for init, distill in sorted(diffs, key=lambda k: (list(INIT_NAMES).index(k[0]), k[1])):
      by_target = diffs[(init, distill)]
      cells = [_fmt(by_target.get(t, [])) for t in targets]
      pooled = [d for ds in by_target.values() for d in ds]
      lines.append(f"| {INIT_NAMES[init]} | {distill} | " + " | ".join(cells)
                   + f" | {_fmt(pooled)} | {np.mean(minutes[(init, distill)]):.1f} |")
    best = best_start(units)
    lines += ["", "Best start (the highest pooled difference whose interval lies above "
              "zero): " + (f"**{INIT_NAMES[best[0]]}, distillation {best[1]}**." if best
                           else "none yet: no start beats from scratch past its interval.")]
  planned = data.get("planned")
  if planned and len(units) < planned:
    lines += ["", f"**Incomplete**: {len(units)} of {planned} units trained (the count in "
              "brackets is each cell's seeds); `make trained` continues."]
  return "\n".join(lines) + "\n"


def section(data: dict) -> str:
  return f"{START}\n{render(data)}{END}\n"


def replace_section(text: str, data: dict) -> str:
  """`text` (BENCHMARKS.md) with the table's section replaced, or appended."""
  block = section(data)
  if START in text and END in text:
    return text[:text.index(START)] + block + text[text.index(END) + len(END) + 1:]
  return text.rstrip("\n") + "\n\n" + block
