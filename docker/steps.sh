#!/bin/sh
# The build steps of ticktape's image: the Dockerfile runs them, and so does
# tests/e2e/test_image_steps.py (no Docker engine needed), so they cannot drift.
#
#   steps.sh wheel SRC DIST     compile SRC (native module included) into a wheel in DIST
#   steps.sh install DIST VENV  a new virtualenv VENV with that wheel and its dependencies
#   steps.sh check VENV         VENV's ticktape answers --help and runs a short backtest
set -eu

case "${1:-}" in
wheel)
    # scikit-build-core compiles native/ with CMake (a CMake from PyPI when the
    # system has none recent enough); --no-deps: only ticktape's own wheel
    python3 -m pip wheel --no-deps --wheel-dir "$3" "$2"
    ;;
install)
    # (the Dockerfile sets PIP_NO_CACHE_DIR: an image keeps no pip cache)
    python3 -m venv "$3"
    "$3/bin/pip" install "$2"/ticktape-*.whl
    ;;
check)
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    "$2/bin/ticktape" --help >/dev/null
    "$2/bin/ticktape" data generate --ticks 20000 --seed 3 --out "$work/ticks.parquet"
    "$2/bin/ticktape" backtest --data "$work/ticks.parquet" --strategy sma_crossover \
        --param fast=20 --param slow=100
    ;;
*)
    echo "usage: $0 wheel SRC DIST | install DIST VENV | check VENV" >&2
    exit 2
    ;;
esac
