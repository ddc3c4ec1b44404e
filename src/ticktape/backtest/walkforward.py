"""Walk-forward validation: tune in sample, judge out of sample, window after window.

``walkforward(data, strategy, space, train="2y", test="6m")`` cuts the data
into windows in event time. In each, the in-process sweep
(:func:`ticktape.backtest.sweep.sweep`: one pass over the window's training
data for the whole grid) picks the best parameter set by ``select``, and
that set alone runs on the window's test data
(:func:`ticktape.backtest.backtest`, a fresh run: flat, its indicators warming
up inside the test span). The out-of-sample pieces are stitched into one
equity curve by chaining their returns (:func:`stitch`).

Windows (:func:`windows`), with ``t0`` the first time of the data and spans
added in calendar time (months and years as on a calendar, UTC)::

    rolling   train [t0 + k*step, t0 + k*step + train)   test [t0 + k*step + train, ... + test)
    anchored  train [t0, t0 + k*step + train)             test as rolling

for k = 0, 1, ... while the test span starts before the end of the data
(the last test span may be cut short by it). ``step`` defaults to ``test``,
so the test spans follow each other without gap or overlap.

Each window reports its in-sample metrics (the chosen set's, exactly those
of a single run on the training span) and its out-of-sample metrics (those
of the test run), and the walk-forward efficiency ``OOS annualized return /
IS annualized return``; the study reports the stitched curve's metrics
(:func:`ticktape.compute.metrics.performance` of it, with the pieces' trades
and positions), the study's efficiency
and how stable the chosen parameters were across windows
(:func:`stability`). See docs/walkforward.md.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ticktape import store
from ticktape.backtest.run import BacktestResult, Bars, Prepared, backtest, engine_config, prepare
from ticktape.backtest.sweep import DEFAULT_BUDGET, check_sets, grid, sweep
from ticktape.compute.metrics import performance
from ticktape.data.convention import OHLCV_DTYPE
from ticktape.errors import DataError, SpecError
from ticktape.model.spec import EngineConfig, new_run_id
from ticktape.store import studies

#: The units of a span: ``y`` years and ``m`` (or ``mo``) months are calendar
#: units (a month from Jan 31 is Feb 28 or 29); the others are fixed.
SPAN_UNITS = {
    "y": "years",
    "m": "months",
    "mo": "months",
    "w": "weeks",
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
}
_SPAN = re.compile(r"^\s*([+-]?\d+)\s*(" + "|".join(sorted(SPAN_UNITS, key=len, reverse=True)) + r")\s*$")

#: The metrics a window's best set can be chosen by: +1 the highest wins, -1 the lowest.
SELECT: dict[str, int] = {
    "sharpe": 1,
    "sortino": 1,
    "calmar": 1,
    "total_return": 1,
    "annualized_return": 1,
    "cagr": 1,
    "final_equity": 1,
    "final_pnl": 1,
    "profit_factor": 1,
    "win_rate": 1,
    "expectancy": 1,
    "avg_trade_return": 1,
    "max_drawdown_pct": -1,
    "max_drawdown": -1,
    "volatility": -1,
}

#: The most windows a study takes (a span of seconds over years of data would list millions).
MAX_WINDOWS = 10_000

#: How the out-of-sample pieces are stitched (stored with every study).
STITCH_RULE = (
    "returns chained: each out-of-sample piece ran from the same initial cash; in the stitched curve "
    "it starts from the previous piece's final value and keeps its own returns "
    "(value = previous final value x piece equity / initial cash)"
)


@dataclass(frozen=True)
class Span:
    """A length of event time: ``n`` of ``unit`` (a key of :data:`SPAN_UNITS`).

    Examples
    --------
    >>> parse_span("6m", "--test")
    Span(n=6, unit='m')
    >>> str(parse_span("2y", "--train")), str(parse_span("90min", "--test"))
    ('2y', '90min')
    """

    n: int
    unit: str

    def __str__(self) -> str:
        return f"{self.n}{self.unit}"

    def before(self, t_ns: int) -> int:
        """The time this span before ``t_ns`` (ns; calendar units by the calendar).

        >>> t = pd.Timestamp("2024-03-31", tz="UTC").value
        >>> str(pd.Timestamp(parse_span("1m", "--x").before(t), tz="UTC").date())
        '2024-02-29'
        """
        return _shift(t_ns, (self, -1))


def parse_span(text: str, option: str) -> Span:
    """``"2y"``, ``"6m"`` (months; ``"6mo"`` too), ``"2w"``, ``"30d"``, ``"4h"``,
    ``"90min"``, ``"30s"``: a whole number > 0 and a unit of :data:`SPAN_UNITS`.

    Raises
    ------
    SpecError
        Anything else, naming ``option`` (the flag or argument) and why.
    """
    match = _SPAN.match(str(text))
    if not match:
        units = ", ".join(f"{u} ({name})" for u, name in SPAN_UNITS.items())
        raise SpecError(f"{option} {text!r}: not a span; write a whole number and a unit: {units}, e.g. 6m")
    n = int(match.group(1))
    if n <= 0:
        raise SpecError(f"{option} {text!r}: must be longer than zero")
    return Span(n, match.group(2))


def _span(value: str | Span, option: str) -> Span:
    return value if isinstance(value, Span) else parse_span(value, option)


#: The fixed units' lengths in ns (years and months are calendar units).
FIXED_NS = {"w": 7 * 86_400 * 10**9, "d": 86_400 * 10**9, "h": 3_600 * 10**9, "min": 60 * 10**9, "s": 10**9}


def _shift(t0: int, *parts: tuple[Span, int]) -> int:
    """``t0`` (ns) plus each span times its count, in ns: the calendar spans
    summed by unit and added in one step (so ``t0 + 24m + 6m`` is ``t0 + 30m``,
    never a month added to a month), then the fixed ones."""
    calendar: dict[str, Any] = {}
    for span, times in parts:
        if span.unit not in FIXED_NS and times:
            name = SPAN_UNITS[span.unit]
            calendar[name] = calendar.get(name, 0) + span.n * times
    if calendar:
        t0 = int((pd.Timestamp(t0, unit="ns", tz="UTC") + pd.DateOffset(**calendar)).value)
    return t0 + sum(span.n * times * FIXED_NS[span.unit] for span, times in parts if span.unit in FIXED_NS)


@dataclass(frozen=True)
class Window:
    """One walk-forward window: train on ``[train_start, train_end)``, test on
    ``[test_start, test_end)`` (int64 ns, UTC; ``train_end == test_start``)."""

    index: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int

    def spans(self) -> dict[str, str]:
        """The four bounds as ISO 8601 UTC times."""
        return {k: _iso(getattr(self, k)) for k in ("train_start", "train_end", "test_start", "test_end")}


def _iso(ns: int) -> str:
    t = pd.Timestamp(ns, unit="ns", tz="UTC")
    return t.strftime("%Y-%m-%d") if t == t.normalize() else t.isoformat()


def windows(
    start: int,
    end: int,
    train: str | Span,
    test: str | Span,
    step: str | Span | None = None,
    anchored: bool = False,
) -> list[Window]:
    """The walk-forward windows over data from ``start`` to ``end`` (int64 ns,
    ``end`` exclusive); see the module docstring for where they fall.

    Raises
    ------
    SpecError
        A span that does not parse or is not > 0, a step shorter than the test
        span (the test spans would overlap), or more than :data:`MAX_WINDOWS`.
    DataError
        The first training span reaches the end of the data (no out-of-sample
        data), naming the spans and the data's range.

    Examples
    --------
    >>> ts = lambda s: pd.Timestamp(s, tz="UTC").value
    >>> [w.spans()["test_start"] for w in windows(ts("2020-01-01"), ts("2021-01-01"), "6m", "2m")]
    ['2020-07-01', '2020-09-01', '2020-11-01']
    >>> w = windows(ts("2020-01-01"), ts("2021-01-01"), "6m", "2m", anchored=True)[-1]
    >>> w.spans()["train_start"], w.spans()["test_end"]
    ('2020-01-01', '2021-01-01')
    """
    train_s, test_s = _span(train, "--train"), _span(test, "--test")
    step_s = test_s if step is None else _span(step, "--step")
    t0 = start
    if _shift(t0, (step_s, 1)) < _shift(t0, (test_s, 1)):
        raise SpecError(
            f"--step {step_s}: shorter than --test {test_s}: the out-of-sample spans would overlap "
            "(stitching takes them one after another); give a step at least as long as the test span"
        )
    out: list[Window] = []
    while True:
        k = len(out)
        test_start = _shift(t0, (train_s, 1), (step_s, k))
        if test_start >= end:
            break
        if k == MAX_WINDOWS:
            raise SpecError(
                f"--test {test_s} / --step {step_s}: more than {MAX_WINDOWS:,} windows over the data "
                f"({_iso(start)} to {_iso(end)}); give longer spans"
            )
        out.append(
            Window(
                k,
                start if anchored else _shift(t0, (step_s, k)),
                test_start,
                test_start,
                min(_shift(t0, (train_s, 1), (step_s, k), (test_s, 1)), end),
            )
        )
    if not out:
        raise DataError(
            f"--train {train_s}: the first training span ({_iso(start)} to "
            f"{_iso(_shift(t0, (train_s, 1)))}) reaches the end of the data ({_iso(start)} to {_iso(end)}), "
            "so nothing is left out of sample; shorten --train or give more data"
        )
    return out


# ---------------------------------------------------------------- the data of a span
@dataclass
class _Data:
    """The study's data, prepared once, cut by time."""

    prepared: Prepared
    ts: np.ndarray  # the time of each row (a bar's or a tick's)
    ohlcv: np.ndarray | None = None  # bars: the OHLCV_DTYPE rows

    @classmethod
    def of(cls, prepared: Prepared) -> _Data:
        if prepared.mode == "bars":
            b = prepared.bars
            assert b is not None  # (bars mode)
            ohlcv = np.empty(len(b), OHLCV_DTYPE)
            for k in ("ts", "open", "high", "low", "close", "volume"):
                ohlcv[k] = getattr(b, k)
            return cls(prepared, b.ts, ohlcv)
        if prepared.ticks is None:  # a store selection: its ticks, in memory
            prepared.ticks = np.concatenate(list(prepared.batches(1 << 20)))
            prepared.store = None
        return cls(prepared, prepared.ticks["ts"])

    @property
    def start(self) -> int:
        return int(self.ts.min())

    @property
    def end(self) -> int:
        """Just after the data: the last bar's close, or the last tick's time."""
        if self.prepared.bars is not None:
            return int(self.prepared.bars.end.max()) + 1
        return int(self.ts.max()) + 1

    def cut(self, a: int, b: int) -> tuple[Prepared, int]:
        """The rows with a time in ``[a, b)``, as data of their own (bars: each bar's
        close as :meth:`Bars.from_ohlcv` puts it for these bars alone), and their count."""
        keep = (self.ts >= a) & (self.ts < b)
        n = int(np.count_nonzero(keep))
        if self.ohlcv is not None:
            return Prepared("bars", bars=Bars.from_ohlcv(self.ohlcv[keep])), n
        assert self.prepared.ticks is not None  # (ticks mode: in memory)
        return Prepared("ticks", ticks=self.prepared.ticks[keep]), n


# ---------------------------------------------------------------- results
@dataclass
class WindowResult:
    """One window: the set chosen in sample, its in-sample metrics (those of a
    single run on the training span) and its out-of-sample run."""

    window: Window
    set_index: int
    params: dict[str, Any]
    in_sample: dict[str, float]
    out_of_sample: BacktestResult
    train_rows: int
    test_rows: int
    run_id: str
    oos_seconds: float = 0.0  # (wall time of the out-of-sample run)

    @property
    def efficiency(self) -> float:
        """OOS annualized return / IS annualized return (NaN unless IS > 0)."""
        return efficiency(
            self.out_of_sample.metrics.get("annualized_return", math.nan),
            self.in_sample.get("annualized_return", math.nan),
        )


def efficiency(oos: float, is_: float) -> float:
    """Walk-forward efficiency ``oos / is_`` of two annualized returns; NaN when
    the in-sample one is not > 0 (a ratio to a loss or to nothing says nothing).

    >>> efficiency(0.05, 0.10), efficiency(-0.05, 0.10), efficiency(0.05, -0.1)
    (0.5, -0.5, nan)
    """
    if not (math.isfinite(oos) and math.isfinite(is_)) or is_ <= 0:
        return math.nan
    return oos / is_


def equity_series(equity: pd.DataFrame) -> pd.Series:
    """A run's equity as a series on a strictly increasing UTC time index (the
    last sample of each time, as the run's metrics take it)."""
    s = pd.Series(equity["equity"].to_numpy(np.float64), index=pd.DatetimeIndex(equity["ts"]))
    return s[~s.index.duplicated(keep="last")]


def stitch(pieces: Sequence[pd.Series], initial_cash: float) -> pd.Series:
    """One equity curve from out-of-sample pieces that each started from
    ``initial_cash``, one after another in time: returns chained
    (:data:`STITCH_RULE`). A piece's value ``E(t)`` becomes ``V * E(t) /
    initial_cash``, ``V`` the stitched value at the end of the piece before
    (``initial_cash`` for the first).

    Examples
    --------
    >>> t = pd.date_range("2024-01-01", periods=4, tz="UTC")
    >>> a, b = pd.Series([100.0, 110.0], index=t[:2]), pd.Series([95.0, 99.0], index=t[2:])
    >>> stitch([a, b], 100.0).round(2).tolist()  # 110 x 0.95, 110 x 0.99
    [100.0, 110.0, 104.5, 108.9]
    """
    parts, value = [], float(initial_cash)
    for p in pieces:
        if not len(p):
            continue
        scaled = p.astype(np.float64) * (value / initial_cash)
        parts.append(scaled)
        value = float(scaled.iloc[-1])
    if not parts:
        return pd.Series(dtype=np.float64, index=pd.DatetimeIndex([], tz="UTC"))
    out = pd.concat(parts)
    back = np.flatnonzero(np.diff(pd.DatetimeIndex(out.index).asi8) <= 0)
    if len(back):
        raise ValueError(f"stitch: the pieces overlap in time at {out.index[int(back[0]) + 1]}")
    return out


def oos_trades(results: Sequence[WindowResult]) -> pd.DataFrame:
    """Every window's out-of-sample trades, in order, with a ``window`` column
    (as each run made them: cash amounts are those of its own account)."""
    return pd.concat(
        [r.out_of_sample.trades.assign(window=r.window.index) for r in results], ignore_index=True
    )


def oos_positions(results: Sequence[WindowResult]) -> pd.Series:
    """The out-of-sample runs' positions over time, one after another (for the exposure)."""
    return pd.concat(
        [
            pd.Series(
                r.out_of_sample.equity["position"].to_numpy(np.float64),
                index=pd.DatetimeIndex(r.out_of_sample.equity["ts"]),
            )
            for r in results
        ]
    )


def stability(chosen: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """How the chosen parameters moved across windows: per parameter, the value
    of each window, how many distinct values, how often the value changed
    from one window to the next, the most chosen value (the first chosen of
    equally frequent ones) and its share, and for numbers the mean, standard deviation (ddof 0) and coefficient of
    variation (std / |mean|).

    Examples
    --------
    >>> t = stability([{"fast": 10}, {"fast": 10}, {"fast": 20}, {"fast": 10}])
    >>> t.iloc[0][["chosen", "distinct", "changes", "most_chosen", "share"]].to_dict()
    {'chosen': '10, 10, 20, 10', 'distinct': 2, 'changes': 2, 'most_chosen': 10, 'share': 0.75}
    """
    rows = []
    for name in dict.fromkeys(k for c in chosen for k in c):
        values = [c.get(name) for c in chosen]
        counts: dict[str, int] = {}
        for v in values:
            counts[repr(v)] = counts.get(repr(v), 0) + 1
        most = max(counts, key=lambda k: counts[k])  # (the first of a tie: dicts keep their order)
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        arr = np.asarray(values, dtype=np.float64) if numeric else None
        mean = float(arr.mean()) if arr is not None else math.nan
        std = float(arr.std()) if arr is not None else math.nan
        rows.append(
            {
                "parameter": name,
                "chosen": ", ".join(str(v) for v in values),
                "distinct": len(counts),
                "changes": sum(a != b for a, b in itertools.pairwise(values)),
                "most_chosen": values[[repr(v) for v in values].index(most)],
                "share": counts[most] / len(values),
                "mean": mean,
                "std": std,
                "cv": std / abs(mean) if arr is not None and mean != 0 else math.nan,
            }
        )
    return pd.DataFrame(rows)


def _plain(value: Any) -> Any:
    """JSON-able: NaN and infinities as None (jsonb takes neither), numpy scalars as Python."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class WalkForwardResult:
    """A walk-forward study: every window's result, the stitched out-of-sample
    curve and its metrics, the study's efficiency and parameter stability."""

    study_id: str
    strategy: str
    base: dict[str, Any]
    engine: EngineConfig
    spec: dict[str, Any]
    windows: list[WindowResult]
    stitched: pd.Series
    metrics: dict[str, float]
    invalid: list[tuple[int, dict[str, Any], str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def efficiency(self) -> float:
        """The stitched curve's annualized return / the windows' mean in-sample one."""
        is_ = [w.in_sample.get("annualized_return", math.nan) for w in self.windows]
        return efficiency(self.metrics.get("annualized_return", math.nan), float(np.mean(is_)))

    def stability(self) -> pd.DataFrame:
        """:func:`stability` of the chosen sets."""
        return stability([w.params for w in self.windows])

    def table(self) -> pd.DataFrame:
        """One row per window: its spans, the chosen set, the metric it was chosen
        by and the annualized return and Sharpe in and out of sample, and the efficiency."""
        sel = self.spec["select"]
        rows = []
        for w in self.windows:
            oos = w.out_of_sample.metrics
            rows.append(
                {
                    "window": w.window.index,
                    **{k: v for k, v in w.window.spans().items() if k != "train_end"},
                    **w.params,
                    f"is_{sel}": w.in_sample.get(sel),
                    f"oos_{sel}": oos.get(sel),
                    "is_annualized_return": w.in_sample.get("annualized_return"),
                    "oos_annualized_return": oos.get("annualized_return"),
                    "is_sharpe": w.in_sample.get("sharpe"),
                    "oos_sharpe": oos.get("sharpe"),
                    "oos_trades": oos.get("n_trades"),
                    "efficiency": w.efficiency,
                }
            )
        return pd.DataFrame(rows)

    def summary(self) -> dict[str, Any]:
        """What the study's row stores (JSON-able; NaN as null)."""
        return _plain(
            {
                "windows": [
                    {
                        "index": w.window.index,
                        **w.window.spans(),
                        "bounds_ns": [
                            w.window.train_start,
                            w.window.train_end,
                            w.window.test_start,
                            w.window.test_end,
                        ],
                        "set_index": w.set_index,
                        "params": w.params,
                        "in_sample": w.in_sample,
                        "out_of_sample": w.out_of_sample.metrics,
                        "efficiency": w.efficiency,
                        "train_rows": w.train_rows,
                        "test_rows": w.test_rows,
                        "run_id": w.run_id,
                    }
                    for w in self.windows
                ],
                "stitched": {"rule": STITCH_RULE, "metrics": self.metrics},
                "efficiency": self.efficiency,
                "stability": self.stability().to_dict(orient="records"),
                "invalid_sets": len(self.invalid),
                "seconds": self.seconds,
            }
        )


def _best(sets: list[Any], select: str) -> Any:
    """The set with the best ``select`` metric (the first in grid order on a tie); None if none has one."""
    sign = SELECT[select]
    scored = [(sign * s.metrics.get(select, math.nan), -k, s) for k, s in enumerate(sets)]
    scored = [x for x in scored if math.isfinite(x[0])]
    return max(scored, key=lambda x: x[:2])[2] if scored else None


def check_select(select: str) -> str:
    """``select`` if it is a metric of :data:`SELECT`, else a SpecError listing them."""
    if select not in SELECT:
        raise SpecError(
            f"--select {select!r}: not a metric to choose by; one of: {', '.join(SELECT)} "
            "(the lowest wins for max_drawdown_pct, max_drawdown and volatility, the highest for the others)"
        )
    return select


def walkforward(
    data: Any,
    strategy: str,
    space_or_sets: dict[str, list[Any]] | list[dict[str, Any]],
    *,
    train: str | Span,
    test: str | Span,
    step: str | Span | None = None,
    anchored: bool = False,
    select: str = "sharpe",
    base: dict[str, Any] | None = None,
    format: str = "auto",
    engine: EngineConfig | dict[str, Any] | None = None,
    periods_per_year: float | None = None,
    processes: int | None = None,
    memory_budget: int | str = DEFAULT_BUDGET,
    on_window: Callable[[WindowResult, int], None] | None = None,
    **engine_options: Any,
) -> WalkForwardResult:
    """Walk ``strategy`` forward over ``data``: in each window the best of the
    parameter sets in sample by ``select``, run out of sample.

    Parameters
    ----------
    data, format, engine, engine_options, periods_per_year
        As :func:`ticktape.backtest` (ticks, bars or a ``Store`` selection;
        every window runs on the same engine settings, a ``"auto"`` tick or
        lot size inferred once from all the data).
    strategy, base
        A strategy (template) name, and parameters fixed for every set.
    space_or_sets
        A grid ``{"fast": [5, 10], ...}`` (:func:`ticktape.backtest.sweep.grid`)
        or a list of parameter sets.
    train, test, step, anchored
        The windows (:func:`windows`): spans such as ``"2y"``, ``"6m"``
        (:func:`parse_span`); ``step`` defaults to ``test``.
    select
        The metric the best set is chosen by (:data:`SELECT`; the first set
        in grid order wins a tie, a set whose metric is NaN never wins).
    processes, memory_budget
        As :func:`ticktape.backtest.sweep.sweep` (each window's in-sample sweep).
    on_window
        Called with each window's result and the number of windows as soon
        as the window is done (progress).

    Returns
    -------
    WalkForwardResult

    Raises
    ------
    SpecError, DataError
        A bad span, an unknown ``select``, a grid without a valid set, windows
        longer than the data, a window whose span holds no data, or a window
        where no set has a value of ``select``; the message names it.
    """
    t_begin = time.perf_counter()
    check_select(select)
    train_s, test_s = _span(train, "--train"), _span(test, "--test")
    step_s = test_s if step is None else _span(step, "--step")
    base = dict(base or {})
    space: dict[str, list[Any]] | None = None
    if isinstance(space_or_sets, dict):
        space, sets = space_or_sets, grid(space_or_sets)
    else:
        sets = [dict(p) for p in space_or_sets]
    _, invalid = check_sets(strategy, sets, base)
    data_ = _Data.of(prepare(data, format))
    if not len(data_.ts):
        raise DataError(f"{data_.prepared.where}: no rows to walk forward over")
    cfg = engine_config(data_.prepared, engine, engine_options)
    wins = windows(data_.start, data_.end, train_s, test_s, step_s, anchored)
    results = []
    for w in wins:
        train_data, n_train = data_.cut(w.train_start, w.train_end)
        test_data, n_test = data_.cut(w.test_start, w.test_end)
        for what, n, a, b in (
            ("training", n_train, w.train_start, w.train_end),
            ("test", n_test, w.test_start, w.test_end),
        ):
            if not n:
                raise DataError(
                    f"window {w.index}: no data in its {what} span ({_iso(a)} to {_iso(b)}: a gap in the data); "
                    "give longer spans"
                )
        swept = sweep(
            train_data,
            strategy,
            sets,
            base,
            engine=cfg,
            periods_per_year=periods_per_year,
            processes=processes,
            memory_budget=memory_budget,
        )
        best = _best(swept.sets, select)
        if best is None:
            raise DataError(
                f"window {w.index} (training {_iso(w.train_start)} to {_iso(w.train_end)}): no parameter set "
                f"has a value of {select} (n/a for all {len(swept.sets)}, e.g. no trades); "
                "choose another --select or longer spans"
            )
        t_oos = time.perf_counter()
        oos = backtest(
            test_data, strategy, {**base, **best.params}, engine=cfg, periods_per_year=periods_per_year
        )
        results.append(
            WindowResult(
                w,
                best.index,
                dict(best.params),
                dict(best.metrics),
                oos,
                n_train,
                n_test,
                new_run_id(),
                time.perf_counter() - t_oos,
            )
        )
        if on_window is not None:
            on_window(results[-1], len(wins))
    stitched = stitch([equity_series(r.out_of_sample.equity) for r in results], cfg.initial_cash)
    metrics = {
        k: float(v)
        for k, v in performance(
            stitched, oos_trades(results), periods_per_year, positions=oos_positions(results)
        ).items()
    }
    spec = _plain(
        {
            "kind": "walkforward",
            "strategy": strategy,
            "base": base,
            "grid": space,  # (the grid when one was given, else the sets)
            "sets": None if space is not None else sets,
            "n_sets": len(sets),
            "train": str(train_s),
            "test": str(test_s),
            "step": str(step_s),
            "anchored": anchored,
            "select": select,
            "engine": dataclasses.asdict(cfg),
            "periods_per_year": periods_per_year,
            "mode": data_.prepared.mode,
        }
    )
    return WalkForwardResult(
        new_run_id(),
        strategy,
        base,
        cfg,
        spec,
        results,
        stitched,
        metrics,
        invalid,
        time.perf_counter() - t_begin,
    )


async def store_study(conn: Any, result: WalkForwardResult, symbol: str) -> None:
    """Store a study in ONE transaction: each window's out-of-sample run as a
    complete run (its signals, orders, fills, equity and metrics; ``runs.study_id``
    = the study's id, run id ``WindowResult.run_id``) and the study's row
    (spec, summary, status complete). A failure stores nothing. ``symbol``
    names the data (a symbol, or a file's stem)."""
    async with conn.transaction():
        await studies.create_study(conn, result.study_id, "walkforward", {**result.spec, "data": symbol})
        for w in result.windows:
            r = w.out_of_sample
            params = {**result.base, **w.params}
            spec = {
                "strategy": result.strategy,
                "params": params,
                "engine": dataclasses.asdict(result.engine),
                "study": {"id": result.study_id, "window": w.window.index, **w.window.spans()},
            }
            await store.create_run(
                conn,
                w.run_id,
                result.strategy,
                _plain(spec),
                _plain(params),
                [symbol],
                w.window.test_start,
                w.window.test_end,
                status="running",
            )
            raw = r.extra["raw"]
            await store.write_result_set(
                conn, w.run_id, symbol, 0, {k: raw[k] for k in ("signals", "orders", "fills", "equity")}
            )
            await store.write_metrics(
                conn,
                w.run_id,
                {
                    k: v
                    for k, v in r.metrics.items()
                    if isinstance(v, int | float) and not isinstance(v, bool)
                },
            )
            await store.finish_run(
                conn,
                w.run_id,
                "complete",
                ticks_in=r.ticks_in,
                ticks_processed=r.accepted,
                ticks_rejected=sum(r.rejects.values()),
                rejects=r.rejects,
                orders=len(r.orders),
                fills=len(r.fills),
                wall_seconds=w.oos_seconds,
            )
        await studies.attach_runs(conn, result.study_id, [w.run_id for w in result.windows])
        await studies.finish_study(conn, result.study_id, "complete", result.summary())
