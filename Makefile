# The two commands of the README's quick start, and their helpers.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/twin warmup  # compile the kernels once (on every core), so the first run starts at speed
	touch $(STAMP)

## Set everything up and run the main job on the embedded default community.
demo: $(STAMP)
	$(BIN)/twin run

## Set everything up and run the test suite.
test: $(STAMP)
	$(BIN)/python -m pytest -q

## Speed and memory, side by side with the references.
bench: $(STAMP)
	$(BIN)/twin bench

## Static checks (pyflakes-level errors and likely bugs).
lint: $(STAMP)
	$(BIN)/ruff check twin agents policies contracts live_bridge benchmarks tests

clean:
	rm -rf $(VENV) outputs .pytest_cache
