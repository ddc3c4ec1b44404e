"""The examples in the public docstrings run."""

import doctest
import importlib

import pytest

MODULES = ["ticktape.indicators", "ticktape.metrics", "ticktape.config", "ticktape.accounting"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
