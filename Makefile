# Two commands matter: `make demo` and `make test`. Each builds its own virtualenv from nothing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench bench-extract bench-endurance install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m crawler.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench-extract: $(STAMP)
	$(BIN)/newswatch bench extract tests/data/aeb-dev

bench-endurance: $(STAMP)
	$(BIN)/python -m bench.endurance

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) data build *.egg-info
