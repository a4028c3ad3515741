# madrasa: `make demo` runs the product on the embedded database; `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_WORKERS ?= 2

.PHONY: demo test fuzz install lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml tests/example_plugin/pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]' -e tests/example_plugin
	touch $@

install: $(VENV)/.installed

## demo: migrate an SQLite file in $MADRASA_DATA_DIR (./var), load the demo once, print the accounts, serve
demo: $(VENV)/.installed
	scripts/ensure-fonts.sh
	$(BIN)/madrasa demo

## test: install what the tests need (Python packages, a PostgreSQL server if absent) and run everything
test: $(VENV)/.installed-test
	@eval "$$(scripts/ensure-services.sh)" && \
	$(BIN)/ruff check . && \
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -p no:cacheprovider

## fuzz: tests/test_fuzz.py alone with many more examples per operation and account (schemathesis, PostgreSQL)
MADRASA_FUZZ_EXAMPLES ?= 200
fuzz: $(VENV)/.installed-test
	@eval "$$(scripts/ensure-services.sh)" && \
	MADRASA_FUZZ_EXAMPLES=$(MADRASA_FUZZ_EXAMPLES) $(BIN)/python -m pytest -n 0 -p no:cacheprovider tests/test_fuzz.py

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## bench: the benchmarks under benchmarks/ (PostgreSQL)
bench: $(VENV)/.installed-test
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk || sudo apt-get install -y -qq wrk; }
	@eval "$$(scripts/ensure-services.sh)" && $(BIN)/python benchmarks/request_overhead.py && \
	$(BIN)/python benchmarks/generate.py

clean:
	rm -rf $(VENV) var build *.egg-info
