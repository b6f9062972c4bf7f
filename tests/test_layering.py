"""The package's import graph, read from the source (function-local imports too):
no import circles, no stage module importing another (stages exchange their
outputs through `gp_jax.artifacts`, the workdir's layout), and the layers of
docs/design.md, read from the folders, bottom-up: runtime -> data -> net -> hypernet
-> constraints -> search -> config -> artifacts -> the workdir's readers (stages,
evaluate, export) -> entry points. A module imports only from its own layer or
those below it."""
import ast
import re
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "gp_jax"
# Bottom-up: each folder of gp_jax/ is one layer; the root holds the artifacts, the
# workdir's readers and the entry points.
FOLDERS = ("runtime", "data", "net", "hypernet", "constraints", "search", "config")
ARTIFACTS = {"gp_jax.artifacts"}
WORKDIR_READERS = {"gp_jax.evaluate", "gp_jax.export"}  # and gp_jax/stages/
# The package's facade (`gp_jax/__init__.py` re-exports the API lazily) is an entry
# point too; `from gp_jax import module` does not import it (below).
ENTRY_POINTS = {"gp_jax.main", "gp_jax.summary", "gp_jax.api", "gp_jax.import_weights", "gp_jax"}


def layer(module: str) -> int:
  """The module's layer, 0 at the bottom."""
  parts = module.split(".")
  if len(parts) > 2 and parts[1] in FOLDERS or module in {f"gp_jax.{f}" for f in FOLDERS}:
    return FOLDERS.index(parts[1])
  top = len(FOLDERS)
  if module in ARTIFACTS:
    return top
  if parts[1:2] == ["stages"] or module in WORKDIR_READERS:
    return top + 1
  if module in ENTRY_POINTS:
    return top + 2
  raise AssertionError(f"{module} is in no layer: move it into a folder of {FOLDERS} or "
                       "name it in tests/test_layering.py")


def _modules() -> dict[str, str]:
  """{dotted module name: file} for every module of the package."""
  out = {}
  for directory, _, files in os.walk(os.path.join(ROOT, PACKAGE)):
    for f in files:
      if f.endswith(".py"):
        rel = os.path.relpath(os.path.join(directory, f), ROOT)[:-3].split(os.sep)
        name = ".".join(rel[:-1] if rel[-1] == "__init__" else rel)
        out[name] = os.path.join(directory, f)
  return out


def import_graph() -> dict[str, set[str]]:
  """{module: the package's modules it imports, anywhere in its source}."""
  modules = _modules()
  graph = {}
  for name, path in modules.items():
    with open(path, encoding="utf-8") as f:
      tree = ast.parse(f.read(), path)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    edges = set()
    for node in ast.walk(tree):
      if isinstance(node, ast.Import):
        edges |= {a.name for a in node.names}
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
          parts = package.split(".")[:len(package.split(".")) - node.level + 1]
          base = ".".join(parts + ([base] if base else []))
        edges.add(base)
        edges |= {f"{base}.{a.name}" for a in node.names}  # `from pkg import module`
    graph[name] = {e for e in edges if e in modules and e not in (name, PACKAGE)}
  return graph


def circles(graph) -> list[list[str]]:
  """The strongly connected components with more than one module (Tarjan)."""
  index, low, stack, on_stack, out = {}, {}, [], set(), []

  def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in graph[v]:
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1:
        out.append(sorted(component))

  for v in sorted(graph):
    if v not in index:
      visit(v)
  return out


def test_the_checker_finds_a_circle():
  graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
  assert circles(graph) == [["a", "b", "c"]]
  assert circles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_circles():
  graph = import_graph()
  assert len(graph) > 40 and "gp_jax.artifacts" in graph["gp_jax.stages.search"]
  # The tools that measure the package live outside it (benchmarks/).
  assert not {m for m in graph if m.rpartition(".")[2] in ("bench", "bench_torch", "study")}
  assert circles(graph) == []


def test_no_stage_imports_another_stage():
  graph = import_graph()
  stages = {m for m in graph if m.startswith("gp_jax.stages.")}
  assert {"gp_jax.stages.pruningnet", "gp_jax.stages.search", "gp_jax.stages.retrain"} <= stages
  for stage in sorted(stages):
    assert not graph[stage] & (stages - {stage}), (stage, graph[stage] & stages)


def test_every_module_sits_in_a_layer():
  modules = set(_modules())
  assert {layer(m) for m in modules} == set(range(len(FOLDERS) + 3))
  assert layer("gp_jax.runtime.errors") < layer("gp_jax.data.loader") < layer("gp_jax.net.spec")
  # The root holds only the entry points, the workdir's readers and the artifacts.
  root = {m for m in modules if m.count(".") == 1 and m.split(".")[1] not in FOLDERS + ("stages",)}
  assert root == (ENTRY_POINTS | WORKDIR_READERS | ARTIFACTS) - {"gp_jax"}


def test_layers_import_only_from_their_own_layer_or_below():
  graph = import_graph()
  upward = [(m, e) for m, edges in graph.items() for e in edges if layer(e) > layer(m)]
  assert not upward


def test_constraints_are_named_only_in_their_registry():
  """Adding a constraint is one module in gp_jax/constraints/: no other module
  branches on a constraint's name."""
  pattern = re.compile(r"""(cost\.name|constraint)\s*[!=]=|[!=]=\s*["'](macs|params|latency)["']""")
  found = []
  for name, path in _modules().items():
    if name.startswith("gp_jax.constraints"):
      continue
    with open(path, encoding="utf-8") as f:
      found += [f"{name}:{i}" for i, line in enumerate(f, 1) if pattern.search(line)]
  assert not found
  from gp_jax import constraints
  assert set(constraints.NAMES) == {"macs", "params", "latency"}
