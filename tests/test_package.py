"""gp_jax as a package: the README's Python example, a wheel imported outside the
repository, configs by path from any directory, every config's recipe, your own data."""
import importlib
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from gp_jax.config import validation
from gp_jax.config.build import spec_from_config
from gp_jax.config.schema import base_config
from tests import user_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_readme_python_example_runs(tmp_path):
  with open(os.path.join(ROOT, "README.md")) as f:
    (example,) = re.findall(r"```python\n(import numpy as np\nimport gp_jax\n.*?)```", f.read(),
                            re.S)
  example = example.replace('"runs/api"', repr(str(tmp_path / "api")))
  proc = subprocess.run([sys.executable, "-c", example], cwd=ROOT, capture_output=True,
                        text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert re.search(r"test top-1 \d\.\d{3} at 0\.\d\d MACs; widths \(\d+", proc.stdout)


def test_api_errors_are_one_line(tmp_path):
  import gp_jax
  from gp_jax.runtime.errors import UserError
  with pytest.raises(UserError, match="no config file"):
    gp_jax.get_config(str(tmp_path / "nope.py"))
  with pytest.raises(UserError, match="stage"):
    gp_jax.prune(base_config(), str(tmp_path / "w"), stages=("pruningnet", "serch"))
  assert not os.path.exists(tmp_path / "w")
  with pytest.raises(UserError, match="not a retrain checkpoint"):
    gp_jax.load(str(tmp_path))


def test_the_wheel_installs_and_runs_outside_the_repository(tmp_path):
  # Built from a copy: setuptools writes build/ beside the sources it builds.
  source = tmp_path / "source"
  source.mkdir()
  for name in ("pyproject.toml", "README.md", "LICENSE"):
    shutil.copy(os.path.join(ROOT, name), source / name)
  shutil.copytree(os.path.join(ROOT, "gp_jax"), source / "gp_jax",
                  ignore=shutil.ignore_patterns("__pycache__"))
  build = subprocess.run(
      [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
       "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=600)
  assert build.returncode == 0, build.stderr[-2000:]
  (wheel,) = (tmp_path / "dist").glob("gp_jax-*.whl")
  with zipfile.ZipFile(wheel) as z:
    names = z.namelist()
    entry_points = z.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
  assert "gp_jax/api.py" in names and not any(n.startswith(("tests/", "configs/"))
                                               for n in names)
  for script in ("gp-jax", "gp-jax-summary", "gp-jax-evaluate", "gp-jax-export",
                 "gp-jax-import"):
    assert f"{script} = gp_jax." in entry_points
  install = subprocess.run(
      [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
       str(tmp_path / "site"), str(wheel)], capture_output=True, text=True, timeout=600)
  assert install.returncode == 0, install.stderr[-2000:]
  outside = tmp_path / "elsewhere"
  outside.mkdir()
  env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
  # a config by path from another directory, through the installed entry point's module
  proc = subprocess.run(
      [sys.executable, "-c", "import sys, gp_jax, gp_jax.summary as s; "
       "print(gp_jax.__file__); sys.argv = ['gp-jax-summary', *sys.argv[1:]]; s.run()",
       f"--config={ROOT}/configs/imagenet_mobilenetv1.py"],
      cwd=outside, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert proc.stdout.startswith(str(tmp_path / "site"))
  assert "mobilenetv1 at 224x224" in proc.stdout


CONFIGS = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "configs"))
                 if f.endswith(".py") and not f.startswith("_"))


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_sets_its_recipe(name, tmp_path):
  module = importlib.import_module(f"configs.{name}")
  arg = user_data.write_npz(tmp_path / "d.npz") if name == "own_data" else None
  config = module.get_config(arg) if arg else module.get_config()
  assert module.__doc__ and "--config=configs/" in module.__doc__  # how to launch it
  default = base_config()
  if name != "digits_resnet20":  # the demo's recipe is the schema's defaults
    for section in ("pruningnet", "retrain"):
      assert (config[section].steps, config[section].batch_size) != (
          default[section].steps, default[section].batch_size), (name, section)


def test_own_data_keeps_the_data_resolution_and_says_when_pinned(tmp_path, capsys):
  from configs import own_data
  path = user_data.write_npz(tmp_path / "d.npz", size=32)
  config = own_data.get_config(path)
  validation.validate(config)
  assert spec_from_config(config).resolution == 32 and config.dataset.name == "npz"
  assert "resizes" not in capsys.readouterr().err
  config.dataset.resolution = 16
  validation.validate(config)
  assert "dataset.resolution=16 resizes" in capsys.readouterr().err
  assert own_data.epochs_for(60_000) == 2.5 and own_data.epochs_for(1_000) == 30.0
  from gp_jax.runtime.errors import UserError
  with pytest.raises(UserError, match="needs the data"):
    own_data.get_config()


def test_the_dependency_ranges_admit_the_pinned_versions():
  import tomllib
  from packaging.requirements import Requirement
  from packaging.utils import canonicalize_name
  with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    project = tomllib.load(f)["project"]
  with open(os.path.join(ROOT, "constraints.txt")) as f:
    pins = dict((canonicalize_name(line.split("==")[0]), line.split("==")[1].strip())
                for line in f if "==" in line and not line.startswith("#"))
  deps = [Requirement(d) for d in project["dependencies"]]
  assert len(deps) >= 10
  for r in deps:
    pinned = pins[canonicalize_name(r.name)]
    assert r.specifier.contains(pinned, prereleases=True), (r, pinned)


def test_reading_a_config_imports_no_jax():
  code = ("import sys; sys.path.insert(0, '.')\n"
          + "".join(f"import configs.{name}\n" for name in CONFIGS)
          + "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'jax', 'flax', 'optax', 'orbax', 'grain', 'tensorflow_datasets'}))")
  proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert proc.stdout.strip() == "[]"


def test_own_data_runs_the_pipeline_on_a_32x32_npz_at_32x32(tmp_path):
  path = user_data.write_npz(tmp_path / "d.npz", size=32, channels=3)
  proc = subprocess.run([sys.executable, "-m", "gp_jax.main",
                         f"--config=configs/own_data.py:{path},smoke", f"--workdir={tmp_path}/w",
                         "--config.retrain.baseline=", "--config.retrain.unpruned=False"],
                        cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(tmp_path / "w" / "report.json") as f:
    import json
    report = json.load(f)
  assert report["dataset"] == "npz" and "resizes" not in proc.stderr
  with open(tmp_path / "w" / "retrain" / "pruned" / "network.json") as f:
    assert json.load(f)["resolution"] == 32
