"""Run metrics from equity samples."""

from __future__ import annotations

import numpy as np
import pandas as pd


def portfolio_equity(samples: pd.DataFrame, initial_cash: float) -> pd.Series:
    """Total equity over time from per-symbol samples.

    ``samples`` has columns ``ts_ns``, ``symbol``, ``equity``. Each symbol's
    last known equity is carried forward (``initial_cash`` before its first
    sample) and the symbols are summed at every sample time.
    """
    if samples.empty:
        return pd.Series(dtype=float)
    wide = samples.pivot_table(index="ts_ns", columns="symbol", values="equity", aggfunc="last")
    return wide.sort_index().ffill().fillna(initial_cash).sum(axis=1)


def max_drawdown(equity: np.ndarray) -> tuple[float, float]:
    """Largest peak-to-trough fall: (absolute, fraction of the peak).

    Examples
    --------
    >>> max_drawdown(np.array([100.0, 120.0, 90.0, 130.0, 125.0]))
    (30.0, 0.25)
    """
    eq = np.asarray(equity, dtype=float)
    if len(eq) == 0:
        return 0.0, 0.0
    peak = np.maximum.accumulate(eq)
    dd = peak - eq
    i = int(np.argmax(dd))
    return float(dd[i]), float(dd[i] / peak[i]) if peak[i] > 0 else 0.0


def summarize(samples: pd.DataFrame, initial_cash: float, n_symbols: int) -> dict[str, float]:
    """Final PnL, return and max drawdown of a run's portfolio."""
    total = portfolio_equity(samples, initial_cash)
    start = initial_cash * n_symbols
    final = float(total.iloc[-1]) if len(total) else start
    dd, dd_frac = max_drawdown(np.concatenate(([start], total.to_numpy())))
    return {
        "final_equity": final,
        "final_pnl": final - start,
        "total_return": (final - start) / start if start else 0.0,
        "max_drawdown": dd,
        "max_drawdown_pct": dd_frac,
    }
