"""Run metrics from equity samples, and performance statistics of an equity curve.

:func:`performance` is the full report (returns, risk, drawdown, trade
statistics, exposure, turnover); every formula and convention it uses is
in its docstring and in docs/metrics.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

import ticktape._native as _native  # noqa: PLR0402 (as in ticktape.compute.accounting)
from ticktape.compute.accounting import RoundTrips
from ticktape.errors import SpecError
from ticktape.model.spec import RETURN_GRIDS, check_return_grid


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


#: The return grids :func:`performance` chooses from, coarsest first
#: (name -> width in ns; declared with the run spec's ``return_grid``).
GRIDS = RETURN_GRIDS
#: The fewest returns a grid must give to be chosen automatically.
MIN_PERIODS = 30


def grid_ns(grid: str | int | None) -> int | None:
    """The width in ns of a return grid given by name or width (None: auto, 0: every sample).

    Examples
    --------
    >>> grid_ns("hour"), grid_ns(None), grid_ns("samples"), grid_ns(5 * 60 * 10**9)
    (3600000000000, None, 0, 300000000000)
    """
    try:
        check_return_grid(int(grid) if isinstance(grid, np.integer) else grid)
    except SpecError as exc:
        raise ValueError(str(exc).replace("return_grid: must", f"grid = {grid!r} must")) from None
    if grid is None or grid == "auto":
        return None
    if grid == "samples":
        return 0
    return GRIDS[grid] if isinstance(grid, str) else int(grid)


def _rf_per_period(risk_free: float, ppy: float) -> float:
    return (1.0 + risk_free) ** (1.0 / ppy) - 1.0 if math.isfinite(ppy) else math.nan


class _GridReturns:
    """The simple returns of an equity curve on one time grid, as summed by
    the native fold (``ticktape._native.PerfCore``, native/metrics.hpp).

    The grid's points are the first sample and the last sample in each
    bucket ``[k * width, (k + 1) * width)`` that holds one (a bucket without
    a sample has no point); the returns are those of each point over the one
    before. Width 1 ns: every sample is a point. Kept: the count, mean and
    sum of squared deviations of the returns (Welford's running sums), the
    largest ``|r|``, the downside sums for each candidate
    ``periods_per_year`` (each its own per-period risk-free rate), and how
    many bucket closes fall on a Saturday or Sunday (UTC).
    """

    def __init__(self, width: int, ppys: Iterable[float], risk_free: float) -> None:
        self.width = width
        self.ppys = list(ppys)
        self.rf = [_rf_per_period(risk_free, p) for p in self.ppys]
        self.sums: dict[str, Any] = {}  # the native fold's, at the end

    @property
    def n(self) -> int:
        return int(self.sums["n"])

    @property
    def adjacent(self) -> int:
        return int(self.sums["adjacent"])

    def ppy(self, given: float | None) -> float:
        """Periods per year of the grid: ``given``, else by the width (below a
        day: calendar time; a day or more: 252 trading days a year unless more
        than 0.6 x 2/7 of the buckets fall on a weekend, then 365.25)."""
        if given is not None:
            return float(given)
        if self.width < DAY_NS:
            return YEAR_NS / self.width
        closes, weekend = self.sums["closes"], self.sums["weekend"]
        every_day = closes and weekend / closes > 0.6 * 2 / 7
        return YEAR_NS / self.width if every_day else TRADING_DAYS * DAY_NS / self.width

    def risk(self, ppy: float) -> dict[str, float]:
        """volatility, sharpe and sortino of the returns with ``ppy`` periods a year."""
        s = self.sums
        n, mean, m2 = int(s["n"]), float(s["mean"]), float(s["m2"])
        vol = sharpe = sortino = math.nan
        if n >= 1 and not s["nonpositive"] and math.isfinite(ppy):
            # E_i / E_(i-1) - 1 carries a rounding error of about eps * (1 + |r|): a standard
            # deviation below that is noise (constant returns), not volatility
            noise = 64 * np.finfo(float).eps * (1.0 + s["abs_r"])
            k = self.ppys.index(ppy)
            rf = self.rf[k]
            if n >= 2:
                std = math.sqrt(m2 / (n - 1))
                if std > noise:
                    vol = std * math.sqrt(ppy)
                    sharpe = _ratio(mean - rf, std) * math.sqrt(ppy)
            downside = math.sqrt(s["down"][k] / n)
            if downside > noise:
                sortino = _ratio(mean - rf, downside) * math.sqrt(ppy)
        return {"volatility": vol, "sharpe": sharpe, "sortino": sortino}


#: Trades per block of :class:`TradeStats` (the sums of at most this many
#: trades of one symbol are those of whole arrays).
TRADE_BLOCK = 1 << 16


class TradeStats:
    """The trade statistics of :func:`performance` (and the traded notional
    for ``turnover``) over trades given in pieces, in O(TRADE_BLOCK) memory.

    ``add(key, trades)`` takes the next trades of one symbol
    (:func:`ticktape.compute.accounting.trades` rows in entry order; without an
    ``open`` column all count as closed), ``result()`` gives the statistics.
    Each symbol's trades are cut into blocks of :data:`TRADE_BLOCK`,
    whatever the pieces; every block is reduced to sums added in order, and
    the symbols' sums are added in sorted order: the result depends only on
    the trades, never on how they were cut.
    """

    _SUMS = (
        "closed",
        "wins",
        "win_sum",
        "losses",
        "loss_sum",
        "net_sum",
        "returns",
        "return_sum",
        "notional",
    )

    def __init__(self) -> None:
        self._pending: dict[Any, list[np.ndarray]] = {}  # key -> rows (closed, net, return, notional)
        self._sums: dict[Any, dict[str, float]] = {}
        self._open = 0
        self._notional = True  # every piece had a notional column

    def add(self, key: Any, trades: pd.DataFrame | dict[str, np.ndarray]) -> None:
        """The next trades (in entry order) of the symbol ``key``: a frame or
        a dict of columns (:meth:`ticktape.compute.accounting.RoundTrips.settled_columns`)."""
        cols = trades.columns if isinstance(trades, pd.DataFrame) else trades.keys()
        for col in ("net_pnl", "return_pct"):
            if col not in cols:
                raise ValueError(f"trades has no column {col!r} (use ticktape.compute.accounting.trades)")
        n_rows = len(trades["net_pnl"])
        is_open = np.asarray(trades["open"], dtype=bool) if "open" in cols else np.zeros(n_rows, bool)
        net = np.asarray(trades["net_pnl"], dtype=np.float64)
        bad = np.flatnonzero(~is_open & ~np.isfinite(net))
        if len(bad):
            i = int(bad[0])
            row = trades.index[i] if isinstance(trades, pd.DataFrame) else i
            raise ValueError(f"trades.net_pnl at row {row!r} = {net[i].item()!r} must be finite")
        if "notional" in cols:
            notional = np.asarray(trades["notional"], dtype=np.float64)
        else:
            self._notional, notional = False, np.zeros(n_rows)
        self._open += int(is_open.sum())
        rows = np.stack((~is_open, net, np.asarray(trades["return_pct"], dtype=np.float64), notional))
        self._pending.setdefault(key, []).append(rows)
        self._sums.setdefault(key, dict.fromkeys(self._SUMS, 0.0))
        while sum(p.shape[1] for p in self._pending[key]) >= TRADE_BLOCK:
            self._reduce(key, TRADE_BLOCK)

    def _reduce(self, key: Any, n: int | None = None) -> None:
        """Fold the first n pending trades of ``key`` (one block; all if None)."""
        rows = np.concatenate(self._pending[key], axis=1)
        n = rows.shape[1] if n is None else n
        self._pending[key] = [rows[:, n:]] if n < rows.shape[1] else []
        closed, net, ret, notional = rows[:, :n]
        closed = closed.astype(bool)
        net, ret = net[closed], ret[closed]
        ret = ret[~np.isnan(ret)]  # as pandas' mean: NaN returns are skipped
        wins, losses = net[net > 0], net[net < 0]
        s = self._sums[key]
        for name, value in (
            ("closed", len(net)),
            ("wins", len(wins)),
            ("win_sum", float(wins.sum())),
            ("losses", len(losses)),
            ("loss_sum", float(losses.sum())),
            ("net_sum", float(net.sum())),
            ("returns", len(ret)),
            ("return_sum", float(ret.sum())),
            ("notional", float(notional.sum())),
        ):
            s[name] += value

    def _total(self) -> dict[str, float]:
        for key in self._pending:
            if self._pending[key]:
                self._reduce(key)
        total = dict.fromkeys(self._SUMS, 0.0)
        for key in sorted(self._sums):
            for name, value in self._sums[key].items():
                total[name] += value
        return total

    @property
    def notional(self) -> float:
        """Σ notional of every trade given (``turnover``'s numerator)."""
        if not self._notional:
            raise ValueError("trades has no column 'notional' (use ticktape.compute.accounting.trades)")
        return self._total()["notional"]

    def result(self) -> dict[str, float]:
        t = self._total()
        n = int(t["closed"])

        def mean(total: float, count: float) -> float:
            return total / count if count else math.nan

        return {
            "n_trades": float(n),
            "n_open_trades": float(self._open),
            "win_rate": _ratio(t["wins"], n),
            "profit_factor": _ratio(t["win_sum"], -t["loss_sum"]),
            "expectancy": mean(t["net_sum"], n),
            "avg_trade_return": mean(t["return_sum"], t["returns"]),
            "avg_win": mean(t["win_sum"], t["wins"]),
            "avg_loss": mean(t["loss_sum"], t["losses"]),
        }

    @classmethod
    def of(cls, trades: pd.DataFrame) -> TradeStats:
        """The statistics of a trades frame (per ``symbol`` when it has that column)."""
        acc = cls()
        if "symbol" in trades.columns:
            for key, group in trades.groupby("symbol", sort=True):
                acc.add(key, group)
        else:
            acc.add("", trades)
        return acc


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
    grid: str | int | None = None,
) -> dict[str, float]:
    """Performance statistics of an equity curve (and its trades).

    Parameters
    ----------
    equity
        Equity values indexed by time (int64 ns since the epoch, or
        datetimes; naive = UTC), strictly increasing, finite. The risk
        statistics use the returns ``r_i = E_i / E_{i-1} - 1`` of its points
        on the return grid (``grid``).
    trades
        Round trips from :func:`ticktape.compute.accounting.trades` (columns
        ``net_pnl``, ``return_pct``, ``open``, ``notional``), or None.
    periods_per_year
        Annualization factor; None: that of the grid (a grid narrower than a
        day: calendar time, ``Y / width``; a day or wider: 252 trading days
        a year, or 365.25 when more than 0.6 x 2/7 of its buckets fall on a
        weekend; every sample: :func:`infer_periods_per_year`). Always
        returned.
    risk_free
        Annual risk-free rate, as a fraction; per period it is
        ``rf_p = (1 + risk_free) ** (1 / periods_per_year) - 1``.
    positions
        Position over time (a step function: each value holds until the
        next index), for ``exposure``; or None.
    grid
        The return grid: ``"day"``, ``"hour"``, ``"minute"``, ``"second"``,
        a width in ns, ``"samples"`` (every sample a point), or None /
        ``"auto"``: the coarsest of day, hour, minute, second that gives at
        least :data:`MIN_PERIODS` returns, at least half of them from one
        bucket to the next (not a grid finer than the samples), else every
        sample. A grid's points
        are the first sample and the last sample of each bucket
        ``[k * width, (k + 1) * width)`` (UTC) holding one; a bucket without
        a sample is no point (no zero return is made up for it).

    Returns
    -------
    dict[str, float]
        With ``n`` returns on the grid, ``E_0`` / ``E_N`` the first / last
        equity, ``T`` the elapsed time ``ts_N - ts_0``, ``P`` periods per
        year, ``Y`` = 365.25 days:

        * ``return_grid_ns``: the grid's width (0: every sample);
          ``return_periods``: ``n``;
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
    >>> m["return_grid_ns"], m["return_periods"]  # 3 returns: too few for a grid, every sample
    (0.0, 3.0)
    >>> round(m["max_drawdown"], 6), round(m["max_drawdown_pct"], 6)  # 110 -> 99
    (11.0, 0.1)
    >>> m["max_drawdown_duration_ns"] / 86_400e9  # from Jan 2 to the end, not recovered
    2.0
    >>> minutes = pd.Series(100 + np.arange(600.0), index=pd.date_range("2024-01-01", periods=600, freq="min"))
    >>> m = performance(minutes)  # 10 hours: 10 hourly returns, too few; 599 by the minute
    >>> m["return_grid_ns"] / 60e9, m["return_periods"], m["periods_per_year"]
    (1.0, 599.0, 525960.0)
    """
    if not isinstance(equity, pd.Series):
        raise TypeError(f"equity must be a pandas Series indexed by time, got {type(equity).__name__}")
    ts = _ns(equity.index, "equity.index")
    stream = PerformanceStream(periods_per_year, risk_free, grid)
    stream.add(ts, equity.to_numpy(dtype=np.float64))
    exposure = None
    if positions is not None and len(ts):
        exposure = _exposure(positions, int(ts[0]), int(ts[-1]))
    return stream.result(trades, exposure=exposure)


#: Samples per block of :class:`PerformanceStream` (a series of at most this
#: many samples is one block: the statistics are then exactly those of whole
#: arrays). 2^16: a block's temporaries are a few MB (2^20 cost a worker
#: 110 MB more at the end of runs of a million samples or more).
BLOCK = 1 << 16


class PerformanceStream:
    """:func:`performance` of an equity curve given in pieces, in O(BLOCK) memory.

    ``add(ts, equity, gross=None)`` takes the next samples (time strictly
    increasing across calls; ``gross`` = the absolute position held from
    each sample to the next, for ``exposure``); ``result(trades)`` returns
    the statistics. The samples are folded one by one, in time order, by
    native code (``ticktape._native.PerfCore``, native/metrics.hpp): sums,
    extremes, the running peak, the current drawdown spell and the returns'
    running mean and squared deviations (Welford) carry from sample to
    sample, so the result depends only on the samples, never on how they
    were cut. The returns are kept on every candidate return grid at once
    (``grid``: see :func:`performance`), and the grid is chosen at the end.
    With every sample as a point, ``periods_per_year=None`` is inferred
    from the first block (:func:`infer_periods_per_year`: the median spacing
    of the first ``BLOCK`` samples, which are held until then).
    """

    def __init__(
        self, periods_per_year: float | None = None, risk_free: float = 0.0, grid: str | int | None = None
    ) -> None:
        self._grid = grid_ns(grid)
        if periods_per_year is not None:
            ppy = float(periods_per_year)
            if not (math.isfinite(ppy) and ppy > 0):
                raise ValueError(f"periods_per_year = {periods_per_year!r} must be finite and > 0")
        if not math.isfinite(risk_free) or risk_free <= -1.0:
            raise ValueError(f"risk_free = {risk_free!r} must be a finite annual rate > -1")
        self._ppy_given = periods_per_year
        self._risk_free = risk_free
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
        self._n_pending = 0
        self._added = 0  # samples given so far (for error indices)
        self._last_added: int | None = None
        # the returns on each candidate grid (the samples' own joins at the first block)
        widths = list(GRIDS.values()) if self._grid is None else [self._grid] if self._grid else []
        given = None if periods_per_year is None else [float(periods_per_year)]
        self._grids = [
            _GridReturns(
                w,
                given or ([YEAR_NS / w] if w < DAY_NS else [YEAR_NS / w, TRADING_DAYS * DAY_NS / w]),
                risk_free,
            )
            for w in widths
        ]
        self._every: _GridReturns | None = None  # every sample a point (the fallback)
        self._core: Any = None  # the native fold, built with the first block
        self._gross: bool | None = None  # gross given with the samples

    def add(self, ts: np.ndarray, equity: np.ndarray, gross: np.ndarray | None = None) -> None:
        """The next samples: int64 ns times, equity and (optionally) gross position."""
        ts = np.asarray(ts, dtype=np.int64)
        eq = np.asarray(equity, dtype=np.float64)
        if len(ts) != len(eq) or (gross is not None and len(gross) != len(eq)):
            raise ValueError("ts, equity and gross must have one length")
        if self._gross is None and (self._added == 0):
            self._gross = gross is not None
        elif self._gross != (gross is not None):
            raise ValueError("give gross with every piece or with none")
        bad = np.flatnonzero(~np.isfinite(eq))
        if len(bad):
            i = int(bad[0])
            raise ValueError(f"equity[{self._added + i}] = {eq[i].item()!r} must be finite")
        if gross is not None:
            gross = np.asarray(gross, dtype=np.float64)
            bad = np.flatnonzero(~np.isfinite(gross))
            if len(bad):
                i = int(bad[0])
                raise ValueError(f"positions[{self._added + i}] = {gross[i].item()!r} must be finite")
        if len(ts):
            prev = np.concatenate(([self._last_added], ts[:-1])) if self._last_added is not None else None
            back = np.flatnonzero(ts <= prev) if prev is not None else np.flatnonzero(np.diff(ts) <= 0) + 1
            if len(back):
                i = int(back[0])
                before = self._last_added if i == 0 else int(ts[i - 1])
                raise ValueError(
                    f"equity.index[{self._added + i}] = {ts[i]} is not after the previous {before}"
                )
            self._last_added = int(ts[-1])
        self._added += len(ts)
        if self._core is not None:
            self._core.add(ts, eq, gross)
            return
        self._pending.append((ts, eq, gross))
        self._n_pending += len(ts)
        if self._n_pending >= BLOCK:
            self._start()

    def _start(self) -> None:
        """Build the native fold from the first block of the held samples
        (every sample's periods per year is inferred from it) and fold them all."""
        ts = np.concatenate([p[0] for p in self._pending])
        eq = np.concatenate([p[1] for p in self._pending])
        gross = np.concatenate([p[2] for p in self._pending]) if self._gross else None
        self._pending, self._n_pending = [], 0
        if self._grid is None or self._grid == 0:
            ppy = infer_periods_per_year(ts[:BLOCK]) if self._ppy_given is None else float(self._ppy_given)
            self._every = _GridReturns(1, [ppy], self._risk_free)
            self._every_ppy = ppy
        grids = self._grids + ([self._every] if self._every else [])
        self._core = _native.PerfCore([(g.width, g.rf) for g in grids])
        self._core.add(ts, eq, gross)

    def _choose(self) -> tuple[_GridReturns, float]:
        """The return grid and its periods per year: the one asked for; or
        (auto) the coarsest of :data:`GRIDS` that gives at least
        :data:`MIN_PERIODS` returns, at least half of them from one bucket to
        the next (a grid finer than the samples leaves most buckets empty),
        else every sample (periods per year by its spacing)."""
        if self._grid:
            return self._grids[0], self._grids[0].ppy(self._ppy_given)
        for g in self._grids:
            if g.n >= MIN_PERIODS and 2 * g.adjacent >= g.n:
                return g, g.ppy(self._ppy_given)
        assert self._every is not None  # (auto, or "samples": built with the first block)
        return self._every, self._every_ppy

    def result(
        self, trades: pd.DataFrame | TradeStats | None = None, exposure: float | None = None
    ) -> dict[str, float]:
        """The statistics of every sample given (see :func:`performance`),
        with those of ``trades`` (a frame or a :class:`TradeStats`);
        ``exposure`` overrides the one of ``gross``."""
        if self._core is None and self._n_pending:
            self._start()
        core = self._core
        if core is None or not core.samples:
            raise ValueError("equity has no samples")
        core.finish()
        grids = self._grids + ([self._every] if self._every else [])
        for k, g in enumerate(grids):
            g.sums = core.grid(k)
        chosen, ppy = self._choose()
        n = chosen.n
        elapsed = float(core.last_ts - core.first_ts)
        nan = math.nan
        e0, e1 = float(core.e0), float(core.e1)
        out: dict[str, float] = {
            "periods_per_year": ppy,
            "return_grid_ns": float(chosen.width if chosen is not self._every else 0),
            "return_periods": float(n),
        }
        out["total_return"] = e1 / e0 - 1.0 if e0 > 0 else nan
        out["annualized_return"] = _growth_rate(e1 / e0, ppy / n) if e0 > 0 and n else nan
        out["cagr"] = _growth_rate(e1 / e0, YEAR_NS / elapsed) if e0 > 0 and elapsed > 0 else nan

        out.update(chosen.risk(ppy))

        longest = int(core.longest)
        if core.under:
            longest = max(longest, core.last_ts - core.spell_from)
        out["max_drawdown"] = float(core.dd_abs)
        out["max_drawdown_pct"] = float(core.dd_pct)
        out["max_drawdown_duration_ns"] = float(longest)
        out["calmar"] = _ratio(out["cagr"], out["max_drawdown_pct"])

        stats = TradeStats.of(trades) if isinstance(trades, pd.DataFrame) else trades
        if stats is not None:
            out.update(stats.result())
        else:
            out.update(dict.fromkeys(TRADE_METRICS, nan))
        if exposure is None and self._gross:
            exposure = float(core.held_ns) / elapsed if elapsed > 0 else nan
        out["exposure"] = nan if exposure is None else exposure
        turnover = nan
        mean_eq = core.eq_sum / core.samples
        if stats is not None and elapsed > 0:
            traded = stats.notional
            turnover = _ratio(traded, mean_eq) / (elapsed / YEAR_NS)
            if mean_eq <= 0:
                turnover = nan
        out["turnover"] = turnover
        return out


def run_metrics(
    equity: dict[str, np.ndarray],
    fills: dict[str, np.ndarray],
    initial_cash: float,
    periods_per_year: float | None = None,
    grid: str | int | None = None,
) -> tuple[dict[str, float], pd.DataFrame]:
    """The metrics of a run and its trades, from each symbol's equity samples
    (EQUITY_DTYPE, time order) and fills (FILL_DTYPE, event order).

    Each symbol's engine starts with ``initial_cash``; the portfolio equity
    sums the symbols' last known equity at every sample time
    (:func:`portfolio_equity`), the exposure counts the gross position.
    Trades are :func:`ticktape.compute.accounting.trades` per symbol (marked at the
    equity samples' prices). The in-process backtest calls this; the
    streaming pipeline's sink feeds the same :class:`RunMetrics` from the
    store in pieces, so a run gives the same numbers either way.

    Returns (metrics: :func:`performance` plus ``final_equity`` and
    ``final_pnl``, trades with a ``symbol`` column).
    """
    acc = RunMetrics(list(fills), initial_cash, periods_per_year, grid=grid)
    for symbol, f in fills.items():
        acc.add_fills(symbol, f)
    order = sorted(equity)
    parts = [equity[s] for s in order]
    if any(len(p) for p in parts):
        rows = np.concatenate(parts)
        sym = np.repeat(np.arange(len(order), dtype=np.int64), [len(p) for p in parts])
        # the store's order: time, then symbol (ties keep each symbol's sample order)
        at = np.lexsort((sym, rows["ts"]))
        acc.add(rows["ts"][at], sym[at], rows["equity"][at], rows["position"][at], rows["price"][at])
    return acc.result()


class RunMetrics:
    """:func:`run_metrics` over fills and equity samples given in pieces, in
    memory independent of the run's length.

    ``RunMetrics(symbols, initial_cash, periods_per_year, keep_trades)``,
    then, in time order, ``add_fills(symbol, fills)`` with the next fills
    (FILL_DTYPE, event order) of a symbol and ``add(ts, sym, equity,
    position, price)`` with the next samples of all symbols merged in order
    of (ts, symbol) (``sym`` indexes ``symbols``, the sorted symbols), the
    fills of a time before the samples of a later time; then ``result()``.
    The portfolio is computed per distinct time as the samples arrive (the
    samples at the latest time of a piece wait for the next piece, which
    may hold more of them); each symbol's round trips settle as the marks
    pass them (:class:`ticktape.compute.accounting.RoundTrips`) and go into
    :class:`TradeStats`; so the result is independent of how fills and
    samples were cut. With ``keep_trades=False`` the settled trades are not
    kept (``result()`` then returns an empty trades frame): memory is then
    O(BLOCK + TRADE_BLOCK + the fills after the latest sample).
    """

    def __init__(
        self,
        symbols: Iterable[str],
        initial_cash: float,
        periods_per_year: float | None = None,
        keep_trades: bool = True,
        grid: str | int | None = None,
    ):
        self.symbols = sorted(symbols)
        self._index = {s: j for j, s in enumerate(self.symbols)}
        self._initial_cash = float(initial_cash)
        self._trips = [RoundTrips() for _ in self.symbols]
        self._stats = TradeStats()
        self._kept: list[list[pd.DataFrame]] | None = [[] for _ in self.symbols] if keep_trades else None
        self._perf = PerformanceStream(periods_per_year, grid=grid)
        self._eq = np.full(len(self.symbols), self._initial_cash)  # last known equity per symbol
        self._gross = np.zeros(len(self.symbols))  # last known |position| per symbol
        self._held: tuple[np.ndarray, ...] | None = None  # samples at the latest time seen
        self._final = math.nan

    def add_fills(self, symbol: str, fills: np.ndarray) -> None:
        """The next fills of ``symbol`` (one of the symbols)."""
        if symbol not in self._index:
            raise ValueError(f"fills of {symbol!r}, which is not one of the run's symbols {self.symbols}")
        self._trips[self._index[symbol]].add_fills(fills)

    def _settle(self, j: int, trades: pd.DataFrame) -> None:
        self._stats.add(self.symbols[j], trades)
        if self._kept is not None and len(trades):
            self._kept[j].append(trades)

    def add(
        self, ts: np.ndarray, sym: np.ndarray, equity: np.ndarray, position: np.ndarray, price: np.ndarray
    ) -> None:
        """The next merged samples (ts non-decreasing, then sym)."""
        cols = tuple(np.asarray(c) for c in (ts, sym, equity, position, price))
        if not len(cols[0]):
            return
        if self._held is not None:
            cols = tuple(np.concatenate((h, c)) for h, c in zip(self._held, cols, strict=True))
        cut = int(np.searchsorted(cols[0], cols[0][-1], side="left"))
        self._held = tuple(c[cut:].copy() for c in cols)  # (a view would keep all of cols alive)
        self._fold(*(c[:cut] for c in cols))

    def _fold(
        self, ts: np.ndarray, sym: np.ndarray, equity: np.ndarray, position: np.ndarray, price: np.ndarray
    ) -> None:
        if not len(ts):
            return
        ends = np.flatnonzero(np.concatenate((ts[1:] != ts[:-1], [True])))  # last sample of each time
        total = np.zeros(len(ends))
        gross = np.zeros(len(ends))
        for j in range(len(self.symbols)):  # summed in symbol order
            mine = np.flatnonzero(sym == j)
            if len(mine):
                self._trips[j].mark(ts[mine], price[mine])
            k = np.searchsorted(mine, ends, side="right") - 1
            have = k >= 0
            take = mine[np.maximum(k, 0)] if len(mine) else np.zeros(len(ends), np.int64)
            total += np.where(have, equity[take], self._eq[j]) if len(mine) else self._eq[j]
            gross += np.where(have, np.abs(position[take]), self._gross[j]) if len(mine) else self._gross[j]
            if len(mine):
                self._eq[j] = equity[mine[-1]]
                self._gross[j] = abs(position[mine[-1]])
                self._settle(j, self._trips[j].settled())
        self._perf.add(ts[ends], total, gross)
        self._final = float(total[-1])

    def result(self) -> tuple[dict[str, float], pd.DataFrame]:
        """(metrics, trades) of every sample given."""
        if self._held is not None:
            self._fold(*self._held)
            self._held = None
        parts = []
        for j, (s, trips) in enumerate(zip(self.symbols, self._trips, strict=True)):
            rest = trips.frame()
            self._settle(j, rest)  # (kept with the others)
            t = pd.concat(self._kept[j]) if self._kept and self._kept[j] else rest.iloc[:0]
            t.insert(0, "symbol", s)
            parts.append(t)
        trades = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        start = self._initial_cash * len(self.symbols)
        if math.isnan(self._final):  # no samples
            return {"final_equity": start, "final_pnl": 0.0}, trades
        perf = self._perf.result(self._stats)
        return {**perf, "final_equity": self._final, "final_pnl": self._final - start}, trades
