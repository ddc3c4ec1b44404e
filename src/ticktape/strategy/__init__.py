"""Strategies: the API, the templates, rule trees and strategies from words.

Never imports Faust, Kafka or SQL (an import-linter contract checks it): the
same strategy runs in ``ticktape.backtest``, over the pipeline and on a live
feed.

- :mod:`~ticktape.strategy.api`: :class:`Strategy`, :class:`Feature`,
  :class:`Columns`, :class:`Context` and the registry;
- :mod:`~ticktape.strategy.params`: a parameter declared once, on its config
  field (:func:`~ticktape.strategy.params.param`), and the one path from a
  spec's params to a config;
- :mod:`~ticktape.strategy.catalog`: the registered strategies, :func:`build`,
  :func:`validate_spec` and :func:`check_run`;
- :mod:`~ticktape.strategy.templates`: the built-in strategies;
- :mod:`~ticktape.strategy.rules`: rule trees (the ``rules`` strategy);
- :mod:`~ticktape.strategy.fromtext`: plain English -> a strategy spec
  (tokens, lexicon, grammar, llm).

The names below are the public strategy API: ``from ticktape.strategy import
Strategy, Feature, Columns, orders``.
"""

from ticktape.errors import SpecError
from ticktape.strategy.api import (
    REGISTRY,
    TICK_SOURCES,
    Columns,
    Context,
    Decisions,
    Feature,
    Fill,
    Strategy,
    Tick,
    compute_features,
    mid,
    orders,
    register,
    tick_columns,
)
from ticktape.strategy.catalog import build, check_run, strategy_class, validate_spec

__all__ = [
    "REGISTRY",
    "TICK_SOURCES",
    "Columns",
    "Context",
    "Decisions",
    "Feature",
    "Fill",
    "SpecError",
    "Strategy",
    "Tick",
    "build",
    "check_run",
    "compute_features",
    "mid",
    "orders",
    "register",
    "strategy_class",
    "tick_columns",
    "validate_spec",
]
