# The README's commands. `make demo` and `make test` work on a fresh machine
# with only Python 3.11+, gcc and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
# the package is installed (not editable): reinstall when any shipped file changes
SOURCES := pyproject.toml CMakeLists.txt $(shell find src agents tables dashboards dbschema native -type f -not -path '*/__pycache__/*' 2>/dev/null)

.PHONY: demo test dashboard bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ticktape needs Python 3.11+; got " + sys.version.split()[0] + " (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# runtime dependencies only
$(VENV)/.installed-runtime: $(BIN)/python $(SOURCES)
	$(PIP) install --quiet .
	@touch $@

# project + test extras
$(VENV)/.installed-test: $(BIN)/python $(SOURCES)
	$(PIP) install --quiet ".[test]"
	@touch $@ $(VENV)/.installed-runtime

demo: $(VENV)/.installed-runtime
	$(BIN)/ticktape demo

test: $(VENV)/.installed-test
	$(BIN)/pytest

dashboard: $(VENV)/.installed-runtime
	$(BIN)/ticktape dashboard

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/e2e.py
	$(BIN)/python benchmarks/native_book.py

clean:
	rm -rf build dist $(VENV)
