# HUSAI: two commands on a fresh machine.
#   make reproduce   create .venv, install pinned deps, run `dvc repro` on params.yaml
#   make test        create .venv, install pinned deps, run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(BIN):$(PATH)
export PYTHONHASHSEED := 0

.PHONY: reproduce test env lint bench clean-env container-check tiny

env: $(STAMP)

# torch first, from the pinned version (a CPU wheel where one is provided locally),
# so that nothing else can pull a different torch; then everything else, pinned.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

reproduce: $(STAMP)
	husai check-params
	dvc repro
	husai exp-summary
	@echo "report: paper/report.md (figures: paper/figures/); all metrics: dvc metrics show"

test: $(STAMP)
	python -m pytest

# the whole pipeline on the tiny profile, in a throwaway clone (scripts/try-tiny)
tiny: $(STAMP)
	scripts/try-tiny $(DEST)

lint: $(STAMP)
	ruff check husai stages tests benchmarks paper docs
	ruff format --check husai stages tests benchmarks paper docs

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; python $$b || exit 1; done

clean-env:
	rm -rf $(VENV)

# README "Artifact review with Docker": build the CPU image with buildah (root; no Docker
# daemon needed), run the tiny profile twice in it and once on the host (.venv); fails
# unless the three dvc.lock files are identical (its measured time: README, Artifact review).
container-check: $(STAMP)
	scripts/container-check
