"""Small, deterministic inputs for tests: ticks, bars, book data, run specs, engines.

For ticktape's own tests and for users testing their strategies. Every
factory returns a new array (or object) built only from its arguments: the
same arguments (``seed`` included) give the same bytes. Arrays use the
package's dtypes (:data:`ticktape.model.batch.TICK_DTYPE` and friends), times
are int64 nanoseconds since the Unix epoch, UTC.

A few arguments take either a number or a ``(low, high)`` pair: a number is
used as is, a pair draws integers uniformly from ``[low, high)`` (from the
factory's ``seed``).

Examples
--------
>>> from ticktape import testing
>>> t = testing.quotes(3, walk=0.01, seed=1, decimals=2)
>>> t.dtype == testing.TICK_DTYPE, len(t) == 3, bool((t["ask"] > t["bid"]).all())
(True, True, True)
>>> testing.quotes(3, walk=0.01, seed=1, decimals=2).tobytes() == t.tobytes()  # same seed, same ticks
True
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from ticktape.data.convention import OHLCV_DTYPE
from ticktape.data.synth import ProcessConfig, generate_process
from ticktape.model.batch import BOOK_EVENT_DTYPE, LEVEL_DTYPE, TICK_DTYPE
from ticktape.model.spec import EngineConfig, RunSpec
from ticktape.native import Engine

__all__ = [
    "MINUTE",
    "SECOND",
    "T0",
    "TICK_DTYPE",
    "bars",
    "bars_frame",
    "book_events",
    "columns",
    "engine",
    "levels",
    "market",
    "quotes",
    "run_spec",
    "trades",
    "with_trades",
]

#: 2024-01-01T00:00:00Z in ns: the default first time of every factory.
T0 = 1_704_067_200 * 10**9
#: One second and one minute in ns.
SECOND = 10**9
MINUTE = 60 * SECOND

#: A number, or a ``(low, high)`` pair of integers drawn from ``[low, high)``.
Draw = float | tuple[int, int]


def _draw(rng: np.random.Generator, value: Draw, n: int) -> np.ndarray:
    if isinstance(value, tuple):
        return rng.integers(value[0], value[1], n).astype(np.float64)
    return np.full(n, float(value))


def _times(rng: np.random.Generator, n: int, ts: Any, t0: int, step_ns: int | tuple[int, int]) -> np.ndarray:
    if ts is not None:
        return np.asarray(ts, dtype=np.int64)
    if isinstance(step_ns, tuple):  # random gaps (0 repeats a time)
        return t0 + np.cumsum(rng.integers(step_ns[0], step_ns[1], n), dtype=np.int64)
    return t0 + np.arange(n, dtype=np.int64) * step_ns


def _path(rng: np.random.Generator, n: int, start: Any, walk: float) -> np.ndarray:
    out = np.broadcast_to(np.asarray(start, dtype=np.float64), (n,)).copy()
    if walk:
        out += np.cumsum(rng.normal(0.0, walk, n))
    return out


def quotes(
    n: int = 10,
    *,
    ts: Any = None,
    t0: int = T0,
    step_ns: int | tuple[int, int] = SECOND,
    bid: Any = 100.0,
    ask: Any = None,
    spread: float = 0.01,
    walk: float = 0.0,
    size: Draw = 1.0,
    bid_size: Draw | None = None,
    ask_size: Draw | None = None,
    decimals: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Quote ticks (``TICK_DTYPE``, no trades: ``last``/``last_size`` NaN).

    Parameters
    ----------
    n : int
        Number of ticks (ignored when ``ts`` is given).
    ts : array-like of int, optional
        The times; by default ``t0``, ``t0 + step_ns``, ...
    t0, step_ns : int
        First time and the gap between ticks; a ``(low, high)`` gap draws
        random gaps (a gap of 0 repeats a time).
    bid : float or array-like
        The bid (a scalar: the same for every tick).
    ask : float or array-like, optional
        The ask; by default ``bid + spread``.
    spread : float
        Ask minus bid when ``ask`` is not given.
    walk : float
        Standard deviation of a Gaussian random walk added to the bid (and
        so to the ask): 0 keeps prices constant.
    size, bid_size, ask_size : float or (int, int)
        Displayed sizes (``bid_size``/``ask_size`` default to ``size``).
    decimals : int, optional
        Round bid and ask to this many decimals (prices on a grid).
    seed : int
        Seed of the random times, walk and sizes.

    Returns
    -------
    numpy.ndarray
        ``n`` ticks of ``TICK_DTYPE``.

    Examples
    --------
    >>> t = quotes(3, bid=[10.0, 10.5, 11.0], spread=0.25)
    >>> (t["ts"] - T0).tolist(), t["ask"].tolist(), t["bid_size"].tolist()
    ([0, 1000000000, 2000000000], [10.25, 10.75, 11.25], [1.0, 1.0, 1.0])
    >>> bool(np.isnan(t["last"]).all())
    True
    """
    if ts is not None:
        n = len(ts)
    rng = np.random.default_rng(seed)
    out = np.empty(n, dtype=TICK_DTYPE)
    out["ts"] = _times(rng, n, ts, t0, step_ns)
    move = _path(rng, n, 0.0, walk)
    b = _path(rng, n, bid, 0.0) + move
    a = b + spread if ask is None else _path(rng, n, ask, 0.0) + move
    if decimals is not None:
        b, a = np.round(b, decimals), np.round(a, decimals)
    out["bid"], out["ask"] = b, a
    out["bid_size"] = _draw(rng, size if bid_size is None else bid_size, n)
    out["ask_size"] = _draw(rng, size if ask_size is None else ask_size, n)
    out["last"] = out["last_size"] = np.nan
    return out


def trades(
    n: int = 10,
    *,
    ts: Any = None,
    t0: int = T0,
    step_ns: int | tuple[int, int] = SECOND,
    price: Any = 100.0,
    walk: float = 0.0,
    size: Draw = 1.0,
    decimals: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Trade-only ticks (``TICK_DTYPE``: ``last``/``last_size`` set, no quote).

    Parameters as :func:`quotes` (``price`` for the trade price, ``size`` the
    trade size); bid, ask and their sizes are NaN.

    Examples
    --------
    >>> t = trades(2, price=[5.0, 5.5], size=3.0)
    >>> t["last"].tolist(), t["last_size"].tolist(), bool(np.isnan(t["bid"]).all())
    ([5.0, 5.5], [3.0, 3.0], True)
    """
    if ts is not None:
        n = len(ts)
    rng = np.random.default_rng(seed)
    out = np.empty(n, dtype=TICK_DTYPE)
    out["ts"] = _times(rng, n, ts, t0, step_ns)
    p = _path(rng, n, price, walk)
    out["last"] = p if decimals is None else np.round(p, decimals)
    out["last_size"] = _draw(rng, size, n)
    for name in ("bid", "ask", "bid_size", "ask_size"):
        out[name] = np.nan
    return out


def with_trades(
    ticks: np.ndarray,
    *,
    every: int = 3,
    at: Literal["either", "bid", "ask", "mid"] = "either",
    size: Draw = (1, 50),
    seed: int = 0,
) -> np.ndarray:
    """A copy of quote ticks in which every ``every``-th tick (from the first) also trades.

    The trade is at the bid, the ask, the mid, or (``"either"``) at the bid
    or the ask with probability 1/2; its size is ``size``. Indicators that
    need volume (VWAP) need trades.

    Examples
    --------
    >>> t = with_trades(quotes(4), every=2, at="ask", size=5.0)
    >>> t["last"].tolist()[::2], t["last_size"].tolist()[::2], bool(np.isnan(t["last"][1::2]).all())
    ([100.01, 100.01], [5.0, 5.0], True)
    """
    out = ticks.copy()
    k = np.arange(0, len(out), every)
    rng = np.random.default_rng(seed)
    bid, ask = out["bid"][k], out["ask"][k]
    if at == "either":
        out["last"][k] = np.where(rng.random(len(k)) < 0.5, bid, ask)
    else:
        out["last"][k] = {"bid": bid, "ask": ask, "mid": (bid + ask) / 2}[at]
    out["last_size"][k] = _draw(rng, size, len(k))
    return out


def market(n: int = 1000, *, seed: int = 0, symbol: str = "S", trade_every: int = 3) -> np.ndarray:
    """Realistic ticks: the GBM quotes of :func:`ticktape.data.synth.generate_process`
    (``ProcessConfig(symbol, n, seed)``) with a trade at the bid or the ask
    every ``trade_every`` ticks (:func:`with_trades`, same ``seed``; 0: none).

    Examples
    --------
    >>> t = market(300, seed=5)
    >>> len(t), bool((t["ask"] > t["bid"]).all()), int((~np.isnan(t["last"])).sum())
    (300, True, 100)
    """
    out = np.concatenate(list(generate_process(ProcessConfig(symbol=symbol, n_ticks=n, seed=seed), chunk=n)))
    return with_trades(out, every=trade_every, seed=seed) if trade_every else out


def columns(ticks: np.ndarray, *, target: Any = np.nan, orders: np.ndarray | None = None) -> dict[str, Any]:
    """The columns of ``ticks`` as :meth:`ticktape.native.Engine.process` takes them.

    A dict of ``ts``, ``bid``, ``ask``, ``bid_size``, ``ask_size``, ``last``,
    ``last_size`` (contiguous copies), ``target`` (a scalar is broadcast; None:
    no ``target`` key) and, when given, ``orders`` (``ORDER_INSTR_DTYPE``).

    Examples
    --------
    >>> c = columns(quotes(2, t0=0))
    >>> c["ts"].tolist(), c["ask"].tolist(), bool(np.isnan(c["target"]).all())
    ([0, 1000000000], [100.01, 100.01], True)
    """
    out: dict[str, Any] = {name: ticks[name].copy() for name in TICK_DTYPE.names or ()}
    if target is not None:
        out["target"] = np.broadcast_to(np.asarray(target, dtype=np.float64), (len(ticks),)).copy()
    if orders is not None:
        out["orders"] = orders
    return out


def bars(
    n: int = 100,
    *,
    t0: int = T0,
    bar_ns: int = MINUTE,
    price: float = 100.0,
    walk: float = 0.5,
    seed: int = 0,
) -> np.ndarray:
    """OHLCV bars (``ticktape.data.convention.OHLCV_DTYPE``), ``ts`` each bar's start.

    Opens follow a Gaussian random walk of step ``walk`` from ``price``; the
    close is the open plus ``N(0, 0.6 * walk)``; high and low lie an
    exponential distance (mean ``0.4 * walk``) beyond open and close;
    volumes are integers in [100, 5000).

    Examples
    --------
    >>> b = bars(3, seed=1)
    >>> (b["ts"] - T0).tolist() == [0, MINUTE, 2 * MINUTE]
    True
    >>> bool((b["high"] >= np.maximum(b["open"], b["close"])).all())
    True
    """
    rng = np.random.default_rng(seed)
    out = np.empty(n, dtype=OHLCV_DTYPE)
    out["ts"] = t0 + np.arange(n, dtype=np.int64) * bar_ns
    o = price + np.cumsum(rng.normal(0, walk, n))
    c = o + rng.normal(0, 0.6 * walk, n)
    out["open"], out["close"] = o, c
    out["high"] = np.maximum(o, c) + rng.exponential(0.4 * walk, n)
    out["low"] = np.minimum(o, c) - rng.exponential(0.4 * walk, n)
    out["volume"] = rng.integers(100, 5000, n)
    return out


def bars_frame(n: int = 100, *, freq: str | None = None, decimals: int | None = 2, **kw: Any) -> pd.DataFrame:
    """:func:`bars` as the DataFrame a bar file reads as: ``Date`` (naive UTC
    times), ``Open``, ``High``, ``Low``, ``Close``, ``Volume``.

    Parameters
    ----------
    n : int
        Number of bars.
    freq : str, optional
        A pandas frequency for the dates from ``t0`` (``"B"``: business
        days) instead of ``t0 + k * bar_ns``.
    decimals : int or None
        Round prices to this many decimals (None: not rounded).
    **kw
        Keywords of :func:`bars`.

    Examples
    --------
    >>> df = bars_frame(2, freq="B", t0=T0 + 5 * 86_400 * SECOND)  # from Saturday 2024-01-06
    >>> list(df.columns), df["Date"].dt.strftime("%Y-%m-%d").tolist()
    (['Date', 'Open', 'High', 'Low', 'Close', 'Volume'], ['2024-01-08', '2024-01-09'])
    """
    b = bars(n, **kw)
    if freq is not None:
        b["ts"] = pd.date_range(pd.Timestamp(kw.get("t0", T0)), periods=n, freq=freq).asi8
    df = pd.DataFrame({name.capitalize(): b[name] for name in ("open", "high", "low", "close", "volume")})
    if decimals is not None:
        df[["Open", "High", "Low", "Close"]] = df[["Open", "High", "Low", "Close"]].round(decimals)
    df.insert(0, "Date", pd.to_datetime(b["ts"], unit="ns"))
    return df


def levels(*rows: tuple[float, int, float, float], unit_ns: int = SECOND, t0: int = 0) -> np.ndarray:
    """L2 level updates (``LEVEL_DTYPE``) from ``(time, side, price, qty)`` rows.

    ``time`` is in units of ``unit_ns`` after ``t0``; ``side`` +1 bids, -1
    asks; ``qty`` is what the level now shows (0 removes it).

    Examples
    --------
    >>> lv = levels((0.5, -1, 100.01, 2.0), (1, 1, 100.0, 5.0))
    >>> lv["ts"].tolist(), lv["side"].tolist(), lv["qty"].tolist()
    ([500000000, 1000000000], [-1, 1], [2.0, 5.0])
    """
    out = np.zeros(len(rows), LEVEL_DTYPE)
    for k, (t, side, price, qty) in enumerate(rows):
        out[k] = (t0 + round(t * unit_ns), side, price, qty)
    return out


def book_events(*rows: tuple[Any, ...]) -> np.ndarray:
    """Order book events (``BOOK_EVENT_DTYPE``) from ``(ts, kind, side, price, size[, order_id[, level]])``
    rows; ``order_id`` defaults to -1 and ``level`` to 0 (not applicable).

    Kinds are those of dbschema/0003_market_data.sql (10 an L2 level, 11 a
    clear of the book, ...).

    Examples
    --------
    >>> ev = book_events((1, 10, 1, 10.0, 5.0), (2, 11, 0, np.nan, np.nan))
    >>> ev["kind"].tolist(), ev["order_id"].tolist()
    ([10, 11], [-1, -1])
    """
    out = np.zeros(len(rows), BOOK_EVENT_DTYPE)
    for k, row in enumerate(rows):
        out[k] = (*row, *(-1, 0)[len(row) - 5 :])
    return out


def run_spec(
    strategy: str = "sma_crossover",
    symbols: str | tuple[str, ...] = ("S",),
    params: dict[str, Any] | None = None,
    **fields: Any,
) -> RunSpec:
    """A :class:`~ticktape.model.spec.RunSpec` (``fields`` as its keywords; ``engine`` may be a dict).

    Examples
    --------
    >>> s = run_spec(params={"fast": 5, "slow": 20}, engine={"tick_size": 0.5})
    >>> s.strategy, s.symbols, s.engine.tick_size
    ('sma_crossover', ('S',), 0.5)
    """
    if isinstance(symbols, str):
        symbols = (symbols,)
    if isinstance(fields.get("engine"), dict):
        fields["engine"] = EngineConfig(**fields["engine"])
    return RunSpec(strategy=strategy, symbols=symbols, params=dict(params or {}), **fields)


def engine(config: EngineConfig | None = None, **settings: Any) -> Engine:
    """A native :class:`~ticktape.native.Engine` built from an :class:`~ticktape.model.spec.EngineConfig`
    (``config``, or ``EngineConfig(**settings)``), as a run builds it.

    Examples
    --------
    >>> eng = engine(tick_size=0.01, initial_cash=1000.0)
    >>> out = eng.process(**columns(quotes(3), target=1.0))
    >>> eng.position, len(out["fills"])
    (1.0, 1)
    """
    return Engine(**(config or EngineConfig(**settings)).native_kwargs())
