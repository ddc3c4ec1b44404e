"""Human labels and units of run metrics, and how numbers read in tables.

One place says how a metric is shown, wherever it is shown: ``ticktape
backtest``, ``runs show``, ``sweep`` and the Streamlit app. Each key of
:data:`METRICS` is a key of :func:`ticktape.compute.metrics.performance`
(or one a run adds: ``final_equity``, ``orders``, ...) with its label and
unit; :func:`show` renders a value in that unit (a fraction as ``%``, a
duration as ``3 d 4 h``, a count as an integer).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ticktape.compute.metrics import DAY_NS

#: metric key -> (label, unit), in the order a report lists them; units:
#: ``%`` (a fraction shown x100), ``cash``, ``ratio``, ``count``,
#: ``duration`` (ns), ``grid`` (a return grid's width in ns), ``per year``
METRICS: dict[str, tuple[str, str]] = {
    "final_equity": ("Final equity", "cash"),
    "final_pnl": ("Final PnL", "cash"),
    "total_return": ("Total return", "%"),
    "annualized_return": ("Annualized return", "%"),
    "cagr": ("CAGR", "%"),
    "volatility": ("Volatility (annualized)", "%"),
    "sharpe": ("Sharpe ratio", "ratio"),
    "sortino": ("Sortino ratio", "ratio"),
    "calmar": ("Calmar ratio", "ratio"),
    "return_grid_ns": ("Return grid", "grid"),
    "return_periods": ("Returns on the grid", "count"),
    "periods_per_year": ("Periods per year", "per year"),
    "max_drawdown": ("Max drawdown (cash)", "cash"),
    "max_drawdown_pct": ("Max drawdown", "%"),
    "max_drawdown_duration_ns": ("Longest drawdown", "duration"),
    "n_trades": ("Trades (closed)", "count"),
    "n_open_trades": ("Open trades", "count"),
    "win_rate": ("Win rate", "%"),
    "profit_factor": ("Profit factor", "ratio"),
    "expectancy": ("Expectancy per trade", "cash"),
    "avg_trade_return": ("Average trade return", "%"),
    "avg_win": ("Average win", "cash"),
    "avg_loss": ("Average loss", "cash"),
    "exposure": ("Exposure (time in market)", "%"),
    "turnover": ("Turnover (per year)", "ratio"),
    "orders": ("Orders", "count"),
    "fills": ("Fills", "count"),
}

_SPANS = (("d", DAY_NS), ("h", 3_600 * 10**9), ("min", 60 * 10**9), ("s", 10**9))
_GRID_NAMES = {DAY_NS: "daily", 3_600 * 10**9: "hourly", 60 * 10**9: "by minute", 10**9: "by second"}


def label(key: str) -> str:
    """The human label of metric ``key`` (the key with spaces when unknown).

    >>> label("max_drawdown_duration_ns"), label("something_else")
    ('Longest drawdown', 'something else')
    """
    return METRICS[key][0] if key in METRICS else key.replace("_", " ")


def duration(ns: float) -> str:
    """A duration in ns as its two largest units.

    Examples
    --------
    >>> duration(3 * 86_400e9 + 4 * 3_600e9 + 59e9)
    '3 d 4 h'
    >>> duration(90e9), duration(2.5e9), duration(1.5e6), duration(0)
    ('1 min 30 s', '2.5 s', '1.5 ms', '0 s')
    """
    if not math.isfinite(ns):
        return "n/a"
    ns = abs(float(ns))
    if ns < 10**9:
        return "0 s" if ns == 0 else (f"{ns / 1e6:.3g} ms" if ns >= 1e6 else f"{ns / 1e3:.3g} µs")
    if ns < 60 * 10**9:
        return f"{ns / 1e9:.3g} s"
    parts: list[str] = []
    rest = round(ns)
    for name, width in _SPANS:
        k, rest = divmod(rest, width)
        if k or parts:
            parts.append(f"{k} {name}")
        if len(parts) == 2:
            break
    return " ".join(p for p in parts if not p.startswith("0 ")) or "0 s"


def grid(ns: float) -> str:
    """A return grid's name: ``daily``, ``hourly``, ``by minute``, ``by second``,
    ``every N`` for another width, ``every sample`` for 0.

    >>> grid(86_400e9), grid(0), grid(300e9)
    ('daily', 'every sample', 'every 5 min')
    """
    if not math.isfinite(ns):
        return "n/a"
    if ns == 0:
        return "every sample"
    return _GRID_NAMES.get(int(ns), f"every {duration(ns)}")


#: Runs whose returns span less than this (years) get a caveat with their
#: annualized ratios (:func:`annualization_note`): about a month.
SHORT_SPAN_YEARS = 30 / 365.25


def annualization_note(metrics: dict[str, Any]) -> str | None:
    """A caveat under the metrics when the annualized ratios extrapolate a
    short sample (returns spanning less than :data:`SHORT_SPAN_YEARS`), else None.

    A steady loss over an hour of minute returns is a Sharpe ratio in the
    hundreds: true to the definition (docs/metrics.md), and worth saying.

    >>> annualization_note({"return_periods": 84.0, "periods_per_year": 525_960.0, "return_grid_ns": 60e9})
    'annualized from 84 returns by minute (1 h 24 min of data): ratios of runs shorter than a month extrapolate a short sample'
    >>> annualization_note({"return_periods": 400.0, "periods_per_year": 252.0, "return_grid_ns": 86_400e9}) is None
    True
    """
    n, per_year = metrics.get("return_periods"), metrics.get("periods_per_year")
    if not n or not per_year or not (math.isfinite(n) and math.isfinite(per_year)):
        return None
    years = float(n) / float(per_year)
    if years >= SHORT_SPAN_YEARS:
        return None
    span = duration(years * 365.25 * DAY_NS)
    return (
        f"annualized from {number(n)} returns {grid(metrics.get('return_grid_ns', math.nan))} "
        f"({span} of data): ratios of runs shorter than a month extrapolate a short sample"
    )


def number(v: Any) -> str:
    """A table cell: integers (and floats that are whole) as integers with
    thousands separators, other floats with 4 significant digits (2
    decimals from 1,000 up), NaN / None as ``n/a``, anything else as text.

    >>> number(7.0), number(233), number(0.123456), number(12345.678), number(float("nan"))
    ('7', '233', '0.1235', '12,345.68', 'n/a')
    """
    if isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.number):
        return "n/a" if v is None else str(v)
    v = float(v) if not isinstance(v, int | np.integer) else int(v)
    if isinstance(v, float) and not (math.isfinite(v) and v.is_integer() and abs(v) < 1e15):
        if not math.isfinite(v):
            return "n/a" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return f"{v:,.2f}" if abs(v) >= 1000 else f"{v:.4g}"
    return f"{int(v):,}"


def show(key: str, value: Any) -> str:
    """Metric ``key``'s value in its unit.

    Examples
    --------
    >>> show("total_return", 0.0123), show("sharpe", 1.23456), show("n_trades", 233.0)
    ('1.23 %', '1.235', '233')
    >>> show("max_drawdown_duration_ns", 2.99e13), show("return_grid_ns", 3.6e12)
    ('8 h 18 min', 'hourly')
    >>> show("final_equity", 1001234.5), show("sharpe", float("nan"))
    ('1,001,234.50', 'n/a')
    """
    unit = METRICS[key][1] if key in METRICS else None
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return "n/a"
    return _BY_UNIT[unit](float(value)) if unit in _BY_UNIT else number(value)


def _fixed(v: float) -> str:
    """Two decimals with separators; a value that rounds to zero shows no sign
    (-0.00 % read as a loss).

    >>> _fixed(-0.001), _fixed(-1234.567)
    ('0.00', '-1,234.57')
    """
    text = f"{v:,.2f}"
    return text[1:] if text == "-0.00" else text


_BY_UNIT = {
    "%": lambda v: f"{_fixed(v * 100)} %",
    "cash": _fixed,
    "ratio": lambda v: f"{v:.4g}",
    "duration": duration,
    "grid": grid,
    "per year": lambda v: f"{v:,.6g}",
}


def report(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, shown value) of each metric, known ones first in :data:`METRICS`' order.

    >>> report({"sharpe": 0.5, "n_trades": 3.0, "custom": 2.5})
    [('Sharpe ratio', '0.5'), ('Trades (closed)', '3'), ('custom', '2.5')]
    """
    known = [k for k in METRICS if k in metrics]
    rest = [k for k in metrics if k not in METRICS]
    return [(label(k), show(k, metrics[k])) for k in (*known, *rest)]
