"""The sections of one stored run's report: what it is, its metrics, equity
and drawdown, returns by month (or day, hour, minute), rolling Sharpe, trades,
exposure, parameters and the data it ran on.

Series are resampled by the store to a grid of at most :data:`MAX_POINTS`
buckets (:func:`grid_width`), so a report is a few MB whatever the run's
length; the metrics table is the run's own
(computed over every sample when the run ended), under the human labels of
:mod:`ticktape.compute.labels`.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ticktape.compute import labels
from ticktape.compute.accounting import trades as round_trips
from ticktape.compute.metrics import DAY_NS, MIN_PERIODS, TRADING_DAYS, YEAR_NS
from ticktape.model.spec import EngineConfig
from ticktape.report.document import Section
from ticktape.store.report import equity_on_grid, equity_span
from ticktape.store.results import read_results
from ticktape.store.runs import json_value, run_progress, run_with_metrics

#: The most buckets a report's series have (one point per bucket and symbol).
MAX_POINTS = 4_000
_S = 10**9
#: Widths the series are resampled to, narrowest first; each divides a day,
#: so every day and month starts on a bucket's edge.
_SECONDS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200, 86_400)
WIDTHS_NS = tuple(k * _S for k in _SECONDS)
_HOUR = 3_600 * _S
#: Colours: gains, losses, the equity line.
UP, DOWN, LINE = "#2e9d5b", "#d64545", "#1f5fa8"
_ENGINE_FIELDS = {f.name for f in fields(EngineConfig)}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def grid_width(span_ns: int, max_points: int = MAX_POINTS) -> int:
    """The width the report resamples a run's series to: the narrowest of
    :data:`WIDTHS_NS` that cuts ``span_ns`` into at most ``max_points``
    buckets (a day at most: 20 years of days are about 7,300 buckets).

    >>> grid_width(3_600 * 10**9) // 10**9  # an hour: 1 s buckets
    1
    >>> grid_width(3 * 86_400 * 10**9) // 10**9  # 3 days: 2 min (4,000 x 1 min would not cover them)
    120
    >>> grid_width(20 * 365 * 86_400 * 10**9) // 86_400_000_000_000  # 20 years: days
    1
    """
    return next((w for w in WIDTHS_NS if span_ns // w < max_points), WIDTHS_NS[-1])


@dataclass(frozen=True)
class Curve:
    """A run's portfolio on a time grid: one point per bucket holding a sample.

    ``ts`` is the time of the bucket's last sample (of any symbol);
    ``equity`` the sum over symbols of each symbol's last equity at or
    before it (``initial_cash`` before a symbol's first sample), as
    :func:`ticktape.compute.metrics.portfolio_equity` sums them;
    ``positions`` each symbol's position then; ``gross`` the sum of
    ``|position x price|``.
    """

    width: int
    ts: np.ndarray
    equity: np.ndarray
    gross: np.ndarray
    positions: dict[str, np.ndarray]

    def times(self, ts: np.ndarray | None = None) -> pd.DatetimeIndex:
        """``ts`` (default the points' times) as UTC datetimes, for an axis."""
        return pd.to_datetime(self.ts if ts is None else ts, unit="ns", utc=True)


def portfolio_curve(grid: dict[str, np.ndarray], width: int, initial_cash: float) -> Curve:
    """The portfolio :class:`Curve` from each symbol's last sample per bucket
    (:func:`ticktape.store.report.equity_on_grid`'s arrays).

    Examples
    --------
    >>> g = {"symbol": np.array(["A", "B", "A"], dtype=object), "ts": np.array([5, 7, 12]),
    ...      "equity": np.array([101.0, 99.0, 103.0]), "position": np.array([1.0, -2.0, 0.0]),
    ...      "price": np.array([10.0, 20.0, 11.0])}
    >>> c = portfolio_curve(g, 10, 100.0)  # buckets [0, 10): A 101, B 99; [10, 20): A 103, B still 99
    >>> c.ts.tolist(), c.equity.tolist(), c.gross.tolist()
    ([7, 12], [200.0, 202.0], [50.0, 40.0])
    """
    frame = pd.DataFrame(
        {
            "bucket": grid["ts"] // width,
            "ts": grid["ts"],
            "symbol": grid["symbol"],
            "equity": grid["equity"],
            "position": grid["position"],
            "price": grid["price"],
        }
    )
    if frame.empty:
        empty = np.zeros(0)
        return Curve(width, np.zeros(0, np.int64), empty, empty, {})

    def wide(column: str) -> pd.DataFrame:  # bucket x symbol, carried forward
        return (
            frame.pivot_table(index="bucket", columns="symbol", values=column, aggfunc="last", dropna=False)
            .sort_index()
            .ffill()
        )

    ts = frame.groupby("bucket")["ts"].max().sort_index().to_numpy(np.int64)
    equity = wide("equity").fillna(initial_cash)
    position = wide("position").fillna(0.0)
    gross = (position * wide("price")).abs().fillna(0.0).sum(axis=1)
    return Curve(
        width,
        ts,
        equity.sum(axis=1).to_numpy(np.float64),
        gross.to_numpy(np.float64),
        {str(s): position[s].to_numpy(np.float64) for s in position.columns},
    )


def period_of(span_ns: int, width: int) -> str:
    """The period the returns heatmap shows: ``month`` for a run of more
    than 92 days, ``day`` for more than 14 days, ``hour`` for more than 6
    hours, else ``minute`` (never finer than the grid).

    >>> period_of(400 * 86_400 * 10**9, 86_400 * 10**9), period_of(20 * 86_400 * 10**9, 3_600 * 10**9)
    ('month', 'day')
    >>> period_of(86_400 * 10**9, 60 * 10**9), period_of(86_400 * 10**9, 86_400 * 10**9)
    ('hour', 'day')
    >>> period_of(3_600 * 10**9, 10**9), period_of(3_600 * 10**9, 300 * 10**9)
    ('minute', 'hour')
    """
    if span_ns > 92 * DAY_NS:
        return "month"
    if span_ns > 14 * DAY_NS or width > _HOUR:
        return "day"
    if span_ns > 6 * _HOUR or width > 60 * _S:
        return "hour"
    return "minute"


def period_returns(ts: np.ndarray, equity: np.ndarray, start: float, period: str) -> pd.Series:
    """The return of each ``period`` (``month``, ``day``, ``hour``, ``minute``, UTC)
    holding a point: its last equity over the last equity of the period
    before that holds one (``start`` before the first), minus 1. Periods
    without a point have no return (none is made up), so compounding them
    all gives the total return from ``start``.

    Returns a Series indexed by the periods' starts (UTC timestamps).

    >>> day = 86_400 * 10**9
    >>> r = period_returns(np.array([day // 2, day + 1, 3 * day]), np.array([110.0, 99.0, 118.8]), 100.0, "day")
    >>> [round(x, 6) for x in r.tolist()], r.index.strftime("%d").tolist()
    ([0.1, -0.1, 0.2], ['01', '02', '04'])
    """
    freq = {"month": "M", "day": "D", "hour": "h", "minute": "min"}[period]
    when = pd.to_datetime(ts, unit="ns", utc=True).tz_localize(None).to_period(freq)
    last = pd.Series(equity, index=when).groupby(level=0).last()
    before = np.concatenate(([start], last.to_numpy()[:-1]))
    starts = pd.PeriodIndex(last.index).to_timestamp().tz_localize("UTC")
    return pd.Series(last.to_numpy() / before - 1.0, index=starts)


def percent(v: float, bound: float) -> str:
    """A heatmap cell (a return in %) with enough decimals to tell cells
    whose largest is ``bound`` apart; blank for NaN, never ``-0.00``.

    >>> percent(1.234, 5.0), percent(0.01234, 0.02), percent(-0.00001, 0.02), percent(float("nan"), 1.0)
    ('1.23', '0.0123', '0.0000', '')
    """
    if math.isnan(v):
        return ""
    digits = 2 if bound >= 0.5 else 3 if bound >= 0.05 else 4
    shown = f"{v:.{digits}f}"
    return shown[1:] if shown.startswith("-") and float(shown) == 0 else shown


def periods_per_year(width: int, metrics: dict[str, Any]) -> float:
    """Periods a year of the report's grid: the run's ``periods_per_year``
    scaled from its return grid to ``width`` when the run has both, else
    by calendar time (a grid under a day) or 252 trading days.

    >>> periods_per_year(3_600 * 10**9, {"return_grid_ns": 60e9, "periods_per_year": 525_960.0})
    8766.0
    >>> periods_per_year(86_400 * 10**9, {})
    252.0
    """
    grid, ppy = metrics.get("return_grid_ns"), metrics.get("periods_per_year")
    if grid and ppy and math.isfinite(grid) and math.isfinite(ppy) and grid > 0:
        return float(ppy) * float(grid) / width
    return YEAR_NS / width if width < DAY_NS else float(TRADING_DAYS)


def rolling_sharpe(equity: np.ndarray, window: int, ppy: float) -> np.ndarray:
    """Annualised Sharpe (risk-free 0) of the last ``window`` returns of the
    points, at each point from the ``window``-th return on (NaN before,
    and where the returns do not vary).

    >>> eq = 100 * np.cumprod(1 + np.tile([0.01, -0.005], 10))
    >>> s = rolling_sharpe(eq, 4, 252.0)
    >>> bool(np.isnan(s[:3]).all()), round(float(s[-1]), 4)  # mean 0.0025 / std 0.00866 * sqrt(252)
    (True, 4.5826)
    """
    r = pd.Series(equity[1:] / equity[:-1] - 1.0)
    roll = r.rolling(window)
    std = roll.std()
    sharpe = roll.mean() / std.where(std > 1e-12) * math.sqrt(ppy)
    return sharpe.to_numpy(np.float64)


def rolling_window(n_returns: int, ppy: float) -> int:
    """Returns per rolling window: a tenth of the returns, at least
    :data:`~ticktape.compute.metrics.MIN_PERIODS` (a Sharpe ratio of fewer
    swings wildly) and at most half a year of periods.

    >>> rolling_window(5_000, 252.0), rolling_window(500, 252.0), rolling_window(50, 252.0)
    (126, 50, 30)
    """
    return max(MIN_PERIODS, min(n_returns // 10, round(ppy / 2)))


def last_per_bucket(ts: np.ndarray, width: int) -> np.ndarray:
    """Indices of the last of the (sorted) times ``ts`` in each ``width``-wide bucket.

    >>> last_per_bucket(np.array([1, 4, 5, 9, 12]), 5).tolist()
    [1, 3, 4]
    """
    b = ts // width
    return np.flatnonzero(np.concatenate((b[1:] != b[:-1], [True])))


async def sections(conn: asyncpg.Connection, run_id: str | uuid.UUID) -> list[Section]:
    """The report's sections of one stored run (:func:`report`'s)."""
    return (await report(conn, run_id))[1]


async def report(conn: asyncpg.Connection, run_id: str | uuid.UUID) -> tuple[str, list[Section]]:
    """The title and sections of one stored run's report (any status: a
    failed or running run shows what was stored, and says so).

    Raises
    ------
    SpecError
        ``run_id`` is no run of this store.
    """
    info = await run_progress(conn, str(run_id))  # (SpecError naming the id when there is none)
    rid = info["run"]["run_id"]
    run = await run_with_metrics(conn, rid)
    metrics = {k: (math.nan if v is None else float(v)) for k, v in run["metrics"].items()}
    spec = json_value(run["spec"]) or {}
    engine = spec.get("engine") or {}
    initial = float(engine.get("initial_cash", 0.0) or 0.0)
    symbols = list(run["symbols"] or [])
    lo, hi, n_samples = await equity_span(conn, rid)
    width = grid_width(hi - lo)
    grid = await equity_on_grid(conn, rid, width) if n_samples else None
    curve = portfolio_curve(grid, width, initial) if grid is not None else None
    fills = {s: await read_results(conn, rid, s, "fills") for s in symbols}
    trades = _trades(fills, grid)
    out = [_about(run, spec), _metrics(metrics)]
    if curve is None or not len(curve.ts):
        why = (
            " (a sweep stores signals, orders, fills and equity only for the sets it keeps: --keep-top)"
            if run["sweep_id"] is not None
            else ""
        )
        out.append(Section("Equity", notes=(f"No equity samples are stored for this run{why}.",)))
    else:
        start = initial * len(symbols) if initial else float(curve.equity[0])
        out += [
            _equity(curve, start, metrics, n_samples),
            _returns(curve, start, hi - lo),
            _rolling(curve, metrics),
        ]
    out.append(_trades_section(trades, metrics))
    if curve is not None and len(curve.ts):
        out.append(_exposure(curve, metrics))
    out += [_parameters(run, spec, metrics.get("return_grid_ns")), _coverage(run, info["symbols"])]
    heading = f"Run {str(rid)[:8]}: {run['strategy'] or 'a strategy'} on {', '.join(symbols)}"
    return heading, out


# ----------------------------------------------------------------- sections


def _when(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, datetime):
        return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S UTC")
    return pd.Timestamp(int(value), unit="ns", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC")


def _about(run: dict[str, Any], spec: dict[str, Any]) -> Section:
    rows = [
        ("run id", str(run["run_id"])),
        ("strategy", run["strategy"] or ""),
        ("symbols", ", ".join(run["symbols"] or [])),
        ("status", run["status"]),
        ("data", f"{_when(run['data_start'])} → {_when(run['data_end'])}"),
        ("created", _when(run["created_at"])),
    ]
    if run["data_start"] is not None and run["data_end"] is not None:
        rows.insert(5, ("span", labels.duration((run["data_end"] - run["data_start"]).total_seconds() * 1e9)))
    if run["sweep_id"] is not None:
        rows.append(("sweep", f"{run['sweep_id']} (set {spec.get('sweep', {}).get('index', '?')})"))
    notes: tuple[str, ...] = ()
    if run["status"] != "complete":
        why = f": {run['error']}" if run["error"] else ""
        notes = (f"This run is {run['status']}{why}. The report shows what was stored.",)
    return Section("Run", tables=(pd.DataFrame(rows, columns=["", "value"]),), notes=notes)


def _metrics(metrics: dict[str, float]) -> Section:
    if not metrics:
        return Section("Metrics", notes=("No metrics stored: a run stores them when it ends.",))
    shown = pd.DataFrame(labels.report(metrics), columns=["metric", "value"])
    notes = []
    if "return_grid_ns" in metrics:
        notes.append(
            f"Risk statistics from the returns on the {labels.show('return_grid_ns', metrics['return_grid_ns'])}"
            f" return grid: {labels.show('return_periods', metrics.get('return_periods'))} returns,"
            f" {labels.show('periods_per_year', metrics.get('periods_per_year'))} periods a year,"
            " computed over every equity sample (docs/metrics.md)."
        )
    return Section("Metrics", tables=(shown,), notes=tuple(notes))


def _equity(curve: Curve, start: float, metrics: dict[str, float], n_samples: int) -> Section:
    x = curve.times()
    peak = np.maximum.accumulate(np.concatenate(([start], curve.equity)))[1:]
    under = (curve.equity / peak - 1.0) * 100
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.68, 0.32], vertical_spacing=0.05)
    fig.add_trace(go.Scatter(x=x, y=curve.equity, name="equity", line={"color": LINE, "width": 1.5}), 1, 1)
    fig.add_hline(y=start, line={"color": "#9aa5b1", "dash": "dot", "width": 1}, row=1, col=1)
    fig.add_trace(
        go.Scatter(
            x=x,
            y=under,
            name="drawdown %",
            fill="tozeroy",
            line={"color": DOWN, "width": 1},
            showlegend=False,
        ),
        2,
        1,
    )
    fig.update_yaxes(title_text="equity", tickformat=",.0f", row=1, col=1)
    fig.update_yaxes(title_text="drawdown %", ticksuffix=" %", row=2, col=1)
    _style(fig, height=520, title="Equity and underwater drawdown")
    worst = labels.show("max_drawdown_pct", metrics.get("max_drawdown_pct"))
    return Section(
        "Equity and drawdown",
        figures=(fig,),
        notes=(
            f"Portfolio equity (the symbols' equity summed) at the last sample of each {labels.duration(curve.width)}"
            f" of event time (UTC): {len(curve.ts):,} points of {n_samples:,} samples. The dotted line is"
            f" the starting equity. Drawdown is measured on these points; the run's max drawdown over every"
            f" sample is {worst}.",
        ),
    )


def _returns(curve: Curve, start: float, span: int) -> Section:
    period = period_of(span, curve.width)
    r = period_returns(curve.ts, curve.equity, start, period)
    when = pd.DatetimeIndex(r.index)
    if period == "month":
        rows, cols = when.year.astype(str), when.month.map(lambda m: _MONTHS[m - 1])
        order = list(_MONTHS)
        years = (1 + r).groupby(when.year).prod() - 1
    elif period == "day":
        rows, cols, order = when.strftime("%Y-%m"), when.day.astype(str), [str(d) for d in range(1, 32)]
    elif period == "hour":
        rows, cols, order = when.strftime("%Y-%m-%d"), when.strftime("%H"), [f"{h:02d}" for h in range(24)]
    else:
        rows, cols, order = (
            when.strftime("%Y-%m-%d %H h"),
            when.strftime("%M"),
            [f"{m:02d}" for m in range(60)],
        )
    cells = pd.DataFrame({"row": rows, "col": cols, "r": r.to_numpy() * 100})
    table = cells.pivot_table(index="row", columns="col", values="r", aggfunc="first", sort=False)
    table = table.reindex(columns=[c for c in order if c in table.columns])
    if period == "month":  # every month of the years shown, and the year's return
        table = table.reindex(columns=list(_MONTHS))
        table["Year"] = (years.to_numpy() * 100)[: len(table)]
    z = table.to_numpy(dtype=np.float64)
    bound = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    text = [[percent(v, bound) for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(table.columns),
            y=list(table.index),
            text=text,
            texttemplate="%{text}" if z.shape[1] <= 31 and z.size <= 800 else None,  # (60 minutes: hover)
            hovertemplate="%{y} %{x}: %{z:.2f} %<extra></extra>",
            colorscale=[[0, DOWN], [0.5, "#f7f7f7"], [1, UP]],
            zmid=0,
            zmin=-bound,
            zmax=bound,
            colorbar={"title": {"text": "%"}, "ticksuffix": " %"},
            xgap=1,
            ygap=1,
        )
    )
    fig.update_xaxes(type="category", side="top")
    fig.update_yaxes(type="category", autorange="reversed")
    _style(fig, height=max(260, min(900, 90 + 26 * len(table))), title=f"Returns by {period} (%)")
    word = {"month": "Monthly", "day": "Daily", "hour": "Hourly", "minute": "Minute"}[period]
    return Section(
        f"{word} returns",
        figures=(fig,),
        notes=(
            f"{word} returns (UTC): each {period}'s last equity over the last equity of the {period} before"
            f" that holds a sample (the starting equity before the first); {period}s without a sample are"
            " blank. Compounded, they give the total return."
            + (" The Year column compounds the year's months." if period == "month" else ""),
        ),
    )


def _rolling(curve: Curve, metrics: dict[str, float]) -> Section:
    """The rolling Sharpe ratio on the run's return grid (the grid its
    Sharpe ratio is computed on), or on the chart's when that is coarser
    or the run has none."""
    grid = metrics.get("return_grid_ns", math.nan)
    width = (
        int(grid) if math.isfinite(grid) and grid >= curve.width and grid % curve.width == 0 else curve.width
    )
    at = last_per_bucket(curve.ts, width)
    ts, equity = curve.ts[at], curve.equity[at]
    n = len(ts) - 1
    if n < 2 * MIN_PERIODS:
        return Section(
            "Rolling Sharpe ratio",
            notes=(
                f"Too few returns on the {labels.duration(width)} grid ({n}) for a rolling window of"
                f" {MIN_PERIODS} or more.",
            ),
        )
    ppy = periods_per_year(width, metrics)
    window = rolling_window(n, ppy)
    sharpe = rolling_sharpe(equity, window, ppy)
    fig = go.Figure(
        go.Scatter(x=curve.times(ts[1:]), y=sharpe, name="rolling Sharpe", line={"color": LINE, "width": 1.3})
    )
    fig.add_hline(y=0, line={"color": "#9aa5b1", "width": 1})
    fig.update_yaxes(title_text="Sharpe (annualised)")
    _style(fig, height=340, title=f"Rolling Sharpe ratio over {window} returns of {labels.duration(width)}")
    which = "the run's return grid" if width == grid else "the chart's grid"
    spans = ts[window:] - ts[:-window]
    return Section(
        "Rolling Sharpe ratio",
        figures=(fig,),
        notes=(
            f"Sharpe ratio (risk-free 0) of the last {window} returns on the {labels.duration(width)} grid"
            f" ({which}; a window spans {labels.duration(float(np.median(spans)))} of event time, median),"
            f" annualised with {labels.number(round(ppy, 2))} periods a year.",
        ),
    )


def _trades(fills: dict[str, np.ndarray], grid: dict[str, np.ndarray] | None) -> pd.DataFrame:
    """Each symbol's round trips (closed and open), marked at its grid
    samples' prices (an open trade at the end: the last sample's)."""
    parts = []
    for symbol, f in fills.items():
        if not len(f):
            continue
        marks: tuple[Any, Any] = (None, None)
        if grid is not None:
            mine = grid["symbol"] == symbol
            marks = (grid["ts"][mine], grid["price"][mine])
        t = round_trips(f, *marks)
        t.insert(0, "symbol", symbol)
        parts.append(t)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _bins(values: np.ndarray, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Counts and edges of ``n`` equal bins (one bin for equal values)."""
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.histogram(values, bins=n, range=(lo, hi))


def _trades_section(trades: pd.DataFrame, metrics: dict[str, float]) -> Section:
    closed = trades[~trades["open"].astype(bool)] if len(trades) else trades
    if closed.empty:
        n_open = int((trades["open"].astype(bool)).sum()) if len(trades) else 0
        extra = f" ({n_open} still open at the end)" if n_open else ""
        return Section("Trades", notes=(f"No trades: the run closed no round trip{extra}.",))
    pnl = closed["net_pnl"].to_numpy(np.float64)
    dur = closed["duration_ns"].to_numpy(np.float64)
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("net PnL per trade", "duration per trade"), horizontal_spacing=0.1
    )
    counts, edges = _bins(pnl)
    mids = (edges[:-1] + edges[1:]) / 2
    for won, colour, name in ((True, UP, "wins"), (False, DOWN, "losses")):
        keep = (mids > 0) if won else (mids <= 0)
        fig.add_trace(
            go.Bar(
                x=mids[keep],
                y=counts[keep],
                width=float(edges[1] - edges[0]),
                name=name,
                marker_color=colour,
                hovertemplate="PnL %{x:,.2f}: %{y} trades<extra></extra>",
            ),
            1,
            1,
        )
    unit, scale = _duration_unit(float(np.median(dur)))
    dcounts, dedges = _bins(dur / scale)
    fig.add_trace(
        go.Bar(
            x=(dedges[:-1] + dedges[1:]) / 2,
            y=dcounts,
            width=float(dedges[1] - dedges[0]),
            name="duration",
            marker_color=LINE,
            showlegend=False,
            hovertemplate=f"%{{x:.3g}} {unit}: %{{y}} trades<extra></extra>",
        ),
        1,
        2,
    )
    fig.update_xaxes(title_text="net PnL (cash)", tickformat=",.4~g", row=1, col=1)
    fig.update_xaxes(title_text=f"duration ({unit})", row=1, col=2)
    fig.update_yaxes(title_text="trades", row=1, col=1)
    _style(fig, height=380, title=None)
    fig.update_layout(bargap=0, legend={"x": 0.45, "y": 1.0, "yanchor": "top", "xanchor": "right"})
    wins = pnl > 0
    stats = [
        ("closed trades", labels.number(len(closed))),
        ("open at the end", labels.number(int(trades["open"].astype(bool).sum()))),
        ("wins / losses", f"{int(wins.sum()):,} / {int((~wins).sum()):,}"),
        ("best trade", labels.show("avg_win", float(pnl.max()))),
        ("worst trade", labels.show("avg_loss", float(pnl.min()))),
        ("median net PnL", labels.show("expectancy", float(np.median(pnl)))),
        ("median duration", labels.duration(float(np.median(dur)))),
        ("longest", labels.duration(float(dur.max()))),
    ]
    by_symbol = (
        closed.groupby("symbol")
        .agg(
            trades=("net_pnl", "size"),
            net_pnl=("net_pnl", "sum"),
            win_rate=("net_pnl", lambda s: (s > 0).mean()),
        )
        .reset_index()
    )
    by_symbol = pd.DataFrame(
        {
            "symbol": by_symbol["symbol"],
            "trades": [labels.number(v) for v in by_symbol["trades"]],
            "net PnL": [labels.show("final_pnl", v) for v in by_symbol["net_pnl"]],
            "win rate": [labels.show("win_rate", v) for v in by_symbol["win_rate"]],
        }
    )
    note = (
        f"Round trips of the stored fills (a trade opens when the position leaves 0 and closes when it"
        f" returns to 0): {len(closed):,} closed, the run's metrics count"
        f" {labels.show('n_trades', metrics.get('n_trades'))}. Net PnL is after fees, in cash."
    )
    return Section(
        "Trades",
        figures=(fig,),
        tables=(pd.DataFrame(stats, columns=["", "value"]), by_symbol),
        notes=(note,),
    )


def _duration_unit(ns: float) -> tuple[str, float]:
    for unit, scale in (("days", DAY_NS), ("hours", _HOUR), ("minutes", 60 * _S)):
        if ns >= 2 * scale:
            return unit, float(scale)
    return "seconds", float(_S)


def _exposure(curve: Curve, metrics: dict[str, float]) -> Section:
    x = curve.times()
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.55, 0.45], vertical_spacing=0.06)
    for symbol, pos in curve.positions.items():
        fig.add_trace(go.Scatter(x=x, y=pos, name=symbol, line={"width": 1.2, "shape": "hv"}), 1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(curve.equity > 0, curve.gross / curve.equity * 100, np.nan)
    fig.add_trace(
        go.Scatter(
            x=x,
            y=share,
            name="gross exposure % of equity",
            fill="tozeroy",
            line={"color": "#7b61c4", "width": 1, "shape": "hv"},
        ),
        2,
        1,
    )
    fig.update_yaxes(title_text="position", row=1, col=1)
    fig.update_yaxes(title_text="% of equity", ticksuffix=" %", row=2, col=1)
    _style(fig, height=460, title="Position per symbol and gross exposure")
    return Section(
        "Exposure",
        figures=(fig,),
        notes=(
            f"Each symbol's position and the gross exposure (Σ |position × price| over equity) at the"
            f" same points as the equity. Time in the market over every sample:"
            f" {labels.show('exposure', metrics.get('exposure'))}.",
        ),
    )


#: Spec keys the parameters section shows elsewhere (or not at all).
_NOT_SPEC = frozenset({"params", "engine", "symbols", "strategy", "sweep", "run_id", "return_grid"})


def _setting(key: str, value: Any) -> tuple[str, str]:
    """A setting of the engine or the spec as (name, value): times as UTC
    dates, durations in ns as durations, nested values as ``k: v``."""
    name = (key[:-3] if key.endswith("_ns") else key).replace("_", " ")
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if value is None:
        shown = {"speed": "max", "start": "the data's first tick", "end": "the data's last tick"}.get(
            name, "none"
        )
    elif isinstance(value, dict):
        shown = ", ".join(f"{k}: {v}" for k, v in value.items())
    elif number and key in ("start_ns", "end_ns"):
        shown = _when(value)
    elif number and key.endswith("_ns"):
        shown = "off" if value < 0 else f"{value:g} ns" if 0 < value < 1_000 else labels.duration(value)
    elif number and key == "initial_cash":
        shown = labels.show("final_equity", value)
    elif number and key == "speed":
        shown = f"{labels.number(value)} x real time"
    else:
        shown = labels.number(value) if number else str(value)
    return name, shown


def _parameters(run: dict[str, Any], spec: dict[str, Any], metrics_grid: float | None) -> Section:
    params = json_value(run["params"]) or spec.get("params") or {}
    ptable = pd.DataFrame(
        [
            (k, v if isinstance(v, str) else labels.number(v) if isinstance(v, int | float) else str(v))
            for k, v in params.items()
        ],
        columns=["parameter", "value"],
    )
    engine = spec.get("engine") or {}
    order = [f.name for f in fields(EngineConfig) if f.name in engine] + sorted(set(engine) - _ENGINE_FIELDS)
    etable = pd.DataFrame([_setting(k, engine[k]) for k in order], columns=["engine", "value"])
    rows = [
        (
            "return grid",
            labels.grid(metrics_grid) if metrics_grid is not None else str(spec.get("return_grid") or "auto"),
        )
    ]
    rows += [_setting(k, v) for k, v in spec.items() if k not in _NOT_SPEC]
    stable = pd.DataFrame(rows, columns=["run spec", "value"])
    return Section(
        "Parameters",
        tables=(ptable, etable, stable),
        notes=(
            f"Strategy {run['strategy'] or 'n/a'}: its parameters, the engine's settings and the run's spec.",
        ),
    )


def _coverage(run: dict[str, Any], progress: list[dict[str, Any]]) -> Section:
    rows = [
        ("data from", _when(run["data_start"])),
        ("data to", _when(run["data_end"])),
        ("ticks read", labels.number(run["ticks_in"])),
        ("ticks processed", labels.number(run["ticks_processed"])),
        ("ticks rejected", labels.number(run["ticks_rejected"])),
    ]
    for reason, n in sorted((json_value(run["rejects"]) or {}).items()):
        if n:
            rows.append((f"  rejected: {reason}", labels.number(n)))
    if run["wall_seconds"]:
        rows.append(("wall time", labels.duration(float(run["wall_seconds"]) * 1e9)))
        if run["ticks_processed"]:
            rows.append(("ticks/s", labels.number(round(run["ticks_processed"] / run["wall_seconds"]))))
    tables = [pd.DataFrame(rows, columns=["", "value"])]
    if progress:
        tables.append(
            pd.DataFrame(
                {
                    "symbol": [p["symbol"] for p in progress],
                    "read": [labels.number(p["read"]) for p in progress],
                    "processed": [labels.number(p["processed"]) for p in progress],
                    "rejected": [labels.number(p["rejected"]) for p in progress],
                    "up to": [_when(p["event_time"]) for p in progress],
                }
            )
        )
    return Section(
        "Data coverage",
        tables=tuple(tables),
        notes=("Every tick read is processed or rejected with its reason (docs/data.md).",),
    )


def _style(fig: go.Figure, *, height: int, title: str | None) -> None:
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 70, "r": 30, "t": 60 if title else 40, "b": 50},
        title={"text": title, "x": 0.01} if title else None,
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"},
        hovermode="x unified" if not any(isinstance(t, go.Heatmap | go.Bar) for t in fig.data) else "closest",
        font={"size": 12},
    )
