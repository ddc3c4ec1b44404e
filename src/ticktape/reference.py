"""Pure-Python reference order book and execution engine.

Small and slow on purpose: this is the specification that the C++ in
``native/`` (``ticktape.native``) must match exactly. The property tests run
both on the same random streams. Input is assumed valid (the native engine
validates; this one does not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ticktape.batch import EQUITY_DTYPE, FILL_DTYPE, ORDER_DTYPE

BOOK_FILL_DTYPE = np.dtype([("maker_id", "<i8"), ("price", "<i8"), ("qty", "<i8")])

MARKET, LIMIT = 0, 1
SUBMITTED, ACCEPTED, PARTIALLY_FILLED, FILLED, CANCELLED, REJECTED = range(6)
INT64_MAX = 2**63 - 1
MAX_LOTS = 2**53


def _check_side(side: int) -> None:
    if side not in (1, -1):
        raise ValueError(f"side must be +1 (buy) or -1 (sell), got {side}")


class ReferenceBook:
    """Price-time priority book: per side, price -> FIFO list of order ids."""

    def __init__(self) -> None:
        self._orders: dict[int, list[int]] = {}  # id -> [side, price, qty]
        self._queues: dict[int, dict[int, list[int]]] = {1: {}, -1: {}}

    def __len__(self) -> int:
        return len(self._orders)

    def add(self, order_id: int, side: int, price: int, qty: int) -> None:
        _check_side(side)
        if qty <= 0:
            raise ValueError(f"qty must be > 0, got {qty}")
        if order_id in self._orders:
            raise ValueError(f"duplicate order id {order_id}")
        self._orders[order_id] = [side, price, qty]
        self._queues[side].setdefault(price, []).append(order_id)

    def _remove(self, order_id: int) -> None:
        side, price, _ = self._orders.pop(order_id)
        queue = self._queues[side][price]
        queue.remove(order_id)
        if not queue:
            del self._queues[side][price]

    def cancel(self, order_id: int, qty: int | None = None) -> None:
        if qty is not None and qty <= 0:
            raise ValueError(f"cancel qty must be > 0, got {qty}")
        if order_id not in self._orders:
            raise KeyError(f"unknown order id {order_id}")
        if qty is None or qty >= self._orders[order_id][2]:
            self._remove(order_id)
        else:
            self._orders[order_id][2] -= qty

    def execute(self, order_id: int, qty: int) -> None:
        if qty <= 0:
            raise ValueError(f"execute qty must be > 0, got {qty}")
        if order_id not in self._orders:
            raise KeyError(f"unknown order id {order_id}")
        resting = self._orders[order_id][2]
        if qty > resting:
            raise ValueError(f"execute qty {qty} exceeds the resting qty {resting}")
        if qty == resting:
            self._remove(order_id)
        else:
            self._orders[order_id][2] -= qty

    def submit(self, order_id: int, side: int, type: int, price: int, qty: int) -> np.ndarray:
        _check_side(side)
        if type not in (MARKET, LIMIT):
            raise ValueError(f"order type must be 0 (MARKET) or 1 (LIMIT), got {type}")
        if qty <= 0:
            raise ValueError(f"qty must be > 0, got {qty}")
        if order_id in self._orders:
            raise ValueError(f"duplicate order id {order_id}")
        fills = []
        while qty > 0:
            best = self._best_price(-side)
            if best is None:
                break
            if type == LIMIT and (best > price if side > 0 else best < price):
                break
            maker = self._queues[-side][best][0]
            take = min(qty, self._orders[maker][2])
            fills.append((maker, best, take))
            qty -= take
            self.execute(maker, take)
        if type == LIMIT and qty > 0:
            self.add(order_id, side, price, qty)
        return np.array(fills, dtype=BOOK_FILL_DTYPE)

    def place(
        self, order_id: int, side: int, type: int, price: int, qty: int, tif: int = 0
    ) -> tuple[np.ndarray, bool]:
        """An order with a time in force (0 GTC, 1 IOC, 2 FOK, 3 POST_ONLY); see OrderBook.place."""
        if tif not in (0, 1, 2, 3):
            raise ValueError(f"tif must be 0 (GTC), 1 (IOC), 2 (FOK) or 3 (POST_ONLY), got {tif}")
        if tif == 3 and type != LIMIT:
            raise ValueError("POST_ONLY needs a LIMIT order")
        _check_side(side)
        if qty <= 0:
            raise ValueError(f"qty must be > 0, got {qty}")
        if order_id in self._orders:
            raise ValueError(f"duplicate order id {order_id}")
        if tif in (2, 3):
            levels = self._queues[-side]
            ok = [p for p in levels if type != LIMIT or (p <= price if side > 0 else p >= price)]
            avail = sum(self.volume_at(-side, p) for p in ok)
            if (tif == 3 and avail > 0) or (tif == 2 and avail < qty):
                return np.array([], dtype=BOOK_FILL_DTYPE), False
        fills = self.submit(order_id, side, type, price, qty)
        if tif in (1, 2) and order_id in self._orders:
            self._remove(order_id)
        return fills, True

    def modify(self, order_id: int, price: int, qty: int) -> np.ndarray:
        """Same price and smaller qty keeps priority; otherwise re-entered at the back (may trade)."""
        if qty <= 0:
            raise ValueError(f"qty must be > 0, got {qty}")
        if order_id not in self._orders:
            raise KeyError(f"unknown order id {order_id}")
        side, old_price, old_qty = self._orders[order_id]
        if price == old_price and qty <= old_qty:
            self._orders[order_id][2] = qty
            return np.array([], dtype=BOOK_FILL_DTYPE)
        self._remove(order_id)
        return self.submit(order_id, side, LIMIT, price, qty)

    def apply_l3(self, kind, order_id, side, price, qty) -> None:  # type: ignore[no-untyped-def]
        for k, oid, s, p, q in zip(kind, order_id, side, price, qty, strict=True):
            k, oid, s, p, q = int(k), int(oid), int(s), int(p), int(q)
            if k not in (1, 2, 3, 4):
                raise ValueError(f"unknown event kind {k}")
            if k in (2, 4) and q <= 0:
                raise ValueError(f"qty must be > 0, got {q}")
            if k == 1:
                self.add(oid, s, p, q)
            elif oid not in self._orders:
                continue
            elif k == 2:
                self.cancel(oid, q)
            elif k == 3:
                self.cancel(oid)
            else:
                self.execute(oid, q)

    @staticmethod
    def pseudo_id(side: int, price: int) -> int:
        """Id of the pseudo-order for unseen liquidity at (side, price) (see OrderBook.pseudo_id)."""
        _check_side(side)
        if not 0 <= price < 2**61:
            raise ValueError(f"pseudo-order price must be in [0, 2**61), got {price}")
        return -(2 * price + (1 if side > 0 else 0)) - 2

    def _take_from_level(self, side: int, price: int, qty: int) -> int:
        queue = self._queues[side].get(price, [])
        while qty > 0 and queue:
            oid = queue[0]
            take = min(qty, self._orders[oid][2])
            self.execute(oid, take)
            qty -= take
        return qty

    def _row_matches(self, row: list[int], levels: int) -> bool:
        for side, off in ((-1, 0), (1, 2)):
            ours = [tuple(x) for x in self.depth(side, levels).tolist()]
            j = 0
            for lv in range(levels):
                p, q = row[4 * lv + off], row[4 * lv + off + 1]
                if q > 0:
                    if j >= len(ours) or ours[j] != (p, q):
                        return False
                    j += 1
                elif j < len(ours):
                    return False
        return True

    def replay_check(self, kind, order_id, side, price, qty, expected, start: int = 0) -> tuple[int, int]:  # type: ignore[no-untyped-def]
        """LOBSTER-style replay with verification (see OrderBook.replay_check)."""
        exp = np.asarray(expected, dtype=np.int64)
        levels = exp.shape[1] // 4
        shortfall = 0
        for i in range(start, len(kind)):
            k, oid, s, p, q = int(kind[i]), int(order_id[i]), int(side[i]), int(price[i]), int(qty[i])
            if k == 1:
                if oid in self._orders:
                    self._remove(oid)
                self.add(oid, s, p, q)
            elif k in (2, 3, 4):
                if q <= 0:
                    raise ValueError(f"qty[{i}] = {q} must be > 0")
                if oid in self._orders:
                    os_, op, oq = self._orders[oid]
                    take = min(q, oq)
                    if k == 3:
                        self._remove(oid)
                    else:
                        self.execute(oid, take)
                    shortfall += self._take_from_level(os_, op, q - take)
                else:
                    want = q
                    pid = self.pseudo_id(s, p)
                    if pid in self._orders:
                        take = min(want, self._orders[pid][2])
                        self.execute(pid, take)
                        want -= take
                    shortfall += self._take_from_level(s, p, want)
            elif k != 0:
                raise ValueError(
                    f"kind[{i}] = {k} is not 0 (none), 1 (add), 2 (reduce), 3 (delete) or 4 (execute)"
                )
            if not self._row_matches(exp[i].tolist(), levels):
                return i, shortfall
        return len(kind), shortfall

    def _best_price(self, side: int) -> int | None:
        levels = self._queues[side]
        if not levels:
            return None
        return max(levels) if side > 0 else min(levels)

    def _best(self, side: int) -> tuple[int, int] | None:
        p = self._best_price(side)
        return None if p is None else (p, self.volume_at(side, p))

    def best_bid(self) -> tuple[int, int] | None:
        return self._best(1)

    def best_ask(self) -> tuple[int, int] | None:
        return self._best(-1)

    def volume_at(self, side: int, price: int) -> int:
        return sum(self._orders[i][2] for i in self._queues[side].get(price, []))

    def depth(self, side: int, n: int) -> np.ndarray:
        prices = sorted(self._queues[side], reverse=side > 0)[:n]
        return np.array([(p, self.volume_at(side, p)) for p in prices], dtype=np.int64).reshape(-1, 2)

    def order(self, order_id: int) -> tuple[int, int, int] | None:
        o = self._orders.get(order_id)
        return None if o is None else (o[0], o[1], o[2])

    def orders(self, side: int) -> np.ndarray:
        """(id, price, qty) of a side's resting orders in priority order."""
        rows = [
            (i, p, self._orders[i][2])
            for p in sorted(self._queues[side], reverse=side > 0)
            for i in self._queues[side][p]
        ]
        return np.array(rows, dtype=np.int64).reshape(-1, 3)


# ---------------------------------------------------------------- engine


class ReferenceL2Book:
    """Aggregated book: per side, price -> absolute quantity (0 deletes)."""

    def __init__(self) -> None:
        self._levels: dict[int, dict[int, int]] = {1: {}, -1: {}}

    def set(self, side: int, price: int, qty: int) -> None:
        _check_side(side)
        if qty < 0:
            raise ValueError(f"qty = {qty} must be >= 0 (0 deletes the level)")
        if qty == 0:
            self._levels[side].pop(price, None)
        else:
            self._levels[side][price] = qty

    def depth(self, side: int, n: int) -> np.ndarray:
        lv = self._levels[side]
        prices = sorted(lv, reverse=side > 0)[:n]
        return np.array([(p, lv[p]) for p in prices], dtype=np.int64).reshape(-1, 2)

    def top(self, levels: int) -> np.ndarray:
        row = np.zeros(4 * levels, np.int64)
        for side, off in ((-1, 0), (1, 2)):
            for k, (p, q) in enumerate(self.depth(side, levels).tolist()):
                row[4 * k + off], row[4 * k + off + 1] = p, q
        return row

    def apply(self, side, price, qty, snapshot_after=None, levels: int = 1):  # type: ignore[no-untyped-def]
        for i, q in enumerate(qty):
            if int(side[i]) not in (1, -1):
                raise ValueError(f"side[{i}] = {int(side[i])} must be +1 (buy) or -1 (sell)")
            if int(q) < 0:
                raise ValueError(f"qty[{i}] = {int(q)} must be >= 0 (0 deletes the level) and <= 2**53")
        at = [] if snapshot_after is None else [int(x) for x in snapshot_after]
        rows = []
        k = 0
        for i in range(len(qty)):
            self.set(int(side[i]), int(price[i]), int(qty[i]))
            while k < len(at) and at[k] == i:
                rows.append(self.top(levels))
                k += 1
        if snapshot_after is None:
            return None
        return np.array(rows, dtype=np.int64).reshape(len(at), 4 * levels)


def round_half_away(x: float) -> float:
    """Round half away from zero (the engine's rounding, bit for bit)."""
    q = float(math.trunc(x))
    frac = x - q
    if frac >= 0.5:
        return q + 1.0
    if frac <= -0.5:
        return q - 1.0
    return q


class _Grid:
    """Integer steps -> floats: k / N when 1/step is an integer N, else k * step."""

    def __init__(self, step: float) -> None:
        r = round(1.0 / step)
        self.use_inv = step < 1.0 and r >= 1 and abs(1.0 / step - r) <= 1e-9 * r
        self.step = step
        self.inv = float(r)

    def to_float(self, k: int) -> float:
        return k / self.inv if self.use_inv else k * self.step


@dataclass
class _Order:
    id: int
    side: int
    qty: int  # lots
    ts_created: int
    arrival_ts: int
    created_tick: int
    filled: int = 0
    released: bool = False


class ReferenceEngine:
    """The engine's semantics, one tick at a time (see native/engine.hpp)."""

    def __init__(
        self,
        tick_size: float,
        lot_size: float = 1.0,
        latency_ns: int = 0,
        fee_bps: float = 0.0,
        initial_cash: float = 1_000_000.0,
        equity_interval_ns: int = 1_000_000_000,
    ) -> None:
        self.tick_size, self.lot_size = tick_size, lot_size
        self.latency_ns, self.fee_bps = latency_ns, fee_bps
        self.equity_interval_ns = equity_interval_ns
        self._prices, self._lots = _Grid(tick_size), _Grid(lot_size)
        self.position_lots = 0
        self.cash = initial_cash
        self.fees = 0.0
        self.mark = math.nan
        self.ticks_processed = 0
        self.quotes_ignored = 0
        self.last_ts: int | None = None
        self.next_equity_ts = -(2**63)
        self.equity_at_last = False
        self.open: list[_Order] = []
        self.next_order_id = 1

    @property
    def position(self) -> float:
        return self._lots.to_float(self.position_lots)

    @property
    def equity(self) -> float:
        return self.cash if self.position_lots == 0 else self.cash + self.position * self.mark

    def process(self, ts, bid, ask, bid_size, ask_size, target) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
        out: dict[str, list[tuple[Any, ...]]] = {"fills": [], "orders": [], "equity": []}
        for i in range(len(ts)):
            self._step(
                int(ts[i]), float(bid[i]), float(ask[i]), float(bid_size[i]),
                float(ask_size[i]), float(target[i]), out,
            )  # fmt: skip
        return _arrays(out)

    def finish(self) -> dict[str, np.ndarray]:
        out: dict[str, list[tuple[Any, ...]]] = {"fills": [], "orders": [], "equity": []}
        if self.last_ts is not None and not self.equity_at_last:
            self._sample(self.last_ts, out)
        return _arrays(out)

    def _displayed(self, size: float) -> int:
        if not size > 0.0:
            return 0
        x = size / self.lot_size + 1e-9
        return MAX_LOTS if x >= MAX_LOTS else math.floor(x)

    def _step(self, ts, bid, ask, bid_size, ask_size, target, out) -> None:  # type: ignore[no-untyped-def]
        tick = self.ticks_processed
        usable = math.isfinite(bid) and bid > 0 and math.isfinite(ask) and ask > 0
        if usable:
            bt = int(round_half_away(bid / self.tick_size))
            at = int(round_half_away(ask / self.tick_size))
            usable = bt <= at
        # 1. market data: displayed liquidity [price, lots] per side
        if usable:
            book = {-1: [bt, self._displayed(bid_size)], 1: [at, self._displayed(ask_size)]}
            self.mark = self._prices.to_float(bt + at) * 0.5
        else:
            book = {}
            self.quotes_ignored += 1
        # 2. release
        for o in self.open:
            if not o.released and o.created_tick < tick and o.arrival_ts <= ts:
                o.released = True
                out["orders"].append(
                    (ts, o.id, o.side, MARKET, ACCEPTED, math.nan, self._lots.to_float(o.qty))
                )
        # 3. match: a buy lifts the ask (book[1]), a sell hits the bid (book[-1])
        if book:
            for o in self.open:
                if not o.released:
                    continue
                level = book[o.side]
                q = min(o.qty - o.filled, level[1])
                if q <= 0:
                    continue
                level[1] -= q
                o.filled += q
                self.position_lots += o.side * q
                price, qty = self._prices.to_float(level[0]), self._lots.to_float(q)
                fee = self.fee_bps * 1e-4 * price * qty
                self.cash -= o.side * price * qty
                self.cash -= fee
                self.fees += fee
                out["fills"].append((ts, o.id, o.side, price, qty, fee))
                event = FILLED if o.filled == o.qty else PARTIALLY_FILLED
                out["orders"].append((ts, o.id, o.side, MARKET, event, price, qty))
            self.open = [o for o in self.open if o.filled < o.qty]
        # 4. decision
        if not math.isnan(target):
            working = sum(o.side * (o.qty - o.filled) for o in self.open)
            change = target - self._lots.to_float(self.position_lots + working)
            if abs(change) >= self.lot_size / 2.0:
                for o in self.open:
                    left = self._lots.to_float(o.qty - o.filled)
                    out["orders"].append((ts, o.id, o.side, MARKET, CANCELLED, math.nan, left))
                self.open = []
                diff = target - self._lots.to_float(self.position_lots)
                lots = int(round_half_away(diff / self.lot_size))
                if lots != 0:
                    side = 1 if lots > 0 else -1
                    arrival = min(ts + self.latency_ns, INT64_MAX)
                    o = _Order(self.next_order_id, side, abs(lots), ts, arrival, tick)
                    self.next_order_id += 1
                    out["orders"].append(
                        (ts, o.id, side, MARKET, SUBMITTED, math.nan, self._lots.to_float(o.qty))
                    )
                    self.open.append(o)
        self.ticks_processed = tick + 1
        self.last_ts = ts
        # 5. equity on the event-time grid
        self.equity_at_last = False
        if ts >= self.next_equity_ts:
            self._sample(ts, out)

    def _sample(self, ts: int, out: dict[str, list[tuple[Any, ...]]]) -> None:
        out["equity"].append((ts, self.cash, self.position, self.mark, self.equity))
        self.equity_at_last = True
        start = (ts // self.equity_interval_ns) * self.equity_interval_ns
        self.next_equity_ts = min(start + self.equity_interval_ns, INT64_MAX)


def _arrays(out: dict[str, list[tuple[Any, ...]]]) -> dict[str, np.ndarray]:
    return {
        "fills": np.array(out["fills"], dtype=FILL_DTYPE),
        "orders": np.array(out["orders"], dtype=ORDER_DTYPE),
        "equity": np.array(out["equity"], dtype=EQUITY_DTYPE),
    }
