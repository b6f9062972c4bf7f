"""Table 11: the pruned network from each start (scratch, the PruningNet's weights, the
trained full network's most important channels), with and without distillation from
the full network (benchmarks/trained.py measures it; bench.json["trained"])."""
from __future__ import annotations

import numpy as np

START, END = "<!-- trained: benchmarks/trained.py -->", "<!-- /trained -->"
INIT_NAMES = {"scratch": "from scratch", "pruningnet": "PruningNet's weights",
              "checkpoint": "pruned from the trained network, fine-tuned"}


def _cell(values) -> str:
  v = 100 * np.asarray(values, float)
  if not len(v):
    return "–"
  sd = f" ± {v.std(ddof=1):.2f}" if len(v) > 1 else ""
  return f"{v.mean():.2f}{sd} ({len(v)})"


def render(data: dict) -> str:
  units = data["units"]
  by_key = {}
  for u in units:
    key = tuple(u["key"][:-1])
    by_key.setdefault(key, []).append(u["top1"])
  lines = ["## 11. Pruned networks: where they start, and distillation", "",
           f"`python -m benchmarks.trained` (`make trained`) on `{data['config']}`: test "
           "top-1 in percent, mean ± std over retrain seeds (their count); the same schedule "
           "for every start, a fine-tune from the trained network at peak learning rate "
           f"{data['finetune_lr']:g}; distillation from the full network of the same seed "
           "(`retrain.distill.teacher`, weight 0.9, T 4).", "",
           "| target | configuration | start | without distillation | with distillation |",
           "|---|---|---|---|---|"]
  combos = sorted({k[:3] for k in by_key if k[0] != "full"}, key=lambda k: (k[0], k[1],
                  list(INIT_NAMES).index(k[2])))
  for t, conf, init in combos:
    lines.append(f"| {t:g} | {conf} | {INIT_NAMES[init]} | "
                 f"{_cell(by_key.get((t, conf, init, 'off'), []))} | "
                 f"{_cell(by_key.get((t, conf, init, 'on'), []))} |")
  full = by_key.get(("full",), [])
  minutes = [u["minutes"] for u in units if u["key"][0] != "full"]
  lines += ["", f"The full network (the teacher): {_cell(full)}. A pruned retrain took "
            f"{np.mean(minutes) if minutes else float('nan'):.1f} minutes on average. "
            f"Measured {data['date']} on {data['host_cpu']}, {data['cores']} cores, "
            f"jax {data['jax']}."]
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
