"""Pure-Python reference order book and execution engine.

Small and slow on purpose: this is the specification that the C++ in
``native/`` (``ticktape.native``) must match exactly. The property tests run
both on the same random streams. Input is assumed valid (the native engine
validates; this one does not).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ticktape.model.batch import EQUITY_DTYPE, FILL_DTYPE, ORDER_DTYPE

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


MAX_PRICE = 2**62
STOP, STOP_LIMIT = 2, 3
GTC, IOC, FOK, POST_ONLY = range(4)
NEW, CANCEL, MODIFY = range(3)
TRIGGERED = 6
PENDING, WORKING, RESTING, UNTRIGGERED = range(4)
TAKER, MAKER = 0, 1


@dataclass
class _Order:
    id: int
    side: int
    qty: int  # lots
    ts_created: int
    arrival_ts: int
    created_tick: int
    type: int = MARKET  # as submitted (reported in order events)
    exec_type: int = MARKET  # MARKET or LIMIT (what a triggered stop becomes)
    tif: int = GTC
    price: int = 0  # limit price, ticks
    stop: int = 0  # stop price, ticks
    filled: int = 0
    state: int = PENDING
    front: float = 0.0  # queue ahead, lots (inf: unknown)
    cum_trade: float = 0.0
    level_prev: float = 0.0  # NaN: level not seen
    from_target: bool = False
    rested_tick: int = -1

    @property
    def open(self) -> int:
        return self.qty - self.filled


@dataclass
class _Request:
    order_id: int
    action: int
    arrival_ts: int
    created_tick: int
    side: int
    type: int
    price: int | None = None
    stop: int | None = None
    qty: int | None = None


def _pow(x: float, n: float) -> float:
    try:
        return math.pow(x, n)
    except OverflowError:
        return math.inf


class ReferenceEngine:
    """The engine's semantics, one tick at a time (see native/engine.hpp, docs/native.md).

    Same constructor keywords and ``process`` arguments as :class:`ticktape.native.Engine`;
    input is assumed valid (no checks), there is no ``get_state``.
    """

    def __init__(
        self,
        tick_size: float,
        lot_size: float = 1.0,
        latency_ns: int | None = None,
        fee_bps: float | None = None,
        initial_cash: float = 1_000_000.0,
        equity_interval_ns: int = 1_000_000_000,
        *,
        entry_latency_ns: int | None = None,
        response_latency_ns: int = 0,
        feed_latency_ns: int = 0,
        maker_fee_bps: float = 0.0,
        taker_fee_bps: float | None = None,
        fee_per_unit: float = 0.0,
        queue_model: int = 0,
        queue_power: float = 2.0,
        slippage_model: int = 0,
        impact_bps: float = 0.0,
        target_mode: int = 0,
        depth_refill_ns: int = -1,
    ) -> None:
        self.tick_size, self.lot_size = tick_size, lot_size
        self.target_mode = target_mode
        self.depth_refill_ns = depth_refill_ns
        self.latency_ns = entry_latency_ns if entry_latency_ns is not None else (latency_ns or 0)
        self.fee_bps = taker_fee_bps if taker_fee_bps is not None else (fee_bps or 0.0)
        self.response_latency_ns, self.feed_latency_ns = response_latency_ns, feed_latency_ns
        self.maker_fee_bps, self.fee_per_unit = maker_fee_bps, fee_per_unit
        self.queue_model, self.queue_power = queue_model, queue_power
        self.slippage_model, self.impact_bps = slippage_model, impact_bps
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
        self.open: list[_Order] = []  # live orders, ascending id
        self.requests: list[_Request] = []
        self.unknown: list[list[Any]] = []  # [known_at, signed lots, of a target order believed working]
        self.ids: set[int] = set()  # every id ever used
        self.max_id = 0
        self.book: dict[int, list[int]] = {}
        self.shown: dict[int, int] = {}
        # L2 mode (once any depth arrived): side -> {price: [displayed lots, lots the strategy took]}
        self.l2 = False
        self.depth: dict[int, dict[int, list[int]]] = {1: {}, -1: {}}
        # side -> {price: event time of the strategy's last take there} (levels it took from, until reset)
        self.taken_ts: dict[int, dict[int, int]] = {1: {}, -1: {}}
        # the latest valid L1 quote (bid, ask ticks): depth levels beyond it are hidden
        self.bound: tuple[int, int] | None = None
        self.depth_hidden_ticks = 0  # L2 ticks at which the bound hid some level

    @property
    def position(self) -> float:
        return self._lots.to_float(self.position_lots)

    @property
    def equity(self) -> float:
        return self.cash if self.position_lots == 0 else self.cash + self.position * self.mark

    @property
    def open_qty(self) -> float:
        return self._lots.to_float(sum(o.side * o.open for o in self.open))

    def process(  # type: ignore[no-untyped-def]
        self, ts, bid, ask, bid_size, ask_size, target=None, *, last=None, last_size=None,
        orders=None, depth=None, details: bool = False,
    ) -> dict[str, np.ndarray]:  # fmt: skip
        out: dict[str, list[Any]] = {k: [] for k in _KINDS}
        n = len(ts)
        nan = [math.nan] * n
        target = nan if target is None else target
        last = nan if last is None else last
        last_size = nan if last_size is None else last_size
        instr = [] if orders is None else orders.tolist()
        diffs: dict[int, list[tuple[int, float, float]]] = {}
        for i, side, price, qty in [] if depth is None else depth.tolist():
            diffs.setdefault(i, []).append((side, price, qty))
        k = 0
        for i in range(n):
            todo = []
            while k < len(instr) and instr[k][0] == i:
                todo.append(instr[k])
                k += 1
            self.position_step(
                int(ts[i]), float(bid[i]), float(ask[i]), float(bid_size[i]), float(ask_size[i]),
                float(target[i]), float(last[i]), float(last_size[i]), todo, out, diffs.get(i, []),
            )  # fmt: skip
        return _arrays(out, details)

    def finish(self, *, details: bool = False) -> dict[str, np.ndarray]:
        out: dict[str, list[Any]] = {k: [] for k in _KINDS}
        if self.last_ts is not None and not self.equity_at_last:
            self._sample(self.last_ts, out)
        return _arrays(out, details)

    # ------------------------------------------------------------ helpers
    def _displayed(self, size: float) -> int:
        if not size > 0.0:
            return 0
        x = size / self.lot_size + 1e-9
        return MAX_LOTS if x >= MAX_LOTS else math.floor(x)

    def _ticks(self, p: float) -> int:
        return int(round_half_away(p / self.tick_size))

    def _beyond(self, side: int, px: int) -> bool:
        """Is a depth level of ``side`` at ``px`` beyond the L1 bound (hidden)?"""
        if self.bound is None:
            return False
        return px > self.bound[0] if side > 0 else px < self.bound[1]

    def _shown(self, side: int) -> dict[int, list[int]]:
        """The depth levels of ``side`` not hidden by the bound (the same level lists)."""
        return {p: v for p, v in self.depth[side].items() if not self._beyond(side, p)}

    def _level(self, side: int, px: int) -> float:
        """Displayed lots at a price of ``side`` (0: no level, or hidden)."""
        return 0.0 if self._beyond(side, px) else float(self.depth[side].get(px, [0])[0])

    def _opp_best(self, side: int) -> int | None:
        """The best displayed price an aggressive order of ``side`` trades against (a buy: the ask)."""
        if self.l2:
            lv = self._shown(-side)
            return (min(lv) if side > 0 else max(lv)) if lv else None
        return self.book[side][0] if self.book else None

    def _crosses(self, side: int, price: int) -> bool:
        px = self._opp_best(side)
        return px is not None and (px <= price if side > 0 else px >= price)

    def _limit_px(self, o: _Order) -> float:
        return self._prices.to_float(o.price) if o.type in (LIMIT, STOP_LIMIT) else math.nan

    def _event(self, out, ts, o: _Order, event: int, price: float, qty: float) -> None:  # type: ignore[no-untyped-def]
        out["orders"].append((ts, o.id, o.side, o.type, event, price, qty))

    def _kill(self, o: _Order, ts: int, event: int, out) -> None:  # type: ignore[no-untyped-def]
        self._event(out, ts, o, event, math.nan, self._lots.to_float(o.open))
        o.filled = o.qty

    def _find(self, order_id: int) -> _Order | None:
        for o in self.open:
            if o.id == order_id:
                return o
        return None

    def _arrival(self, ts: int, own: int) -> int:
        return min(ts + self.feed_latency_ns + (own if own >= 0 else self.latency_ns), INT64_MAX)

    # ------------------------------------------------------------ the tick
    def position_step(
        self,
        ts: int,
        bid: float,
        ask: float,
        bid_size: float,
        ask_size: float,
        target: float,
        last: float,
        last_size: float,
        todo: list[Any],
        out: dict[str, list[Any]],
        diffs: Any = (),
    ) -> None:
        tick = self.ticks_processed
        usable = math.isfinite(bid) and bid > 0 and math.isfinite(ask) and ask > 0
        if usable:
            bt, at = self._ticks(bid), self._ticks(ask)
            usable = bt <= at
        if usable:
            self.bound = (bt, at)
        else:
            self.quotes_ignored += 1
        # 1. market data: taken liquidity due for refill shows again (all of a level's, depth_refill_ns
        # after its last take), then the tick's depth diffs (a diff forgets what the strategy took there)
        if self.depth_refill_ns >= 0:
            for side in (1, -1):
                for px, t in list(self.taken_ts[side].items()):
                    if ts >= min(t + self.depth_refill_ns, INT64_MAX):
                        self.depth[side][px][1] = 0
                        del self.taken_ts[side][px]
        for side, price, qty in diffs:
            self.l2 = True
            px, lots = self._ticks(price), self._displayed(qty)
            self.taken_ts[side].pop(px, None)
            if lots <= 0:
                self.depth[side].pop(px, None)
            else:
                self.depth[side][px] = [lots, 0]
        if self.l2:
            if any(self._beyond(s, p) for s in (1, -1) for p in self.depth[s]):
                self.depth_hidden_ticks += 1
            # the mark: mid of the latest valid L1 quote; before any, of the best levels (unless one-sided / crossed)
            bids, asks = self.depth[1], self.depth[-1]
            if self.bound is not None:
                self.mark = self._prices.to_float(self.bound[0] + self.bound[1]) * 0.5
            elif bids and asks and max(bids) <= min(asks):
                self.mark = self._prices.to_float(max(bids) + min(asks)) * 0.5
        elif usable:  # L1: displayed liquidity [price, lots] per side (a buy takes book[1])
            self.book = {-1: [bt, self._displayed(bid_size)], 1: [at, self._displayed(ask_size)]}
            self.shown = {s: self.book[s][1] for s in (1, -1)}
            self.mark = self._prices.to_float(bt + at) * 0.5
        else:
            self.book, self.shown = {}, {}
        self.trade = math.isfinite(last) and last > 0
        self.trade_px = self._ticks(last) if self.trade else 0
        self.trade_lots = self._displayed(last_size) if self.trade else 0
        self.trade_left = self.trade_lots
        # 2. release orders, then requests
        for o in self.open:
            if o.state == PENDING and o.created_tick < tick and o.arrival_ts <= ts:
                self._release(o, ts, out)
        keep = []
        for r in self.requests:
            if not (r.created_tick < tick and r.arrival_ts <= ts):
                keep.append(r)
                continue
            found = self._find(r.order_id)
            if found is None or found.open <= 0:
                out["orders"].append((ts, r.order_id, r.side, r.type, REJECTED, math.nan, math.nan))
            elif r.action == CANCEL:
                self._kill(found, ts, CANCELLED, out)
            else:
                self._modify(found, r, ts, out)
        self.requests = keep
        # 3. match, oldest first
        for o in self.open:
            if o.open <= 0:
                continue
            if o.state == UNTRIGGERED:
                s = o.side
                opp = self._opp_best(s)
                by_quote = opp is not None and (opp >= o.stop if s > 0 else opp <= o.stop)
                by_trade = self.trade and (self.trade_px >= o.stop if s > 0 else self.trade_px <= o.stop)
                if by_quote or by_trade:
                    self._event(
                        out, ts, o, TRIGGERED, self._prices.to_float(o.stop), self._lots.to_float(o.open)
                    )
                    o.state = WORKING
                    self._take(o, ts, out)
            elif o.state == WORKING:
                self._take(o, ts, out)
            elif o.state == RESTING and o.rested_tick != tick:
                self._passive(o, ts, out)
        self.open = [o for o in self.open if o.open > 0]
        # 4. decisions
        now = ts + self.feed_latency_ns
        self.unknown = [u for u in self.unknown if u[0] > now]
        if not math.isnan(target):
            self._decide(target, ts, tick, out)
        for row in todo:
            self._instruct(row, ts, tick, out)
        self.ticks_processed = tick + 1
        self.last_ts = ts
        # 5. equity on the event-time grid
        self.equity_at_last = False
        if ts >= self.next_equity_ts:
            self._sample(ts, out)

    def _release(self, o: _Order, ts: int, out) -> None:  # type: ignore[no-untyped-def]
        if o.tif == POST_ONLY and self._crosses(o.side, o.price):
            self._kill(o, ts, REJECTED, out)
            return
        self._event(out, ts, o, ACCEPTED, self._limit_px(o), self._lots.to_float(o.qty))
        if o.tif == POST_ONLY:
            self._rest(o)
        else:
            o.state = UNTRIGGERED if o.type in (STOP, STOP_LIMIT) else WORKING

    def _rest(self, o: _Order) -> None:
        o.state, o.rested_tick = RESTING, self.ticks_processed
        o.cum_trade, o.front, o.level_prev = 0.0, 0.0, math.nan
        if self.queue_model == 0:
            return
        level = math.nan
        if self.l2:  # every shown level is visible
            level = self._level(o.side, o.price)
        elif self.book:
            touch = self.book[-o.side][0]
            if touch == o.price:
                level = float(self.shown[-o.side])
            elif (touch < o.price) if o.side > 0 else (touch > o.price):
                level = 0.0
        o.front = math.inf if math.isnan(level) else level
        o.level_prev = level

    def _modify(self, o: _Order, r: _Request, ts: int, out) -> None:  # type: ignore[no-untyped-def]
        if r.qty is not None and r.qty <= o.filled:
            self._kill(o, ts, CANCELLED, out)
            return
        reprice = r.price is not None and r.price != o.price
        grow = r.qty is not None and r.qty > o.qty
        if r.price is not None:
            o.price = r.price
        if r.stop is not None:
            o.stop = r.stop
        if r.qty is not None:
            o.qty = r.qty
        self._event(out, ts, o, ACCEPTED, self._limit_px(o), self._lots.to_float(o.qty))
        if o.state == RESTING and (reprice or grow):
            if o.tif == POST_ONLY:
                if self._crosses(o.side, o.price):
                    self._kill(o, ts, REJECTED, out)
                else:
                    self._rest(o)
            else:
                o.state = WORKING

    def _fill(self, o: _Order, ts: int, px: int, q: int, maker: bool, out) -> None:  # type: ignore[no-untyped-def]
        o.filled += q
        self.position_lots += o.side * q
        price, qty = self._prices.to_float(px), self._lots.to_float(q)
        fee = (self.maker_fee_bps if maker else self.fee_bps) * 1e-4 * price * qty
        if self.fee_per_unit != 0.0:
            fee += self.fee_per_unit * qty
        self.cash -= o.side * price * qty
        self.cash -= fee
        self.fees += fee
        known = min(ts + self.response_latency_ns, INT64_MAX)
        out["fills"].append((ts, o.id, o.side, price, qty, fee))
        out["fill_liquidity"].append(MAKER if maker else TAKER)
        out["fill_known_ts"].append(known)
        if self.response_latency_ns > self.feed_latency_ns:
            self.unknown.append([known, o.side * q, o.from_target])
        self._event(out, ts, o, FILLED if o.open == 0 else PARTIALLY_FILLED, price, qty)

    def _take_l2(self, o: _Order, ts: int, out) -> None:  # type: ignore[no-untyped-def]
        """Walk the opposite depth best price first, up to the limit; one fill per level."""
        limit = o.exec_type == LIMIT
        lv = self._shown(-o.side)
        prices = sorted(lv, reverse=o.side < 0)
        if limit:
            prices = [p for p in prices if (p <= o.price if o.side > 0 else p >= o.price)]
        if o.tif == FOK and sum(lv[p][0] - lv[p][1] for p in prices) < o.open:
            self._kill(o, ts, CANCELLED, out)
            return
        for p in prices:
            q = min(o.open, lv[p][0] - lv[p][1])
            if q > 0:
                lv[p][1] += q
                self.taken_ts[-o.side][p] = ts
                self._fill(o, ts, p, q, False, out)
        if o.open <= 0:
            return
        if o.tif == IOC:
            self._kill(o, ts, CANCELLED, out)
        elif limit and not self._crosses(o.side, o.price):
            self._rest(o)

    def _take(self, o: _Order, ts: int, out) -> None:  # type: ignore[no-untyped-def]
        if self.l2:
            self._take_l2(o, ts, out)
            return
        limit = o.exec_type == LIMIT
        can = bool(self.book) and (not limit or self._crosses(o.side, o.price))
        level = self.book.get(o.side, [0, 0])
        if o.tif == FOK and not (can and level[1] >= o.open):
            self._kill(o, ts, CANCELLED, out)
            return
        if can:
            q = min(o.open, level[1])
            if q > 0:
                level[1] -= q
                self._fill(o, ts, level[0], q, False, out)
            if not limit and o.open > 0 and self.slippage_model == 1:
                touch = level[0]
                mult = o.open / max(self.shown[o.side], 1)
                c = math.ceil(float(touch) * self.impact_bps * 1e-4 * mult)
                extra = min(c, 4 * 10**18)
                px = min(touch + extra, MAX_PRICE - 1) if o.side > 0 else touch - extra
                self._fill(o, ts, max(px, 1), o.open, False, out)
        if o.open <= 0:
            return
        if o.tif == IOC:
            self._kill(o, ts, CANCELLED, out)
        elif limit and self.book and not self._crosses(o.side, o.price):
            self._rest(o)

    def _cross_l2(self, o: _Order, ts: int, out) -> None:  # type: ignore[no-untyped-def]
        """A resting order the depth reached: what is left at or through its price, best first, in one maker fill."""
        lv, q = self._shown(-o.side), 0
        for p in sorted(lv, reverse=o.side < 0):
            if (p > o.price) if o.side > 0 else (p < o.price):
                break
            a = min(lv[p][0] - lv[p][1], o.open - q)
            if a > 0:
                lv[p][1] += a
                self.taken_ts[-o.side][p] = ts
            q += a
        if q > 0:
            self._fill(o, ts, o.price, q, True, out)

    def _passive(self, o: _Order, ts: int, out) -> None:  # type: ignore[no-untyped-def]
        s = o.side
        if self.trade:
            if (self.trade_px < o.price) if s > 0 else (self.trade_px > o.price):
                self._fill(o, ts, o.price, o.open, True, out)
                return
            if self.trade_px == o.price and self.trade_lots > 0:
                t = float(self.trade_lots)
                o.front -= t
                o.cum_trade += t
                if o.front < 0.0 and round_half_away(o.front) < 0.0:  # (front may be inf)
                    x = math.floor(-o.front)
                    q = min(MAX_LOTS if x >= MAX_LOTS else int(x), o.open, self.trade_left)
                    if q > 0:
                        self.trade_left -= q
                        o.front += float(q)
                        self._fill(o, ts, o.price, q, True, out)
                        if o.open <= 0:
                            return
        if self._crosses(s, o.price):
            if self.l2:
                self._cross_l2(o, ts, out)
            else:
                self._fill(o, ts, o.price, o.open, True, out)
            return
        if self.queue_model == 0:
            return
        if self.l2:
            level = self._level(s, o.price)
        elif not self.book:
            return
        elif self.book[-s][0] == o.price:
            level = float(self.shown[-s])
        elif (self.book[-s][0] < o.price) if s > 0 else (self.book[-s][0] > o.price):
            level = 0.0
        else:
            o.level_prev, o.cum_trade = math.nan, 0.0
            return
        if self.queue_model == 1 or math.isnan(o.level_prev):
            o.front = min(o.front, level)
        else:
            chg = o.level_prev - level - o.cum_trade
            if chg < 0.0:
                o.front = min(o.front, level)
            else:
                front = o.front
                back = o.level_prev - front
                fb = _pow(max(back, 0.0), self.queue_power)
                ff = _pow(max(front, 0.0), self.queue_power)
                den = fb + ff
                if den > 0.0 and not math.isinf(den):
                    p = fb / den
                else:
                    p = 1.0 if math.isinf(fb) else (0.0 if den > 0.0 else 1.0)
                est = front - (1.0 - p) * chg + min(back - p * chg, 0.0)
                o.front = min(est, level)
        o.cum_trade = 0.0
        o.level_prev = level

    def _decide(self, target: float, ts: int, tick: int, out) -> None:  # type: ignore[no-untyped-def]
        if self.target_mode == 1:  # fraction of equity -> whole lots at the mark, toward zero
            if not self.mark > 0.0:
                return
            target = math.trunc(target * self.equity / self.mark / self.lot_size) * self.lot_size
        unknown = sum(u[1] for u in self.unknown)
        unknown_working = sum(u[1] for u in self.unknown if u[2])
        working = sum(o.side * o.open for o in self.open if o.from_target)
        known_pos = self.position_lots - unknown
        change = target - self._lots.to_float(known_pos + working + unknown_working)
        if not abs(change) >= self.lot_size / 2.0:
            return
        for o in self.open:
            if o.from_target:
                self._kill(o, ts, CANCELLED, out)
        self.open = [o for o in self.open if o.open > 0]
        for u in self.unknown:
            u[2] = False
        diff = target - self._lots.to_float(known_pos)
        lots = int(round_half_away(diff / self.lot_size))
        if lots == 0:
            return
        self.max_id += 1
        self.ids.add(self.max_id)
        side = 1 if lots > 0 else -1
        o = _Order(self.max_id, side, abs(lots), ts, self._arrival(ts, -1), tick, from_target=True)
        self._event(out, ts, o, SUBMITTED, math.nan, self._lots.to_float(o.qty))
        self.open.append(o)

    def _instruct(self, row: tuple[Any, ...], ts: int, tick: int, out) -> None:  # type: ignore[no-untyped-def]
        _, action, oid, side, type_, tif, price, stop, qty, latency = row
        if action == NEW:
            self.max_id = oid
            self.ids.add(oid)
            limit = type_ in (LIMIT, STOP_LIMIT)
            o = _Order(
                oid, side, int(round_half_away(qty / self.lot_size)), ts, self._arrival(ts, latency), tick,
                type=type_, exec_type=LIMIT if limit else MARKET, tif=tif,
                price=self._ticks(price) if limit else 0,
                stop=self._ticks(stop) if type_ in (STOP, STOP_LIMIT) else 0,
            )  # fmt: skip
            self._event(out, ts, o, SUBMITTED, self._limit_px(o), self._lots.to_float(o.qty))
            self.open.append(o)
            return
        r = _Request(oid, action, self._arrival(ts, latency), tick, side, type_)
        live = self._find(oid)
        if live is not None:
            r.arrival_ts = max(r.arrival_ts, live.arrival_ts)
        if action == MODIFY:
            r.price = None if math.isnan(price) else self._ticks(price)
            r.stop = None if math.isnan(stop) else self._ticks(stop)
            r.qty = None if math.isnan(qty) else int(round_half_away(qty / self.lot_size))
        self.requests.append(r)

    def _sample(self, ts: int, out: dict[str, list[Any]]) -> None:
        out["equity"].append((ts, self.cash, self.position, self.mark, self.equity))
        self.equity_at_last = True
        start = (ts // self.equity_interval_ns) * self.equity_interval_ns
        self.next_equity_ts = min(start + self.equity_interval_ns, INT64_MAX)


_KINDS = ("fills", "orders", "equity", "fill_liquidity", "fill_known_ts")


def _arrays(out: dict[str, list[Any]], details: bool = False) -> dict[str, np.ndarray]:
    res = {
        "fills": np.array(out["fills"], dtype=FILL_DTYPE),
        "orders": np.array(out["orders"], dtype=ORDER_DTYPE),
        "equity": np.array(out["equity"], dtype=EQUITY_DTYPE),
    }
    if details:
        res["fill_liquidity"] = np.array(out["fill_liquidity"], dtype=np.int8)
        res["fill_known_ts"] = np.array(out["fill_known_ts"], dtype=np.int64)
    return res


#: Relative tolerance under which a reducing fill closes the whole position.
QTY_RTOL = 1e-9
#: exit_ts of a round trip still open.
OPEN_EXIT_TS = np.iinfo(np.int64).min


def position_step(
    pos: float, avg: float, side: int, price: float, qty: float
) -> tuple[float, float, float, float]:
    """Average-cost update: (new position, new average, closed qty, realized gross PnL).

    The step of every position in ticktape: the engine's portfolio, the
    native round-trip pass and :class:`ticktape.compute.accounting.Ledger`
    (which calls this) all apply it."""
    if pos == 0.0 or (pos > 0.0) == (side > 0):
        held = abs(pos)
        new_avg = price if pos == 0.0 else (held * avg + qty * price) / (held + qty)
        return pos + side * qty, new_avg, 0.0, 0.0
    held = abs(pos)
    sign = 1.0 if pos > 0.0 else -1.0
    if abs(qty - held) <= QTY_RTOL * max(qty, held):  # closes exactly
        return 0.0, math.nan, held, (price - avg) * held * sign
    if qty < held:  # reduces: the average is kept
        return pos + side * qty, avg, qty, (price - avg) * qty * sign
    # flips: close everything, open the remainder at the fill price
    return side * (qty - held), price, held, (price - avg) * held * sign


def round_trips(
    fts: np.ndarray,
    side: np.ndarray,
    price: np.ndarray,
    qty: np.ndarray,
    fee: np.ndarray,
    carry: dict | None = None,
) -> dict:
    """The specification of ``ticktape._native.round_trips`` (the pass of
    ``ticktape.compute.accounting.RoundTrips`` over valid fills in event order): the
    per-trade columns, the state after each fill (``st_*``) and the final
    ``pos`` / ``avg``, with the same floating-point operations in the same
    order. ``side`` int8; columns of one length. ``carry`` continues an
    earlier pass: its open trade (one value per trade column, ``lo`` /
    ``hi``) becomes trade 0, its ``pos`` / ``avg`` the state."""
    n = len(fts)
    # per trade, as columns (machine values: ~100 bytes a trade, not a dict of objects)
    entry_ts, exit_ts, sides, n_fills = (array("q") for _ in range(4))
    size, entry_notional, exit_qty, exit_notional, pnl, fees, notional, lo, hi = (
        array("d") for _ in range(9)
    )
    # state after each fill, for the excursions at marks: (trade, realized, position, avg)
    st_trade, st_real, st_pos, st_avg = array("q"), array("d"), array("d"), array("d")
    pos, avg = 0.0, math.nan
    open_ = False  # the last trade is still open
    if carry is not None:
        pos, avg, open_ = float(carry["pos"]), float(carry["avg"]), True
        entry_ts.append(int(carry["entry_ts"]))
        exit_ts.append(OPEN_EXIT_TS)
        sides.append(int(carry["side"]))
        n_fills.append(int(carry["n_fills"]))
        for name, col in zip(
            ("size", "entry_notional", "exit_qty", "exit_notional", "pnl", "fees", "notional", "lo", "hi"),
            (size, entry_notional, exit_qty, exit_notional, pnl, fees, notional, lo, hi),
            strict=True,
        ):
            col.append(float(carry[name]))

    def enter(ts: int, s: int, px: float, amount: float, f: float, new_pos: float, new_avg: float) -> None:
        nonlocal open_
        if not open_:
            open_ = True
            entry_ts.append(ts)
            exit_ts.append(OPEN_EXIT_TS)
            sides.append(s)
            n_fills.append(0)
            for col in (size, entry_notional, exit_qty, exit_notional, pnl, fees, notional, lo, hi):
                col.append(0.0)
        size[-1] += amount
        entry_notional[-1] += px * amount
        notional[-1] += px * amount
        fees[-1] += f
        n_fills[-1] += 1
        running = pnl[-1] + (px - new_avg) * new_pos
        lo[-1], hi[-1] = min(lo[-1], running), max(hi[-1], running)

    def rows_in() -> Iterator[tuple[int, float, float, float, int]]:
        for a in range(0, n, 1 << 16):  # Python values for a slice at a time
            cols = (c[a : a + (1 << 16)].tolist() for c in (side, price, qty, fee, fts))
            yield from zip(*cols, strict=True)

    for s, px, q, f, ts in rows_in():
        new_pos, new_avg, closed, realized = position_step(pos, avg, s, px, q)
        if closed == 0.0:  # opens or adds
            enter(ts, s, px, q, f, new_pos, new_avg)
        else:  # reduces, closes or flips
            assert open_
            flip = new_pos != 0.0 and (new_pos > 0.0) == (s > 0)
            fee_close = f * (closed / q) if flip else f
            pnl[-1] += realized
            fees[-1] += fee_close
            exit_qty[-1] += closed
            exit_notional[-1] += px * closed
            notional[-1] += px * closed
            n_fills[-1] += 1
            ends = new_pos == 0.0 or flip
            running = pnl[-1] + (0.0 if ends else (px - new_avg) * new_pos)
            lo[-1], hi[-1] = min(lo[-1], running), max(hi[-1], running)
            if ends:
                exit_ts[-1] = ts
                open_ = False
            if flip:
                enter(ts, s, px, q - closed, f - fee_close, new_pos, new_avg)
        pos, avg = new_pos, new_avg
        if open_:
            st_trade.append(len(entry_ts) - 1)
            st_real.append(pnl[-1])
        else:
            st_trade.append(-1)
            st_real.append(0.0)
        st_pos.append(pos if open_ else 0.0)
        st_avg.append(avg if open_ else math.nan)

    def np_(a: array, dtype: Any) -> np.ndarray:
        return np.frombuffer(a, dtype=dtype) if len(a) else np.empty(0, dtype)

    out: dict = {
        name: np_(a, np.int64)
        for name, a in (
            ("entry_ts", entry_ts),
            ("exit_ts", exit_ts),
            ("side", sides),
            ("n_fills", n_fills),
            ("st_trade", st_trade),
        )
    }
    for name, a in (
        ("size", size),
        ("entry_notional", entry_notional),
        ("exit_qty", exit_qty),
        ("exit_notional", exit_notional),
        ("pnl", pnl),
        ("fees", fees),
        ("notional", notional),
        ("lo", lo),
        ("hi", hi),
        ("st_real", st_real),
        ("st_pos", st_pos),
        ("st_avg", st_avg),
    ):
        out[name] = np_(a, np.float64)
    assert len(out["st_trade"]) == n
    return {**out, "pos": pos, "avg": avg}
