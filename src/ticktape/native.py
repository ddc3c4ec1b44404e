"""The C++ order book and batch execution engine (``ticktape._native``).

This module re-exports the compiled classes and adds the enums and small
helpers that belong with them. Inside the book, prices are integer ticks and
quantities integer lots; floats are converted at the boundary with
:func:`to_ticks` (``round(price / tick_size)``, off the grid by more than
1e-6 tick is an error).

Examples
--------
>>> from ticktape.native import OrderBook, OrderType, Side
>>> book = OrderBook()
>>> book.add(1, Side.SELL, 10_001, 5)
>>> book.add(2, Side.SELL, 10_001, 3)
>>> fills = book.submit(3, Side.BUY, OrderType.MARKET, 0, 6)
>>> [(int(f["maker_id"]), int(f["qty"])) for f in fills]
[(1, 5), (2, 1)]
>>> book.best_ask()
(10001, 2)

The engine takes one batch of L1 ticks plus the strategy's target position
per tick (NaN = no decision) and returns fills, order events and equity
samples as structured arrays (``ticktape.model.batch`` dtypes):

>>> import numpy as np
>>> from ticktape.native import Engine
>>> eng = Engine(tick_size=0.01)
>>> ts = np.array([0, 1_000, 2_000])
>>> bid, ask, size = np.full(3, 100.0), np.full(3, 100.02), np.full(3, 10.0)
>>> out = eng.process(ts, bid, ask, size, size, np.array([2.0, np.nan, np.nan]))
>>> out["fills"][["ts", "price", "qty"]].tolist()
[(1000, 100.02, 2.0)]
>>> eng.position, round(eng.cash, 2)
(2.0, 999799.96)

Engine semantics (the pure-Python twin is :class:`ticktape.reference.ReferenceEngine`).
Tick i is processed in event order:

1. market data: the displayed liquidity becomes ``bid_size`` lots-worth at
   ``bid`` and ``ask_size`` at ``ask`` (``floor(size / lot_size)`` lots; a NaN
   size shows nothing). A quote with a NaN, infinite or non-positive price,
   or with bid > ask, is ignored (no liquidity this tick, mark unchanged,
   counted in ``quotes_ignored``);
2. orders whose arrival ``ts_created + latency_ns <= ts[i]`` and that were
   created at an earlier tick are released (ACCEPTED);
3. released market orders take the displayed top of book (buy at the ask,
   sell at the bid) up to its size; what one order takes is gone for the
   rest of the tick; the remainder keeps working on later ticks;
4. ``target[i]`` (NaN = no decision): if ``|target - (position + working
   qty)| >= lot_size / 2``, the working order (if any) is CANCELLED and one
   market order for ``round((target - position) / lot_size)`` lots is
   SUBMITTED (ids 1, 2, ...);
5. an equity sample ``(ts, cash, position, mark, equity)`` is emitted at the
   first tick whose ts reaches the next multiple of ``equity_interval_ns``
   (and at the very first tick); ``finish()`` adds one at the last tick.

``fee = fee_bps * 1e-4 * price * qty`` and ``side * price * qty`` come off
the cash; ``equity = cash + position * mark`` (mark = mid of the latest valid
quote). A batch is validated before anything changes, so a ValueError leaves
the engine as it was, and output does not depend on how the stream is split
into batches or restored with ``get_state``/``from_state`` in between.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from ticktape._native import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
    BOOK_FILL_DTYPE,
    Engine,
    InputError,
    OrderBook,
    TickBatch,
)
from ticktape.model.batch import DEPTH_DTYPE, ORDER_INSTR_DTYPE

__all__ = [
    "BOOK_FILL_DTYPE",
    "DEPTH_DTYPE",
    "ORDER_INSTR_DTYPE",
    "Engine",
    "InputError",
    "L3Kind",
    "Liquidity",
    "OrderAction",
    "OrderBook",
    "OrderEvent",
    "OrderType",
    "QueueModel",
    "Side",
    "SlippageModel",
    "TickBatch",
    "TimeInForce",
    "depth_diffs",
    "from_ticks",
    "instructions",
    "to_ticks",
]


class Side(IntEnum):
    """Order side; an int on the wire."""

    BUY = 1
    SELL = -1


class OrderType(IntEnum):
    """Order type; an int on the wire (``ORDER_DTYPE['type']``).

    OrderBook takes MARKET and LIMIT; the Engine also STOP (a market order
    once triggered) and STOP_LIMIT (a limit order once triggered).
    """

    MARKET = 0
    LIMIT = 1
    STOP = 2
    STOP_LIMIT = 3


class OrderAction(IntEnum):
    """``ORDER_INSTR_DTYPE['action']`` of an engine instruction."""

    NEW = 0
    CANCEL = 1
    MODIFY = 2


class Liquidity(IntEnum):
    """``fill_liquidity`` of ``Engine.process(..., details=True)``."""

    TAKER = 0
    MAKER = 1


class QueueModel(IntEnum):
    """``Engine(queue_model=)``: queue position of resting limit orders."""

    NONE = 0  # optimistic: nothing ahead, every trade at the price fills
    RISK_AVERSE = 1  # ahead = displayed size on arrival, advances on trades only
    PROBABILISTIC = 2  # hftbacktest's ProbQueueModel with f(x) = x ** queue_power


class SlippageModel(IntEnum):
    """``Engine(slippage_model=)``: market orders larger than the displayed size."""

    NONE = 0  # the remainder waits for later ticks
    IMPACT = 1  # the remainder fills at once, impact_bps worse per displayed size


class OrderEvent(IntEnum):
    """Order lifecycle event; an int on the wire (``ORDER_DTYPE['event']``).

    In the engine's order events, ``qty`` is the order quantity for
    SUBMITTED and ACCEPTED, the quantity of this fill for PARTIALLY_FILLED
    and FILLED (``price`` = fill price, NaN otherwise) and the unfilled
    quantity for CANCELLED.
    """

    SUBMITTED = 0
    ACCEPTED = 1
    PARTIALLY_FILLED = 2
    FILLED = 3
    CANCELLED = 4
    REJECTED = 5
    TRIGGERED = 6


class TimeInForce(IntEnum):
    """Time in force of :meth:`OrderBook.place`."""

    GTC = 0
    IOC = 1
    FOK = 2
    POST_ONLY = 3


class L3Kind(IntEnum):
    """Event kinds of :meth:`OrderBook.apply_l3` streams."""

    ADD = 1
    REDUCE = 2
    DELETE = 3
    EXECUTE = 4


def instructions(n: int = 0, **columns: object) -> np.ndarray:
    """An ``ORDER_INSTR_DTYPE`` array with the defaults of an empty field.

    ``price`` and ``stop_price`` default to NaN, ``latency_ns`` to -1 (the
    engine's entry latency), everything else to 0 (NEW, GTC, MARKET).
    Keyword arguments set whole columns (broadcast; their length sets ``n``
    when given).

    Examples
    --------
    >>> ins = instructions(i=[0, 3], order_id=[1, 2], side=Side.BUY, type=OrderType.LIMIT,
    ...                    price=[99.5, 99.6], qty=1.0)
    >>> ins[["i", "order_id", "type", "price", "latency_ns"]].tolist()
    [(0, 1, 1, 99.5, -1), (3, 2, 1, 99.6, -1)]
    """
    for v in columns.values():
        shape = np.shape(v)
        if shape:
            n = shape[0]
            break
    out = np.zeros(n, dtype=ORDER_INSTR_DTYPE)
    out["price"] = np.nan
    out["stop_price"] = np.nan
    out["latency_ns"] = -1
    for name, v in columns.items():
        if name not in ORDER_INSTR_DTYPE.names:
            raise ValueError(f"unknown instruction field {name!r}; fields are {ORDER_INSTR_DTYPE.names}")
        out[name] = v
    return out


def depth_diffs(n: int = 0, **columns: object) -> np.ndarray:
    """A ``DEPTH_DTYPE`` array (L2 diffs for ``Engine.process(depth=)``).

    Fields ``i`` (tick index in the batch), ``side`` (+1 bids, -1 asks),
    ``price``, ``qty`` (the level's absolute displayed size, 0 removes it);
    all default to 0. Keyword arguments set whole columns (broadcast; their
    length sets ``n`` when given).

    Examples
    --------
    >>> d = depth_diffs(i=[0, 0, 0], side=[Side.SELL, Side.SELL, Side.BUY],
    ...                 price=[100.01, 100.02, 100.0], qty=[3.0, 5.0, 4.0])
    >>> d.tolist()
    [(0, -1, 100.01, 3.0), (0, -1, 100.02, 5.0), (0, 1, 100.0, 4.0)]
    """
    names = DEPTH_DTYPE.names or ()
    for v in columns.values():
        shape = np.shape(np.asarray(v))
        if shape:
            n = shape[0]
            break
    out = np.zeros(n, dtype=DEPTH_DTYPE)
    for name, v in columns.items():
        if name not in names:
            raise ValueError(f"unknown depth field {name!r}; fields are {names}")
        out[name] = v
    return out


def to_ticks(prices: object, tick_size: float, field: str = "price") -> np.ndarray:
    """Convert prices to int64 ticks: ``round(price / tick_size)``.

    Parameters
    ----------
    prices
        Array-like of float prices.
    tick_size
        The instrument's tick size (> 0).
    field
        Name used in error messages.

    Raises
    ------
    ValueError
        If a price is not finite or lies off the tick grid by more than
        1e-6 tick; the message names ``field`` and the index.

    Examples
    --------
    >>> to_ticks([100.0, 100.01], 0.01).tolist()
    [10000, 10001]
    """
    if not (np.isfinite(tick_size) and tick_size > 0):
        raise ValueError(f"tick_size must be finite and > 0, got {tick_size!r}")
    p = np.asarray(prices, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(p))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{field}[{i}] = {p.flat[i]!r} is not finite")
    x = p / tick_size
    big = np.flatnonzero(np.abs(x) >= 4.0e18)
    if big.size:
        i = int(big[0])
        raise ValueError(f"{field}[{i}] = {p.flat[i]!r} is out of range for tick_size {tick_size!r}")
    t = np.rint(x)
    off = np.flatnonzero(np.abs(x - t) > 1e-6)
    if off.size:
        i = int(off[0])
        raise ValueError(f"{field}[{i}] = {p.flat[i]!r} is not on the tick grid (tick_size {tick_size!r})")
    return t.astype(np.int64)


def from_ticks(ticks: object, tick_size: float) -> np.ndarray:
    """Convert int ticks to float prices the way the engine reports them.

    When ``1 / tick_size`` is an integer N, ``ticks / N`` (so 10001 ticks of
    0.01 is 100.01 exactly as Python prints it), else ``ticks * tick_size``.

    Examples
    --------
    >>> from_ticks([10001], 0.01).tolist()
    [100.01]
    """
    t = np.asarray(ticks, dtype=np.float64)
    inv = round(1.0 / tick_size)
    if tick_size < 1.0 and inv >= 1 and abs(1.0 / tick_size - inv) <= 1e-9 * inv:
        return t / float(inv)
    return t * tick_size
