# fireflan — the whole set-up is in these targets; a fresh machine needs only `make all` or `make test`.
#   make all    the main job on the embedded default, end to end (writes runs/)
#   make lab    the same recipe sized for a class (~10 minutes on 2 cores; runs/lab)
#   make real   the free FireAct on real HotpotQA: REAL_TRAIN / REAL_EVAL name official distractor files (empty:
#               the hub's splits, which need a network); runs/real
#   make test   the default test tier (pytest -m "not slow")
#   make test-slow  the slower tier CI runs too; make test-lab  notebooks 2 and 3 at the lab's sizes (~25 min)
#   make lint   ruff
#   make bench  the benchmarks in bench/ (each prints one JSON object on its last line)
#   make clean  remove the virtual environment, runs and caches

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt
RUNS   ?= runs

REAL_TRAIN ?=
REAL_EVAL  ?=

.PHONY: all lab real test test-slow test-lab lint bench clean

# One stamp per set of extras: re-installs when pyproject.toml or the constraints change.
# torch goes in first, from the CPU wheel pinned in constraints.txt, so that no later package
# pulls a CUDA build of several GB.
$(VENV)/.ready-%: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e ".[$*]"
	touch $@

all: $(VENV)/.ready-train,infer,dev
	$(PY) -m fireflan.recipes.hotpotqa --config recipes/hotpotqa.toml --out $(RUNS)/hotpotqa

lab: $(VENV)/.ready-train,infer,dev
	$(PY) -m fireflan.recipes.hotpotqa --config recipes/lab.toml --out $(RUNS)/lab

real: $(VENV)/.ready-train,infer,dev
	$(PY) -m fireflan.recipes.hotpotqa --config recipes/hotpotqa-real.toml --out $(RUNS)/real \
		$(if $(REAL_TRAIN),--train-data $(REAL_TRAIN)) $(if $(REAL_EVAL),--eval-data $(REAL_EVAL))

test: $(VENV)/.ready-train,infer,dev
	$(PY) -m pytest -m "not slow" -q --durations=25

test-slow: $(VENV)/.ready-train,infer,dev
	$(PY) -m pytest -m "slow and not lab" -q

test-lab: $(VENV)/.ready-train,infer,dev
	$(PY) -m pytest -m lab -q -s

lint: $(VENV)/.ready-train,infer,dev
	$(PY) -m ruff check fireflan tests bench

bench: $(VENV)/.ready-train,infer,dev
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(RUNS) build *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
