"""In-process runs: ``ticktape.backtest(data, strategy, params, **options)``,
their results, parameter sweeps and research tools.

This package can be called like the function it is named after:
``ticktape.backtest(df, "ma_crossover", {"fast": 10, "slow": 30})`` runs
:func:`ticktape.backtest.run.backtest` (see it for every option).
"""

from __future__ import annotations

import inspect
import sys
import types
from typing import Any

from ticktape.backtest.run import BacktestResult, Store, backtest

__all__ = ["BacktestResult", "Store", "backtest"]


class _CallableModule(types.ModuleType):
    """``ticktape.backtest`` is both this package and the function: calling it runs a backtest."""

    __signature__ = inspect.signature(backtest)

    def __call__(self, *args: Any, **kwargs: Any) -> BacktestResult:
        return backtest(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
