"""The native L2Book (market-by-price, Binance depthUpdate style) against the reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticktape.native import L2Book, Side
from ticktape.reference import ReferenceL2Book

BUY, SELL = int(Side.BUY), int(Side.SELL)

diffs = st.lists(
    st.tuples(st.sampled_from([BUY, SELL]), st.integers(95, 110), st.sampled_from([0, 0, 1, 5, 17, 300])),
    max_size=200,
)


def arrays(events: list[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not events:
        return np.zeros(0, np.int8), np.zeros(0, np.int64), np.zeros(0, np.int64)
    s, p, q = zip(*events, strict=True)
    return np.array(s, np.int8), np.array(p, np.int64), np.array(q, np.int64)


@settings(max_examples=150, deadline=None)
@given(diffs, st.integers(1, 5), st.data())
def test_random_diffs_match_reference(
    events: list[tuple[int, int, int]], levels: int, data: st.DataObject
) -> None:
    side, price, qty = arrays(events)
    at = np.array(sorted(data.draw(st.lists(st.integers(0, max(len(events) - 1, 0)), max_size=20))), np.int64)
    if not len(events):
        at = at[:0]
    nat, ref = L2Book(), ReferenceL2Book()
    got = nat.apply(side, price, qty, at, levels)
    want = ref.apply(side, price, qty, at, levels)
    np.testing.assert_array_equal(got, want)
    for s in (BUY, SELL):
        np.testing.assert_array_equal(nat.depth(s, 100), ref.depth(s, 100))
        assert nat.levels(s) == len(ref.depth(s, 100))
    np.testing.assert_array_equal(nat.top(levels), ref.top(levels))
    # the same diffs one at a time give the same book (diffs are absolute: idempotent)
    one = L2Book()
    for s, p, q in events:
        one.set(s, p, q)
        one.set(s, p, q)
    for s in (BUY, SELL):
        np.testing.assert_array_equal(one.depth(s, 100), nat.depth(s, 100))


def test_snapshot_then_diffs_top_n_views() -> None:
    book = L2Book()
    # snapshot: bids 100 x 5, 99 x 7; asks 101 x 3, 103 x 9
    snap = arrays([(BUY, 100, 5), (BUY, 99, 7), (SELL, 101, 3), (SELL, 103, 9)])
    book.apply(*snap)
    assert book.best_bid() == (100, 5) and book.best_ask() == (101, 3)
    # diffs: ask 101 removed, ask 102 appears, bid 100 updated
    d = arrays([(SELL, 101, 0), (SELL, 102, 4), (BUY, 100, 6)])
    rows = book.apply(*d, snapshot_after=[0, 2], levels=2)
    assert rows.tolist() == [
        [103, 9, 100, 5, 0, 0, 99, 7],
        [102, 4, 100, 6, 103, 9, 99, 7],
    ]
    assert book.volume_at(SELL, 101) == 0 and book.volume_at(BUY, 99) == 7
    assert book.top(1).tolist() == [102, 4, 100, 6]
    book.clear()
    assert book.best_bid() is None and book.levels(SELL) == 0


def test_bad_diffs_name_field_and_index_and_change_nothing() -> None:
    book = L2Book()
    book.set(BUY, 100, 5)
    with pytest.raises(ValueError, match=r"qty\[2\] = -1 must be >= 0"):
        book.apply(*arrays([(BUY, 100, 9), (SELL, 101, 1), (SELL, 102, -1)]))
    with pytest.raises(ValueError, match=r"side\[0\] = 0 must be \+1"):
        book.apply(np.array([0], np.int8), np.array([1]), np.array([1]))
    with pytest.raises(ValueError, match=r"snapshot_after\[1\] = 0 must be an ascending"):
        book.apply(*arrays([(BUY, 100, 9), (SELL, 101, 1)]), snapshot_after=[1, 0])
    with pytest.raises(ValueError, match="must have the length of side"):
        book.apply(np.array([1], np.int8), np.array([1, 2]), np.array([1]))
    with pytest.raises(ValueError, match="qty = -3 must be >= 0"):
        book.set(BUY, 100, -3)
    assert book.depth(BUY, 10).tolist() == [[100, 5]]
    assert book.levels(SELL) == 0
