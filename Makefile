# The two commands of the README:  make demo  and  make test.
# Each creates the virtual environment in .venv (once) and installs molxbar into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.molxbar-installed

.PHONY: demo test lint bench formal clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/molxbar demo

test: $(STAMP) lint
	$(BIN)/python -m pytest -n auto --durations=15

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/molxbar bench

# The formal properties: the quick ones, or e.g. make formal FORMAL="--all" or "idle --depth 30".
formal: $(STAMP)
	$(BIN)/molxbar formal $(FORMAL)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis .ruff_cache
