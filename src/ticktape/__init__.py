"""ticktape: a tick-level backtesting engine built as a stream-processing pipeline.

``ticktape.backtest(data, strategy, **options)`` runs a backtest in this
process (see :func:`ticktape.backtest.run.backtest`); ``ticktape.Strategy`` is
the base class of strategies (:mod:`ticktape.strategy`).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Strategy", "backtest"]


def __getattr__(name: str) -> Any:  # lazy: `import ticktape` stays cheap (no native module, no pandas)
    if name == "backtest":
        import ticktape.backtest

        return ticktape.backtest  # the package is callable: ticktape.backtest(data, strategy, ...)
    if name == "Strategy":
        from ticktape.strategy import Strategy

        return Strategy
    raise AttributeError(f"module 'ticktape' has no attribute {name!r}")
