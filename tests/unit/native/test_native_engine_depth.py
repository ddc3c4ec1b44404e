"""The native Engine fed L2 depth: book walk, self-liquidity, queue on depth.

Property tests drive the C++ engine and the pure-Python reference with the
same random depth-diff / tick / trade / instruction streams and require
identical fills, order events, equity, fill details, portfolio and depth;
invariants: no fill beyond the displayed depth and no displayed lot taken
twice (re-derived from the inputs and the fills alone), no fill through the
latest valid L1 quote (levels beyond it are hidden), no fill before its
order's arrival, batch split and state round trip invisible. Hand-written
tests pin the walk, a limit crossing part of the book, consumption that
lasts until a diff sets the level again, and stale levels beyond the quote.
A real-data test replays a Binance capture whose depth goes stale.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ticktape
from ticktape import testing
from ticktape.errors import SpecError
from ticktape.model.batch import DEPTH_DTYPE
from ticktape.model.spec import EngineConfig, RunSpec
from ticktape.native import (
    Engine,
    InputError,
    Liquidity,
    OrderAction,
    OrderEvent,
    OrderType,
    QueueModel,
    Side,
    SlippageModel,
    TimeInForce,
    depth_diffs,
    instructions,
)
from ticktape.reference import ReferenceEngine
from ticktape.strategy import Strategy

KINDS = ("fills", "orders", "equity", "fill_liquidity", "fill_known_ts")
TICK_COLS = ("ts", "bid", "ask", "bid_size", "ask_size")
ID_STEP = 1_000_000  # explicit ids leave room for target-derived ids in between


@st.composite
def streams(draw: st.DrawFn, max_n: int = 80, refill: bool = False) -> tuple[dict, dict]:
    """A random config, L1 ticks, trades, targets, instructions and L2 diffs.

    ``refill``: also draw ``depth_refill_ns`` (-1, 0, or around the tick steps).

    Depth starts at a random tick (before it the engine is on L1); levels sit
    around a random-walking mid, sizes include 0 (delete) and sizes that are
    not whole lots; ts strictly increases (so a fill's ts names its tick).
    """
    tick = draw(st.sampled_from([0.01, 0.25, 1.0, 0.3]))
    lot = draw(st.sampled_from([1.0, 0.5, 100.0, 0.3]))
    cfg = {
        "tick_size": tick,
        "lot_size": lot,
        "entry_latency_ns": draw(st.sampled_from([0, 1, 250_000_000])),
        "feed_latency_ns": draw(st.sampled_from([0, 0, 100_000_000])),
        "response_latency_ns": draw(st.sampled_from([0, 300_000_000])),
        "taker_fee_bps": draw(st.sampled_from([0.0, 2.0])),
        "maker_fee_bps": draw(st.sampled_from([0.0, -0.2])),
        "fee_per_unit": draw(st.sampled_from([0.0, 0.01])),
        "equity_interval_ns": draw(st.sampled_from([1, 1_000_000_000])),
        "queue_model": draw(st.sampled_from(list(QueueModel))),
        "queue_power": draw(st.sampled_from([1.0, 2.0, 3.5])),
        "slippage_model": draw(st.sampled_from(list(SlippageModel))),
        "impact_bps": draw(st.sampled_from([0.0, 50.0])),
    }
    if refill:
        cfg["depth_refill_ns"] = draw(st.sampled_from([-1, 0, 1, 1_000, 100_000_000, 500_000_000, 10**9]))
    n = draw(st.integers(1, max_n))
    steps = st.sampled_from([1, 1_000, 100_000_000, 400_000_000])
    ts = 1_700_000_000_000_000_000 + np.cumsum(
        np.array(draw(st.lists(steps, min_size=n, max_size=n)), dtype=np.int64)
    )
    mid = 10_000 + np.cumsum(np.array(draw(st.lists(st.integers(-2, 2), min_size=n, max_size=n)), np.int64))
    spread = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), dtype=np.int64)
    bid, ask = mid * tick, (mid + spread) * tick
    quality = st.sampled_from(["ok"] * 8 + ["nan", "crossed"])
    for i, q in enumerate(draw(st.lists(quality, min_size=n, max_size=n))):
        if q == "nan":
            bid[i] = np.nan
        elif q == "crossed":  # an invalid quote: ignored, the bound stays the latest valid one
            bid[i] = ask[i] + tick
    sizes = st.sampled_from([0.0, 1.0, 2.5, 7.0, 30.0, np.nan])
    with_trades = draw(st.booleans())
    last = np.full(n, np.nan)
    if with_trades:
        for i, off in enumerate(
            draw(st.lists(st.one_of(st.none(), st.integers(-3, 4)), min_size=n, max_size=n))
        ):
            if off is not None:
                last[i] = (mid[i] + off) * tick
    cols = {
        "ts": ts,
        "bid": bid,
        "ask": ask,
        "bid_size": np.array(draw(st.lists(sizes, min_size=n, max_size=n))),
        "ask_size": np.array(draw(st.lists(sizes, min_size=n, max_size=n))),
        "last": last,
        "last_size": np.array(draw(st.lists(sizes, min_size=n, max_size=n))),
    }
    if draw(st.booleans()):
        targets = st.one_of(st.just(np.nan), st.just(np.nan), st.just(np.nan), st.integers(-15, 15))
        cols["target"] = np.array(draw(st.lists(targets, min_size=n, max_size=n)), dtype=np.float64) * lot
    # depth: from a random tick on, 0-4 diffs per tick (bids around the L1 bid, asks around the L1 ask;
    # some beyond the quote, i.e. hidden by the bound, some far beyond it like a stale level; sometimes crossed)
    start = draw(st.integers(0, n))
    level_sizes = st.sampled_from([0.0, 0.0, 1.0, 2.0, 3.5, 5.0, 12.0, 40.0]).map(lambda q: q * lot)
    drows = []
    for i in range(start, n):
        for _ in range(draw(st.sampled_from([0, 1, 1, 2, 3, 4] if i > start else [4, 6]))):
            side = draw(st.sampled_from([1, -1]))
            off = draw(st.integers(-4, 2)) if side > 0 else draw(st.integers(-2, 4)) + int(spread[i])
            if draw(st.integers(0, 9)) == 0:  # a stale level far through the quote
                off += side * draw(st.integers(3, 8))
            drows.append((i, side, (mid[i] + off) * tick, draw(level_sizes)))
    cols["depth"] = np.array(drows, dtype=DEPTH_DTYPE)
    rows: list[dict] = []
    issued: dict[int, int] = {}  # id -> type
    for i in range(n):
        for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2]))):
            action = draw(st.sampled_from([OrderAction.NEW] * 4 + [OrderAction.CANCEL, OrderAction.MODIFY]))
            if action != OrderAction.NEW and not issued:
                action = OrderAction.NEW
            row = {
                "i": i,
                "action": action,
                "latency_ns": draw(st.sampled_from([-1, -1, 0, 50_000_000])),
                "price": np.nan,
                "stop_price": np.nan,
            }
            if action == OrderAction.NEW:
                oid = (len(issued) + 1) * ID_STEP
                type_ = draw(
                    st.sampled_from([OrderType.MARKET, OrderType.LIMIT, OrderType.LIMIT, *OrderType])
                )
                tif = draw(
                    st.sampled_from([TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK])
                )
                if type_ == OrderType.LIMIT and draw(st.booleans()):
                    tif = TimeInForce.POST_ONLY
                row |= {"order_id": oid, "side": draw(st.sampled_from([1, -1])), "type": type_, "tif": tif}
                row["qty"] = draw(st.integers(1, 25)) * lot
                if type_ in (OrderType.LIMIT, OrderType.STOP_LIMIT):
                    row["price"] = (mid[i] + draw(st.integers(-4, 5))) * tick
                if type_ in (OrderType.STOP, OrderType.STOP_LIMIT):
                    row["stop_price"] = (mid[i] + draw(st.integers(-3, 4))) * tick
                issued[oid] = type_
            else:
                oid = draw(st.sampled_from(sorted(issued)))
                row |= {"order_id": oid, "side": 0, "type": 0, "tif": 0, "qty": np.nan}
                if action == OrderAction.MODIFY:
                    if issued[oid] in (OrderType.LIMIT, OrderType.STOP_LIMIT) and draw(st.booleans()):
                        row["price"] = (mid[i] + draw(st.integers(-4, 5))) * tick
                    if draw(st.booleans()):
                        row["qty"] = draw(st.integers(1, 30)) * lot
            rows.append(row)
    orders = instructions(len(rows))
    for k, r in enumerate(rows):
        for f, v in r.items():
            orders[k][f] = v
    cols["orders"] = orders
    return cfg, cols


def part(cols: dict, a: int, b: int) -> dict:
    """Ticks [a, b) of a stream with their instructions and diffs (i rebased)."""
    p = {k: v[a:b] for k, v in cols.items() if k not in ("orders", "depth")}
    for k in ("orders", "depth"):
        o = cols[k]
        sel = o[(o["i"] >= a) & (o["i"] < b)].copy()
        sel["i"] -= a
        p[k] = sel
    return p


def call(eng, cols: dict) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    return eng.process(
        *(cols[c] for c in TICK_COLS), cols.get("target"), last=cols["last"], last_size=cols["last_size"],
        orders=cols["orders"], depth=cols["depth"], details=True,
    )  # fmt: skip


def concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in KINDS}


def run(eng, cols: dict) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    return concat([call(eng, cols), eng.finish(details=True)])


def assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    for kind in KINDS:
        a, b = got[kind], want[kind]
        assert a.dtype == b.dtype, kind
        assert len(a) == len(b), (kind, a, b)
        for name in a.dtype.names or (None,):
            x, y = (a, b) if name is None else (a[name], b[name])
            np.testing.assert_array_equal(x, y, err_msg=f"{kind}.{name}")


def bounds(cols: dict, tick: float) -> tuple[np.ndarray, np.ndarray]:
    """Per tick, the latest valid L1 quote (bid, ask) in ticks up to it (no bound before any: a huge bid, -1 ask)."""
    bid, ask = cols["bid"], cols["ask"]
    ok = np.isfinite(bid) & np.isfinite(ask) & (bid > 0) & (ask > 0)
    bt = np.where(ok, np.round(np.where(ok, bid, 0) / tick), 0).astype(np.int64)
    at = np.where(ok, np.round(np.where(ok, ask, 0) / tick), 0).astype(np.int64)
    ok &= bt <= at
    idx = np.maximum.accumulate(np.where(ok, np.arange(len(bid)), -1))
    have = idx >= 0
    return np.where(have, bt[idx], 2**62), np.where(have, at[idx], -1)


def ref_depth(ref: ReferenceEngine, side: int) -> list[list[int]]:
    lv = ref.depth[side]
    return [[p, *lv[p]] for p in sorted(lv, reverse=side > 0)]


# ------------------------------------------------------------ properties


@settings(max_examples=200, deadline=None)
@given(streams())
def test_depth_engine_matches_reference(stream: tuple[dict, dict]) -> None:
    check_matches_reference(stream)


@settings(max_examples=200, deadline=None)
@given(streams(refill=True))
def test_depth_engine_with_refill_matches_reference(stream: tuple[dict, dict]) -> None:
    check_matches_reference(stream)


def check_matches_reference(stream: tuple[dict, dict]) -> None:
    cfg, cols = stream
    nat, ref = Engine(**cfg), ReferenceEngine(**cfg)
    assert_same(run(nat, cols), run(ref, cols))
    assert nat.position == ref.position
    assert nat.cash == ref.cash
    assert nat.fees == ref.fees
    assert nat.open_orders == [o.id for o in ref.open]
    assert nat.has_depth == ref.l2 == (len(cols["depth"]) > 0)
    assert nat.depth_hidden_ticks == ref.depth_hidden_ticks
    tk = cfg["tick_size"]
    want_bound = (
        None
        if ref.bound is None
        else (ref._prices.to_float(ref.bound[0]), ref._prices.to_float(ref.bound[1]))
    )
    assert nat.depth_bound == want_bound
    if want_bound is not None:
        bb, ba = bounds(cols, tk)
        assert (round(want_bound[0] / tk), round(want_bound[1] / tk)) == (bb[-1], ba[-1])
    for side in (Side.BUY, Side.SELL):
        assert nat.depth_levels(side).tolist() == ref_depth(ref, side)
    assert nat.equity == ref.equity or (math.isnan(nat.equity) and math.isnan(ref.equity))


@settings(max_examples=150, deadline=None)
@given(streams())
def test_no_fill_beyond_displayed_depth_nor_twice(stream: tuple[dict, dict]) -> None:
    """Replays the diffs and the fills alone: every fill taken from depth is covered by lots displayed and not yet taken.

    A taker fill takes its own price level; a maker fill of an order that the
    opposite side reached takes the levels at or through its price, best
    first (checked on streams without trades, where every maker fill is one).
    """
    check_no_fill_beyond_displayed_depth(stream)


@settings(max_examples=150, deadline=None)
@given(streams(refill=True))
def test_no_fill_beyond_displayed_depth_with_refill(stream: tuple[dict, dict]) -> None:
    """The same with depth_refill_ns: a level's taken lots show again (all of them) at the first tick
    whose ts is depth_refill_ns or more after the level's last take, a take on an earlier tick."""
    check_no_fill_beyond_displayed_depth(stream)


def check_no_fill_beyond_displayed_depth(stream: tuple[dict, dict]) -> None:
    cfg, cols = stream
    refill = cfg.get("depth_refill_ns", -1)
    eng = Engine(**cfg)
    out = run(eng, cols)
    fills, liq = out["fills"], out["fill_liquidity"]
    depth = cols["depth"]
    if not len(depth):
        return
    start = int(depth["i"][0])
    trades = bool(np.isfinite(cols["last"]).any())
    tick_of = {int(t): k for k, t in enumerate(cols["ts"])}
    bb, ba = bounds(cols, cfg["tick_size"])
    book: dict[int, dict[int, list[int]]] = {
        1: {},
        -1: {},
    }  # side -> price ticks -> [displayed, taken, last take tick]
    d = 0
    tk, lot = cfg["tick_size"], cfg["lot_size"]
    lots = lambda q: math.floor(q / lot + 1e-9) if q > 0 else 0  # noqa: E731
    for f, lq in zip(fills, liq, strict=True):
        k = tick_of[int(f["ts"])]
        if refill >= 0:  # (ts strictly increases: a fill's tick is the take's)
            for lv in (*book[1].values(), *book[-1].values()):
                if lv[1] and lv[2] < k and cols["ts"][k] >= cols["ts"][lv[2]] + refill:
                    lv[1] = 0
        while d < len(depth) and depth["i"][d] <= k:
            side, px, q = int(depth["side"][d]), round(depth["price"][d] / tk), lots(float(depth["qty"][d]))
            if q:
                book[side][px] = [q, 0, -1]
            else:
                book[side].pop(px, None)
            d += 1
        if k < start:
            continue
        s = int(f["side"])
        # the levels the bound leaves shown: asks at or above the latest valid L1 ask, bids at or below its bid
        opp = {p: v for p, v in book[-s].items() if (p >= ba[k] if s > 0 else p <= bb[k])}
        want, px = round(float(f["qty"]) / lot), round(float(f["price"]) / tk)
        if lq == Liquidity.TAKER:
            assert px in opp, ("taker fill at a price no shown level displays", f)
            assert opp[px][0] - opp[px][1] >= want, ("taker fill beyond what is left displayed", f, opp[px])
            opp[px][1] += want
            opp[px][2] = k
        elif not trades:
            for p in sorted(opp, reverse=s < 0):
                if (p > px) if s > 0 else (p < px):
                    break
                a = min(opp[p][0] - opp[p][1], want)
                if a:
                    opp[p][1] += a
                    opp[p][2] = k
                want -= a
            assert want == 0, ("maker fill beyond what is left displayed", f)


@settings(max_examples=150, deadline=None)
@given(streams())
def test_depth_never_fills_through_the_latest_valid_quote(stream: tuple[dict, dict]) -> None:
    """On depth, a taker sell never fills above the latest valid L1 bid nor a taker buy below its ask
    (levels beyond the quote are hidden); without trades this holds for maker fills too (a resting
    order fills only when a shown level reaches it)."""
    cfg, cols = stream
    eng = Engine(**cfg)
    out = run(eng, cols)
    depth = cols["depth"]
    if not len(depth):
        return
    start = int(depth["i"][0])
    trades = bool(np.isfinite(cols["last"]).any())
    tk = cfg["tick_size"]
    bb, ba = bounds(cols, tk)
    tick_of = {int(t): k for k, t in enumerate(cols["ts"])}
    for f, lq in zip(out["fills"], out["fill_liquidity"], strict=True):
        k = tick_of[int(f["ts"])]
        if k < start or (trades and lq == Liquidity.MAKER):
            continue
        px = round(float(f["price"]) / tk)
        if f["side"] < 0:
            assert px <= bb[k], ("sell filled above the latest valid bid", f, bb[k])
        else:
            assert px >= ba[k], ("buy filled below the latest valid ask", f, ba[k])
    # what is hidden is counted: if the final book has a level beyond the final bound, the last tick counted
    hidden_now = any(p > bb[-1] for p, _, _ in eng.depth_levels(Side.BUY).tolist()) or any(
        p < ba[-1] for p, _, _ in eng.depth_levels(Side.SELL).tolist()
    )
    assert eng.depth_hidden_ticks >= int(hidden_now)
    assert eng.depth_hidden_ticks <= len(cols["ts"]) - start


@settings(max_examples=100, deadline=None)
@given(streams())
def test_depth_fills_never_before_arrival(stream: tuple[dict, dict]) -> None:
    cfg, cols = stream
    out = run(Engine(**cfg), cols)
    ev, fills = out["orders"], out["fills"]
    own = {int(o["order_id"]): int(o["latency_ns"]) for o in cols["orders"] if o["action"] == OrderAction.NEW}
    submitted = {int(o["order_id"]): int(o["ts"]) for o in ev if o["event"] == OrderEvent.SUBMITTED}
    for f in fills:
        oid = int(f["order_id"])
        lat = own.get(oid, -1)
        arrival = submitted[oid] + cfg["feed_latency_ns"] + (lat if lat >= 0 else cfg["entry_latency_ns"])
        assert f["ts"] >= arrival and f["ts"] > submitted[oid], (f, arrival)


@settings(max_examples=100, deadline=None)
@given(streams(), st.data())
def test_depth_batch_split_and_state_round_trip_are_invisible(
    stream: tuple[dict, dict], data: st.DataObject
) -> None:
    check_split_and_round_trip(stream, data)


@settings(max_examples=100, deadline=None)
@given(streams(refill=True), st.data())
def test_depth_refill_batch_split_and_state_round_trip_are_invisible(
    stream: tuple[dict, dict], data: st.DataObject
) -> None:
    check_split_and_round_trip(stream, data)


def check_split_and_round_trip(stream: tuple[dict, dict], data: st.DataObject) -> None:
    cfg, cols = stream
    n = len(cols["ts"])
    whole = run(Engine(**cfg), cols)
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=5)))
    restore_at = set(data.draw(st.lists(st.integers(0, len(cuts)), max_size=3)))
    eng = Engine(**cfg)
    parts = []
    for k, (a, b) in enumerate(zip([0, *cuts], [*cuts, n], strict=True)):
        if k in restore_at:
            state = eng.get_state()
            eng = Engine.from_state(state)
            assert eng.get_state() == state
        parts.append(call(eng, part(cols, a, b)))
    parts.append(eng.finish(details=True))
    assert_same(concat(parts), whole)


# ------------------------------------------------------------ hand-written

S = 10**9


def book_cols(n: int, depth: np.ndarray, orders: np.ndarray, **extra: np.ndarray) -> dict:
    """n ticks one second apart whose L1 quote (100.00 / 100.01, 1000 each) bounds the depth's top
    (ASKS_3's best levels) but not its sizes, so depth is what counts."""
    cols = testing.columns(testing.quotes(n, t0=0, size=1000.0), target=None, orders=orders)
    return cols | {"depth": depth} | extra


ASKS_3 = depth_diffs(
    i=0,
    side=[Side.SELL] * 3 + [Side.BUY] * 2,
    price=[100.01, 100.02, 100.03, 100.0, 99.99],
    qty=[3, 4, 5, 6, 7],
)


def both(cols: dict, **cfg) -> tuple[dict, Engine]:  # type: ignore[no-untyped-def]
    """Run native and reference, require identical output; return the native's."""
    cfg.setdefault("tick_size", 0.01)
    eng, ref = Engine(**cfg), ReferenceEngine(**cfg)
    out = run(eng, cols)
    assert_same(out, run(ref, cols))
    for side in (Side.BUY, Side.SELL):
        assert eng.depth_levels(side).tolist() == ref_depth(ref, side)
    return out, eng


def fills(out: dict) -> list[tuple]:
    return [
        (int(t) // S, int(o), p, q, Liquidity(liq).name)
        for (t, o, p, q), liq in zip(
            out["fills"][["ts", "order_id", "price", "qty"]].tolist(), out["fill_liquidity"], strict=True
        )
    ]


def test_market_order_walks_the_book_at_each_level_price() -> None:
    cols = book_cols(3, ASKS_3, instructions(i=[0], order_id=[1], side=Side.BUY, qty=[10.0]))
    out, eng = both(cols)
    # 3 @ 100.01, 4 @ 100.02, 3 @ 100.03: VWAP (300.03 + 400.08 + 300.09) / 10 = 100.02
    assert fills(out) == [
        (1, 1, 100.01, 3.0, "TAKER"),
        (1, 1, 100.02, 4.0, "TAKER"),
        (1, 1, 100.03, 3.0, "TAKER"),
    ]
    f = out["fills"]
    assert float(np.sum(f["price"] * f["qty"]) / np.sum(f["qty"])) == pytest.approx(100.02, abs=1e-12)
    assert eng.position == 10.0
    # what it took stays taken: [price ticks, displayed, taken]
    assert eng.depth_levels(Side.SELL).tolist() == [[10001, 3, 3], [10002, 4, 4], [10003, 5, 3]]
    assert eng.mark == pytest.approx(100.005)  # mid of the shown depth


def test_sell_walks_bids_and_market_remainder_waits() -> None:
    cols = book_cols(3, ASKS_3, instructions(i=[0], order_id=[1], side=Side.SELL, qty=[20.0]))
    out, eng = both(cols)
    assert fills(out) == [(1, 1, 100.0, 6.0, "TAKER"), (1, 1, 99.99, 7.0, "TAKER")]
    assert eng.open_orders == [1] and eng.open_qty == -7.0  # no more bids: the rest waits for depth


def test_limit_crossing_part_of_the_book_takes_then_rests() -> None:
    depth = np.concatenate(
        [ASKS_3, depth_diffs(i=[2, 2], side=Side.SELL, price=[100.01, 100.02], qty=[0.0, 0.0])]
    )
    orders = instructions(
        i=[0], order_id=[1], side=Side.BUY, type=OrderType.LIMIT, price=[100.02], qty=[10.0]
    )
    out, eng = both(book_cols(4, depth, orders), queue_model=QueueModel.RISK_AVERSE)
    # takes 3 @ 100.01 and 4 @ 100.02, never 100.03 (beyond its limit)
    assert fills(out) == [(1, 1, 100.01, 3.0, "TAKER"), (1, 1, 100.02, 4.0, "TAKER")]
    ev = [(int(t) // S, OrderEvent(e).name) for t, e in out["orders"][["ts", "event"]].tolist()]
    assert ev == [(0, "SUBMITTED"), (1, "ACCEPTED"), (1, "PARTIALLY_FILLED"), (1, "PARTIALLY_FILLED")]
    # still working at tick 1 (100.01 is displayed, if taken); at tick 2 the levels go: it rests
    assert eng.open_orders == [1] and eng.open_qty == 3.0


def test_consumption_lasts_until_a_diff_sets_the_level_again() -> None:
    depth = np.concatenate([ASKS_3, depth_diffs(i=[3], side=[Side.SELL], price=[100.01], qty=[2.0])])
    orders = instructions(
        i=[0, 1, 2], order_id=[1, 2, 3], side=Side.BUY, type=OrderType.MARKET, qty=[2.0, 2.0, 4.0],
        tif=TimeInForce.IOC,
    )  # fmt: skip
    out, eng = both(book_cols(5, depth, orders))
    assert fills(out) == [
        (1, 1, 100.01, 2.0, "TAKER"),
        # order 2 finds 1 lot left at 100.01, then 100.02
        (2, 2, 100.01, 1.0, "TAKER"),
        (2, 2, 100.02, 1.0, "TAKER"),
        # order 3 (tick 3, after the diff re-set 100.01 to 2): 2 @ 100.01, then 2 of the 3 left at 100.02
        (3, 3, 100.01, 2.0, "TAKER"),
        (3, 3, 100.02, 2.0, "TAKER"),
    ]
    assert eng.depth_levels(Side.SELL).tolist() == [[10001, 2, 2], [10002, 4, 3], [10003, 5, 0]]


def test_two_orders_on_one_tick_never_share_a_level() -> None:
    orders = instructions(i=[0, 0], order_id=[1, 2], side=Side.BUY, qty=[2.0, 2.0], tif=TimeInForce.IOC)
    out, _ = both(book_cols(2, ASKS_3, orders))
    assert fills(out) == [
        (1, 1, 100.01, 2.0, "TAKER"),
        (1, 2, 100.01, 1.0, "TAKER"),
        (1, 2, 100.02, 1.0, "TAKER"),
    ]


def test_fok_counts_every_level_within_the_limit() -> None:
    orders = instructions(
        i=[0, 0], order_id=[1, 2], side=Side.BUY, type=OrderType.LIMIT, tif=TimeInForce.FOK,
        price=[100.02, 100.02], qty=[8.0, 7.0],
    )  # fmt: skip
    out, _ = both(book_cols(2, ASKS_3, orders))
    # 3 + 4 = 7 within 100.02: 8 is refused whole, 7 fills whole
    assert fills(out) == [(1, 2, 100.01, 3.0, "TAKER"), (1, 2, 100.02, 4.0, "TAKER")]
    assert (1, 1, "CANCELLED") in [
        (int(t) // S, o, OrderEvent(e).name)
        for t, o, e in out["orders"][["ts", "order_id", "event"]].tolist()
    ]


def test_resting_order_queue_starts_at_the_level_size() -> None:
    # a buy at 100.00 joins 6 displayed there (risk-averse: only trades at the price move it)
    orders = instructions(i=[0], order_id=[1], side=Side.BUY, type=OrderType.LIMIT, price=[100.0], qty=[2.0])
    last = np.array([np.nan, np.nan, 100.0, 100.0])
    out, _ = both(
        book_cols(4, ASKS_3, orders, last=last, last_size=np.array([np.nan, np.nan, 5.0, 3.0])),
        queue_model=QueueModel.RISK_AVERSE,
    )
    # 5 traded: 1 short of the 6 ahead; 3 more: 2 fill
    assert fills(out) == [(3, 1, 100.0, 2.0, "MAKER")]


def test_resting_order_reached_by_the_asks_fills_only_what_they_display() -> None:
    depth = np.concatenate([ASKS_3, depth_diffs(i=[2], side=[Side.SELL], price=[99.99], qty=[3.0])])
    orders = instructions(
        i=[0, 0], order_id=[1, 2], side=Side.BUY, type=OrderType.LIMIT, price=[100.0, 100.0], qty=[2.0, 2.0]
    )
    # the quote moves down with the new ask (else the bound would hide it)
    bid, ask = np.array([100.0, 100.0, 99.98, 99.98]), np.array([100.01, 100.01, 99.99, 99.99])
    out, eng = both(book_cols(4, depth, orders, bid=bid, ask=ask))
    # an ask of 3 at 99.99 reaches both resting buys at 100.00: 3 lots in all, at their own price
    assert fills(out) == [(2, 1, 100.0, 2.0, "MAKER"), (2, 2, 100.0, 1.0, "MAKER")]
    assert eng.open_qty == 1.0


def test_depth_state_round_trip_and_old_versions_refused() -> None:
    cols = book_cols(2, ASKS_3, instructions(i=[0], order_id=[1], side=Side.BUY, qty=[5.0]))
    eng = Engine(0.01)
    call(eng, cols)
    state = eng.get_state()
    other = Engine.from_state(state)
    assert other.get_state() == state and other.has_depth
    assert other.depth_levels(Side.SELL).tolist() == eng.depth_levels(Side.SELL).tolist()
    old = bytearray(state)
    old[4:8] = struct.pack("<I", 4)
    with pytest.raises(ValueError, match="unsupported engine state version 4"):
        Engine.from_state(bytes(old))
    old[4:8] = struct.pack("<I", 5)  # before depth_refill_ns
    with pytest.raises(ValueError, match="unsupported engine state version 5"):
        Engine.from_state(bytes(old))
    with pytest.raises(ValueError, match=r"truncated engine state|corrupt engine state"):
        Engine.from_state(state[:-5])


def ioc_buys(i: list[int], qty: list[float]) -> np.ndarray:
    return instructions(
        i=i, order_id=list(range(1, len(i) + 1)), side=Side.BUY, type=OrderType.MARKET, qty=qty,
        tif=TimeInForce.IOC,
    )  # fmt: skip


def test_refill_shows_taken_liquidity_again_after_refill_ns_not_before() -> None:
    # each order fills on the tick after its decision (ticks 1 s apart)
    out, eng = both(book_cols(4, ASKS_3, ioc_buys([0, 1, 2], [3.0, 2.0, 2.0])), depth_refill_ns=2 * S)
    assert eng.depth_refill_ns == 2 * S
    assert fills(out) == [
        (1, 1, 100.01, 3.0, "TAKER"),  # 100.01 all taken at 1 s: shows again at 3 s
        (2, 2, 100.02, 2.0, "TAKER"),  # 2 s: not yet
        (3, 3, 100.01, 2.0, "TAKER"),  # 3 s: the 3 lots are back
    ]
    # [price ticks, displayed, taken]: 100.02 (taken at 2 s) is due at 4 s, after the last tick
    assert eng.depth_levels(Side.SELL).tolist() == [[10001, 3, 2], [10002, 4, 2], [10003, 5, 0]]


def test_refill_restores_a_level_refill_ns_after_its_last_take() -> None:
    out, _ = both(book_cols(6, ASKS_3, ioc_buys([0, 1, 2, 4], [1.0, 1.0, 2.0, 3.0])), depth_refill_ns=2 * S)
    assert fills(out) == [
        (1, 1, 100.01, 1.0, "TAKER"),
        (2, 2, 100.01, 1.0, "TAKER"),
        # 3 s is 2 s after the first take but not after the last (2 s): both lots stay taken
        (3, 3, 100.01, 1.0, "TAKER"),
        (3, 3, 100.02, 1.0, "TAKER"),
        # 5 s: 2 s after the last takes (3 s) of both levels, everything shows again
        (5, 4, 100.01, 3.0, "TAKER"),
    ]


def test_a_diff_before_the_refill_resets_the_level_as_without_refill() -> None:
    depth = np.concatenate([ASKS_3, depth_diffs(i=[2], side=[Side.SELL], price=[100.01], qty=[2.0])])
    orders = ioc_buys([0, 2, 3], [3.0, 2.0, 2.0])
    want, _ = both(book_cols(5, depth, orders))
    out, eng = both(book_cols(5, depth, orders), depth_refill_ns=10 * S)
    assert_same(out, want)
    assert fills(out) == [
        (1, 1, 100.01, 3.0, "TAKER"),
        (3, 2, 100.01, 2.0, "TAKER"),  # the diff at 2 s set 100.01 to 2 (nothing taken)
        (4, 3, 100.02, 2.0, "TAKER"),  # its 2 are taken since 3 s: not back at 4 s
    ]
    assert eng.depth_levels(Side.SELL).tolist() == [[10001, 2, 2], [10002, 4, 2], [10003, 5, 0]]


def test_refill_setting_is_checked_and_kept_in_state() -> None:
    for bad in (-2, -(2**40)):
        with pytest.raises(ValueError, match="depth_refill_ns must be >= 0 \\(or -1: never\\), got"):
            Engine(0.01, depth_refill_ns=bad)
    with pytest.raises(TypeError):
        Engine(0.01, depth_refill_ns=1.5)
    for bad in (-2, 1.5, "1", True, None):
        with pytest.raises(SpecError, match=r"engine\.depth_refill_ns"):
            EngineConfig(depth_refill_ns=bad)
    assert EngineConfig().native_kwargs()["depth_refill_ns"] == -1
    kw = EngineConfig(depth_refill_ns=7).native_kwargs()
    eng = Engine(**kw)
    assert eng.depth_refill_ns == 7
    call(eng, book_cols(3, ASKS_3, ioc_buys([0], [2.0])))
    back = Engine.from_state(eng.get_state())
    assert back.depth_refill_ns == 7
    assert back.depth_levels(Side.SELL).tolist() == eng.depth_levels(Side.SELL).tolist()


def test_stale_bid_above_the_quote_is_not_walked_by_a_sell() -> None:
    # the depth keeps a stale bid of 9 at 100.50 (its removal was lost) above the L1 quote 99.99 / 100.01
    depth = np.concatenate(
        [
            depth_diffs(
                i=0,
                side=[Side.BUY] * 3 + [Side.SELL],
                price=[100.5, 99.99, 99.98, 100.01],
                qty=[9.0, 2.0, 5.0, 4.0],
            ),
            # tick 3: the quote moves up to 100.50 / 100.51, the stale level is consistent again
            depth_diffs(i=[3, 3], side=[Side.SELL, Side.SELL], price=[100.01, 100.51], qty=[0.0, 3.0]),
        ]
    )
    n = 5
    bid = np.array([99.99, 99.99, 99.99, 100.5, 100.5])
    ask = np.array([100.01, 100.01, 100.01, 100.51, 100.51])
    orders = instructions(
        i=[0, 2], order_id=[1, 2], side=Side.SELL, type=OrderType.MARKET, qty=[4.0, 3.0], tif=TimeInForce.IOC
    )
    cols = book_cols(n, depth, orders, bid=bid, ask=ask)
    out, eng = both(cols)
    # tick 1: the sell walks 99.99 then 99.98 (the stale 100.50 is hidden); tick 3: 100.50 shows again
    assert fills(out) == [
        (1, 1, 99.99, 2.0, "TAKER"),
        (1, 1, 99.98, 2.0, "TAKER"),
        (3, 2, 100.5, 3.0, "TAKER"),
    ]
    # hidden on ticks 0-2 (the level stays in the book), shown again from tick 3
    assert eng.depth_hidden_ticks == 3
    assert eng.depth_levels(Side.BUY).tolist() == [[10050, 9, 3], [9999, 2, 2], [9998, 5, 2]]
    assert eng.depth_bound == (100.5, 100.51)
    assert eng.mark == pytest.approx(100.505)


def test_mark_and_limit_use_the_bounded_book() -> None:
    # a stale ask of 5 at 99.00 below the L1 quote 99.99 / 100.01: hidden, so the mark is the quote's mid
    # (not 99.495 with the stale ask) and a buy limit at 99.50 rests instead of taking the stale ask
    depth = depth_diffs(
        i=0, side=[Side.SELL, Side.SELL, Side.BUY], price=[99.0, 100.01, 99.99], qty=[5.0, 4.0, 2.0]
    )
    n = 3
    orders = instructions(i=[0], order_id=[1], side=Side.BUY, type=OrderType.LIMIT, price=[99.5], qty=[1.0])
    cols = book_cols(n, depth, orders, bid=np.full(n, 99.99), ask=np.full(n, 100.01))
    out, eng = both(cols, queue_model=QueueModel.RISK_AVERSE)
    assert fills(out) == []
    assert eng.open_orders == [1] and eng.open_qty == 1.0
    assert eng.mark == pytest.approx(100.0)
    assert eng.depth_hidden_ticks == n
    # an invalid quote (NaN) keeps the bound: still hidden on that tick
    cols2 = book_cols(1, depth_diffs(), instructions(), bid=np.array([np.nan]), ask=np.array([100.01]))
    cols2["ts"] = cols2["ts"] + n * S
    call(eng, cols2)
    assert eng.depth_hidden_ticks == n + 1 and eng.depth_bound == (99.99, 100.01)


BOOK_LEVEL, BOOK_CLEAR = 10, 11  # store.BOOK_EVENT_DTYPE kinds (dbschema/0003_market_data.sql)


def binance_capture(path: Path) -> tuple[np.ndarray, np.ndarray]:
    # the importer reads the store's dtypes (ticktape.store needs asyncpg, which make sanitize's venv lacks)
    pytest.importorskip("asyncpg", reason="the importer needs ticktape.store, which needs asyncpg")
    from ticktape.data.importers import BookBatch, Importer, TickBatch  # noqa: PLC0415 (after the importorskip)

    ticks, events = [], []
    for b in Importer(path, "binance-ws"):
        if isinstance(b, TickBatch):
            ticks.append(b.ticks)
        elif isinstance(b, BookBatch):
            events.append(b.events)
    return np.concatenate(ticks), np.concatenate(events)


def diffs_of_events(ticks: np.ndarray, events: np.ndarray, tick: float) -> np.ndarray:
    """Book events as diffs at the first tick at or after each event (kind 11: every level shown goes to 0)."""
    k = np.searchsorted(ticks["ts"], events["ts"], "left")
    keep = k < len(ticks)
    rows: list[tuple[int, int, float, float]] = []
    shown: dict[tuple[int, int], float] = {}  # (side, price ticks) -> price
    for i, kind, side, price, size in zip(
        k[keep].tolist(), events["kind"][keep].tolist(), events["side"][keep].tolist(),
        events["price"][keep].tolist(), events["size"][keep].tolist(), strict=True,
    ):  # fmt: skip
        if kind == BOOK_CLEAR:
            rows.extend((i, s, p, 0.0) for (s, _), p in shown.items())
            shown.clear()
        elif kind == BOOK_LEVEL:
            key = (int(side), round(price / tick))
            if size > 0:
                shown[key] = price
            else:
                shown.pop(key, None)
            rows.append((i, int(side), price, size))
    return np.array(rows, dtype=DEPTH_DTYPE)


@pytest.mark.shared_data
def test_binance_capture_with_stale_depth_never_fills_through_the_quote(shared_data) -> None:
    """The capture loses diffs around a snapshot, so its depth book keeps stale bids above the bookTicker bid.

    A market-order strategy fed that depth never fills a sell above the latest valid L1 bid nor a buy
    below its ask, the hidden ticks are counted, and its PnL stays in the range of the L1-only run.
    """
    ticks, events = binance_capture(shared_data("ticks/binance_spot_btcusdt_20240808_ws.gz"))
    assert set(np.unique(events["kind"]).tolist()) <= {BOOK_CLEAR, BOOK_LEVEL}
    tk, lot = 0.01, 1e-5
    depth = diffs_of_events(ticks, events, tk)
    n = len(ticks)
    # every 200 ticks, flip between +5 and -5 BTC: market orders that walk the book either way
    target = np.full(n, np.nan)
    target[::200] = np.where((np.arange(n)[::200] // 200) % 2 == 0, 5.0, -5.0)
    cols = {c: ticks[c] for c in ("ts", "bid", "ask", "bid_size", "ask_size", "last", "last_size")}
    args = [cols[c] for c in TICK_COLS]
    l2 = Engine(tk, lot)
    out = l2.process(*args, target, last=cols["last"], last_size=cols["last_size"], depth=depth, details=True)
    l1 = Engine(tk, lot)
    out1 = l1.process(*args, target, last=cols["last"], last_size=cols["last_size"], details=True)
    f = out["fills"]
    assert len(f) > 0 and l2.has_depth
    bb, ba = bounds(cols, tk)
    k = np.searchsorted(cols["ts"], f["ts"], "left")
    px = np.round(f["price"] / tk).astype(np.int64)
    sells, buys = f["side"] < 0, f["side"] > 0
    assert not np.any(px[sells] > bb[k[sells]]), "a sell filled above the latest valid L1 bid"
    assert not np.any(px[buys] < ba[k[buys]]), "a buy filled below the latest valid L1 ask"
    assert l2.depth_hidden_ticks > 0  # the stale levels were seen, and counted
    # the mark is the mid of the latest valid quote (the depth lags the bookTicker stream)
    eq = out["equity"]
    ke = np.searchsorted(cols["ts"], eq["ts"], "left")
    ok = bb[ke] < 2**62
    assert ok.any()
    assert np.array_equal(np.round(eq["price"][ok] * 2 / tk), (bb[ke] + ba[ke])[ok])
    # the same decisions on L1 only: the depth run pays for walking the book (10 BTC a flip), a few bp of
    # what it trades (measured: -22.5k on 116M, 1.9 bp, against -1.6k for L1), not the -1.2M of phantom fills
    pnl2, pnl1 = l2.equity - 1_000_000.0, l1.equity - 1_000_000.0
    notional = float(np.sum(f["price"] * f["qty"]))
    assert len(out1["fills"]) > 0 and l2.position == l1.position == 5.0
    assert abs(pnl2 - pnl1) < 5e-4 * notional, (pnl2, pnl1, notional)


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ({"i": [0, 5]}, r"depth.i\[1\] = 5 is not the index of a tick"),
        ({"i": [1, 0]}, r"depth.i\[1\] = 0 decreases"),
        ({"i": [-1, 0]}, r"depth.i\[0\] = -1 is not the index"),
        ({"side": [1, 0]}, r"depth.side\[1\] = 0 must be \+1"),
        ({"qty": [1.0, np.nan]}, r"depth.qty\[1\] = nan must be finite and >= 0"),
        ({"qty": [-1.0, 1.0]}, r"depth.qty\[0\] = -1 must be finite and >= 0"),
        ({"price": [100.0, 100.005]}, r"depth.price\[1\] = 100.005 is not on the tick grid"),
        ({"price": [np.nan, 100.0]}, r"depth.price\[0\] = nan must be finite and > 0"),
    ],
)
def test_bad_depth_names_field_and_index(rows: dict, match: str) -> None:
    base = {"i": [0, 1], "side": [1, -1], "price": [100.0, 100.02], "qty": [1.0, 1.0]}
    d = depth_diffs(**(base | rows))
    eng = Engine(0.01)
    with pytest.raises(InputError, match=match):
        call(eng, book_cols(3, d, instructions()))
    assert eng.ticks_processed == 0 and not eng.has_depth


def test_depth_dtype_and_helper() -> None:
    with pytest.raises(TypeError, match="DEPTH_DTYPE"):
        Engine(0.01).process(np.zeros(1, np.int64), [1.0], [1.0], [1.0], [1.0], depth=np.zeros(1))
    with pytest.raises(ValueError, match="unknown depth field 'prize'"):
        depth_diffs(prize=[1.0])
    assert depth_diffs(2).dtype == DEPTH_DTYPE


def test_backtest_and_run_spec_take_depth_refill_ns() -> None:
    """``ticktape.backtest(..., depth=, depth_refill_ns=)`` reaches the engine; run specs carry it."""

    @dataclass(frozen=True)
    class NoConfig:
        pass

    class Buys(Strategy):
        """Target 2 at 2 s, 4 at 4 s."""

        name = "refill_buys"
        Config = NoConfig

        def on_batch(self, batch, features, state):  # type: ignore[no-untyped-def]
            t = np.full(len(batch), np.nan)
            t[batch["ts"] == 2 * S] = 2.0
            t[batch["ts"] == 4 * S] = 4.0
            return t, state

    ticks = testing.quotes(8, t0=S)
    book = testing.levels((0.5, -1, 100.01, 2.0), (0.5, -1, 100.02, 3.0), (0.5, 1, 100.0, 5.0))
    got = {}
    for refill in (-1, S):
        r = ticktape.backtest(ticks, Buys(NoConfig()), depth=book, tick_size=0.01, depth_refill_ns=refill)
        f = r.fills
        got[refill] = list(zip((f["ts"].astype("int64") // S).tolist(), f["price"].tolist(), strict=True))
    # the 2 lots at 100.01 taken at 3 s: still taken at 5 s without refill, back with a 1 s refill
    assert got[-1] == [(3, 100.01), (5, 100.02)]
    assert got[S] == [(3, 100.01), (5, 100.01)]
    spec = RunSpec.from_dict({"strategy": "ma_crossover", "symbols": ["X"], "engine": {"depth_refill_ns": S}})
    assert RunSpec.from_json(spec.to_json()).engine.depth_refill_ns == S
    with pytest.raises(SpecError, match=r"engine\.depth_refill_ns"):
        RunSpec.from_dict({"strategy": "ma_crossover", "symbols": ["X"], "engine": {"depth_refill_ns": -5}})
