"""Run metrics from equity samples, and performance statistics of an equity curve.

:func:`performance` is the full report (returns, risk, drawdown, trade
statistics, exposure, turnover); every formula and convention it uses is
in its docstring and in docs/metrics.md.
"""

from __future__ import annotations

import math
from typing import Any

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

    The fraction is that of the largest *absolute* fall; the largest
    *fractional* fall can be elsewhere (a fall from a lower peak), and
    :func:`performance` reports that one as ``max_drawdown_pct``.

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


# ---------------------------------------------------------------- performance
DAY_NS = 86_400 * 10**9
#: A calendar year of 365.25 days, in ns (CAGR, turnover, intraday annualization).
YEAR_NS = int(365.25 * DAY_NS)
#: Trading days per year (annualization of daily data).
TRADING_DAYS = 252


def _ns(index: Any, name: str) -> np.ndarray:
    """int64 ns since the epoch, UTC, of a DatetimeIndex (naive = UTC) or integer index."""
    if isinstance(index, pd.DatetimeIndex):
        if index.tz is not None:
            index = index.tz_convert("UTC").tz_localize(None)
        return index.as_unit("ns").asi8.copy()
    arr = np.asarray(index)
    if len(arr) and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be int64 ns since the epoch or datetimes, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def infer_periods_per_year(ts_ns: Any) -> float:
    """Periods per year implied by the median spacing of ``ts_ns`` (int64 ns).

    Rule (median spacing ``d``): ``d`` < 1 day: calendar time,
    ``365.25 days / d`` (markets that trade around the clock; pass
    ``periods_per_year`` yourself for session-bound intraday data);
    1 day <= ``d`` < 7 days: trading days, ``252 / (d in days)`` (daily bars:
    the median gap is one day, weekends and holidays are the exceptions) —
    unless more than 0.6 × 2/7 of the samples fall on a Saturday or Sunday
    (UTC), a market open every day, then ``365.25 / (d in days)``
    (backtesting.py makes the same weekend test);
    ``d`` >= 7 days: the usual calendar counts where ``d`` is one of them
    (7 days: 52; 28-31 days: 12; 89-92 days: 4; 365-366 days: 1), else
    ``365.25 days / d``. NaN with fewer than two samples.

    Examples
    --------
    >>> days = pd.bdate_range("2024-01-01", periods=30).as_unit("ns").asi8
    >>> infer_periods_per_year(days)
    252.0
    >>> infer_periods_per_year(np.arange(0, 10 * 60 * 10**9, 60 * 10**9))  # minutes
    525960.0
    >>> infer_periods_per_year(pd.date_range("2024-01-01", periods=30).as_unit("ns").asi8)  # 7 days a week
    365.25
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    d = float(np.median(np.diff(ts))) if len(ts) >= 2 else math.nan
    days = d / DAY_NS
    if not d > 0:
        ppy = math.nan
    elif days < 1:
        ppy = YEAR_NS / d
    elif days < 7:
        weekday = (np.floor_divide(ts, DAY_NS) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        every_day = float(np.mean(weekday >= 5)) > 0.6 * 2 / 7
        ppy = YEAR_NS / d if every_day else TRADING_DAYS / days
    else:
        usual = ((7, 7, 52.0), (28, 31, 12.0), (89, 92, 4.0), (365, 366, 1.0))
        ppy = next((count for lo, hi, count in usual if lo <= days <= hi), YEAR_NS / d)
    return ppy


def _ratio(num: float, den: float) -> float:
    """num / den, NaN when den is 0 or either is NaN (never ±inf)."""
    if not (math.isfinite(num) and math.isfinite(den)) or den == 0.0:
        return math.nan
    return num / den


def _growth_rate(ratio: float, power: float) -> float:
    """ratio ** power - 1; -1 when everything was lost (ratio <= 0), NaN when undefined."""
    if not (math.isfinite(ratio) and math.isfinite(power)):
        return math.nan
    if ratio <= 0.0:
        return -1.0
    try:
        return ratio**power - 1.0
    except OverflowError:
        return math.nan


def _drawdowns(eq: np.ndarray, ts: np.ndarray) -> tuple[float, float, float]:
    """(largest absolute fall, largest fraction of its peak, longest underwater time in ns)."""
    peak = np.maximum.accumulate(eq)
    fall = peak - eq
    dd_abs = float(fall.max())
    frac = np.divide(fall, peak, out=np.zeros_like(fall), where=peak > 0)
    dd_pct = float(frac.max())
    under = np.concatenate(([0], (fall > 0).astype(np.int8), [0]))
    edges = np.diff(under)
    first = np.flatnonzero(edges == 1)  # first underwater sample of each spell (never 0)
    back = np.flatnonzero(edges == -1)  # first sample back at the peak (n: never)
    # the sample before a spell is its peak; the spell ends on recovery or at the last sample
    ends = ts[np.minimum(back, len(eq) - 1)]
    longest = float((ends - ts[first - 1]).max()) if len(first) else 0.0
    return dd_abs, dd_pct, longest


def _exposure(positions: pd.Series, t0: int, t1: int) -> float:
    if t1 <= t0:
        return math.nan
    pts = _ns(positions.index, "positions.index")
    pv = positions.to_numpy(dtype=np.float64)
    back = np.flatnonzero(np.diff(pts) < 0)
    if len(back):
        i = int(back[0]) + 1
        raise ValueError(f"positions.index[{i}] = {pts[i]} goes backwards (previous {pts[i - 1]})")
    bad = np.flatnonzero(~np.isfinite(pv))
    if len(bad):
        raise ValueError(f"positions[{int(bad[0])}] = {pv[bad[0]].item()!r} must be finite")
    inner = pts[(pts > t0) & (pts < t1)]
    cuts = np.concatenate(([t0], inner, [t1]))  # sorted
    cuts = cuts[np.concatenate(([True], np.diff(cuts) != 0))]
    k = np.searchsorted(pts, cuts[:-1], side="right") - 1  # position holding from each cut
    held = np.where(k >= 0, pv[np.maximum(k, 0)], 0.0) != 0.0
    return float(np.diff(cuts)[held].sum()) / float(t1 - t0)


def _trade_stats(trades: pd.DataFrame) -> dict[str, float]:
    for col in ("net_pnl", "return_pct"):
        if col not in trades.columns:
            raise ValueError(f"trades has no column {col!r} (use ticktape.accounting.trades)")
    closed = trades[~trades["open"].astype(bool)] if "open" in trades.columns else trades
    net = closed["net_pnl"].to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(net))
    if len(bad):
        raise ValueError(
            f"trades.net_pnl at row {closed.index[bad[0]]!r} = {net[bad[0]].item()!r} must be finite"
        )
    wins, losses = net[net > 0], net[net < 0]
    n = len(net)
    return {
        "n_trades": float(n),
        "n_open_trades": float(len(trades) - n),
        "win_rate": _ratio(len(wins), n),
        "profit_factor": _ratio(float(wins.sum()), float(-losses.sum())),
        "expectancy": float(net.mean()) if n else math.nan,
        "avg_trade_return": float(closed["return_pct"].mean()) if n else math.nan,
        "avg_win": float(wins.mean()) if len(wins) else math.nan,
        "avg_loss": float(losses.mean()) if len(losses) else math.nan,
    }


TRADE_METRICS = (
    "n_trades",
    "n_open_trades",
    "win_rate",
    "profit_factor",
    "expectancy",
    "avg_trade_return",
    "avg_win",
    "avg_loss",
)


def performance(
    equity: pd.Series,
    trades: pd.DataFrame | None = None,
    periods_per_year: float | None = None,
    risk_free: float = 0.0,
    positions: pd.Series | None = None,
) -> dict[str, float]:
    """Performance statistics of an equity curve (and its trades).

    Parameters
    ----------
    equity
        Equity values indexed by time (int64 ns since the epoch, or
        datetimes; naive = UTC), strictly increasing, finite. One sample per
        period: the periodic returns are ``r_i = E_i / E_{i-1} - 1``.
    trades
        Round trips from :func:`ticktape.accounting.trades` (columns
        ``net_pnl``, ``return_pct``, ``open``, ``notional``), or None.
    periods_per_year
        Annualization factor; None infers it from the median spacing of the
        index (see :func:`infer_periods_per_year`). Always returned.
    risk_free
        Annual risk-free rate, as a fraction; per period it is
        ``rf_p = (1 + risk_free) ** (1 / periods_per_year) - 1``.
    positions
        Position over time (a step function: each value holds until the
        next index), for ``exposure``; or None.

    Returns
    -------
    dict[str, float]
        With ``N`` samples, ``n = N - 1`` returns, ``E_0`` / ``E_N`` the first
        / last equity, ``T`` the elapsed time ``ts_N - ts_0``, ``P`` periods
        per year, ``Y`` = 365.25 days:

        * ``total_return`` = ``E_N / E_0 - 1``;
        * ``annualized_return`` = ``(1 + total_return) ** (P / n) - 1``
          (geometric, per period count);
        * ``cagr`` = ``(E_N / E_0) ** (Y / T) - 1`` (by calendar time);
          both are -1 if the account lost everything;
        * ``volatility`` = ``std(r, ddof=1) * sqrt(P)``;
        * ``sharpe`` = ``mean(r - rf_p) / std(r - rf_p, ddof=1) * sqrt(P)``;
        * ``sortino`` = ``mean(r - rf_p) / DD * sqrt(P)`` with the downside
          deviation ``DD = sqrt(mean(min(r - rf_p, 0) ** 2))`` over *all* n
          periods (target = ``rf_p``; the gains count as zeros);
        * ``calmar`` = ``cagr / max_drawdown_pct``;
        * ``max_drawdown`` (largest ``peak - E``, cash units),
          ``max_drawdown_pct`` (largest ``(peak - E) / peak``, a fraction;
          the two may come from different falls) and
          ``max_drawdown_duration_ns`` (longest time from a peak to the
          first sample back at or above it, or to the last sample if never);
        * from closed trades (open ones are counted in ``n_open_trades``
          only): ``n_trades``, ``win_rate`` (share with ``net_pnl`` > 0),
          ``profit_factor`` (Σ winning net_pnl / |Σ losing net_pnl|),
          ``expectancy`` (mean net_pnl), ``avg_trade_return`` (mean
          return_pct), ``avg_win``, ``avg_loss`` (mean net_pnl of the
          winners / losers; a loss is negative);
        * ``exposure``: the fraction of ``[ts_0, ts_N]`` with a non-zero
          position (time-weighted; 0 before the first position sample);
        * ``turnover``: ``Σ trades.notional / mean(E) / (T / Y)`` — traded
          notional, buys and sells both counted, per unit of average equity
          per year (a full round trip of the equity once a year is 2.0);
        * ``periods_per_year``: the ``P`` used.

        Anything undefined is NaN, never an exception or ±inf: a single
        sample (only ``total_return`` = 0 and the trade statistics are
        defined), zero volatility or downside (``std`` at rounding-noise
        level counts as zero), no drawdown (``calmar``), no trades, no
        losing trade (``profit_factor``), no ``trades`` / ``positions``
        given, or a non-positive equity before the last sample (returns
        undefined).

    Raises
    ------
    ValueError
        An empty series, a non-finite value, a time index that is not
        strictly increasing (naming the position), ``periods_per_year`` not
        > 0, or trades without the needed columns.

    Notes
    -----
    Compared with backtesting.py 0.6 on daily bars (tested): the same
    ``total_return``, ``annualized_return``, ``cagr``, ``max_drawdown_pct``,
    drawdown duration, win rate and downside deviation. It differs by
    convention in: Sharpe (its ``(annualized geometric return - rf) /
    annualized volatility``, with a volatility of compounded daily returns,
    where ours is the arithmetic mean over the sample std, per period, times
    ``sqrt(P)``), Sortino (its numerator is the annualized geometric return),
    Calmar (annualized return over drawdown, ours CAGR), exposure (its share
    of bars, ours of time), profit factor (its sums ``ReturnPct``, ours
    ``net_pnl``) and expectancy (its mean ``ReturnPct`` is our
    ``avg_trade_return``). See docs/metrics.md.

    Examples
    --------
    >>> eq = pd.Series([100.0, 110.0, 99.0, 108.9],
    ...                index=pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]))
    >>> m = performance(eq)
    >>> m["periods_per_year"], round(m["total_return"], 6)  # 108.9 / 100 - 1
    (252.0, 0.089)
    >>> round(m["max_drawdown"], 6), round(m["max_drawdown_pct"], 6)  # 110 -> 99
    (11.0, 0.1)
    >>> m["max_drawdown_duration_ns"] / 86_400e9  # from Jan 2 to the end, not recovered
    2.0
    """
    if not isinstance(equity, pd.Series):
        raise TypeError(f"equity must be a pandas Series indexed by time, got {type(equity).__name__}")
    ts = _ns(equity.index, "equity.index")
    eq = equity.to_numpy(dtype=np.float64)
    if len(eq) == 0:
        raise ValueError("equity has no samples")
    bad = np.flatnonzero(~np.isfinite(eq))
    if len(bad):
        raise ValueError(f"equity[{int(bad[0])}] = {eq[bad[0]].item()!r} must be finite")
    back = np.flatnonzero(np.diff(ts) <= 0)
    if len(back):
        i = int(back[0]) + 1
        raise ValueError(f"equity.index[{i}] = {ts[i]} is not after the previous {ts[i - 1]}")
    if periods_per_year is None:
        ppy = infer_periods_per_year(ts)
    else:
        ppy = float(periods_per_year)
        if not (math.isfinite(ppy) and ppy > 0):
            raise ValueError(f"periods_per_year = {periods_per_year!r} must be finite and > 0")
    if not math.isfinite(risk_free) or risk_free <= -1.0:
        raise ValueError(f"risk_free = {risk_free!r} must be a finite annual rate > -1")

    n = len(eq) - 1
    elapsed = float(ts[-1] - ts[0])
    nan = math.nan
    e0, e1 = float(eq[0]), float(eq[-1])
    out: dict[str, float] = {"periods_per_year": ppy}
    out["total_return"] = e1 / e0 - 1.0 if e0 > 0 else nan
    out["annualized_return"] = _growth_rate(e1 / e0, ppy / n) if e0 > 0 and n else nan
    out["cagr"] = _growth_rate(e1 / e0, YEAR_NS / elapsed) if e0 > 0 and elapsed > 0 else nan

    vol = sharpe = sortino = nan
    if n >= 1 and bool(np.all(eq[:-1] > 0)):
        r = eq[1:] / eq[:-1] - 1.0
        rf_p = (1.0 + risk_free) ** (1.0 / ppy) - 1.0 if math.isfinite(ppy) else nan
        ex = r - rf_p
        # E_i / E_(i-1) - 1 carries a rounding error of about eps * (1 + |r|): a standard
        # deviation below that is noise (constant returns), not volatility
        noise = 64 * np.finfo(float).eps * (1.0 + float(np.abs(r).max(initial=0.0)))
        if n >= 2:
            std = float(np.std(r, ddof=1))
            if std > noise:
                vol = std * math.sqrt(ppy)
                sharpe = _ratio(float(ex.mean()), float(np.std(ex, ddof=1))) * math.sqrt(ppy)
        downside = math.sqrt(float(np.mean(np.minimum(ex, 0.0) ** 2)))
        if downside > noise:
            sortino = _ratio(float(ex.mean()), downside) * math.sqrt(ppy)
    out["volatility"] = vol
    out["sharpe"] = sharpe
    out["sortino"] = sortino

    dd_abs, dd_pct, dd_ns = _drawdowns(eq, ts)
    out["max_drawdown"] = dd_abs
    out["max_drawdown_pct"] = dd_pct
    out["max_drawdown_duration_ns"] = dd_ns
    out["calmar"] = _ratio(out["cagr"], dd_pct)

    if trades is not None:
        out.update(_trade_stats(trades))
    else:
        out.update(dict.fromkeys(TRADE_METRICS, nan))
    out["exposure"] = _exposure(positions, int(ts[0]), int(ts[-1])) if positions is not None else nan
    turnover = nan
    if trades is not None and elapsed > 0:
        if "notional" not in trades.columns:
            raise ValueError("trades has no column 'notional' (use ticktape.accounting.trades)")
        traded = float(trades["notional"].to_numpy(dtype=np.float64).sum())
        turnover = _ratio(traded, float(eq.mean())) / (elapsed / YEAR_NS)
        if float(eq.mean()) <= 0:
            turnover = nan
    out["turnover"] = turnover
    return out


def run_metrics(
    equity: dict[str, np.ndarray],
    fills: dict[str, np.ndarray],
    initial_cash: float,
    periods_per_year: float | None = None,
) -> tuple[dict[str, float], pd.DataFrame]:
    """The metrics of a run and its trades, from each symbol's equity samples
    (EQUITY_DTYPE, time order) and fills (FILL_DTYPE, event order).

    Each symbol's engine starts with ``initial_cash``; the portfolio equity
    sums the symbols' last known equity at every sample time
    (:func:`portfolio_equity`), the exposure counts the gross position.
    Trades are :func:`ticktape.accounting.trades` per symbol (marked at the
    equity samples' prices). The streaming pipeline's sink and the in-process
    backtest both call this, so a run gives the same numbers either way.

    Returns (metrics: :func:`performance` plus ``final_equity`` and
    ``final_pnl``, trades with a ``symbol`` column).
    """
    from ticktape.accounting import trades as round_trips

    symbols = list(equity)
    start = initial_cash * len(symbols)
    parts = []
    for s in symbols:
        t = round_trips(fills[s], equity[s]["ts"], equity[s]["price"])
        t.insert(0, "symbol", s)
        parts.append(t)
    trades = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    samples = [e for e in equity.values() if len(e)]
    if not samples:
        return {"final_equity": start, "final_pnl": 0.0}, trades
    if len(symbols) == 1:
        (e,) = samples
        index, total, gross = e["ts"], e["equity"], np.abs(e["position"])
    else:
        # each symbol's last known equity (initial cash before its first
        # sample) at every sample time, summed in symbol order: numpy only
        # (a pandas pivot of millions of samples took seconds and ~1 GB)
        index = np.sort(
            np.concatenate([equity[s]["ts"] for s in symbols]), kind="stable"
        )  # sorted runs: merges
        index = index[np.concatenate(([True], index[1:] != index[:-1]))] if len(index) else index
        total = np.zeros(len(index))
        gross = np.zeros(len(index))
        for s in sorted(symbols):
            e = equity[s]
            at = np.searchsorted(e["ts"], index, side="right") - 1
            have = at >= 0
            at = np.maximum(at, 0)
            total += np.where(have, e["equity"][at], initial_cash) if len(e) else initial_cash
            gross += np.where(have, np.abs(e["position"][at]), 0.0) if len(e) else 0.0
    series = pd.Series(total, index=index)
    perf = performance(
        series, trades, periods_per_year=periods_per_year, positions=pd.Series(gross, index=index)
    )
    final = float(total[-1])
    return {**perf, "final_equity": final, "final_pnl": final - start}, trades
