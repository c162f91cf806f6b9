# Two entry points (see README):  `make repro`  and  `make test`.
# Each sets up everything it needs first; set-up is a no-op when already done.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The offline dataset mirror: an explicit CNN_DATA_MIRROR wins; otherwise ../shared/datasets
# is used when it exists beside the checkout; otherwise the download stage goes online.
CNN_DATA_MIRROR ?= $(if $(wildcard ../shared/datasets/mnist),../shared/datasets,)
export CNN_DATA_MIRROR
# DVC runs each stage's `python` from PATH: make it the venv's.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup repro repro-timed test test-fast lint typecheck format lock bench clean-venv

setup: $(STAMP)

# The pinned dependencies and development tools, every transitive one held to the version in
# constraints.txt, then the package itself (editable, dependencies untouched), which provides
# the `cnn-pipeline` command.
$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/python -c "import torch, torchvision, dvc, pandas, sklearn, matplotlib, seaborn"
	touch $(STAMP)

repro: setup  ## run the whole pipeline: every stage that is not current
	$(BIN)/dvc repro

repro-timed: setup  ## regenerate every stage from scratch, record the wall time in reports/timing.json, then the report
	$(BIN)/python -m pipeline.timing --out reports/timing.json -- \
	    $(BIN)/dvc repro --force $$($(BIN)/dvc stage list --name-only | grep -vx report)
	$(BIN)/dvc repro report

test: setup  ## the test suite
	$(BIN)/python -m pytest -q

test-fast: setup  ## the test suite without the slow integration tests (pytest -m "not slow")
	$(BIN)/python -m pytest -q -m "not slow"

lint: setup typecheck  ## ruff: lint rules and the format, checked; then the type checker (CI runs this)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup  ## mypy on pipeline/ (settings in pyproject.toml; ~15 s cold, ~2 s with its cache)
	$(BIN)/mypy

lock: setup  ## rewrite constraints.txt from the installed environment (after changing requirements*.txt)
	{ sed -n '/^#/p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable --disable-pip-version-check; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

format: setup  ## apply ruff's fixes and format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup  ## speed benchmarks (run on an otherwise idle machine)
	$(BIN)/python benchmarks/bench_loader.py
	$(BIN)/python benchmarks/bench_layers.py

clean-venv:
	rm -rf $(VENV)
