# Two commands for a fresh machine: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOGS ?= logs/demo
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: run test install demo fixtures bench lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Train the demo experiment if its logs are missing, then open the viewer on them.
run: $(STAMP)
	@test -f $(LOGS)/.complete || (rm -rf $(LOGS) && $(BIN)/tinspect demo $(LOGS) && touch $(LOGS)/.complete)
	$(BIN)/tinspect $(LOGS)

# The core: no UI, no framework, typed (mypy clean); contracts in pyproject.toml.
CORE := src/tinspect/format.py src/tinspect/summary.py src/tinspect/lazy.py src/tinspect/store src/tinspect/query \
	src/tinspect/analysis

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy $(CORE)
	$(BIN)/python -m pytest

demo: $(STAMP)
	rm -rf $(LOGS) && $(BIN)/tinspect demo $(LOGS) && touch $(LOGS)/.complete

# Small deterministic logs committed for the read-side tests.
fixtures: $(STAMP)
	$(BIN)/python -m tinspect.demo.fixtures fixtures/digits
	$(BIN)/python -m tinspect.demo.fixtures --shortcut fixtures/shortcut

bench: $(STAMP)
	$(BIN)/python -m bench.record
	$(BIN)/python -m bench.read
	$(BIN)/python -m bench.view
	$(BIN)/python -m bench.compare
	$(BIN)/python -m bench.attributions
	$(BIN)/python -m bench.torch_record
	$(BIN)/python -m bench.scale

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) logs .pytest_cache
