# `make demo` and `make test` work on a fresh machine with only python3:
# both create .venv from requirements.txt first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test demo study bench clean

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

demo: $(STAMP)
	$(PY) -m gp_jax.summary --config=configs/digits_resnet20.py
	$(PY) -m gp_jax.main --config=configs/digits_resnet20.py --workdir=runs/demo

# Not in CI: methods x targets x seeds on digits, about an hour on 2 cores -> STUDY.md
study: $(STAMP)
	$(PY) -m gp_jax.study --workdir=runs/study

# Not in CI: speed and memory figures -> bench.json, BENCHMARKS.md. The PyTorch
# reference needs torch (CPU build, from this machine's wheel cache); it is not a
# runtime dependency, so it is installed here only.
bench: $(STAMP)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m gp_jax.bench

clean:
	rm -rf $(VENV) runs .pytest_cache
