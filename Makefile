# Every target sets itself up: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Tests, CI and benchmarks read datasets from the shared folder beside the project.
export GENTORCH_DATA ?= $(abspath ../shared/data)
export MPLBACKEND ?= Agg
PYTEST_ARGS ?=

.PHONY: setup demo test lint typecheck unit doctest

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade -c constraints.txt pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/gentorch train vae --dataset digits --preset book --epochs 100 --batch-size 64 --lr 2e-3 --threads 1 --out runs/demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

# pytest exits 5 when a marker selects no test: that is not a failure.
unit: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS) || [ $$? -eq 5 ]

# Every docstring example, run as written. Imported as the installed package: the tests'
# importlib mode (needed for their repeated file names) would import each module a second time.
doctest: setup
	$(BIN)/python -m pytest --import-mode=prepend --doctest-modules src/gentorch $(PYTEST_ARGS) || [ $$? -eq 5 ]

test: lint typecheck unit doctest
