"""Config validation: generated malformed configs and overrides, each rejected with
one line and exit code 2, before anything is written.

The malformed values are generated from the schema, `schema.FIELDS` (each rule
lists values of the wrong type or outside its range), from typos of real field
names, and from broken config files; none is picked by hand.
"""
import concurrent.futures
import math
import os
import random
import subprocess
import sys

import ml_collections
import pytest

from gp_jax.config import schema, validation
from gp_jax.config.schema import base_config
from gp_jax.runtime.errors import UserError
from tests import tiny_config as tiny_config_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def typo(name: str) -> str:
  return name[:-1] if len(name) > 3 else name + "s"


def generated_cases():
  """(kind, path, value): a bad value for a field, or an unknown (misspelt) field."""
  cases = [("value", path, bad) for path, rule in validation.rules().items()
           for bad in rule.bad_values]
  sections = {}
  for path in validation.rules():
    sections.setdefault(path.rsplit(".", 1)[0] if "." in path else "", path)
  for path in sections.values():  # one misspelt field per section
    head, _, last = path.rpartition(".")
    cases.append(("unknown", (head + "." if head else "") + typo(last), 1))
  return cases


CASES = generated_cases()


def with_value(config, path, value):
  """A plain copy of `config` with `path` set to `value`, bypassing ConfigDict's typing."""
  raw = config.to_dict()
  *heads, last = path.split(".")
  node = raw
  for h in heads:
    node = node.setdefault(h, {})
  node[last] = value
  return ml_collections.ConfigDict(raw)


def test_every_field_is_declared_once_and_its_default_passes_its_rule():
  paths = [f.path for f in schema.FIELDS]
  assert len(paths) == len(set(paths))
  for field in schema.FIELDS:
    assert field.rule.check(field.default), field.path
  assert set(validation.leaves(base_config())) == set(paths) and list(validation.rules()) == paths
  assert len(CASES) >= 150


def test_valid_configs_pass():
  validation.validate(base_config())
  validation.validate(tiny_config_file.get_config())


@pytest.mark.parametrize("kind,path,value", CASES, ids=[f"{k}:{p}={v!r}" for k, p, v in CASES])
def test_generated_bad_config_is_rejected_in_one_line(kind, path, value):
  config = with_value(tiny_config_file.get_config(), path, value)
  with pytest.raises(UserError) as e:
    validation.validate(config)
  message = str(e.value)
  assert "\n" not in message
  assert path.rsplit(".", 1)[-1] in message or kind == "value" and path.split(".")[0] in message


def override(path, value):
  if isinstance(value, float) and math.isnan(value):
    text = "nan"
  elif isinstance(value, (tuple, list)):
    text = "(" + ",".join(str(v) for v in value) + ("," if len(value) == 1 else "") + ")"
  else:
    text = str(value)
  return f"--config.{path}={text}"


BROKEN_FILES = {
    "syntax": "def get_config(:\n",
    "no_get_config": "X = 1\n",
    "raises": "def get_config(arg=None):\n  raise RuntimeError('boom')\n",
    "unknown_field": ("from tests.tiny_config import get_config as tiny\n"
                      "def get_config(arg=None):\n  c = tiny()\n  c.unlock()\n"
                      "  c.pruningnet.stesp = 3\n  return c\n"),
    "wrong_type": ("from tests.tiny_config import get_config as tiny\n"
                   "def get_config(arg=None):\n  c = tiny().to_dict()\n"
                   "  c['search']['population'] = '16'\n"
                   "  import ml_collections\n  return ml_collections.ConfigDict(c)\n"),
}


def snapshot(directory):
  if not os.path.exists(directory):
    return None
  out = {}
  for root, _, files in os.walk(directory):
    for f in files:
      with open(os.path.join(root, f), "rb") as fh:
        out[os.path.relpath(os.path.join(root, f), directory)] = fh.read()
  return out


def test_cli_rejects_generated_bad_input_with_one_line_exit_2_and_untouched_workdir(tmp_path):
  rng = random.Random(0)
  # Four of the generated cases (each is rejected in-process above; here the path
  # from the command line to the exit code is what is checked: a process each),
  # every broken file.
  sample = rng.sample([c for c in CASES], 4)
  runs = [["--config=tests/tiny_config.py", override(p, v)] for _, p, v in sample]
  for name, text in BROKEN_FILES.items():
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    runs.append([f"--config={path}"])
  runs.append([f"--config={tmp_path / 'missing.py'}"])
  assert len(runs) >= 8

  def one(i_args):
    i, args = i_args
    workdir = tmp_path / f"w{i}"
    if i % 2:  # an existing workdir with earlier results must stay as it was
      workdir.mkdir()
      (workdir / "result.json").write_text('{"kept": true}')
    before = snapshot(workdir)
    proc = subprocess.run([sys.executable, "-m", "gp_jax.main", f"--workdir={workdir}",
                           "--stages=pruningnet,search,retrain,eval", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    return args, proc, before, snapshot(workdir)

  with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
    results = list(pool.map(one, enumerate(runs)))
  for args, proc, before, after in results:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, (args, proc.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), (args, proc.stderr[-2000:])
    assert proc.stdout == "", args
    assert after == before, args


COUNT_VALIDATIONS = """
import atexit, sys
from gp_jax import main
from gp_jax.config import validation
from gp_jax.runtime import cli
calls = []
real = validation.validate
validation.validate = lambda config: (calls.append(1), real(config))[1]
atexit.register(lambda: print("validations:", len(calls)))
cli.run(main.main)
"""


def test_a_launch_validates_the_config_once(tmp_path):
  """main validates; the stages take the validated config (the retrain stage then
  stops at its missing input, after its own checks)."""
  proc = subprocess.run([sys.executable, "-c", COUNT_VALIDATIONS, "--config=tests/tiny_config.py",
                         f"--workdir={tmp_path / 'w'}", "--stages=retrain"],
                        cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2 and "no search result" in proc.stderr, proc.stderr[-2000:]
  assert proc.stdout.strip().splitlines()[-1] == "validations: 1"
