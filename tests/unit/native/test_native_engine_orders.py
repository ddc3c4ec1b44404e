"""Explicit strategy orders and the execution models of the native Engine.

Property tests drive the C++ engine and the pure-Python reference with the
same random tick / trade / instruction streams and require identical fills,
order events, equity, fill details and portfolio; invariants (no fill before
arrival, quantity conservation, equity identity, batch split and state
round trip invisible). Hand-written tests pin each order type and model.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticktape import testing
from ticktape.model.batch import ORDER_INSTR_DTYPE
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
    instructions,
)
from ticktape.reference import ReferenceEngine

KINDS = ("fills", "orders", "equity", "fill_liquidity", "fill_known_ts")
TICK_COLS = ("ts", "bid", "ask", "bid_size", "ask_size")
EXTRA_COLS = ("last", "last_size")
NEW_ID_STEP = 1_000_000  # explicit ids leave room for target-derived ids in between


@st.composite
def streams(draw: st.DrawFn, max_n: int = 120, with_target: bool | None = None) -> tuple[dict, dict]:
    """A random engine config, tick/trade stream, targets and order instructions."""
    tick = draw(st.sampled_from([0.01, 0.25, 0.05, 1.0, 0.3]))
    lot = draw(st.sampled_from([1.0, 0.5, 0.1, 100.0, 0.3]))
    cfg = {
        "tick_size": tick,
        "lot_size": lot,
        "entry_latency_ns": draw(st.sampled_from([0, 1, 250_000_000])),
        "feed_latency_ns": draw(st.sampled_from([0, 0, 100_000_000])),
        "response_latency_ns": draw(st.sampled_from([0, 300_000_000, 2_000_000_000])),
        "taker_fee_bps": draw(st.sampled_from([0.0, 2.0, -0.25])),
        "maker_fee_bps": draw(st.sampled_from([0.0, -0.2, 1.0])),
        "fee_per_unit": draw(st.sampled_from([0.0, 0.0, 0.01])),
        "initial_cash": draw(st.sampled_from([1_000_000.0, 0.0])),
        "equity_interval_ns": draw(st.sampled_from([1, 1_000_000_000, 10**12])),
        "queue_model": draw(st.sampled_from(list(QueueModel))),
        "queue_power": draw(st.sampled_from([1.0, 2.0, 3.5])),
        "slippage_model": draw(st.sampled_from(list(SlippageModel))),
        "impact_bps": draw(st.sampled_from([0.0, 5.0, 50.0])),
    }
    n = draw(st.integers(1, max_n))
    steps = st.sampled_from([0, 1, 1_000, 100_000_000, 400_000_000, 1_500_000_000])
    ts = draw(st.sampled_from([0, 1_700_000_000_123_456_789])) + np.cumsum(
        np.array(draw(st.lists(steps, min_size=n, max_size=n)), dtype=np.int64)
    )
    bid_t = 10_000 + np.cumsum(np.array(draw(st.lists(st.integers(-2, 2), min_size=n, max_size=n)), np.int64))
    spread = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), dtype=np.int64)
    bid, ask = bid_t * tick, (bid_t + spread) * tick
    for i, q in enumerate(
        draw(st.lists(st.sampled_from(["ok"] * 14 + ["nan", "crossed"]), min_size=n, max_size=n))
    ):
        if q == "nan":
            bid[i] = np.nan
        elif q == "crossed":
            bid[i], ask[i] = ask[i] + tick, bid[i]
    sizes = st.sampled_from([0.0, 1.0, 2.5, 7.0, 30.0, np.nan, 300.0])
    last = np.full(n, np.nan)
    for i, off in enumerate(draw(st.lists(st.one_of(st.none(), st.integers(-1, 4)), min_size=n, max_size=n))):
        if off is not None:
            last[i] = (bid_t[i] + off) * tick
    cols = {
        "ts": ts,
        "bid": bid,
        "ask": ask,
        "bid_size": np.array(draw(st.lists(sizes, min_size=n, max_size=n))),
        "ask_size": np.array(draw(st.lists(sizes, min_size=n, max_size=n))),
        "last": last,
        "last_size": np.array(draw(st.lists(sizes, min_size=n, max_size=n))),
    }
    if with_target is None:
        with_target = draw(st.booleans())
    if with_target:
        targets = st.one_of(
            st.just(np.nan), st.just(np.nan), st.just(np.nan), st.integers(-20, 20).map(lambda k: k * lot)
        )
        cols["target"] = np.array(draw(st.lists(targets, min_size=n, max_size=n)), dtype=np.float64)
    rows: list[dict] = []
    issued: dict[int, int] = {}  # id -> type
    for i in range(n):
        for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2]))):
            action = draw(st.sampled_from([OrderAction.NEW] * 3 + [OrderAction.CANCEL, OrderAction.MODIFY]))
            if action != OrderAction.NEW and not issued:
                action = OrderAction.NEW
            latency = draw(st.sampled_from([-1, -1, 0, 50_000_000, 3_000_000_000]))
            row = {"i": i, "action": action, "latency_ns": latency, "price": np.nan, "stop_price": np.nan}
            if action == OrderAction.NEW:
                oid = (len(issued) + 1) * NEW_ID_STEP
                type_ = draw(st.sampled_from(list(OrderType)))
                tif = draw(
                    st.sampled_from([TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK])
                )
                if type_ == OrderType.LIMIT and draw(st.booleans()):
                    tif = TimeInForce.POST_ONLY
                row |= {"order_id": oid, "side": draw(st.sampled_from([1, -1])), "type": type_, "tif": tif}
                row["qty"] = draw(st.integers(1, 12)) * lot
                if type_ in (OrderType.LIMIT, OrderType.STOP_LIMIT):
                    row["price"] = (bid_t[i] + draw(st.integers(-3, 4))) * tick
                if type_ in (OrderType.STOP, OrderType.STOP_LIMIT):
                    row["stop_price"] = (bid_t[i] + draw(st.integers(-3, 4))) * tick
                issued[oid] = type_
            else:
                oid = draw(st.sampled_from(sorted(issued)))
                row |= {"order_id": oid, "side": 0, "type": 0, "tif": 0, "qty": np.nan}
                if action == OrderAction.MODIFY:
                    if issued[oid] in (OrderType.LIMIT, OrderType.STOP_LIMIT) and draw(st.booleans()):
                        row["price"] = (bid_t[i] + draw(st.integers(-3, 4))) * tick
                    if issued[oid] in (OrderType.STOP, OrderType.STOP_LIMIT) and draw(st.booleans()):
                        row["stop_price"] = (bid_t[i] + draw(st.integers(-3, 4))) * tick
                    if draw(st.booleans()):
                        row["qty"] = draw(st.integers(1, 15)) * lot
            rows.append(row)
    orders = np.zeros(len(rows), dtype=ORDER_INSTR_DTYPE)
    for k, r in enumerate(rows):
        for f, v in r.items():
            orders[k][f] = v
    cols["orders"] = orders
    return cfg, cols


def part(cols: dict, a: int, b: int) -> dict:
    """Ticks [a, b) of a stream and their instructions (i rebased)."""
    p = {k: v[a:b] for k, v in cols.items() if k != "orders"}
    o = cols["orders"]
    sel = o[(o["i"] >= a) & (o["i"] < b)].copy()
    sel["i"] -= a
    p["orders"] = sel
    return p


def call(eng, cols: dict) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    kw = {c: cols[c] for c in (*EXTRA_COLS, "orders") if c in cols}
    return eng.process(*(cols[c] for c in TICK_COLS), cols.get("target"), details=True, **kw)


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


# ------------------------------------------------------------ properties


@settings(max_examples=200, deadline=None)
@given(streams())
def test_orders_match_reference(stream: tuple[dict, dict]) -> None:
    cfg, cols = stream
    nat, ref = Engine(**cfg), ReferenceEngine(**cfg)
    assert_same(run(nat, cols), run(ref, cols))
    assert nat.position == ref.position
    assert nat.cash == ref.cash
    assert nat.fees == ref.fees
    assert nat.open_qty == ref.open_qty
    assert nat.open_orders == [o.id for o in ref.open]
    assert nat.equity == ref.equity or (math.isnan(nat.equity) and math.isnan(ref.equity))


@settings(max_examples=120, deadline=None)
@given(streams(), st.data())
def test_batch_split_and_state_round_trip_are_invisible(
    stream: tuple[dict, dict], data: st.DataObject
) -> None:
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


@settings(max_examples=150, deadline=None)
@given(streams())
def test_invariants(stream: tuple[dict, dict]) -> None:
    """No fill before arrival or on the creating tick; quantity conserved; equity identity."""
    cfg, cols = stream
    eng = Engine(**cfg)
    out = run(eng, cols)
    ev, fills = out["orders"], out["fills"]
    tick_of = {int(t): k for k, t in reversed(list(enumerate(cols["ts"])))}  # first tick at ts
    own = {int(o["order_id"]): int(o["latency_ns"]) for o in cols["orders"] if o["action"] == OrderAction.NEW}
    submitted = {int(o["order_id"]): int(o["ts"]) for o in ev if o["event"] == OrderEvent.SUBMITTED}
    for f in fills:
        oid = int(f["order_id"])
        t0 = submitted[oid]
        lat = own.get(oid, -1)
        arrival = t0 + cfg["feed_latency_ns"] + (lat if lat >= 0 else cfg["entry_latency_ns"])
        assert f["ts"] >= arrival, (f, arrival)
    # never on the creating tick: a fill's tick index is after the submit's
    idx = np.searchsorted(cols["ts"], fills["ts"], side="right") - 1
    for f, k in zip(fills, idx, strict=True):
        assert k > tick_of[submitted[int(f["order_id"])]] or cols["ts"][k] > submitted[int(f["order_id"])]
    # quantity: per order, what filled never exceeds the largest quantity it ever had
    biggest: dict[int, float] = {}
    for o in ev:
        if o["event"] in (OrderEvent.SUBMITTED, OrderEvent.ACCEPTED) and not math.isnan(o["qty"]):
            biggest[int(o["order_id"])] = max(biggest.get(int(o["order_id"]), 0.0), float(o["qty"]))
    for oid in np.unique(fills["order_id"]):
        assert fills["qty"][fills["order_id"] == oid].sum() <= biggest[int(oid)] + 1e-9 * biggest[int(oid)]
    # every order ends at most once (FILLED / CANCELLED / REJECTED with a quantity)
    ends = ev[
        np.isin(ev["event"], [OrderEvent.FILLED, OrderEvent.CANCELLED])
        | ((ev["event"] == OrderEvent.REJECTED) & ~np.isnan(ev["qty"]))
    ]
    assert len(np.unique(ends["order_id"])) == len(ends)
    assert not set(ends["order_id"].tolist()) & set(eng.open_orders)
    assert eng.position == pytest.approx(float(np.sum(fills["side"] * fills["qty"])), abs=1e-6)
    for row in out["equity"]:
        want = row["cash"] if row["position"] == 0 else row["cash"] + row["position"] * row["price"]
        assert row["equity"] == want
    # fill details: maker fills are at the order's limit price in force then (the last one
    # accepted before the fill: a modify can move it between two fills), known after the
    # response latency; each fill has its (PARTIALLY_)FILLED event, in the same order
    assert np.array_equal(out["fill_known_ts"], fills["ts"] + cfg["response_latency_ns"])
    limit_now: dict[int, float] = {}
    limit_at_fill: dict[int, list[float]] = {}
    for o in ev:
        oid = int(o["order_id"])
        if o["event"] == OrderEvent.ACCEPTED and not math.isnan(o["price"]):
            limit_now[oid] = float(o["price"])
        elif o["event"] in (OrderEvent.PARTIALLY_FILLED, OrderEvent.FILLED):
            limit_at_fill.setdefault(oid, []).append(limit_now.get(oid, math.nan))
    for oid, limits in limit_at_fill.items():
        assert len(limits) == int(np.sum(fills["order_id"] == oid))
    next_limit = {oid: iter(limits) for oid, limits in limit_at_fill.items()}
    for f, liq in zip(fills, out["fill_liquidity"], strict=True):
        limit = next(next_limit[int(f["order_id"])])
        if liq == Liquidity.MAKER:
            assert f["price"] == limit


# ------------------------------------------------------------ hand-written


def ticks(n: int, **quote: Any) -> dict:
    """n quotes one second apart from 0, 100.00 / 100.02, 10 a side (keywords of testing.quotes change that)."""
    return testing.columns(
        testing.quotes(n, **({"t0": 0, "ask": 100.02, "size": 10.0} | quote)), orders=instructions()
    )


def both(cols: dict, **cfg) -> tuple[dict, Engine]:  # type: ignore[no-untyped-def]
    """Run native and reference, require identical output; return the native's."""
    cfg.setdefault("tick_size", 0.01)
    eng = Engine(**cfg)
    out = run(eng, cols)
    assert_same(out, run(ReferenceEngine(**cfg), cols))
    return out, eng


def events(out: dict) -> list[tuple]:
    return [
        (int(t), int(o), OrderEvent(e).name, q)
        for t, o, e, q in out["orders"][["ts", "order_id", "event", "qty"]].tolist()
    ]


def fills(out: dict) -> list[tuple]:
    return [
        (int(t), int(o), p, q, Liquidity(liq).name)
        for (t, o, p, q), liq in zip(
            out["fills"][["ts", "order_id", "price", "qty"]].tolist(), out["fill_liquidity"], strict=True
        )
    ]


S = 10**9


def test_market_order_takes_displayed_and_waits_ioc_cancels() -> None:
    cols = ticks(4, size=3.0)
    cols["orders"] = instructions(
        i=[0, 0], order_id=[1, 2], side=Side.BUY, qty=[5.0, 4.0], tif=[0, TimeInForce.IOC]
    )
    out, eng = both(cols)
    # order 1 takes the 3 displayed; order 2 (IOC) finds nothing left on that tick
    assert fills(out) == [(S, 1, 100.02, 3.0, "TAKER"), (2 * S, 1, 100.02, 2.0, "TAKER")]
    assert (S, 2, "CANCELLED", 4.0) in events(out)
    assert eng.position == 5.0


def test_market_fok_all_or_nothing() -> None:
    cols = ticks(3, size=3.0)
    cols["orders"] = instructions(
        i=[0, 1], order_id=[1, 2], side=Side.SELL, qty=[4.0, 3.0], tif=TimeInForce.FOK
    )
    out, _ = both(cols)
    assert fills(out) == [(2 * S, 2, 100.0, 3.0, "TAKER")]
    assert (S, 1, "CANCELLED", 4.0) in events(out)


def test_limit_crosses_up_to_its_price_then_rests_and_fills_as_maker_at_its_price() -> None:
    cols = ticks(5, size=2.0)
    cols["bid"][3], cols["ask"][3] = 99.97, 99.98  # the ask comes down through the buy resting at 100.00
    cols["orders"] = instructions(
        i=[0, 0], order_id=[1, 2], side=Side.BUY, type=OrderType.LIMIT, price=[100.02, 100.00], qty=[3.0, 1.0]
    )
    out, eng = both(cols, maker_fee_bps=-1.0, taker_fee_bps=2.0)
    # 1 takes 2 at the ask (taker); its last lot still crosses, takes at the next tick;
    # 2 rests at 100.00 (the bid) and fills in full at its own price when the ask reaches 99.98
    assert fills(out) == [
        (S, 1, 100.02, 2.0, "TAKER"),
        (2 * S, 1, 100.02, 1.0, "TAKER"),
        (3 * S, 2, 100.0, 1.0, "MAKER"),
    ]
    f = out["fills"]
    assert f["fee"].tolist() == [
        2.0 * 1e-4 * 100.02 * 2.0,
        2.0 * 1e-4 * 100.02 * 1.0,
        -1.0 * 1e-4 * 100.0 * 1.0,
    ]
    assert eng.position == 4.0


def test_limit_ioc_and_fok() -> None:
    cols = ticks(3, size=2.0)
    cols["orders"] = instructions(
        i=[0, 0], order_id=[1, 2], side=Side.SELL, type=OrderType.LIMIT, price=[100.0, 99.99],
        tif=[TimeInForce.IOC, TimeInForce.FOK], qty=[3.0, 1.0],
    )  # fmt: skip
    out, _ = both(cols)
    assert fills(out) == [(S, 1, 100.0, 2.0, "TAKER")]
    assert (S, 1, "CANCELLED", 1.0) in events(out)
    assert (S, 2, "CANCELLED", 1.0) in events(out)  # the bid's 2 lots went to order 1


def test_post_only_rejected_if_it_would_cross() -> None:
    cols = ticks(4)
    cols["orders"] = instructions(
        i=[0, 0], order_id=[1, 2], side=Side.BUY, type=OrderType.LIMIT, tif=TimeInForce.POST_ONLY,
        price=[100.02, 100.01], qty=1.0,
    )  # fmt: skip
    out, eng = both(cols)
    assert events(out)[:4] == [
        (0, 1, "SUBMITTED", 1.0), (0, 2, "SUBMITTED", 1.0), (S, 1, "REJECTED", 1.0), (S, 2, "ACCEPTED", 1.0),
    ]  # fmt: skip
    assert len(out["fills"]) == 0 and eng.open_orders == [2]


def test_stop_triggers_on_quote_and_on_trade() -> None:
    cols = ticks(5)
    cols["ask"][2] = 100.05  # buy stop 100.05 triggers on the ask
    cols["last"][3] = 99.95  # sell stop 99.95 triggers on the trade
    cols["last_size"][3] = 1.0
    cols["orders"] = instructions(
        i=[0, 0],
        order_id=[1, 2],
        side=[Side.BUY, Side.SELL],
        type=OrderType.STOP,
        stop_price=[100.05, 99.95],
        qty=2.0,
    )
    out, _ = both(cols)
    assert fills(out) == [(2 * S, 1, 100.05, 2.0, "TAKER"), (3 * S, 2, 100.0, 2.0, "TAKER")]
    trig = out["orders"][out["orders"]["event"] == OrderEvent.TRIGGERED]
    assert trig[["ts", "order_id", "price", "type"]].tolist() == [(2 * S, 1, 100.05, 2), (3 * S, 2, 99.95, 2)]


def test_stop_limit_becomes_a_limit() -> None:
    cols = ticks(5, size=1.0)
    cols["bid"][2], cols["ask"][2] = 100.04, 100.06  # triggers the buy stop 100.05, ask above its limit
    cols["ask"][3] = 100.04
    cols["orders"] = instructions(
        i=[0],
        order_id=[7],
        side=Side.BUY,
        type=OrderType.STOP_LIMIT,
        stop_price=100.05,
        price=100.05,
        qty=2.0,
    )
    out, _ = both(cols)
    # triggered at tick 2, rests at 100.05 (better than the bid: nothing ahead); tick 3 the ask
    # crosses it -> maker fill of everything at 100.05
    assert fills(out) == [(3 * S, 7, 100.05, 2.0, "MAKER")]


def test_cancel_and_modify_take_latency_and_completed_ids_are_rejected() -> None:
    cols = ticks(8, step_ns=100)
    cols["orders"] = instructions(
        i=[0, 0, 1, 2, 4],
        action=[OrderAction.NEW, OrderAction.NEW, OrderAction.CANCEL, OrderAction.MODIFY, OrderAction.CANCEL],
        order_id=[1, 2, 1, 2, 1],
        side=Side.BUY,
        type=[OrderType.LIMIT, OrderType.LIMIT, 0, 0, 0],
        price=[99.0, 99.0, np.nan, 99.5, np.nan],
        qty=[1.0, 1.0, np.nan, 3.0, np.nan],
    )
    out, eng = both(cols, latency_ns=150)
    ev = events(out)
    assert (300, 1, "CANCELLED", 1.0) in ev  # decided at 100, arrives at 250 -> tick at 300
    assert (400, 2, "ACCEPTED", 3.0) in ev  # modify: new price 99.5, total qty 3
    rej = out["orders"][out["orders"]["event"] == OrderEvent.REJECTED]
    assert rej[["order_id"]].tolist() == [(1,)] and np.isnan(rej["qty"][0])
    acc = out["orders"][(out["orders"]["order_id"] == 2) & (out["orders"]["event"] == OrderEvent.ACCEPTED)]
    assert acc["price"].tolist() == [99.0, 99.5]
    assert eng.open_orders == [2] and eng.open_qty == 3.0


def test_unknown_id_and_reused_id_are_input_errors_and_change_nothing() -> None:
    eng = Engine(0.01)
    cols = ticks(3)
    cols["orders"] = instructions(i=[0], order_id=[5], side=Side.BUY, qty=1.0)
    call(eng, cols)
    before = eng.get_state()
    later = {k: (v + 3 * S if k == "ts" else v) for k, v in ticks(3).items()}
    later["orders"] = instructions(i=[0, 1], action=[0, OrderAction.CANCEL], order_id=[6, 9], side=1, qty=1.0)
    with pytest.raises(InputError, match=r"orders.order_id\[1\] = 9 is not the id of any order"):
        call(eng, later)
    later["orders"] = instructions(i=[2], order_id=[5], side=1, qty=1.0)
    with pytest.raises(
        InputError,
        match=r"orders.order_id\[0\] = 5 must be greater than every order id used before \(highest 5\)",
    ):
        call(eng, later)
    assert eng.get_state() == before
    # a target order takes the next id; the strategy's ids continue above it
    later["target"] = np.array([np.nan, 3.0, np.nan])
    later["orders"] = instructions(i=[2], order_id=[7], side=1, qty=1.0)
    out = call(eng, later)
    assert out["orders"]["order_id"][out["orders"]["event"] == OrderEvent.SUBMITTED].tolist() == [6, 7]


def test_modify_keeps_or_loses_queue_priority() -> None:
    # risk-averse queue: 10 lots ahead at the bid 100.00; trades of 4 at 100.00 per tick
    cols = ticks(7)
    cols["last"][:] = 100.0
    cols["last_size"][:] = 4.0
    cols["orders"] = instructions(
        i=[0, 0, 1, 1], action=[0, 0, OrderAction.MODIFY, OrderAction.MODIFY], order_id=[1, 2, 1, 2],
        side=Side.BUY, type=[1, 1, 0, 0], price=[100.0, 100.0, np.nan, np.nan], qty=[2.0, 2.0, 1.0, 3.0],
    )  # fmt: skip
    out, _ = both(cols, queue_model=QueueModel.RISK_AVERSE)
    f = fills(out)
    # order 1 shrank (keeps its place: 10 ahead from tick 1; trades at ticks 2, 3, 4 make 12 > 10)
    # order 2 grew at tick 2 (back of the queue: 10 ahead again from tick 2, trades at 3, 4, 5 make 12)
    assert [(t // S, o, q) for t, o, _, q, _ in f] == [(4, 1, 1.0), (5, 2, 2.0), (6, 2, 1.0)]


def test_a_modify_between_two_fills_moves_the_price_of_the_second() -> None:
    # a buy limit at 100.00 fills 1 of 3 on a trade at 100.00 (maker), is modified to
    # 100.01 (accepted), and fills the other 2 on a trade at 100.01: at 100.01, not 100.00
    cols = ticks(7)  # (each instruction arrives a tick after it is sent)
    cols["last"][:] = [np.nan, np.nan, 100.0, np.nan, np.nan, 100.01, np.nan]
    cols["last_size"][:] = [np.nan, np.nan, 1.0, np.nan, np.nan, 5.0, np.nan]
    cols["orders"] = instructions(
        i=[0, 3], action=[0, OrderAction.MODIFY], order_id=[1, 1], side=Side.BUY,
        type=OrderType.LIMIT, price=[100.0, 100.01], qty=[3.0, 3.0],
    )  # fmt: skip
    out, _ = both(cols, queue_model=QueueModel.NONE)
    assert fills(out) == [(2 * S, 1, 100.0, 1.0, "MAKER"), (5 * S, 1, 100.01, 2.0, "MAKER")]


def test_queue_none_fills_on_any_trade_at_the_price() -> None:
    cols = ticks(4)
    cols["last"][2], cols["last_size"][2] = 100.0, 1.0
    cols["orders"] = instructions(
        i=[0], order_id=[1], side=Side.BUY, type=OrderType.LIMIT, price=100.0, qty=3.0
    )
    out, _ = both(cols, queue_model=QueueModel.NONE)
    assert fills(out) == [(2 * S, 1, 100.0, 1.0, "MAKER")]


def test_queue_risk_averse_advances_only_on_trades_and_level_shrink() -> None:
    cols = ticks(6)
    cols["bid_size"][:] = [10, 10, 10, 3, 3, 3]  # shrinking to 3 caps what is ahead at 3
    cols["last"][:] = [np.nan, np.nan, 100.0, np.nan, 100.0, 100.0]
    cols["last_size"][:] = [np.nan, np.nan, 5.0, np.nan, 2.0, 2.0]
    cols["orders"] = instructions(
        i=[0], order_id=[1], side=Side.BUY, type=OrderType.LIMIT, price=100.0, qty=1.0
    )
    out, _ = both(cols, queue_model=QueueModel.RISK_AVERSE)
    # arrives at tick 1 with 10 ahead; trade 5 -> 5; level 3 -> 3; trade 2 -> 1; trade 2 -> -1: fill 1
    assert fills(out) == [(5 * S, 1, 100.0, 1.0, "MAKER")]


def test_queue_probabilistic_spreads_cancels_by_position() -> None:
    cols = ticks(5)
    cols["bid_size"][:] = [10, 10, 4, 4, 4]  # 6 lots cancelled at tick 2
    cols["last"][3], cols["last_size"][3] = 100.0, 4.0
    cols["orders"] = instructions(
        i=[0], order_id=[1], side=Side.BUY, type=OrderType.LIMIT, price=100.0, qty=2.0
    )
    out, _ = both(cols, queue_model=QueueModel.PROBABILISTIC, queue_power=2.0)
    # front 10, back 0 -> p(back) = 0: all 6 cancels were ahead: front 4; trade 4 -> 0: no fill
    assert fills(out) == []
    cols["bid_size"][:] = [10, 10, 16, 10, 10]  # 6 joined behind, then 6 cancelled
    cols["last"][3], cols["last_size"][3] = np.nan, np.nan
    cols["last"][4], cols["last_size"][4] = 100.0, 7.0
    out, _ = both(cols, queue_model=QueueModel.PROBABILISTIC, queue_power=2.0)
    # tick 3: front 10, back 6, chg 6: p = 36 / 136; front = 10 - (1 - p) * 6 = 5.588...; trade 7 -> -1.41: 1 lot
    p = 36.0 / 136.0
    assert 10 - (1 - p) * 6 - 7 < -1
    assert fills(out) == [(4 * S, 1, 100.0, 1.0, "MAKER")]


def test_trade_through_fills_everything_at_the_order_price() -> None:
    cols = ticks(4)
    cols["last"][2], cols["last_size"][2] = 99.99, 1.0
    cols["orders"] = instructions(
        i=[0], order_id=[1], side=Side.BUY, type=OrderType.LIMIT, price=100.0, qty=5.0
    )
    out, _ = both(cols, queue_model=QueueModel.RISK_AVERSE)
    assert fills(out) == [(2 * S, 1, 100.0, 5.0, "MAKER")]


def test_self_liquidity_two_orders_share_the_displayed_size_and_the_trade() -> None:
    cols = ticks(4, size=3.0)
    cols["last"][2], cols["last_size"][2] = 100.0, 3.0
    cols["orders"] = instructions(
        i=[0, 0, 0, 0], order_id=[1, 2, 3, 4], side=[1, 1, 1, 1], type=[0, 0, 1, 1],
        price=[np.nan, np.nan, 100.0, 100.0], qty=2.0,
    )  # fmt: skip
    out, _ = both(cols)
    f = fills(out)
    assert f[:2] == [(S, 1, 100.02, 2.0, "TAKER"), (S, 2, 100.02, 1.0, "TAKER")]
    # the trade of 3 at 100.00 fills 2 + 1 of the two resting buys, not 2 + 2
    assert [x for x in f if x[0] == 2 * S and x[4] == "MAKER"] == [
        (2 * S, 3, 100.0, 2.0, "MAKER"),
        (2 * S, 4, 100.0, 1.0, "MAKER"),
    ]


def test_entry_feed_and_per_order_latency() -> None:
    cols = ticks(10, step_ns=100)
    cols["orders"] = instructions(i=[0, 0], order_id=[1, 2], side=Side.BUY, qty=1.0, latency_ns=[-1, 600])
    out, _ = both(cols, entry_latency_ns=200, feed_latency_ns=150)
    assert [(t, o) for t, o, *_ in fills(out)] == [(400, 1), (800, 2)]  # 0+150+200 -> 400; 0+150+600 -> 800


def test_response_latency_delays_what_the_target_logic_knows() -> None:
    cols = ticks(6)
    cols["target"] = np.array([2.0, np.nan, 2.0, 2.0, 2.0, np.nan])
    out, eng = both(cols, response_latency_ns=int(2.5 * S))
    # order 1 fills at 1 s, known at 3.5 s: at 2 s the strategy still sees position 0 and
    # working 2 (its own order) -> no new order; never double-buys here
    assert eng.position == 2.0
    assert out["fill_known_ts"].tolist() == [int(3.5 * S)]
    cols["target"] = np.array([2.0, np.nan, 3.0, np.nan, np.nan, np.nan])
    out, eng = both(cols, response_latency_ns=int(2.5 * S))
    # at 2 s: known position 0 -> the target logic buys 3 more (it cannot know of the fill yet)
    assert eng.position == 5.0
    _, eng0 = both(cols)
    assert eng0.position == 3.0  # without response latency: it buys the 1 missing


def test_fees_maker_taker_per_unit_and_alias() -> None:
    cols = ticks(3)
    cols["bid"][2], cols["ask"][2] = 99.98, 99.99
    cols["orders"] = instructions(
        i=[0, 0], order_id=[1, 2], side=1, type=[0, 1], price=[np.nan, 100.0], qty=[2.0, 1.0]
    )
    out, eng = both(cols, fee_bps=3.0, maker_fee_bps=-1.0, fee_per_unit=0.005)
    assert out["fills"]["fee"].tolist() == [
        3.0 * 1e-4 * 100.02 * 2.0 + 0.005 * 2.0,
        -1.0 * 1e-4 * 100.0 * 1.0 + 0.005 * 1.0,
    ]
    assert eng.taker_fee_bps == eng.fee_bps == 3.0 and eng.maker_fee_bps == -1.0
    with pytest.raises(ValueError, match="alias"):
        Engine(0.01, fee_bps=1.0, taker_fee_bps=2.0)
    with pytest.raises(ValueError, match="alias"):
        Engine(0.01, latency_ns=1, entry_latency_ns=2)
    assert Engine(0.01, latency_ns=5).entry_latency_ns == 5


def test_impact_slippage_fills_the_rest_at_once() -> None:
    cols = ticks(3, size=2.0)
    cols["orders"] = instructions(i=[0, 0], order_id=[1, 2], side=[1, -1], qty=[6.0, 5.0])
    out, _ = both(cols, slippage_model=SlippageModel.IMPACT, impact_bps=10.0)
    # buy 6, shown 2: 2 at 100.02, 4 at 10002 + ceil(10002 * 10e-4 * 4 / 2) = +21 ticks -> 100.23
    # sell 5, shown 2: 2 at 100.00, 3 at 10000 - ceil(10000 * 1e-3 * 1.5) = -15 ticks -> 99.85
    assert fills(out) == [
        (S, 1, 100.02, 2.0, "TAKER"), (S, 1, 100.23, 4.0, "TAKER"),
        (S, 2, 100.0, 2.0, "TAKER"), (S, 2, 99.85, 3.0, "TAKER"),
    ]  # fmt: skip
    out0, _ = both(cols)  # no slippage model: the rest waits for the next tick
    assert [(t, q) for t, _, _, q, _ in fills(out0)] == [(S, 2.0), (S, 2.0), (2 * S, 2.0), (2 * S, 2.0)]


def test_never_fills_on_data_older_than_arrival() -> None:
    # the ask is very cheap only before the order arrives
    cols = ticks(6, step_ns=100)
    cols["ask"][:3] = 99.0
    cols["bid"][:3] = 98.99
    cols["orders"] = instructions(i=[0], order_id=[1], side=1, type=OrderType.LIMIT, price=99.5, qty=1.0)
    out, _ = both(cols, entry_latency_ns=250)
    assert fills(out) == []  # at arrival (300) the ask is 100.02 > 99.5: it rests
    out, _ = both(cols, entry_latency_ns=150)
    assert fills(out) == [(200, 1, 99.0, 1.0, "TAKER")]


BAD = [
    (dict(qty=0.0), r"orders.qty\[1\] = 0 must be finite and > 0"),
    (dict(qty=-1.0), r"orders.qty\[1\] = -1 must be finite"),
    (dict(qty=1.5), r"orders.qty\[1\] = 1.5 is not a whole number of lots \(lot_size 1\)"),
    (dict(qty=np.nan), r"orders.qty\[1\] = nan is required"),
    (dict(type=1, price=100.005), r"orders.price\[1\] = 100.005 is not on the tick grid"),
    (dict(type=1, price=np.nan), r"orders.price\[1\] = nan is required for a LIMIT order"),
    (dict(type=0, price=100.0), r"orders.price\[1\] = 100 must be NaN for a MARKET order"),
    (dict(type=2), r"orders.stop_price\[1\] = nan is required for a STOP order"),
    (dict(type=1, price=-5.0), r"orders.price\[1\] = -5 must be finite and > 0"),
    (dict(side=0), r"orders.side\[1\] = 0 must be \+1 \(buy\) or -1 \(sell\)"),
    (dict(type=9), r"orders.type\[1\] = 9 must be"),
    (dict(tif=7), r"orders.tif\[1\] = 7 must be"),
    (dict(tif=3), r"orders.tif\[1\] = 3 \(POST_ONLY\) needs a LIMIT order"),
    (dict(action=5), r"orders.action\[1\] = 5 must be"),
    (dict(order_id=0), r"orders.order_id\[1\] = 0 must be > 0"),
    (dict(order_id=1), r"orders.order_id\[1\] = 1 must be greater than every order id"),
    (dict(i=7), r"orders.i\[1\] = 7 is not the index of a tick in this batch"),
    (dict(i=-1), r"orders.i\[1\] = -1 is not the index"),
    (dict(latency_ns=-2), r"orders.latency_ns\[1\] = -2 must be >= 0"),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_bad_instructions_name_field_and_index(change: dict, message: str) -> None:
    eng = Engine(0.01)
    call(eng, ticks(1))
    before = eng.get_state()
    cols = ticks(5)
    cols["ts"] = cols["ts"] + S
    ins = instructions(i=[0, 2], order_id=[1, 2], side=1, qty=1.0)
    for k, v in change.items():
        ins[k][1] = v
    cols["orders"] = ins
    with pytest.raises(InputError, match=message):
        call(eng, cols)
    assert eng.get_state() == before


def test_bad_instruction_shapes_and_dtypes() -> None:
    eng = Engine(0.01)
    cols = ticks(3)
    cols["orders"] = instructions(i=[2, 1], order_id=[1, 2], side=1, qty=1.0)
    with pytest.raises(InputError, match=r"orders.i\[1\] = 1 decreases \(previous 2\)"):
        call(eng, cols)
    cols["orders"] = np.zeros(2, dtype=[("i", "<i8")])
    with pytest.raises(TypeError, match="ORDER_INSTR_DTYPE"):
        call(eng, cols)
    cols["orders"] = instructions(i=[0], order_id=[1], side=1, qty=1.0)
    cols["last_size"] = np.full(3, -1.0)
    with pytest.raises(InputError, match=r"last_size\[0\] = -1 is negative"):
        call(eng, cols)
    cols["last_size"] = np.full(2, 1.0)
    with pytest.raises(ValueError, match="last_size has length 2 but ts has length 3"):
        call(eng, cols)
    cols["last_size"] = np.full(3, 1.0)
    cols["last"] = np.full(3, 100.001)
    with pytest.raises(InputError, match=r"last\[0\] = 100.001 is not on the tick grid"):
        call(eng, cols)
    with pytest.raises(ValueError, match="queue_model"):
        Engine(0.01, queue_model=3)
    with pytest.raises(ValueError, match="slippage_model"):
        Engine(0.01, slippage_model=2)
    with pytest.raises(ValueError, match="impact_bps"):
        Engine(0.01, impact_bps=-1.0)
    with pytest.raises(ValueError, match="response_latency_ns"):
        Engine(0.01, response_latency_ns=-1)


def test_modify_of_a_field_the_order_does_not_have_is_an_input_error() -> None:
    eng = Engine(0.01, latency_ns=10**10)  # order 1 is still live when the modify is decided
    cols = ticks(3)
    cols["orders"] = instructions(
        i=[0, 1],
        action=[0, OrderAction.MODIFY],
        order_id=[1, 1],
        side=1,
        qty=[1.0, np.nan],
        price=[np.nan, 99.0],
    )
    with pytest.raises(
        InputError, match=r"orders.price\[1\] = 99 cannot be modified: order 1 has no limit price"
    ):
        call(eng, cols)
    assert eng.ticks_processed == 0


def test_state_keeps_new_config_orders_requests_and_rejects_old_versions() -> None:
    cfg = dict(
        tick_size=0.01, latency_ns=10**10, response_latency_ns=5, feed_latency_ns=3, maker_fee_bps=-0.5,
        taker_fee_bps=1.5, fee_per_unit=0.01, queue_model=2, queue_power=3.0, slippage_model=1, impact_bps=2.0,
    )  # fmt: skip
    eng = Engine(**cfg)
    cols = ticks(3)
    cols["orders"] = instructions(
        i=[0, 1], action=[0, OrderAction.CANCEL], order_id=[4, 4], side=1, type=[OrderType.STOP_LIMIT, 0],
        price=[100.5, np.nan], stop_price=[100.4, np.nan], qty=[3.0, np.nan],
    )  # fmt: skip
    call(eng, cols)
    state = eng.get_state()
    other = Engine.from_state(state)
    assert other.get_state() == state
    for k, v in cfg.items():
        assert getattr(other, "latency_ns" if k == "latency_ns" else k) == v
    assert other.open_orders == [4] and other.max_order_id == 4
    old = bytearray(state)
    old[4:8] = struct.pack("<I", 1)
    with pytest.raises(ValueError, match="unsupported engine state version 1"):
        Engine.from_state(bytes(old))


def test_instructions_helper() -> None:
    ins = instructions(3)
    assert len(ins) == 3 and np.isnan(ins["price"]).all() and (ins["latency_ns"] == -1).all()
    with pytest.raises(ValueError, match="unknown instruction field 'prize'"):
        instructions(prize=[1.0])
