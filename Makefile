# `make demo` and `make test` work on a fresh machine with only python3:
# both create .venv from requirements.txt first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test demo study clean

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

clean:
	rm -rf $(VENV) runs .pytest_cache
