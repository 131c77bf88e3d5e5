# Two commands do all set-up on a fresh machine (see README):
#   make run    install, then talk to the agent on the embedded defaults
#   make test   install, then lint and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export ORT_DISABLE_TELEMETRY := 1

.PHONY: install run test lint bench clean

$(BIN)/voice-agent: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/voice-agent

run: install
	$(BIN)/voice-agent chat

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/voice-agent lint-prompts

test: lint
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/intents.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
