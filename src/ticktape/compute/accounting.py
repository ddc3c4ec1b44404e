"""Portfolio accounting from fills: ledgers, round-trip trades, equity curves.

Conventions (the same as the native engine's portfolio, see docs/metrics.md):

* **Fills** are applied in event order (``ts`` non-decreasing). A fill has a
  ``side`` (+1 buy, -1 sell), a ``price`` > 0, a ``qty`` > 0 and a ``fee``
  (any finite amount in cash units; negative is a rebate).
* **Cash.** A fill moves cash by ``-side * price * qty`` and then by ``-fee``
  (two subtractions in that order, exactly as the engine does, so the numbers
  agree to the last bit).
* **Average cost.** Opening or adding to a position moves the average entry
  price to the quantity-weighted mean of the old average and the fill price;
  a reducing fill keeps the average; a fill that crosses zero (a *flip*)
  closes the old position and opens the remainder at the fill price. Flat
  means ``avg_price`` NaN. Fees are not folded into the average price.
* **Realized PnL** is gross: ``(price - avg_price) * closed_qty * sign(position)``
  per reducing fill. Fees are kept apart: ``realized_net = realized - fees``.
* **Unrealized PnL** at a mark is ``(mark - avg_price) * position`` (0 when
  flat, whatever the mark).
* **Equity** = ``cash + position * mark`` summed over symbols; a flat symbol
  adds nothing (so a NaN mark does not matter while flat). Hence
  ``equity = initial_cash + realized - fees + unrealized``.
* **Zero.** Quantities are floats; a reducing fill whose quantity is within
  a relative 1e-9 of the position closes it exactly (no 1e-17 residues).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

import ticktape._native as _native  # noqa: PLR0402 (the from-form reaches mypy through ticktape.__getattr__, in an import cycle: Any?)
from ticktape.reference import OPEN_EXIT_TS, QTY_RTOL, position_step

__all__ = ["Ledger", "Portfolio", "RoundTrips", "equity_curve", "trades"]

TRADE_COLUMNS = [
    "entry_ts",
    "exit_ts",
    "side",
    "size",
    "entry_price",
    "exit_price",
    "pnl",
    "fees",
    "net_pnl",
    "return_pct",
    "duration_ns",
    "mae",
    "mfe",
    "n_fills",
    "notional",
    "open",
]


#: The per-trade columns of a round trip pass (besides the excursions lo / hi).
_TRIP_COLUMNS = (
    "entry_ts",
    "exit_ts",
    "side",
    "size",
    "entry_notional",
    "exit_qty",
    "exit_notional",
    "pnl",
    "fees",
    "n_fills",
    "notional",
)


# ---------------------------------------------------------------- validation
def _check_fill(ts: int, side: int, price: float, qty: float, fee: float, where: str) -> None:
    if side not in (1, -1):
        raise ValueError(f"{where}side = {side!r} must be 1 (buy) or -1 (sell)")
    if not (math.isfinite(price) and price > 0.0):
        raise ValueError(f"{where}price = {price!r} must be finite and > 0")
    if not (math.isfinite(qty) and qty > 0.0):
        raise ValueError(f"{where}qty = {qty!r} must be finite and > 0")
    if not math.isfinite(fee):
        raise ValueError(f"{where}fee = {fee!r} must be finite")


def _column(fills: Any, name: str) -> np.ndarray:
    try:
        return np.asarray(fills[name])
    except (KeyError, ValueError, IndexError) as exc:
        raise ValueError(f"fills has no field {name!r} (needs ts, side, price, qty, fee)") from exc


def _fill_arrays(fills: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validated (ts, side, price, qty, fee) columns of ``fills``.

    ``fills`` is a structured array (``ticktape.model.batch.FILL_DTYPE`` or any
    dtype with these fields), a DataFrame or a mapping of columns.
    """
    cols = [_column(fills, n) for n in ("ts", "side", "price", "qty", "fee")]
    n = len(cols[0])
    for name, col in zip(("ts", "side", "price", "qty", "fee"), cols, strict=True):
        if col.ndim != 1 or len(col) != n:
            raise ValueError(f"fills.{name} must be 1-D with {n} values, got shape {col.shape}")
    ts_raw, side_raw, price, qty, fee = cols
    if n and not np.issubdtype(ts_raw.dtype, np.integer):
        raise ValueError(f"fills.ts must be int64 ns since the epoch, got dtype {ts_raw.dtype}")
    ts = ts_raw.astype(np.int64, copy=False)
    price = price.astype(np.float64, copy=False)
    qty = qty.astype(np.float64, copy=False)
    fee = fee.astype(np.float64, copy=False)
    side_f = side_raw.astype(np.float64, copy=False)
    checks = (
        ("side", (side_f == 1.0) | (side_f == -1.0), "must be 1 (buy) or -1 (sell)"),
        ("price", np.isfinite(price) & (price > 0.0), "must be finite and > 0"),
        ("qty", np.isfinite(qty) & (qty > 0.0), "must be finite and > 0"),
        ("fee", np.isfinite(fee), "must be finite"),
    )
    for name, ok, why in checks:
        bad = np.flatnonzero(~ok)
        if len(bad):
            i = int(bad[0])
            value = (side_raw if name == "side" else {"price": price, "qty": qty, "fee": fee}[name])[i].item()
            raise ValueError(f"fills.{name}[{i}] = {value!r} {why}")
    back = np.flatnonzero(np.diff(ts) < 0)
    if len(back):
        i = int(back[0]) + 1
        raise ValueError(
            f"fills.ts[{i}] = {ts[i]} goes backwards (previous {ts[i - 1]}); fills must be in event order"
        )
    return ts, side_f.astype(np.int8), price, qty, fee


def _mark_arrays(marks_ts: Any, marks_price: Any) -> tuple[np.ndarray, np.ndarray]:
    mts = np.asarray(marks_ts)
    mpx = np.asarray(marks_price, dtype=np.float64)
    if mts.ndim != 1 or mpx.ndim != 1 or len(mts) != len(mpx):
        raise ValueError(
            f"marks_ts and marks_price must be 1-D of one length, got {mts.shape} and {mpx.shape}"
        )
    if len(mts) and not np.issubdtype(mts.dtype, np.integer):
        raise ValueError(f"marks_ts must be int64 ns since the epoch, got dtype {mts.dtype}")
    mts = mts.astype(np.int64, copy=False)
    back = np.flatnonzero(np.diff(mts) < 0)
    if len(back):
        i = int(back[0]) + 1
        raise ValueError(f"marks_ts[{i}] = {mts[i]} goes backwards (previous {mts[i - 1]})")
    bad = np.flatnonzero(~(np.isnan(mpx) | (np.isfinite(mpx) & (mpx > 0.0))))
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"marks_price[{i}] = {mpx[i].item()!r} must be > 0 (NaN means no valid mark)")
    return mts, mpx


def _shift_index(message: str, offset: int, series: str = "marks") -> str:
    """An error about ``marks_*[i]`` (or ``fills.*[i]``) of one piece, renumbered for the whole series."""
    if not offset:
        return message
    pattern = r"(marks_(?:ts|price))\[(\d+)\]" if series == "marks" else r"(fills\.\w+)\[(\d+)\]"
    return re.sub(pattern, lambda m: f"{m[1]}[{int(m[2]) + offset}]", message)


# ---------------------------------------------------------------- position step


# ---------------------------------------------------------------- ledger
@dataclass
class Ledger:
    """Position, cash and PnL of one symbol under average-cost accounting.

    Parameters
    ----------
    initial_cash
        Cash before the first fill.
    symbol
        A label, for messages only.

    Notes
    -----
    See the module docstring for the conventions. ``cash`` changes by
    ``-side * price * qty - fee`` per fill; ``realized_pnl`` is gross and
    ``fees`` accumulates every fee, so ``realized_net = realized_pnl - fees``.

    Examples
    --------
    >>> led = Ledger(initial_cash=1000.0)
    >>> led.apply(1, 1, 10.0, 4, fee=0.5)      # buy 4 @ 10: opens, realizes nothing
    0.0
    >>> led.apply(2, 1, 12.5, 6)               # add 6 @ 12.5: average (4*10 + 6*12.5)/10
    0.0
    >>> led.avg_price
    11.5
    >>> led.apply(3, -1, 13.0, 5, fee=0.25)    # sell 5 @ 13: (13 - 11.5) * 5
    7.5
    >>> led.position, led.avg_price, led.cash  # 1000 - 40 - 0.5 - 75 + 65 - 0.25
    (5.0, 11.5, 949.25)
    >>> led.unrealized(12.0), led.equity(12.0), led.realized_net  # 949.25 + 5 * 12
    (2.5, 1009.25, 6.75)
    >>> led.apply(4, -1, 11.0, 8)              # flip: close 5 @ 11 (-2.5), short 3 @ 11
    -2.5
    >>> led.position, led.avg_price
    (-3.0, 11.0)
    """

    initial_cash: float = 0.0
    symbol: str = ""
    cash: float = field(init=False)
    position: float = field(init=False, default=0.0)
    avg_price: float = field(init=False, default=math.nan)
    realized_pnl: float = field(init=False, default=0.0)
    fees: float = field(init=False, default=0.0)
    n_fills: int = field(init=False, default=0)
    last_ts: int | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if not math.isfinite(self.initial_cash):
            raise ValueError(f"initial_cash = {self.initial_cash!r} must be finite")
        self.cash = float(self.initial_cash)

    @property
    def realized_net(self) -> float:
        """Realized PnL net of every fee paid so far (``realized_pnl - fees``)."""
        return self.realized_pnl - self.fees

    def apply(self, ts: int, side: int, price: float, qty: float, fee: float = 0.0) -> float:
        """Apply one fill; return the gross PnL it realized.

        Raises ``ValueError`` naming the field for a side other than ±1, a
        price or quantity that is not finite and > 0, a non-finite fee, or a
        ``ts`` before the previous fill's.
        """
        where = f"fill {self.n_fills}{' of ' + self.symbol if self.symbol else ''}: "
        if side not in (1, -1):
            raise ValueError(f"{where}side = {side!r} must be 1 (buy) or -1 (sell)")
        if int(ts) != ts:
            raise ValueError(f"{where}ts = {ts!r} must be an integer (ns since the epoch)")
        ts, side = int(ts), int(side)
        price, qty, fee = float(price), float(qty), float(fee)
        _check_fill(ts, side, price, qty, fee, where)
        if self.last_ts is not None and ts < self.last_ts:
            raise ValueError(f"{where}ts = {ts} goes backwards (previous {self.last_ts})")
        return self._apply(ts, side, price, qty, fee)

    def _apply(self, ts: int, side: int, price: float, qty: float, fee: float) -> float:
        self.position, self.avg_price, _, realized = position_step(
            self.position, self.avg_price, side, price, qty
        )
        self.realized_pnl += realized
        self.cash -= side * price * qty
        self.cash -= fee
        self.fees += fee
        self.n_fills += 1
        self.last_ts = ts
        return realized

    def apply_fills(self, fills: Any) -> float:
        """Apply a batch of fills (``FILL_DTYPE`` array or DataFrame) in order; return the realized gross PnL."""
        ts, side, price, qty, fee = _fill_arrays(fills)  # validated as a whole
        if len(ts) and self.last_ts is not None and ts[0] < self.last_ts:
            raise ValueError(f"fills.ts[0] = {ts[0]} goes backwards (previous {self.last_ts})")
        total = 0.0
        for row in zip(ts.tolist(), side.tolist(), price.tolist(), qty.tolist(), fee.tolist(), strict=True):
            total += self._apply(*row)
        return total

    def unrealized(self, mark: float) -> float:
        """Unrealized PnL at ``mark``: ``(mark - avg_price) * position``; 0 when flat."""
        return 0.0 if self.position == 0.0 else (float(mark) - self.avg_price) * self.position

    def equity(self, mark: float) -> float:
        """``cash + position * mark`` (``cash`` when flat)."""
        return self.cash if self.position == 0.0 else self.cash + self.position * float(mark)


class Portfolio:
    """Ledgers of several symbols sharing one cash balance.

    Fills of all symbols are applied in one event order (``ts`` non-decreasing
    across symbols). ``cash`` moves exactly as each fill moves its ledger's
    cash; ``equity(marks)`` is ``cash + Σ position × mark`` over the symbols
    that are not flat.

    Examples
    --------
    >>> pf = Portfolio(initial_cash=10_000.0)
    >>> pf.apply("AAA", 1, 1, 100.0, 10, fee=1.0)   # cash 10000 - 1000 - 1
    0.0
    >>> pf.apply("BBB", 2, -1, 50.0, 4)             # short 4 @ 50: cash + 200
    0.0
    >>> pf.cash, pf.equity({"AAA": 101.0, "BBB": 49.0})  # 9199 + 10*101 - 4*49
    (9199.0, 10013.0)
    >>> pf.unrealized({"AAA": 101.0, "BBB": 49.0}), pf.fees  # 10*1 + 4*1
    (14.0, 1.0)
    """

    def __init__(self, initial_cash: float = 0.0) -> None:
        if not math.isfinite(initial_cash):
            raise ValueError(f"initial_cash = {initial_cash!r} must be finite")
        self.initial_cash = float(initial_cash)
        self.cash = float(initial_cash)
        self.ledgers: dict[str, Ledger] = {}
        self.last_ts: int | None = None

    def apply(self, symbol: str, ts: int, side: int, price: float, qty: float, fee: float = 0.0) -> float:
        """Apply one fill of ``symbol``; return the gross PnL it realized."""
        if self.last_ts is not None and int(ts) < self.last_ts:
            raise ValueError(f"fill of {symbol}: ts = {int(ts)} goes backwards (previous {self.last_ts})")
        ledger = self.ledgers.get(symbol)
        if ledger is None:
            ledger = Ledger(symbol=symbol)
        realized = ledger.apply(ts, side, price, qty, fee)  # validates before anything changes
        self.ledgers[symbol] = ledger
        self.cash -= int(side) * float(price) * float(qty)
        self.cash -= float(fee)
        self.last_ts = int(ts)
        return realized

    def position(self, symbol: str) -> float:
        """Signed position of ``symbol`` (0 for a symbol never traded)."""
        ledger = self.ledgers.get(symbol)
        return 0.0 if ledger is None else ledger.position

    @property
    def realized_pnl(self) -> float:
        """Gross realized PnL over all symbols."""
        return sum(led.realized_pnl for led in self.ledgers.values())

    @property
    def fees(self) -> float:
        """Fees paid over all symbols."""
        return sum(led.fees for led in self.ledgers.values())

    def _marks_for_open(self, marks: Mapping[str, float]) -> dict[str, float]:
        out = {}
        for sym, led in self.ledgers.items():
            if led.position != 0.0:
                if sym not in marks:
                    raise KeyError(f"marks has no price for {sym!r}, which has position {led.position}")
                out[sym] = float(marks[sym])
        return out

    def unrealized(self, marks: Mapping[str, float]) -> float:
        """Unrealized PnL over all symbols at ``marks`` (needed for non-flat symbols only)."""
        m = self._marks_for_open(marks)
        return sum(self.ledgers[s].unrealized(p) for s, p in m.items())

    def equity(self, marks: Mapping[str, float]) -> float:
        """``cash + Σ position × mark`` over the non-flat symbols."""
        m = self._marks_for_open(marks)
        total = self.cash
        for s, p in m.items():
            total += self.ledgers[s].position * p
        return total


# ---------------------------------------------------------------- equity curve
def _state_after_fills(
    side: np.ndarray, price: np.ndarray, qty: np.ndarray, fee: np.ndarray, initial_cash: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cash and position after each fill, through the same ``position_step`` as the ledger."""
    n = len(side)
    cash = np.empty(n)
    pos = np.empty(n)
    c, p, a = float(initial_cash), 0.0, math.nan
    rows = zip(side.tolist(), price.tolist(), qty.tolist(), fee.tolist(), strict=True)
    for i, (s, px, q, f) in enumerate(rows):
        p, a, _, _ = position_step(p, a, s, px, q)
        c -= s * px * q
        c -= f
        cash[i] = c
        pos[i] = p
    return cash, pos


def equity_curve(
    fills: Any,
    marks_ts: Any,
    marks_price: Any,
    initial_cash: float,
    grid_ns: int | None = None,
    sample: str = "first",
) -> pd.DataFrame:
    """Cash, position, mark and equity at each mark, optionally sampled on a time grid.

    Parameters
    ----------
    fills
        ``FILL_DTYPE`` array (or DataFrame) in event order.
    marks_ts, marks_price
        The mark series (int64 ns, non-decreasing). The engine's mark is the
        mid of the latest valid quote: NaN in ``marks_price`` means "no valid
        quote at this event" and the previous mark is kept (NaN before the
        first valid one).
    initial_cash
        Cash before the first fill.
    grid_ns
        None: one row per mark event. Otherwise the width of the event-time
        grid (intervals ``[k * grid_ns, (k + 1) * grid_ns)``).
    sample
        With a grid, which event of each interval gives its row:
        ``"first"`` (the native engine's convention: the state right after
        the first event of each interval, plus the last event of the stream
        if it is not already one) or ``"last"`` (the state after the last
        event of each interval, as ``resample().last()``). Rows are stamped
        with the event's own ``ts``.

    Returns
    -------
    pandas.DataFrame
        Index ``ts`` (int64 ns); columns ``cash``, ``position``, ``price``
        (the mark) and ``equity`` — the fields of ``EQUITY_DTYPE``.

    Notes
    -----
    A fill at time t is included in every row stamped t or later; fills
    after the last mark show in no row. Equity is ``cash`` when flat and
    ``cash + position * mark`` otherwise (NaN while holding a position
    without any valid mark yet), computed with the same operations as the
    engine, so for the engine's own fills and quotes (mark = mid) the
    ``"first"`` sampling reproduces its equity samples exactly. (Where
    several ticks share one timestamp the engine samples after the first of
    them, while here every fill at that timestamp is already in.)

    Examples
    --------
    >>> import numpy as np
    >>> from ticktape.model.batch import FILL_DTYPE
    >>> fills = np.array([(10, 1, 1, 100.0, 2.0, 0.5)], dtype=FILL_DTYPE)
    >>> curve = equity_curve(fills, [5, 10, 15], [99.0, 100.0, 103.0], initial_cash=1000.0)
    >>> curve["equity"].tolist()   # flat, then 1000 - 200 - 0.5 + 2 * mark
    [1000.0, 999.5, 1005.5]
    """
    if sample not in ("first", "last"):
        raise ValueError(f"sample = {sample!r} must be 'first' or 'last'")
    if not math.isfinite(initial_cash):
        raise ValueError(f"initial_cash = {initial_cash!r} must be finite")
    if grid_ns is not None and (int(grid_ns) != grid_ns or grid_ns <= 0):
        raise ValueError(f"grid_ns = {grid_ns!r} must be a positive integer (ns)")
    fts, side, price, qty, fee = _fill_arrays(fills)
    mts, mpx = _mark_arrays(marks_ts, marks_price)
    cash_f, pos_f = _state_after_fills(side, price, qty, fee, initial_cash)
    k = np.searchsorted(fts, mts, side="right") - 1
    has = k >= 0
    cash = np.where(has, cash_f[np.maximum(k, 0)] if len(fts) else 0.0, float(initial_cash))
    pos = np.where(has, pos_f[np.maximum(k, 0)] if len(fts) else 0.0, 0.0)
    mark = pd.Series(mpx).ffill().to_numpy()
    equity = np.where(pos == 0.0, cash, cash + pos * mark)
    if grid_ns is not None and len(mts):
        bucket = np.floor_divide(mts, np.int64(grid_ns))
        change = np.flatnonzero(np.diff(bucket) != 0)
        if sample == "first":
            rows = np.concatenate(([0], change + 1))
            if rows[-1] != len(mts) - 1:
                rows = np.append(rows, len(mts) - 1)
        else:
            rows = np.append(change, len(mts) - 1)
        mts, cash, pos, mark, equity = mts[rows], cash[rows], pos[rows], mark[rows], equity[rows]
    return pd.DataFrame(
        {"cash": cash, "position": pos, "price": mark, "equity": equity},
        index=pd.Index(mts, name="ts", dtype=np.int64),
    )


# ---------------------------------------------------------------- trades
def trades(fills: Any, marks_ts: Any = None, marks_price: Any = None) -> pd.DataFrame:
    """Round-trip trades of one symbol's fills.

    A trade opens when the position leaves 0 and closes when it returns to 0.
    A fill that crosses zero (a flip) is split: the part that closes the old
    position ends one trade and the remainder opens the next; its fee is
    split pro rata to the quantities.

    Parameters
    ----------
    fills
        ``FILL_DTYPE`` array (or DataFrame) of one symbol, in event order.
    marks_ts, marks_price
        Optional mark series (int64 ns, non-decreasing; NaN = no mark) for the
        excursions and for valuing a trade still open at the end.

    Returns
    -------
    pandas.DataFrame
        One row per trade, in entry order, with columns:

        ``entry_ts``, ``exit_ts`` (int64 ns; ``exit_ts`` is <NA> while open),
        ``side`` (1 long, -1 short), ``size`` (the entry size: the quantity
        of all fills that increased the position, as backtrader and
        backtesting.py report it; for a closed trade it equals the exit
        quantity), ``entry_price`` / ``exit_price`` (quantity-weighted mean
        of the entering / exiting fills; ``exit_price`` NaN while open),
        ``pnl`` (gross: the sum of the realized PnL of the trade's reducing
        fills under average cost, which for a closed trade equals
        ``side * (exit_price - entry_price) * size``), ``fees``, ``net_pnl``
        (``pnl - fees``), ``return_pct`` (a fraction, not ×100:
        ``net_pnl / (entry_price * size)``, like backtesting.py's
        ``ReturnPct``), ``duration_ns`` (exit - entry), ``mae`` / ``mfe``
        (maximum adverse / favourable excursion), ``n_fills`` (fills that
        touched the trade; a flip fill counts in both), ``notional``
        (``Σ price * qty`` of the trade's fills or fill parts) and ``open``.

    Notes
    -----
    **Excursions** are the extremes of the trade's running gross PnL
    (realized so far + unrealized), in cash units (price units × quantity):
    evaluated at the price of each of its fills and, when marks are given,
    at every valid mark from entry to exit (the position after all fills
    with ``ts`` <= the mark's). ``mae = min(0, lowest)`` (<= 0) and
    ``mfe = max(0, highest)`` (>= 0), so ``mae <= min(0, pnl)`` and
    ``mfe >= max(0, pnl)``. Without marks only fill prices are seen, which
    understates both.

    **An open trade** at the end is valued at the last valid mark when it is
    not older than the trade's last fill, else at that fill's price: ``pnl``
    is its realized part plus the unrealized at that price, ``duration_ns``
    runs to that price's timestamp, ``exit_ts`` is <NA>, ``exit_price`` NaN
    and ``open`` True.

    Examples
    --------
    >>> import numpy as np
    >>> from ticktape.model.batch import FILL_DTYPE
    >>> f = np.array([(1, 1, 1, 10.0, 2, 0.2),    # buy 2 @ 10: long opens
    ...               (2, 2, -1, 12.0, 5, 0.5),   # sell 5 @ 12: closes 2 (+4), short 3 opens
    ...               (3, 3, 1, 11.0, 3, 0.3)],   # buy 3 @ 11: short closes (+3)
    ...              dtype=FILL_DTYPE)
    >>> t = trades(f)
    >>> t[["side", "size", "entry_price", "exit_price", "pnl", "fees", "n_fills"]]
       side  size  entry_price  exit_price  pnl  fees  n_fills
    0     1   2.0         10.0        12.0  4.0   0.4        2
    1    -1   3.0         12.0        11.0  3.0   0.6        2
    """
    if (marks_ts is None) != (marks_price is None):
        raise ValueError("give both marks_ts and marks_price, or neither")
    builder = RoundTrips(fills)
    if marks_ts is not None:
        builder.mark(marks_ts, marks_price)
    return builder.frame()


class RoundTrips:
    """:func:`trades` with the fills and the marks given in pieces, in memory
    that does not grow with the series: ``RoundTrips()`` (or
    ``RoundTrips(fills)``), then ``add_fills(fills)`` and ``mark(ts, price)``
    for the pieces in time order, the fills of a time before the marks of
    that time; ``settled()`` hands over (and forgets) the trades no later
    fill or mark can change, ``frame()`` shows the rest. The fills are one
    pass in C++ that carries the open trade from piece to piece, the
    excursions are extremes and an open trade is valued at the last valid
    mark, so the trades do not depend on how fills or marks were cut: they
    equal ``trades(all_fills, all_ts, all_price)`` exactly. Memory: the
    trades not yet settled and the fills after the latest mark.
    """

    def __init__(self, fills: Any = None) -> None:
        empty_f, empty_i = np.empty(0, np.float64), np.empty(0, np.int64)
        # the trades not settled yet: the first is trade number self._first
        self._cols: dict[str, np.ndarray] = {
            name: (empty_i if name in ("entry_ts", "exit_ts", "n_fills") else empty_f)
            for name in _TRIP_COLUMNS
        }
        self._cols["side"] = np.empty(0, np.int8)
        self._lo, self._hi = empty_f, empty_f
        self._first = 0
        # the state after each fill marks may still need: the last one at or before
        # the latest mark and every later one (trade number, realized, position, average)
        self._st = {"ts": empty_i, "trade": empty_i, "real": empty_f, "pos": empty_f, "avg": empty_f}
        self._pos, self._avg = 0.0, math.nan
        self._fills = 0  # fills seen, for the index in errors
        self._last_fill: tuple[int, float] | None = None  # (ts, price) of the latest fill
        self._marks = 0  # marks seen, for the index in errors
        self._last_mark_ts: int | None = None
        self._last_valid: tuple[int, float] | None = None  # (ts, price) of the latest valid mark
        if fills is not None:
            self.add_fills(fills)

    def add_fills(self, fills: Any) -> None:
        """Take the next piece of the fills (event order across pieces; none
        at or before a mark already taken)."""
        try:
            fts, side, price, qty, fee = _fill_arrays(fills)
        except ValueError as e:  # name the index in the whole series
            raise ValueError(_shift_index(str(e), self._fills, "fills")) from None
        if not len(fts):
            return
        if self._last_fill is not None and fts[0] < self._last_fill[0]:
            raise ValueError(
                f"fills.ts[{self._fills}] = {fts[0]} goes backwards (previous {self._last_fill[0]});"
                " fills must be in event order"
            )
        if self._last_mark_ts is not None and fts[0] <= self._last_mark_ts:
            raise ValueError(
                f"fills.ts[{self._fills}] = {fts[0]} comes after a mark at {self._last_mark_ts}:"
                " give the fills of a time before its marks"
            )
        live = len(self._lo)
        carry = None
        if live and self._cols["exit_ts"][-1] == OPEN_EXIT_TS:  # only the last trade can be open
            carry = {name: self._cols[name][-1] for name in _TRIP_COLUMNS}
            carry.update(lo=self._lo[-1], hi=self._hi[-1], pos=self._pos, avg=self._avg)
        # one pass over the fills in C++ (ticktape.reference.round_trips is its specification)
        r = _native.round_trips(fts, side, price, qty, fee, QTY_RTOL, OPEN_EXIT_TS, carry)
        keep = live - (carry is not None)  # the carried trade comes back as r's trade 0
        base = self._first + keep
        for name in _TRIP_COLUMNS:
            self._cols[name] = np.concatenate(
                (self._cols[name][:keep], r[name].astype(self._cols[name].dtype))
            )
        self._lo = np.concatenate((self._lo[:keep], r["lo"]))
        self._hi = np.concatenate((self._hi[:keep], r["hi"]))
        st_trade = np.where(r["st_trade"] >= 0, r["st_trade"] + base, -1)
        new = {"ts": fts, "trade": st_trade, "real": r["st_real"], "pos": r["st_pos"], "avg": r["st_avg"]}
        self._st = {k: np.concatenate((self._st[k], new[k])) for k in self._st}
        self._pos, self._avg = r["pos"], r["avg"]
        self._fills += len(fts)
        self._last_fill = (int(fts[-1]), float(price[-1]))

    def mark(self, marks_ts: Any, marks_price: Any) -> None:
        """Take the next piece of the mark series (ts non-decreasing across pieces)."""
        try:
            mts, mpx = _mark_arrays(marks_ts, marks_price)
        except ValueError as e:  # name the index in the whole series
            raise ValueError(_shift_index(str(e), self._marks)) from None
        if len(mts) and self._last_mark_ts is not None and mts[0] < self._last_mark_ts:
            raise ValueError(
                f"marks_ts[{self._marks}] = {mts[0]} goes backwards (previous {self._last_mark_ts})"
            )
        self._marks += len(mts)
        if not len(mts):
            return
        self._last_mark_ts = int(mts[-1])
        valid = np.flatnonzero(~np.isnan(mpx))
        if len(valid):
            self._last_valid = (int(mts[valid[-1]]), float(mpx[valid[-1]]))
        st = self._st
        fts = st["ts"]
        if len(fts):
            k = np.searchsorted(fts, mts, side="right") - 1
            ok = (k >= 0) & ~np.isnan(mpx)
            kk = np.where(ok, k, 0)
            tid = st["trade"][kk]
            ok &= tid >= 0
            value = st["real"][kk] + (mpx - st["avg"][kk]) * st["pos"][kk]
            np.minimum.at(self._lo, tid[ok] - self._first, value[ok])
            np.maximum.at(self._hi, tid[ok] - self._first, value[ok])
            # later marks need only the state of the last fill at or before this mark's time on
            drop = max(0, int(np.searchsorted(fts, self._last_mark_ts, side="right")) - 1)
            if drop:
                self._st = {k: a[drop:] for k, a in st.items()}

    def settled(self) -> pd.DataFrame:
        """The trades, in entry order, that no later fill or mark can change
        (closed, and before the trade the latest mark saw), as :meth:`frame`
        rows indexed by trade number; they are forgotten here."""
        first = self._first
        return self._frame(self.settled_columns(), first)

    def settled_columns(self) -> dict[str, np.ndarray]:
        """:meth:`settled` as a dict of numpy columns (no frame: what
        :class:`ticktape.compute.metrics.TradeStats` takes, for less), with
        ``exit_ts`` 0 for an open trade."""
        if self._last_mark_ts is None:  # a later mark may reach any trade
            return self._columns(0)
        reached = self._st["trade"][self._st["trade"] >= 0]
        n = (int(reached[0]) if len(reached) else self._first + len(self._lo)) - self._first
        out = self._columns(n)
        if n:
            self._first += n
            self._cols = {name: c[n:] for name, c in self._cols.items()}
            self._lo, self._hi = self._lo[n:], self._hi[n:]
        return out

    def frame(self) -> pd.DataFrame:
        """The trades not settled yet (see :func:`trades`), valued with the marks taken so far."""
        return self._frame(self.columns(), self._first)

    def columns(self) -> dict[str, np.ndarray]:
        """:meth:`frame` as a dict of numpy columns (``exit_ts`` 0 for an open trade)."""
        return self._columns(len(self._lo))

    def _columns(self, n: int) -> dict[str, np.ndarray]:
        """The first n trades not settled yet: the :func:`trades` columns as arrays."""
        c = {name: col[:n] for name, col in self._cols.items()}
        lo, hi = self._lo[:n].copy(), self._hi[:n].copy()
        size = c["size"]
        entry_price = c["entry_notional"] / size
        is_open = c["exit_ts"] == OPEN_EXIT_TS
        pnl = c["pnl"].copy()
        end = c["exit_ts"].copy()
        with np.errstate(divide="ignore", invalid="ignore"):
            exit_price = np.where(is_open, math.nan, c["exit_notional"] / c["exit_qty"])
        if n and is_open[-1]:  # only the last trade can be open
            assert self._last_fill is not None
            last_fill = self._last_fill[0]
            if self._last_valid is not None and self._last_valid[0] >= last_fill:
                val_ts, val_px = self._last_valid
            else:
                val_ts, val_px = self._last_fill
            pnl[-1] = pnl[-1] + (val_px - self._avg) * self._pos
            lo[-1], hi[-1] = min(lo[-1], pnl[-1]), max(hi[-1], pnl[-1])
            end[-1] = val_ts
        net = pnl - c["fees"]
        return {
            "entry_ts": c["entry_ts"],
            "exit_ts": np.where(is_open, 0, c["exit_ts"]),
            "side": c["side"],
            "size": size,
            "entry_price": entry_price,
            "exit_price": exit_price,
            "pnl": pnl,
            "fees": c["fees"],
            "net_pnl": net,
            "return_pct": net / (entry_price * size),
            "duration_ns": end - c["entry_ts"],
            "mae": lo,
            "mfe": hi,
            "n_fills": c["n_fills"],
            "notional": c["notional"],
            "open": is_open,
        }

    @staticmethod
    def _frame(cols: dict[str, np.ndarray], first: int) -> pd.DataFrame:
        """:meth:`_columns` as :func:`trades` rows numbered from ``first`` (``exit_ts`` <NA> while open)."""
        exit_ts = pd.array(cols["exit_ts"], dtype="Int64")
        exit_ts[cols["open"]] = pd.NA
        return pd.DataFrame(
            {**cols, "exit_ts": exit_ts},
            columns=TRADE_COLUMNS,
            index=pd.RangeIndex(first, first + len(cols["open"])),
        )
