"""Table 9: the PruningNet step and the candidate evaluation under each
XLA:CPU option this jaxlib knows."""
from __future__ import annotations

import json
import os
import statistics


from benchmarks.harness import in_subprocess


XLA_OPTIONS = (  # label, XLA flags; the options this jaxlib's XLA:CPU knows
    ("default", {}),
    ("xnnpack", {"--xla_cpu_use_xnnpack": "true"}),
    ("ynn fusions (dot, eltwise)", {"--xla_cpu_experimental_ynn_fusion_type": "dot,eltwise"}),
    ("oneDNN fusions (dot, eltwise)",
     {"--xla_cpu_experimental_onednn_fusion_type": "dot,eltwise"}),
    ("oneDNN custom calls", {"--xla_cpu_experimental_onednn_custom_call": "true"}),
    ("loop emitters (no fusion emitters)", {"--xla_cpu_use_fusion_emitters": "false"}),
)


def bench_xla_options(quick: bool) -> dict:
  """Each option in its own processes (XLA reads XLA_FLAGS once, at start), the
  options taken in turn `passes` times so drift hits them alike."""
  from gp_jax.runtime import xla_flags
  passes = 1 if quick else 2
  runs = {label: {"step": [], "candidates": [], "compile": [], "error": None}
          for label, _ in XLA_OPTIONS}
  for _ in range(passes):
    for label, flags_ in XLA_OPTIONS:
      env = {"XLA_FLAGS": xla_flags.with_flags(os.environ.get("XLA_FLAGS", ""), flags_)}
      try:
        step = in_subprocess("jax_step", env=env, config_name="digits_resnet20", arg=None,
                             batch=64, resolution=16, steps=3 if quick else 15)
        cand = in_subprocess("jax_candidates", env=env, config_name="digits_resnet20",
                             arg=None, resolution=16, population=16, modes=["1"],
                             recal_batches=2, recal_batch=64, eval_images=300)
      except RuntimeError as e:  # an option this jaxlib rejects or fails to compile with
        runs[label]["error"] = str(e).strip().splitlines()[-1][:200]
        continue
      runs[label]["step"].append(step["images_per_s"])
      runs[label]["compile"].append(step["compile_s"])
      runs[label]["candidates"].append(cand["1_candidates_per_s"])
  out = {}
  for label, flags_ in XLA_OPTIONS:
    r = runs[label]
    out[label] = {"flags": xla_flags.with_flags("", flags_), "error": r["error"],
                  "step_images_per_s": statistics.median(r["step"]) if r["step"] else None,
                  "candidates_per_s": (statistics.median(r["candidates"]) if r["candidates"]
                                       else None),
                  "step_compile_s": statistics.median(r["compile"]) if r["compile"] else None}
    print(f"  {label}: {json.dumps(out[label])}", flush=True)
  return out


def table_xla_options(r: dict) -> str:
  base = r["default"]
  lines = ["| XLA:CPU option | XLA_FLAGS | PruningNet step img/s | vs default | "
           "candidates/s | vs default | step compile s | vs default |",
           "|---|---|---|---|---|---|---|---|"]
  for label, row in r.items():
    if row["step_images_per_s"] is None:
      lines.append(f"| {label} | `{row['flags']}` | failed: {row['error']} | | | | | |")
      continue
    compile_s, base_compile = row.get("step_compile_s"), base.get("step_compile_s")
    compiled = (f"{compile_s:.1f} | {compile_s / base_compile:.2f}x"
                if compile_s and base_compile else "not measured | ")
    lines.append(
        f"| {label} | `{row['flags'] or '(none)'}` | {row['step_images_per_s']:.1f} | "
        f"{row['step_images_per_s'] / base['step_images_per_s']:.2f}x | "
        f"{row['candidates_per_s']:.2f} | "
        f"{row['candidates_per_s'] / base['candidates_per_s']:.2f}x | {compiled} |")
  lines += ["", "digits ResNet-20 at 16x16 (the demo's config): the PruningNet step at batch "
            "64, and the search's scorer (16 candidates one at a time, recalibration 2x64, "
            "top-1 on 300 images); the step's compile time with XLA's optimisations on, as in "
            "a user's run. Each option runs in fresh processes; the options were "
            "taken in turn twice and each figure is the median of its runs. No option is "
            "set by gp_jax unless a row here shows it faster than the default."]
  return "\n".join(lines)
