"""In-process backtest: ``ticktape.backtest(data, strategy, **options)``.

No broker, no database: the very stage functions the streaming pipeline runs
(ticktape.stages), called in a loop, so an in-process run and a streaming
run of the same data and spec give identical orders and fills.

Data
----
Frames and files are read by the one convention of ticktape's readers
(:mod:`ticktape.data.convention`: column names and their aliases, ISO 8601
or epoch times, file line numbers in messages), the one ``ticktape data
import`` and ``ticktape data generate --from-bars`` use.

* **ticks**: a TICK_DTYPE array, or a DataFrame or file with a time column
  (``ts``, ``timestamp``, ``time``, ``datetime``, ``date`` or a frame's
  index) and ``bid``/``ask`` (optional ``bid_size``, ``ask_size``,
  ``last``, ``last_size``; a ``price`` column with ``size``/``amount``/
  ``qty`` means trade ticks). A trade-only tick is a quote at the trade
  price with the trade's size on both sides (ticktape.compute.quality).
* **bars**: a DataFrame or file of OHLC(V) bars (``open``, ``high``,
  ``low``, ``close``, optional ``volume``; any capitalisation; time from a
  ``date``/``time`` column or the index). The strategy decides on each bar's close
  (its indicators see one value per bar) and a market order decided at a
  close fills at the **next bar's open** — backtrader's and backtesting.py's
  default. Internally each bar is two ticks: the open at the bar's time and
  the close just before the next bar's time, both with unlimited size at
  that price (no spread).
* a :class:`Store` selection (ticks of one symbol from the store).

The result (:class:`BacktestResult`) has fills, orders, trades, equity and
signals as DataFrames and the metrics as a dict.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ticktape import store
from ticktape.compute import accounting, metrics, quality
from ticktape.data.convention import (
    BAR_COLUMNS,
    LEVEL_COLUMNS,
    TICK_COLUMNS,
    Rows,
    at,
    bars_from,
    column_names,
    frame_rows,
    is_bars,
    levels_from,
    read_rows,
    ticks_from,
)
from ticktape.data.importers import read_binance
from ticktape.data.stats import MAX_DECIMALS, finest_step
from ticktape.errors import DataError, ImportFailed, SpecError
from ticktape.model.batch import BOOK_EVENT_DTYPE, LEVEL_DTYPE, TICK_DTYPE, empty
from ticktape.model.spec import EngineConfig, RunSpec
from ticktape.native import Engine
from ticktape.stages import (
    IndicatorState,
    StrategyState,
    depth_for_batch,
    execution_step,
    features_step,
    new_engine,
    strategy_step,
    trade_step,
)
from ticktape.store import session
from ticktape.strategy import Columns, Feature, Strategy, build, compute_features, tick_columns

#: Displayed size of a bar's open/close quote: large enough never to bind.
BAR_SIZE = 1e12


@dataclass
class Store:
    """A selection of one symbol's ticks in the store (``TICKTAPE_DATABASE_URL``
    or the embedded PostgreSQL when ``dsn`` is None)."""

    symbol: str
    start_ns: int | None = None
    end_ns: int | None = None
    dsn: str | None = None


@dataclass
class BacktestResult:
    """What a backtest produced. Times are UTC ``datetime64[ns]`` columns."""

    strategy: str
    params: dict[str, Any]
    engine: EngineConfig
    fills: pd.DataFrame
    orders: pd.DataFrame
    equity: pd.DataFrame
    signals: pd.DataFrame
    trades: pd.DataFrame
    metrics: dict[str, float]
    ticks_in: int
    accepted: int
    rejects: dict[str, int]
    mode: str = "ticks"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def final_equity(self) -> float:
        return float(self.equity["equity"].iloc[-1]) if len(self.equity) else self.engine.initial_cash

    def to_dict(self, rows: bool = True) -> dict[str, Any]:
        """JSON-able summary (metrics, counts; trades and fills when ``rows``)."""
        d: dict[str, Any] = {
            "strategy": self.strategy,
            "params": self.params,
            "engine": dataclasses.asdict(self.engine),
            "mode": self.mode,
            "ticks_in": self.ticks_in,
            "accepted": self.accepted,
            "rejects": self.rejects,
            "final_equity": self.final_equity,
            "metrics": self.metrics,
            **{k: self.extra[k] for k in ("engine_counts", "import_rejects") if k in self.extra},
        }
        if rows:
            d["trades"] = json.loads(self.trades.to_json(orient="records", date_format="iso", date_unit="ns"))
            d["fills"] = json.loads(self.fills.to_json(orient="records", date_format="iso", date_unit="ns"))
        return d


# ---------------------------------------------------------------- data
def depth_levels(depth: Any, where: str = "depth") -> np.ndarray:
    """L2 depth for a tick backtest as ``LEVEL_DTYPE`` (ts, side, price, qty).

    Accepts a ``LEVEL_DTYPE`` array; the store's book events
    (``BOOK_EVENT_DTYPE``, as an array or a :class:`Store` selection read
    from ``book_events``, which ``ticktape data import --format
    binance-ws`` fills from depthUpdate lines: kind 10 sets a level, kind 11
    clears the book before a snapshot and becomes a 0 for every level shown
    at that time); or a DataFrame or a CSV/Parquet file with a time column,
    ``side`` (+1 bids / -1 asks, or bid/ask/buy/sell), ``price`` and ``qty``
    (or ``size``), read by the convention of :mod:`ticktape.data.convention`.
    Updates must be in time order (updates at one time apply in the given
    order).
    """
    if isinstance(depth, Store):
        events = session.run(
            lambda c: store.read_book_events(c, depth.symbol, depth.start_ns, depth.end_ns),
            dsn=depth.dsn,
            migrate=False,
        )
        if not len(events):
            raise DataError(f"{where}: no book events for symbol {depth.symbol!r} in the selected range")
        depth, where = events, f"{where} (store, {depth.symbol})"
    if isinstance(depth, np.ndarray) and depth.dtype == LEVEL_DTYPE:
        out = depth
    elif isinstance(depth, np.ndarray) and depth.dtype == BOOK_EVENT_DTYPE:
        out = LevelStream(where).feed(depth)
    elif isinstance(depth, pd.DataFrame):
        out = levels_from(frame_rows(depth, where))
    elif isinstance(depth, str | Path):
        out = levels_from(read_rows(depth, LEVEL_COLUMNS))
    else:
        raise DataError(
            f"{where}: depth must be a DataFrame, a file, a LEVEL_DTYPE or BOOK_EVENT_DTYPE array, "
            f"got {type(depth).__name__}"
        )
    checks = (
        ("side", np.isin(out["side"], (1, -1)), "must be 1 (bids) or -1 (asks)"),
        ("price", np.isfinite(out["price"]) & (out["price"] > 0), "must be finite and > 0"),
        ("qty", np.isfinite(out["qty"]) & (out["qty"] >= 0), "must be finite and >= 0"),
    )
    for name, ok, why in checks:
        bad = np.flatnonzero(~ok)
        if len(bad):
            row = int(bad[0])
            raise DataError(f"{where}: row {row}: {name} = {out[name][row].item()!r} {why}")
    back = np.flatnonzero(np.diff(out["ts"]) < 0)
    if len(back):
        row = int(back[0]) + 1
        raise DataError(f"{where}: row {row}: ts {out['ts'][row]} goes back (previous {out['ts'][row - 1]})")
    return out


class LevelStream:
    """Book events (kind 10 set, kind 11 clear) in pieces -> level updates
    (LEVEL_DTYPE): a set as it is, a clear as a 0 for every level shown at
    that time (so the levels shown are remembered from piece to piece)."""

    def __init__(self, where: str = "depth") -> None:
        self.where = where
        self.shown: dict[tuple[int, float], float] = {}

    def feed(self, events: np.ndarray) -> np.ndarray:
        kinds = set(np.unique(events["kind"]).tolist())
        if kinds - {10, 11}:
            raise DataError(
                f"{self.where}: book events of kinds {sorted(kinds - {10, 11})} are order-level (L3); "
                "a depth-fed backtest takes L2 level updates (kind 10) and clears (kind 11)"
            )
        if not (events["kind"] == 11).any():  # no clear: vectorized
            out = np.empty(len(events), LEVEL_DTYPE)
            for f in ("ts", "side", "price"):
                out[f] = events[f]
            out["qty"] = events["size"]
            sides, prices, sizes = out["side"].tolist(), out["price"].tolist(), out["qty"].tolist()
            self.shown.update(zip(zip(sides, prices, strict=True), sizes, strict=True))
            return out
        parts, start = [], 0
        for c in [*np.flatnonzero(events["kind"] == 11).tolist(), len(events)]:
            parts.append(self.feed(events[start:c][events["kind"][start:c] == 10]))
            if c < len(events):  # the clear
                gone = [k for k, v in self.shown.items() if v > 0]
                z = np.zeros(len(gone), LEVEL_DTYPE)
                z["ts"] = events["ts"][c]
                z["side"] = [k[0] for k in gone]
                z["price"] = [k[1] for k in gone]
                parts.append(z)
                self.shown = {}
            start = c + 1
        return np.concatenate(parts)


@dataclass
class Bars:
    """OHLCV bars as arrays: ``ts`` = the bar's time, ``end`` = its close (1 ns
    before the end of its span, the median bar spacing, or before the next bar)."""

    ts: np.ndarray
    end: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def from_frame(cls, df: pd.DataFrame, where: str = "data") -> Bars:
        """The bars of a DataFrame (read by :func:`ticktape.data.convention.bars_from`)."""
        return cls.from_ohlcv(bars_from(frame_rows(df, where)))

    @classmethod
    def from_ohlcv(cls, bars: np.ndarray) -> Bars:
        """The bars of an ``OHLCV_DTYPE`` array (checked); the close of each is
        the end of its usual span, or just before the next bar if that comes sooner."""
        ts = bars["ts"]
        step = int(np.median(np.diff(ts))) if len(ts) > 1 else 86_400_000_000_000
        end = np.minimum(np.concatenate((ts[1:], [ts[-1] + step])), ts + step) - 1 if len(ts) else ts
        volume = np.nan_to_num(bars["volume"], nan=0.0)
        o, h, lo, c = (bars[k].copy() for k in ("open", "high", "low", "close"))
        return cls(ts, end, o, h, lo, c, volume)

    def columns(self) -> Columns:
        """What the strategy sees: one row per bar, decided at the close."""
        c = self.close
        return Columns(
            ts=self.end,
            price=c,
            bid=c,
            ask=c,
            mid=c,
            bid_size=np.full(len(c), BAR_SIZE),
            ask_size=np.full(len(c), BAR_SIZE),
            last=c,
            volume=self.volume,
            open=self.open,
            high=self.high,
            low=self.low,
            close=c,
        )

    def ticks(self) -> np.ndarray:
        """The engine's view: per bar an open tick then a close tick."""
        n = len(self)
        t = np.empty(2 * n, TICK_DTYPE)
        t["ts"][0::2], t["ts"][1::2] = self.ts, self.end
        px = np.empty(2 * n)
        px[0::2], px[1::2] = self.open, self.close
        for k in ("bid", "ask"):
            t[k] = px
        t["bid_size"] = t["ask_size"] = BAR_SIZE
        t["last"] = np.nan
        t["last_size"] = np.nan
        return t


# ---------------------------------------------------------------- running
def _strategy(strategy: str | Strategy | type[Strategy], params: dict[str, Any] | None) -> Strategy:
    if isinstance(strategy, Strategy):
        if params:
            raise SpecError("params: pass params with a strategy name or class, not with an instance")
        return strategy
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        cfg_fields = {f.name for f in dataclasses.fields(strategy.Config)}
        unknown = set(params or {}) - cfg_fields
        if unknown:
            raise SpecError(f"params.{sorted(unknown)[0]}: unknown parameter of {strategy.__name__}")
        return strategy(strategy.Config(**(params or {})))
    return build(str(strategy), params)


def _engine_config(engine: EngineConfig | dict[str, Any] | None, options: dict[str, Any]) -> EngineConfig:
    base = dataclasses.asdict(engine) if isinstance(engine, EngineConfig) else dict(engine or {})
    base.update(options)
    known = {f.name for f in dataclasses.fields(EngineConfig)}
    for k in base:
        if k not in known:
            raise SpecError(f"engine.{k}: unknown engine setting; known: {', '.join(sorted(known))}")
    return EngineConfig(**base)


def _frame(arr: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(arr)
    if "ts" in df:
        df["ts"] = pd.to_datetime(df["ts"].to_numpy(np.int64), unit="ns", utc=True)
    return df


def _batches(ticks: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for i in range(0, len(ticks), size):
        yield ticks[i : i + size]


def _feature_key(f: Feature) -> str:
    return json.dumps([f.kind, dict(f.params), dict(f.inputs)], sort_keys=True)


class SharedFeatures:
    """The union of several strategies' features, each computed once.

    ``per_strategy(j, shared)`` gives strategy ``j`` its columns under its
    own feature names (a sweep of 100 parameter sets over 10 distinct
    moving-average lengths computes 10 moving averages, not 200).
    """

    def __init__(self, strategies: list[Strategy]) -> None:
        union: dict[str, Feature] = {}
        self.maps: list[dict[str, str]] = []
        for s in strategies:
            m = {}
            for f in s.features():
                k = _feature_key(f)
                union.setdefault(k, Feature(k, f.kind, f.params, f.inputs))
                m[f.name] = k
            self.maps.append(m)
        self.features = list(union.values())

    def per_strategy(self, j: int, shared: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for name, k in self.maps[j].items():
            for col, arr in shared.items():
                if col == k:
                    out[name] = arr
                elif col.startswith(k + "."):
                    out[name + col[len(k) :]] = arr
        return out


def run_ticks(
    strats: list[Strategy],
    engines: list[Engine],
    batches: Iterable[np.ndarray],
    bar_ns: int | None = None,
    depth: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Every stage over a stream of TICK_DTYPE batches, in the pipeline's order
    of work, for several strategy instances sharing one pass over the data.
    ``depth`` (LEVEL_DTYPE, time order): L2 updates, each applied with the
    first accepted tick at or after its time (:func:`ticktape.stages.depth_at`);
    updates after the last tick are not used."""
    shared = SharedFeatures(strats)
    used = 0  # depth updates delivered so far
    carry = np.empty(0, LEVEL_DTYPE)  # delivered, after the last accepted tick
    ind = IndicatorState()
    states = [StrategyState() for _ in strats]
    outs: list[dict[str, list[np.ndarray]]] = [
        {k: [] for k in ("signals", "fills", "orders", "equity")} for _ in strats
    ]
    bars_out: list[np.ndarray] = []
    n_in = 0
    it = iter(batches)
    ticks: np.ndarray | None = next(it, empty("ticks"))
    while ticks is not None:
        following = next(it, None)  # look ahead one batch to know which is last
        n_in += len(ticks)
        eos = following is None
        good, cols, feats, bars, ind = features_step(shared.features, ticks, ind, bar_ns, eos)
        bars_out.append(bars)
        diffs = None
        if depth is not None:  # as the pipeline: the updates up to the batch's last tick, plus the carry
            upto = int(np.searchsorted(depth["ts"], ticks["ts"][-1], side="right")) if len(ticks) else used
            diffs, carry = depth_for_batch(good["ts"], carry, depth[used:upto])
            used = upto
        for j, strat in enumerate(strats):
            res, sig, states[j] = trade_step(
                strat, engines[j], good, shared.per_strategy(j, feats), states[j], eos, cols, diffs
            )
            outs[j]["signals"].append(sig)
            for k in ("fills", "orders", "equity"):
                outs[j][k].append(res[k])
        ticks = following
    bars_all = np.concatenate(bars_out)
    return [
        {
            **{k: np.concatenate(v) for k, v in o.items()},
            "bars": bars_all,
            "ticks_in": n_in,
            "accepted": ind.accepted,
            "rejects": ind.rejects,
            # ticks whose quote the engine could not use, and on depth, ticks whose
            # quote hid stale levels (docs/native.md): how clean the feed was
            "engine_counts": {"quotes_ignored": e.quotes_ignored, "depth_hidden_ticks": e.depth_hidden_ticks},
        }
        for o, e in zip(outs, engines, strict=True)
    ]


def run_bars(strats: list[Strategy], engines: list[Engine], bars: Bars) -> list[dict[str, Any]]:
    """Decide on every close, fill at the next open (see the module docstring)."""
    cols = bars.columns()
    shared = SharedFeatures(strats)
    feats, _ = compute_features(shared.features, cols, {})
    return [
        _run_bars_one(s, engines[j], bars, cols, shared.per_strategy(j, feats)) for j, s in enumerate(strats)
    ]


def _run_bars_one(
    strat: Strategy, engine: Engine, bars: Bars, cols: Columns, feats: dict[str, np.ndarray]
) -> dict[str, Any]:
    ticks = bars.ticks()
    n = len(bars)
    if strat.per_tick:
        raise SpecError(f"strategy {strat.name!r} decides per tick; on bar data use a vectorized strategy")
    dec, sig, _ = strategy_step(strat, cols, feats, StrategyState())
    if dec.target is not None:
        target = np.full(2 * n, np.nan)
        target[1::2] = dec.target
        dec.target = target
    if dec.orders is not None:
        dec.orders = dec.orders.copy()
        dec.orders["i"] = 2 * dec.orders["i"] + 1
    res = execution_step(engine, ticks, dec, eos=True, strategy=strat)
    eq = res["equity"]  # sampled at every tick: keep the closes (one sample per bar)
    res["equity"] = eq[np.isin(eq["ts"], bars.end)]
    return {**res, "signals": sig, "bars": empty("bars"), "ticks_in": n, "accepted": n, "rejects": {}}


def _load_store(sel: Store) -> Iterator[np.ndarray]:
    """The selection's ticks."""

    async def collect(conn: Any) -> list[np.ndarray]:
        return [b async for b in store.read_ticks(conn, sel.symbol, sel.start_ns, sel.end_ns)]

    batches = session.run(collect, dsn=sel.dsn, migrate=False)
    if not batches:
        raise DataError(f"store: no ticks for symbol {sel.symbol!r} in the selected range")
    yield from batches


# ---------------------------------------------------------------- several symbols
def _symbol_ticks(data: Any, symbols: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Per-symbol TICK_DTYPE arrays from a dict (symbol -> ticks/DataFrame), or
    a DataFrame or CSV/Parquet file with a ``symbol`` column."""
    if isinstance(data, str | Path):
        data = read_rows(data, TICK_COLUMNS)
    elif isinstance(data, pd.DataFrame):
        data = frame_rows(data, "data")
    if isinstance(data, Rows):
        name = data.find(TICK_COLUMNS, "symbol")
        if name is None:
            raise DataError(f"{data.where}: a strategy on {', '.join(symbols)} needs a 'symbol' column")
        sym = np.asarray(
            pc.utf8_trim_whitespace(data.columns[name].cast(pa.string())).to_pylist(), dtype=object
        )
        data = {s: data.take(np.flatnonzero(sym == s)) for s in dict.fromkeys(sym.tolist())}
    if not isinstance(data, dict):
        raise DataError(
            f"data: give a dict symbol -> ticks (or a DataFrame with a symbol column) for {symbols}"
        )
    out = {}
    for s in symbols:
        if s not in data:
            raise DataError(f"data: no ticks for symbol {s!r} (have: {', '.join(map(str, data))})")
        v = data[s]
        if isinstance(v, pd.DataFrame):
            if is_bars(list(v.columns)):
                raise DataError(f"data[{s!r}]: multi-symbol strategies run on ticks, not bars")
            v = frame_rows(v, f"data[{s!r}]")
        if isinstance(v, Rows):
            v = ticks_from(v)
        elif not (isinstance(v, np.ndarray) and v.dtype == TICK_DTYPE):
            raise DataError(f"data[{s!r}]: expected a DataFrame or a TICK_DTYPE array")
        out[s] = v
    return out


def merge_symbols(ticks: dict[str, np.ndarray]) -> tuple[Columns, dict[str, np.ndarray], np.ndarray]:
    """Merge symbols in event time (ties in the order of ``ticks``).

    Returns the strategy's columns (``ts``, ``sym`` = index of the symbol
    whose tick it is, and per symbol ``S.price``/``S.bid``/``S.ask`` carried
    forward), one engine input per symbol (the union timeline, the symbol's
    last quote for prices — the mark — but displayed sizes and trades only on
    its own ticks, so nothing fills on another symbol's update) and ``sym``.
    """
    names = list(ticks)
    ts = np.concatenate([ticks[s]["ts"] for s in names])
    sym = np.concatenate([np.full(len(ticks[s]), k, dtype=np.int64) for k, s in enumerate(names)])
    order = np.lexsort((sym, ts))
    ts, sym = ts[order], sym[order]
    n = len(ts)
    allt = np.concatenate([ticks[s] for s in names])[order]
    cols = Columns(ts=ts, sym=sym)
    engines = {}
    own_price = np.full(n, np.nan)
    for k, s in enumerate(names):
        mine = sym == k
        idx = np.maximum.accumulate(np.where(mine, np.arange(n), -1)) if n else np.zeros(0, np.int64)
        have = idx >= 0
        t = np.empty(n, TICK_DTYPE)
        t["ts"] = ts
        for f in ("bid", "ask"):
            t[f] = np.where(have, allt[f][np.maximum(idx, 0)], np.nan)
        for f in ("bid_size", "ask_size"):
            t[f] = np.where(mine, allt[f], 0.0)
        for f in ("last", "last_size"):
            t[f] = np.where(mine, allt[f], np.nan)
        view = tick_columns(t)
        last_trade = np.where(have, allt["last"][np.maximum(idx, 0)], np.nan)
        price = np.where(np.isfinite(view["mid"]), view["mid"], last_trade)
        cols[f"{s}.price"], cols[f"{s}.bid"], cols[f"{s}.ask"] = price, t["bid"], t["ask"]
        own_price[mine] = price[mine]
        engines[s] = t
    cols["price"] = own_price
    return cols, engines, sym


def run_symbols(strat: Strategy, cfg: EngineConfig, data: Any) -> dict[str, Any]:
    """A multi-symbol strategy over its symbols merged in event time (one engine per symbol;
    the first holds the initial cash, the others start at 0: one account)."""
    assert strat.symbols is not None  # (a multi-symbol strategy names them)
    raw = _symbol_ticks(data, strat.symbols)
    good, rejects, n_in = {}, dict.fromkeys(quality.REASONS, 0), 0
    for s, t in raw.items():
        ok, counts, _ = quality.validate(t, None)
        good[s] = t[ok]
        n_in += len(t)
        for k, v in counts.items():
            rejects[k] += v
    cols, inputs, _ = merge_symbols(good)
    feats, _ = compute_features(strat.features(), cols, {})
    targets, _ = strat.on_batch(cols, feats, {})
    per: dict[str, dict[str, np.ndarray]] = {}
    for j, s in enumerate(strat.symbols):
        kw = {**cfg.native_kwargs(), "target_mode": strat.target_mode}
        if j:
            kw["initial_cash"] = 0.0
        eng = Engine(**kw)
        per[s] = execution_step(
            eng, inputs[s], np.asarray(targets[s], dtype=np.float64), eos=True, strategy=strat
        )
    return {
        "per_symbol": per,
        "ticks_in": n_in,
        "accepted": int(sum(len(g) for g in good.values())),
        "rejects": rejects,
    }


def make_symbols_result(
    strat: Strategy,
    cfg: EngineConfig,
    res: dict[str, Any],
    periods_per_year: float | None,
    return_grid: str | int | None = None,
) -> BacktestResult:
    """One account over several symbols: fills/orders/trades with a ``symbol``
    column, equity summed (every engine samples the same event-time grid)."""
    per = res["per_symbol"]
    frames: dict[str, list[pd.DataFrame]] = {"fills": [], "orders": [], "trades": []}
    for s, r in per.items():
        for k in ("fills", "orders"):
            f = _frame(r[k])
            f.insert(1, "symbol", s)
            frames[k].append(f)
        t = accounting.trades(r["fills"], r["equity"]["ts"], r["equity"]["price"])
        t.insert(0, "symbol", s)
        frames["trades"].append(t)
    first = next(iter(per.values()))["equity"]
    eq = pd.DataFrame({"ts": pd.to_datetime(first["ts"], unit="ns", utc=True)})
    eq["cash"] = sum(r["equity"]["cash"] for r in per.values())
    eq["equity"] = sum(r["equity"]["equity"] for r in per.values())
    for s, r in per.items():
        eq[f"position.{s}"] = r["equity"]["position"]
    gross = sum(np.abs(r["equity"]["position"]) for r in per.values())
    series = pd.Series(eq["equity"].to_numpy(), index=eq["ts"])
    trades = pd.concat(frames["trades"], ignore_index=True)
    perf = metrics.performance(
        series,
        trades,
        periods_per_year=periods_per_year,
        positions=pd.Series(gross, index=eq["ts"]),
        grid=return_grid,
    )
    fills = pd.concat(frames["fills"], ignore_index=True).sort_values("ts", kind="stable", ignore_index=True)
    orders = pd.concat(frames["orders"], ignore_index=True).sort_values(
        "ts", kind="stable", ignore_index=True
    )
    return BacktestResult(
        strategy=strat.name,
        params=dataclasses.asdict(strat.config),
        engine=cfg,
        fills=fills,
        orders=orders,
        equity=eq,
        signals=pd.DataFrame(),
        trades=trades,
        metrics={
            k: (float(v) if isinstance(v, int | float | np.number) and not isinstance(v, bool) else v)
            for k, v in perf.items()
        },
        ticks_in=res["ticks_in"],
        accepted=res["accepted"],
        rejects=res["rejects"],
        mode="ticks",
        extra={"raw": per},
    )


@dataclass
class Prepared:
    """Data ready to run: bars, or a way to stream ticks."""

    mode: str
    bars: Bars | None = None
    ticks: np.ndarray | None = None
    store: Store | None = None
    depth: np.ndarray | None = None  # LEVEL_DTYPE
    import_rejects: dict[str, int] = field(default_factory=dict)  # rows a file importer refused
    where: str = "data"
    lines: np.ndarray | None = None  # the file line of each tick or bar (None: rows of a frame...)
    first_line: int | None = None  # (... or of a file with no line left out: first_line + i)

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        if self.store is not None:
            return _load_store(self.store)
        assert self.ticks is not None  # (ticks mode: from a store or an array)
        return _batches(self.ticks, batch_size)

    def at(self, i: int) -> str:
        """Where tick (or bar) ``i`` came from: ``FILE:LINE``, or ``WHERE: row i``."""
        return at(self.where, self.lines, self.first_line, i)


def prepare(data: Any, format: str = "auto", depth: Any = None) -> Prepared:
    """Recognise and check ``data`` and ``depth`` (see :func:`backtest`)."""
    prepared = _prepare(data, format)
    if depth is not None:
        if prepared.mode == "bars":
            raise DataError("depth: L2 depth needs tick data, not bars")
        prepared.depth = depth_levels(depth)
    return prepared


def _read_binance(path: str | Path) -> Prepared:
    """Ticks (bookTicker, trade) and L2 depth (depthUpdate, snapshots) of a
    one-symbol Binance websocket capture, in memory; the rows the importer
    rejected are counted in ``Prepared.import_rejects``."""
    try:
        ticks, events, rejects = read_binance(path)
    except ImportFailed as exc:
        raise DataError(str(exc)) from None
    if len(ticks) != 1:
        have = ", ".join(sorted(ticks)) or "none"
        raise DataError(f"{path}: a backtest takes one symbol's ticks; the capture has {have}")
    ((symbol, t),) = ticks.items()
    depth = events.get(symbol)
    return Prepared(
        "ticks",
        ticks=t,
        depth=depth_levels(depth, f"{path}: depth") if depth is not None else None,
        import_rejects=rejects,
        where=str(path),
    )


def _prepare(data: Any, format: str) -> Prepared:
    if format == "binance-ws":
        if not isinstance(data, str | Path):
            raise DataError("data: format 'binance-ws' reads a capture file; give its path")
        return _read_binance(data)
    if format not in ("auto", "ticks", "bars"):
        raise SpecError(f"format: must be ticks, bars, auto or binance-ws, got {format!r}")
    if isinstance(data, Prepared):
        return data
    if isinstance(data, str | Path | pd.DataFrame):
        names = column_names(data) if isinstance(data, str | Path) else list(data.columns)
        mode = format if format != "auto" else ("bars" if is_bars(names) else "ticks")
        table = COLUMNS[mode]
        rows = read_rows(data, table) if isinstance(data, str | Path) else frame_rows(data, "data")
        lines: dict[str, Any] = {"where": rows.where, "lines": rows.lines, "first_line": rows.first_line}
        if mode == "bars":
            return Prepared("bars", bars=Bars.from_ohlcv(bars_from(rows)), **lines)
        return Prepared("ticks", ticks=ticks_from(rows), **lines)
    where = "data"
    if isinstance(data, np.ndarray):
        if data.dtype != TICK_DTYPE:
            raise DataError(
                f"{where}: a numpy array must have ticktape.model.batch.TICK_DTYPE, got {data.dtype}"
            )
        if format == "bars":
            raise DataError(f"{where}: bars must be a DataFrame with open/high/low/close columns")
        return Prepared("ticks", ticks=data)
    if isinstance(data, Store):
        if format == "bars":
            raise DataError("store: the store holds ticks; use format='ticks'")
        return Prepared("ticks", store=data, where=f"store ({data.symbol})")
    raise DataError(f"{where}: unsupported data of type {type(data).__name__}")


#: The columns each mode reads (:mod:`ticktape.data.convention`).
COLUMNS = {"bars": BAR_COLUMNS, "ticks": TICK_COLUMNS}

#: The value of ``tick_size`` / ``lot_size`` that asks for them to be inferred from the data.
AUTO = "auto"


def _columns_of(prepared: Prepared) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """The data's prices by field, and its sizes."""
    if prepared.mode == "bars":
        b = prepared.bars
        assert b is not None  # (bars mode)
        return {k: getattr(b, k) for k in ("open", "high", "low", "close")}, [b.volume]
    t = prepared.ticks
    assert t is not None  # (ticks mode, as an array)
    return {k: t[k] for k in ("bid", "ask", "last")}, [t[k] for k in ("bid_size", "ask_size", "last_size")]


def infer_grid(prepared: Prepared, tick_size: bool = True, lot_size: bool = True) -> dict[str, float]:
    """The instrument's grid inferred from the data: ``tick_size`` the finest
    increment of its prices, ``lot_size`` that of its sizes (never above 1;
    1 without sizes), as :func:`ticktape.data.stats.finest_step` finds them.

    Raises
    ------
    DataError
        A price is on no grid of 9 decimals or fewer: the message names it
        and where it came from.
    """
    if prepared.store is not None:  # (a store selection: loaded to look at it)
        prepared.ticks, prepared.store = np.concatenate(list(_load_store(prepared.store))), None
    prices, sizes = _columns_of(prepared)
    out: dict[str, float] = {}
    if tick_size:
        steps = {k: finest_step(v) for k, v in prices.items()}
        step = min((st for st, _ in steps.values() if st is not None), default=EngineConfig.tick_size)
        off = [(first, k) for k, (_, first) in steps.items() if first is not None]
        if off:
            i, k = min(off)
            raise DataError(
                f"{prepared.at(i)}: {k} = {prices[k][i].item()!r} is on no tick grid of "
                f"{MAX_DECIMALS} decimals or fewer: the tick size inferred from the data "
                f"({step:g}) does not fit it; set the tick size (--tick-size)"
            )
        out["tick_size"] = step
    if lot_size:
        found = [st for st, _ in (finest_step(v) for v in sizes) if st is not None]
        out["lot_size"] = min([1.0, *found])
    return out


def check_grid(prepared: Prepared, tick_size: float) -> None:
    """Raise a DataError naming the first usable price (finite, > 0) off the
    grid of ``tick_size`` and where it came from (a store selection is not read)."""
    if prepared.store is not None or not (np.isfinite(tick_size) and tick_size > 0):
        return
    off = []
    for k, v in _columns_of(prepared)[0].items():
        x = v / tick_size
        bad = np.flatnonzero(np.isfinite(x) & (v > 0) & (np.abs(x - np.rint(x)) > 1e-6))
        if len(bad):
            off.append((int(bad[0]), k))
    if off:
        i, k = min(off)
        price = _columns_of(prepared)[0][k][i].item()
        raise DataError(
            f"{prepared.at(i)}: {k} = {price!r} is not on the tick grid (tick size {tick_size:g}); "
            "leave the tick size out to infer it from the data"
        )


def engine_config(
    prepared: Prepared, engine: EngineConfig | dict[str, Any] | None, options: dict[str, Any]
) -> EngineConfig:
    """The run's EngineConfig; on bars, equity is sampled at every tick (the
    closes are kept: one sample per bar) unless set explicitly. A
    ``tick_size`` or ``lot_size`` of ``"auto"`` is inferred from the data
    (:func:`infer_grid`); a given tick size is checked against the data's
    prices (:func:`check_grid`)."""
    options = dict(options)
    explicit = "equity_interval_ns" in options or (
        isinstance(engine, dict) and "equity_interval_ns" in engine
    )
    if prepared.mode == "bars" and not explicit:
        options["equity_interval_ns"] = 1
    base = dataclasses.asdict(engine) if isinstance(engine, EngineConfig) else dict(engine or {})
    base.update(options)
    auto = [k for k in ("tick_size", "lot_size") if base.get(k) == AUTO]
    if auto:
        base.update(infer_grid(prepared, "tick_size" in auto, "lot_size" in auto))
    cfg = _engine_config(base, {})
    if "tick_size" not in auto:
        check_grid(prepared, cfg.tick_size)
    return cfg


def run_prepared(
    prepared: Prepared, strats: list[Strategy], cfg: EngineConfig, batch_size: int, bar_ns: int | None
) -> list[dict[str, Any]]:
    """Run several strategy instances over one pass of the data (each its own engine)."""
    engines = [Engine(**cfg.native_kwargs(), target_mode=s.target_mode) for s in strats]
    if prepared.mode == "bars":
        assert prepared.bars is not None  # (bars mode)
        return run_bars(strats, engines, prepared.bars)
    return run_ticks(strats, engines, prepared.batches(batch_size), bar_ns, prepared.depth)


def make_result(
    strat: Strategy,
    cfg: EngineConfig,
    res: dict[str, Any],
    mode: str,
    periods_per_year: float | None,
    return_grid: str | int | None = None,
) -> BacktestResult:
    """Frames, trades and metrics of one instance's raw outputs."""
    eq = res["equity"]
    perf, trades = metrics.run_metrics(
        {"": eq}, {"": res["fills"]}, cfg.initial_cash, periods_per_year, grid=return_grid
    )
    trades = trades.drop(columns="symbol")
    return BacktestResult(
        strategy=strat.name,
        params=dataclasses.asdict(strat.config),
        engine=cfg,
        fills=_frame(res["fills"]),
        orders=_frame(res["orders"]),
        equity=_frame(eq),
        signals=_frame(res["signals"]),
        trades=trades,
        metrics={
            k: (float(v) if isinstance(v, int | float | np.number) and not isinstance(v, bool) else v)
            for k, v in perf.items()
        },
        ticks_in=res["ticks_in"],
        accepted=res["accepted"],
        rejects=res["rejects"],
        mode=mode,
        extra={"raw": res},
    )


def backtest(
    data: Any,
    strategy: str | Strategy | type[Strategy],
    params: dict[str, Any] | None = None,
    *,
    format: str = "auto",
    engine: EngineConfig | dict[str, Any] | None = None,
    batch_size: int = 50_000,
    bar_ns: int | None = None,
    periods_per_year: float | None = None,
    depth: Any = None,
    return_grid: str | int | None = None,
    **engine_options: Any,
) -> BacktestResult:
    """Run ``strategy`` over ``data`` in this process.

    Parameters
    ----------
    data
        Ticks or bars (see the module docstring): a DataFrame, a TICK_DTYPE
        array, a :class:`Store` selection, or a path to a CSV/Parquet file
        (columns and times read by :mod:`ticktape.data.convention`, as
        ``ticktape data import`` reads them).
    strategy, params
        A registered strategy name (``ticktape.strategy.templates``) with its params,
        a Strategy subclass with params, or a Strategy instance.
    format
        ``"ticks"``, ``"bars"`` or ``"auto"`` (bars when the frame has
        open/high/low/close columns); ``"binance-ws"``: ``data`` is a
        Binance websocket capture (bookTicker / trade / depthUpdate lines,
        as ``ticktape data import`` reads them): its ticks, and its depth
        unless ``depth`` is given (rows the importer refused are counted in
        ``result.extra["import_rejects"]``).
    engine, engine_options
        Execution settings (:class:`ticktape.model.spec.EngineConfig` fields:
        tick_size, lot_size, latency, fees, initial_cash, ...).
        ``tick_size="auto"`` / ``lot_size="auto"``: inferred from the data,
        the finest increment of its prices / sizes (:func:`infer_grid`).
    batch_size
        Ticks per batch (results do not depend on it).
    bar_ns
        Width of the event-time bars of the price to return (ticks only).
    periods_per_year
        Annualization of the metrics (default: that of the return grid;
        see ticktape.compute.metrics.performance).
    depth
        L2 depth of the same symbol (ticks only; see :func:`depth_levels`
        for the forms): the engine's book is then the depth book, so a
        market order walks the levels and fills at each level's price, two
        orders never take the same displayed size, and resting orders queue
        behind the displayed size at their price (docs/native.md, "Engine
        with L2 depth"). Each update applies with the first tick at or
        after its time.
    return_grid
        The grid of the returns behind Sharpe, Sortino and volatility: None
        (auto: daily, hourly, by minute or second, the coarsest with enough
        returns), ``"day"``, ``"hour"``, ``"minute"``, ``"second"``, a width
        in ns, or ``"samples"`` (docs/metrics.md, "The return grid").

    Returns
    -------
    BacktestResult

    Raises
    ------
    SpecError, DataError
        A bad strategy/parameter/engine setting, or unusable data; the
        message names the field, column or row.
    """
    strat = _strategy(strategy, params)
    if strat.symbols:
        if format == "bars":
            raise DataError("data: multi-symbol strategies run on ticks, not bars")
        if depth is not None:
            raise DataError("depth: L2 depth is for one symbol; multi-symbol strategies run on ticks only")
        ticks = _symbol_ticks(data, strat.symbols)
        cfg = engine_config(
            Prepared("ticks", ticks=np.concatenate(list(ticks.values()))), engine, engine_options
        )
        return make_symbols_result(strat, cfg, run_symbols(strat, cfg, ticks), periods_per_year, return_grid)
    prepared = prepare(data, format, depth)
    cfg = engine_config(prepared, engine, engine_options)
    (res,) = run_prepared(prepared, [strat], cfg, batch_size, bar_ns)
    result = make_result(strat, cfg, res, prepared.mode, periods_per_year, return_grid)
    result.extra["bars"] = _frame(res["bars"])
    result.extra["import_rejects"] = prepared.import_rejects
    result.extra["engine_counts"] = res.get("engine_counts", {})
    return result


# ---------------------------------------------------------------- one symbol of a run spec
@dataclass
class SymbolResult:
    """Everything one (run, symbol) stream produced."""

    signals: np.ndarray
    bars: np.ndarray
    fills: np.ndarray
    orders: np.ndarray
    equity: np.ndarray
    ticks_in: int
    accepted: int
    rejects: dict[str, int]


def run_symbol(spec: RunSpec, batches: Iterable[np.ndarray], depth: np.ndarray | None = None) -> SymbolResult:
    """Run one symbol's ticks (and its L2 level updates, LEVEL_DTYPE) through
    all stages in process (no broker, no DB): :func:`run_ticks` with the
    spec's strategy and engine, which is what a pipeline run of ``spec`` must
    store for that symbol."""
    strategy = build(spec.strategy, spec.params)
    (res,) = run_ticks([strategy], [new_engine(spec, strategy)], batches, spec.bar_ns, depth)
    res.pop("engine_counts")
    return SymbolResult(**res)
