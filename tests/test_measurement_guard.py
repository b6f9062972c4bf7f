"""Measurements live in the generated pages (BENCHMARKS.md, RANKING.md, STUDY.md), not in
code: comments say why and point to a table. This fails on dates, CPU model names and
"N.Nx faster/slower" figures in gp_jax/, configs/ and tests/. A config's docstring may
state its expected result and wall time once, with its hardware (one CPU name)."""
import ast
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")
CPU = re.compile(r"\b(EPYC|Xeon|Ryzen|Threadripper|Core i[3579]|Graviton|Apple M\d)\b")
RATIO = re.compile(r"\b\d+(\.\d+)?x (faster|slower)\b")


def findings(path: str, text: str) -> list[str]:
  """`path:line: what` for each measurement in the file's text."""
  allowed_cpu = set()
  body = ast.parse(text).body
  if (os.path.basename(os.path.dirname(path)) == "configs" and body
      and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)):
    starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
    node = body[0]
    span = (starts[node.lineno - 1] + node.col_offset,
            starts[node.end_lineno - 1] + node.end_col_offset)
    hits = [m.start() for m in CPU.finditer(text) if span[0] <= m.start() < span[1]]
    allowed_cpu = set(hits[:1])  # the docstring's one statement of its hardware
  out = []
  for pattern, what in ((DATE, "a date"), (CPU, "a CPU model"), (RATIO, "a speed ratio")):
    for m in pattern.finditer(text):
      if pattern is CPU and m.start() in allowed_cpu:
        continue
      line = text.count("\n", 0, m.start()) + 1
      out.append(f"{os.path.relpath(path, ROOT)}:{line}: {what} ({m.group(0)!r})")
  return out


def test_the_guard_finds_what_it_should():
  assert findings(os.path.join(ROOT, "gp_jax", "x.py"),
                  "# ran 1.5x faster on a 2-core AMD EPYC, 2026-12-01\n") == [
                      "gp_jax/x.py:1: a date ('2026-12-01')", "gp_jax/x.py:1: a CPU model ('EPYC')",
                      "gp_jax/x.py:1: a speed ratio ('1.5x faster')"]
  config = '"""A config: about 5 minutes on a 2-core AMD EPYC."""\n# an EPYC again\n'
  assert findings(os.path.join(ROOT, "configs", "c.py"), config) == [
      "configs/c.py:2: a CPU model ('EPYC')"]


def test_no_measurements_in_code():
  found = []
  for folder in ("gp_jax", "configs", "tests"):
    for directory, _, files in os.walk(os.path.join(ROOT, folder)):
      for f in files:
        path = os.path.join(directory, f)
        if f.endswith(".py") and f != os.path.basename(__file__):
          with open(path, encoding="utf-8") as fh:
            found += findings(path, fh.read())
  assert not found, "measurements belong in BENCHMARKS.md / RANKING.md / STUDY.md:\n" + \
      "\n".join(found)
