"""The native OrderBook against the pure-Python reference book."""

from __future__ import annotations

import doctest
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ticktape.native
from ticktape.native import BOOK_FILL_DTYPE, L3Kind, OrderBook, OrderType, Side
from ticktape.reference import ReferenceBook

BUY, SELL = int(Side.BUY), int(Side.SELL)
MARKET, LIMIT = int(OrderType.MARKET), int(OrderType.LIMIT)

# One operation of a random stream; picks are resolved against the live book.
ops = st.one_of(
    st.tuples(st.just("add"), st.sampled_from([BUY, SELL]), st.integers(95, 105), st.integers(1, 20)),
    st.tuples(st.just("cancel"), st.integers(0, 10**6), st.none() | st.integers(1, 25), st.booleans()),
    st.tuples(st.just("execute"), st.integers(0, 10**6), st.integers(1, 25), st.booleans()),
    st.tuples(
        st.just("submit"),
        st.sampled_from([BUY, SELL]),
        st.sampled_from([MARKET, LIMIT]),
        st.integers(93, 107),
        st.integers(1, 60),
    ),
)


def check_same(nat: OrderBook, ref: ReferenceBook) -> None:
    assert nat.best_bid() == ref.best_bid()
    assert nat.best_ask() == ref.best_ask()
    for side in (BUY, SELL):
        np.testing.assert_array_equal(nat.depth(side, 100), ref.depth(side, 100))
        np.testing.assert_array_equal(nat.depth(side, 2), ref.depth(side, 2))
        np.testing.assert_array_equal(nat.orders(side), ref.orders(side))
    assert len(nat) == len(ref)


def check_priority(fills: np.ndarray, side: int, seq: dict[int, int]) -> None:
    """Fills walk prices from best to worse, and FIFO (arrival order) within a price."""
    for a, b in itertools.pairwise(fills):
        if a["price"] == b["price"]:
            assert seq[int(a["maker_id"])] < seq[int(b["maker_id"])]
        else:
            assert (b["price"] > a["price"]) if side == BUY else (b["price"] < a["price"])


@settings(max_examples=150, deadline=None)
@given(st.lists(ops, max_size=120))
def test_random_stream_matches_reference(stream: list[tuple]) -> None:
    nat, ref = OrderBook(), ReferenceBook()
    seq: dict[int, int] = {}  # order id -> arrival sequence (time priority)
    next_id = 1
    added = removed = 0
    for op in stream:
        kind = op[0]
        resting = sorted(ref._orders)
        if kind == "add":
            _, side, price, qty = op
            oid, next_id = next_id, next_id + 1
            opp = ref.best_ask() if side == BUY else ref.best_bid()
            crosses = opp is not None and (price >= opp[0] if side == BUY else price <= opp[0])
            if crosses:  # market data never crosses; send it in as an aggressive limit order
                kind, op = "submit", ("submit", side, LIMIT, price, qty)
            else:
                nat.add(oid, side, price, qty)
                ref.add(oid, side, price, qty)
                seq[oid] = len(seq)
                added += qty
        if kind == "cancel":
            _, pick, qty, unknown = op
            if unknown or not resting:
                with pytest.raises(KeyError):
                    nat.cancel(10**9 + pick, qty)
                with pytest.raises(KeyError):
                    ref.cancel(10**9 + pick, qty)
            else:
                oid = resting[pick % len(resting)]
                before = ref.order(oid)[2]
                nat.cancel(oid, qty)
                ref.cancel(oid, qty)
                removed += before if qty is None else min(qty, before)
        elif kind == "execute":
            _, pick, qty, unknown = op
            if unknown or not resting:
                with pytest.raises(KeyError):
                    nat.execute(10**9 + pick, qty)
            else:
                oid = resting[pick % len(resting)]
                qty = min(qty, ref.order(oid)[2])
                nat.execute(oid, qty)
                ref.execute(oid, qty)
                removed += qty
        elif kind == "submit":
            _, side, otype, price, qty = op
            oid, next_id = next_id, next_id + 1
            got = nat.submit(oid, side, otype, price, qty)
            want = ref.submit(oid, side, otype, price, qty)
            assert got.dtype == BOOK_FILL_DTYPE
            np.testing.assert_array_equal(got, want)
            check_priority(got, side, seq)
            filled = int(got["qty"].sum())
            if otype == LIMIT:
                assert np.all(got["price"] <= price) if side == BUY else np.all(got["price"] >= price)
            removed += filled  # makers' quantity taken
            if otype == LIMIT and filled < qty:
                seq[oid] = len(seq)
                added += qty - filled
        check_same(nat, ref)
        bid, ask = nat.best_bid(), nat.best_ask()
        assert bid is None or ask is None or bid[0] < ask[0], "crossed book"
        resting_qty = sum(int(nat.depth(s, 10**6)[:, 1].sum()) for s in (BUY, SELL))
        assert resting_qty == added - removed


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([1, 1, 1, 2, 3, 4]),
            st.integers(1, 40),
            st.sampled_from([BUY, SELL]),
            st.integers(-3, 3),
            st.integers(1, 9),
        ),
        max_size=200,
    )
)
def test_apply_l3_matches_per_event_reference(events: list[tuple[int, ...]]) -> None:
    ref = ReferenceBook()
    rows = []
    for kind, oid, side, price, qty in events:
        if kind == 1:
            if oid in ref._orders:
                continue  # duplicates raise; tested separately
            ref.add(oid, side, price, qty)
        elif kind == 4 and oid in ref._orders:
            qty = min(qty, ref.order(oid)[2])
            ref.execute(oid, qty)
        else:
            ref.apply_l3([kind], [oid], [side], [price], [qty])
        rows.append((kind, oid, side, price, qty))
    arr = np.array(rows, dtype=np.int64).reshape(-1, 5)
    nat = OrderBook()
    nat.apply_l3(arr[:, 0].astype(np.int8), arr[:, 1], arr[:, 2].astype(np.int8), arr[:, 3], arr[:, 4])
    check_same(nat, ref)


def test_apply_l3_errors_name_the_index() -> None:
    book = OrderBook()
    kind = np.array([L3Kind.ADD, L3Kind.ADD, L3Kind.ADD], dtype=np.int8)
    with pytest.raises(ValueError, match=r"order_id\[2\] = 7 is a duplicate"):
        book.apply_l3(
            kind,
            np.array([7, 8, 7]),
            np.array([1, -1, 1], np.int8),
            np.zeros(3, np.int64),
            np.ones(3, np.int64),
        )
    assert len(book) == 2  # events before the bad one stay applied
    with pytest.raises(ValueError, match=r"kind\[0\] = 9"):
        book.apply_l3(np.array([9], np.int8), [1], [1], [1], [1])
    with pytest.raises(ValueError, match=r"side\[0\] = 0"):
        book.apply_l3(np.array([1], np.int8), [1], np.array([0], np.int8), [1], [1])
    with pytest.raises(ValueError, match=r"qty\[1\] = 5 exceeds"):
        book.apply_l3(np.array([2, 4], np.int8), [99, 7], [1, 1], [0, 0], [1, 5])
    with pytest.raises(ValueError, match="qty has length 2"):
        book.apply_l3(np.array([2], np.int8), [7], [1], [0], [1, 1])
    # unknown ids on reduce / delete / execute are ignored
    book.apply_l3(np.array([2, 3, 4], np.int8), [50, 51, 52], [1, 1, 1], [0, 0, 0], [1, 1, 1])
    assert len(book) == 2


def test_fifo_within_a_level_and_partial_fills() -> None:
    book = OrderBook()
    book.add(1, SELL, 101, 5)
    book.add(2, SELL, 101, 5)
    book.add(3, SELL, 100, 2)
    fills = book.submit(10, BUY, LIMIT, 101, 8)
    assert fills.tolist() == [(3, 100, 2), (1, 101, 5), (2, 101, 1)]
    assert book.order(2) == (SELL, 101, 4)
    assert book.order(1) is None
    assert book.best_ask() == (101, 4)
    assert len(book) == 1


def test_limit_remainder_rests_and_market_remainder_is_cancelled() -> None:
    book = OrderBook()
    book.add(1, SELL, 101, 3)
    fills = book.submit(2, BUY, LIMIT, 102, 10)
    assert fills.tolist() == [(1, 101, 3)]
    assert book.best_bid() == (102, 7) and book.best_ask() is None
    assert book.order(2) == (BUY, 102, 7)
    book.add(3, BUY, 100, 4)
    fills = book.submit(4, SELL, MARKET, 0, 50)  # larger than the whole book
    assert fills.tolist() == [(2, 102, 7), (3, 100, 4)]
    assert len(book) == 0 and book.best_bid() is None and book.order(4) is None
    assert book.submit(5, SELL, MARKET, 0, 1).tolist() == []


def test_reduce_keeps_priority_and_execute_consumes() -> None:
    book = OrderBook()
    book.add(1, BUY, 99, 10)
    book.add(2, BUY, 99, 10)
    book.cancel(1, 4)  # reduce: still first in the queue
    assert book.orders(BUY).tolist() == [[1, 99, 6], [2, 99, 10]]
    assert book.volume_at(BUY, 99) == 16 and book.volume_at(BUY, 98) == 0
    book.execute(2, 10)
    assert book.order(2) is None
    book.cancel(1)
    assert len(book) == 0 and book.depth(BUY, 5).shape == (0, 2)


def test_add_does_not_match_and_depth_is_best_first() -> None:
    book = OrderBook()
    for oid, (side, price) in enumerate([(BUY, 98), (BUY, 99), (BUY, 97), (SELL, 101), (SELL, 103)]):
        book.add(oid, side, price, 1 + oid)
    assert book.depth(BUY, 2).tolist() == [[99, 2], [98, 1]]
    assert book.depth(SELL, 10).tolist() == [[101, 4], [103, 5]]
    assert book.depth(BUY, 0).shape == (0, 2)
    book.add(9, BUY, 105, 1)  # crosses, but add is market data: no matching
    assert book.best_bid() == (105, 1) and book.best_ask() == (101, 4)


def test_bad_calls_raise() -> None:
    book = OrderBook()
    book.add(1, BUY, 99, 1)
    with pytest.raises(ValueError, match="duplicate"):
        book.add(1, BUY, 99, 1)
    with pytest.raises(ValueError, match="duplicate"):
        book.submit(1, SELL, LIMIT, 99, 1)
    assert book.order(1) == (BUY, 99, 1)  # a rejected submit does not match
    with pytest.raises(ValueError, match="qty"):
        book.add(2, BUY, 99, 0)
    with pytest.raises(ValueError, match="side"):
        book.add(2, 0, 99, 1)
    with pytest.raises(ValueError, match="type"):
        book.submit(2, BUY, 7, 99, 1)
    with pytest.raises(KeyError):
        book.cancel(42)
    with pytest.raises(KeyError):
        book.execute(42, 1)
    with pytest.raises(ValueError, match="exceeds"):
        book.execute(1, 2)
    with pytest.raises(ValueError):
        book.cancel(1, 0)
    with pytest.raises(ValueError):
        book.depth(BUY, -1)
    assert len(book) == 1


def test_many_orders_grow_the_id_map() -> None:
    book = OrderBook()
    n = 20_000
    ids = np.arange(n, dtype=np.int64) * 7919  # spread over the hash space
    side = np.where(np.arange(n) % 2 == 0, 1, -1).astype(np.int8)
    price = np.where(side > 0, 1000 - np.arange(n) % 50, 1001 + np.arange(n) % 50)
    book.apply_l3(np.full(n, 1, np.int8), ids, side, price, np.ones(n, np.int64))
    assert len(book) == n
    book.apply_l3(np.full(n // 2, 3, np.int8), ids[::2], side[::2], price[::2], np.ones(n // 2, np.int64))
    assert len(book) == n // 2 and book.best_bid() is None
    assert all(book.order(int(i)) == (SELL, int(p), 1) for i, p in zip(ids[1::2], price[1::2], strict=True))


def test_docstring_examples_run() -> None:
    result = doctest.testmod(ticktape.native)
    assert result.attempted > 0 and result.failed == 0


def test_replay_check_pseudo_orders_and_bad_kind() -> None:
    book = OrderBook()
    pid = OrderBook.pseudo_id(BUY, 100)
    assert pid < 0 and pid != OrderBook.pseudo_id(SELL, 100)
    book.add(pid, BUY, 100, 20)  # liquidity that rested before the data began
    book.add(1, BUY, 100, 5)
    kind = np.array(
        [2, 4, 0, 3], np.int8
    )  # reduce unknown, execute known beyond its qty, none, delete unknown
    oid = np.array([77, 1, 0, 78], np.int64)
    side = np.array([BUY, BUY, BUY, BUY], np.int8)
    price = np.array([100, 100, 100, 100], np.int64)
    qty = np.array([4, 8, 1, 13], np.int64)
    rows = np.array([[0, 0, 100, 21], [0, 0, 100, 13], [0, 0, 100, 13], [0, 0, 100, 1]], np.int64)
    # event 3 leaves 0 at the level (13 - 13), so row 3 differs
    assert book.replay_check(kind, oid, side, price, qty, rows) == (3, 0)
    assert book.best_bid() is None
    assert book.replay_check(kind, oid, side, price, qty, rows, 3) == (3, 13)  # nothing left to take
    with pytest.raises(ValueError, match=r"kind\[1\] = 9"):
        empty = np.zeros((2, 4), np.int64)
        book.replay_check(np.array([0, 9], np.int8), oid[:2], side[:2], price[:2], qty[:2], empty)
    with pytest.raises(ValueError, match="expected must have shape"):
        book.replay_check(kind, oid, side, price, qty, rows[:, :3])
    with pytest.raises(ValueError, match="pseudo-order price"):
        OrderBook.pseudo_id(BUY, -1)


# LOBSTER-style streams: ids 1..12 (many never added: "rested before the data
# began"), a few prices, and pseudo-orders seeded at some levels.
replay_events = st.lists(
    st.tuples(
        st.sampled_from([0, 1, 1, 2, 3, 4]),
        st.integers(1, 12),
        st.sampled_from([BUY, SELL]),
        st.integers(98, 102),
        st.integers(1, 9),
    ),
    max_size=60,
)


@settings(max_examples=120, deadline=None)
@given(
    replay_events,
    st.lists(st.tuples(st.sampled_from([BUY, SELL]), st.integers(98, 102), st.integers(1, 30)), max_size=6),
    st.integers(1, 3),
    st.integers(0, 2**32 - 1),
)
def test_replay_check_matches_reference(
    events: list[tuple], seed_levels: list[tuple], levels: int, seed: int
) -> None:
    nat, ref = OrderBook(), ReferenceBook()
    for s, p, q in seed_levels:
        pid = OrderBook.pseudo_id(s, p)
        assert pid == ReferenceBook.pseudo_id(s, p)
        if nat.order(pid) is None:
            nat.add(pid, s, p, q)
            ref.add(pid, s, p, q)
    cols = list(zip(*events, strict=True)) if events else [[]] * 5
    kind = np.array(cols[0], np.int8)
    oid, side = np.array(cols[1], np.int64), np.array(cols[2], np.int8)
    price, qty = np.array(cols[3], np.int64), np.array(cols[4], np.int64)
    # expected rows: the reference's own book after each event, with random
    # corruption so that both sides stop at the same differing rows
    rng = np.random.default_rng(seed)
    probe = ReferenceBook()
    for s, p, q in seed_levels:
        if probe.order(ReferenceBook.pseudo_id(s, p)) is None:
            probe.add(ReferenceBook.pseudo_id(s, p), s, p, q)
    rows = np.zeros((len(events), 4 * levels), np.int64)
    for i in range(len(events)):
        probe.replay_check(
            kind[i : i + 1],
            oid[i : i + 1],
            side[i : i + 1],
            price[i : i + 1],
            qty[i : i + 1],
            rows[i : i + 1],
        )
        for side_, off in ((SELL, 0), (BUY, 2)):
            for lv, (p, q) in enumerate(probe.depth(side_, levels).tolist()):
                rows[i, 4 * lv + off], rows[i, 4 * lv + off + 1] = p, q
        if rng.random() < 0.1:
            rows[i, rng.integers(0, 4 * levels)] += 1
    start = 0
    while True:
        got = nat.replay_check(kind, oid, side, price, qty, rows, start)
        assert got == ref.replay_check(kind, oid, side, price, qty, rows, start)
        check_same(nat, ref)
        for s in (BUY, SELL):
            for p in range(98, 103):
                np.testing.assert_array_equal(nat.orders(s, p), ref.orders(s)[ref.orders(s)[:, 1] == p])
        if got[0] >= len(events):
            break
        start = got[0] + 1


def test_misaligned_fields_of_packed_structured_arrays() -> None:
    # int64 fields at odd offsets: C-contiguous when of length 1, but misaligned
    dt = np.dtype([("k", "i1"), ("id", "<i8"), ("s", "i1"), ("p", "<i8"), ("q", "<i8")])
    ev = np.zeros(1, dt)
    ev[0] = (1, 7, BUY, 100, 5)
    book = OrderBook()
    book.apply_l3(ev["k"], ev["id"], ev["s"], ev["p"], ev["q"])
    assert book.best_bid() == (100, 5)
    book2 = OrderBook()
    row = np.zeros(1, [("pad", "i1"), ("r", "<i8", (4,))])
    row["r"][0] = [0, 0, 100, 5]
    assert book2.replay_check(ev["k"], ev["id"], ev["s"], ev["p"], ev["q"], row["r"]) == (1, 0)


GTC, IOC, FOK, POST_ONLY = 0, 1, 2, 3

tif_ops = st.one_of(
    st.tuples(
        st.just("place"),
        st.sampled_from([BUY, SELL]),
        st.sampled_from([MARKET, LIMIT]),
        st.integers(95, 105),
        st.integers(1, 40),
        st.sampled_from([GTC, IOC, FOK, POST_ONLY]),
    ),
    st.tuples(st.just("modify"), st.integers(0, 10**6), st.integers(95, 105), st.integers(1, 30)),
    st.tuples(st.just("cancel"), st.integers(0, 10**6)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(tif_ops, max_size=100))
def test_time_in_force_and_modify_match_reference(stream: list[tuple]) -> None:
    nat, ref = OrderBook(), ReferenceBook()
    seq: dict[int, int] = {}  # order id -> priority sequence (re-set when priority is lost)
    next_id = 1
    added = removed = 0
    for op in stream:
        resting = sorted(ref._orders)
        if op[0] == "place":
            _, side, otype, price, qty, tif = op
            if tif == POST_ONLY and otype == MARKET:
                with pytest.raises(ValueError, match="POST_ONLY needs a LIMIT"):
                    nat.place(next_id, side, otype, price, qty, tif)
                continue
            oid, next_id = next_id, next_id + 1
            opp = ref.best_ask() if side == BUY else ref.best_bid()
            got, ok = nat.place(oid, side, otype, price, qty, tif)
            want, ok_ref = ref.place(oid, side, otype, price, qty, tif)
            assert ok == ok_ref
            np.testing.assert_array_equal(got, want)
            check_priority(got, side, seq)
            filled = int(got["qty"].sum())
            removed += filled
            would_cross = opp is not None and (
                otype == MARKET or (opp[0] <= price if side == BUY else opp[0] >= price)
            )
            if tif == POST_ONLY:
                assert ok == (not would_cross) and filled == 0
            if tif == FOK:
                assert filled in (0, qty) and ok == (filled == qty)
            if tif in (IOC, FOK) or otype == MARKET or not ok:
                assert nat.order(oid) is None
            elif filled < qty:
                assert nat.order(oid) == (side, price, qty - filled)
                seq[oid] = len(seq)
                added += qty - filled
        elif op[0] == "modify":
            _, pick, price, qty = op
            if not resting:
                with pytest.raises(KeyError):
                    nat.modify(10**9 + pick, price, qty)
                continue
            oid = resting[pick % len(resting)]
            side, old_price, old_qty = ref.order(oid)
            got = nat.modify(oid, price, qty)
            want = ref.modify(oid, price, qty)
            np.testing.assert_array_equal(got, want)
            check_priority(got, side, seq)
            filled = int(got["qty"].sum())
            if price == old_price and qty <= old_qty:
                assert filled == 0  # keeps its priority: seq unchanged
                removed += old_qty - qty
            else:
                removed += old_qty + filled
                if filled < qty:
                    seq[oid] = len(seq)
                    added += qty - filled
        else:
            _, pick = op
            if resting:
                oid = resting[pick % len(resting)]
                removed += ref.order(oid)[2]
                nat.cancel(oid)
                ref.cancel(oid)
        check_same(nat, ref)
        bid, ask = nat.best_bid(), nat.best_ask()
        assert bid is None or ask is None or bid[0] < ask[0], "crossed book"
        resting_qty = sum(int(nat.depth(s, 10**6)[:, 1].sum()) for s in (BUY, SELL))
        assert resting_qty == added - removed


def test_place_and_modify_examples() -> None:
    book = OrderBook()
    book.add(1, SELL, 101, 5)
    book.add(2, SELL, 102, 5)
    # FOK for more than there is within the limit: rejected, nothing trades
    fills, ok = book.place(10, BUY, LIMIT, 101, 6, FOK)
    assert not ok and len(fills) == 0 and book.best_ask() == (101, 5)
    # post-only that would cross: rejected; one that does not: rests
    assert book.place(11, BUY, LIMIT, 101, 1, POST_ONLY)[1] is False
    assert book.place(12, BUY, LIMIT, 100, 3, POST_ONLY)[1] is True
    # IOC: trades what it can, the rest is cancelled
    fills, ok = book.place(13, BUY, LIMIT, 101, 8, IOC)
    assert ok and fills["qty"].tolist() == [5] and book.order(13) is None
    # modify: smaller qty keeps priority, a price change trades if it crosses
    book.add(3, BUY, 100, 4)
    book.modify(12, 100, 2)
    assert book.orders(BUY)[:, 0].tolist() == [12, 3]
    book.modify(12, 100, 9)  # a larger qty loses priority
    assert book.orders(BUY)[:, 0].tolist() == [3, 12]
    fills = book.modify(3, 102, 7)
    assert fills[["maker_id", "qty"]].tolist() == [(2, 5)] and book.order(3) == (BUY, 102, 2)
    with pytest.raises(KeyError, match="unknown order id 99"):
        book.modify(99, 100, 1)
    with pytest.raises(ValueError, match="tif must be"):
        book.place(20, BUY, LIMIT, 100, 1, 7)
    with pytest.raises(ValueError, match="qty must be > 0"):
        book.place(20, BUY, LIMIT, 100, 0)
