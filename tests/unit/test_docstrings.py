"""Every ``>>>`` example in the package's docstrings runs (backtesting.py's TestDocs)."""

import doctest
import importlib
import pkgutil

import pytest

import ticktape

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(ticktape.__path__, "ticktape.")
    if m.name not in ("ticktape.__main__", "ticktape.dashboards.app")  # (these run when imported)
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0


def test_the_examples_are_found():
    """The walk sees the modules known to carry examples (a broken walk would pass vacuously)."""
    finder = doctest.DocTestFinder()
    with_examples = {
        name for name in MODULES if any(t.examples for t in finder.find(importlib.import_module(name)))
    }
    assert {
        "ticktape.compute.indicators",
        "ticktape.compute.metrics",
        "ticktape.compute.accounting",
        "ticktape.config",
        "ticktape.store.codec",
        "ticktape.store.ticks",
        "ticktape.testing",
    } <= with_examples
