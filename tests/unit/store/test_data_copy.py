"""The tick COPY codec without a server: encode_copy builds exactly the
PostgreSQL binary format a row-by-row writer would, decode_ticks parses it
back (NULLs -> NaN) run by run, decode_tick_arrays parses read_ticks' pages
(one row of arrays), and write_ticks' key comparison and seq numbering
agree with plain Python."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticktape import store
from ticktape.errors import KeyOrderError
from ticktape.model.batch import TICK_DTYPE

FLOATS = ("bid", "ask", "bid_size", "ask_size", "last", "last_size")


def reference_copy(symbol: bytes | None, ts: np.ndarray, seq: np.ndarray, floats: np.ndarray) -> bytes:
    """Row by row, straight from the PostgreSQL documentation of COPY BINARY."""
    out = [b"PGCOPY\n\xff\r\n\x00", struct.pack(">ii", 0, 0)]
    for i in range(len(ts)):
        fields = [] if symbol is None else [symbol]
        fields += [struct.pack(">q", int(ts[i])), struct.pack(">q", int(seq[i]))]
        fields += [None if np.isnan(v) else struct.pack(">d", float(v)) for v in floats[i]]
        out.append(struct.pack(">h", len(fields)))
        for f in fields:
            out.append(struct.pack(">i", -1) if f is None else struct.pack(">i", len(f)) + f)
    out.append(struct.pack(">h", -1))
    return b"".join(out)


@st.composite
def tick_rows(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(0, 60))
    # few NULL layouts (runs) or a different one on every row
    layouts = draw(st.lists(st.lists(st.booleans(), min_size=6, max_size=6), min_size=1, max_size=4))
    pick = draw(st.lists(st.integers(0, len(layouts) - 1), min_size=n, max_size=n))
    ts = np.array(draw(st.lists(st.integers(-(2**50), 2**50), min_size=n, max_size=n)), dtype=np.int64)
    seq = np.array(draw(st.lists(st.integers(0, 2**40), min_size=n, max_size=n)), dtype=np.int64)
    vals = draw(
        st.lists(st.floats(allow_nan=False, allow_infinity=True, width=64), min_size=6 * n, max_size=6 * n)
    )
    floats = np.array(vals, dtype=np.float64).reshape(n, 6)
    for i, j in enumerate(pick):
        floats[i, np.array(layouts[j])] = np.nan
    return ts, seq, floats


def encode(symbol: bytes | None, ts: np.ndarray, seq: np.ndarray, floats: np.ndarray) -> bytes:
    cols: list[np.ndarray | bytes] = [] if symbol is None else [symbol]
    cols += [ts.astype(">i8"), seq.astype(">i8"), *(floats[:, k].astype(">f8") for k in range(6))]
    return bytes(store.encode_copy(cols, len(ts)))


@settings(max_examples=100, deadline=None)
@given(tick_rows())
def test_encode_copy_is_the_documented_format(rows: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ts, seq, floats = rows
    assert encode(b"EURUSD", ts, seq, floats) == reference_copy(b"EURUSD", ts, seq, floats)


@settings(max_examples=100, deadline=None)
@given(tick_rows())
def test_decode_ticks_inverts_the_copy_stream(rows: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ts, seq, floats = rows
    data = reference_copy(None, ts, seq, floats)
    decoded = store.decode_ticks(data)
    runs = 1 + int(np.count_nonzero(np.any(np.isnan(floats[1:]) != np.isnan(floats[:-1]), axis=1)))
    if runs > store.MAX_NULL_RUNS:
        assert decoded is None
        return
    assert decoded is not None
    out, last = decoded
    assert out.dtype == TICK_DTYPE and len(out) == len(ts)
    np.testing.assert_array_equal(out["ts"], (ts + store.codec.PG_EPOCH_US) * 1000)
    for k, name in enumerate(FLOATS):
        np.testing.assert_array_equal(out[name], floats[:, k], err_msg=name)
    assert last == (None if not len(ts) else (int(ts[-1]), int(seq[-1])))


def test_decode_ticks_gives_up_on_row_by_row_null_changes() -> None:
    n = 2 * store.MAX_NULL_RUNS + 2
    floats = np.ones((n, 6))
    floats[::2, 4:] = np.nan  # quotes and trades alternating
    data = reference_copy(None, np.arange(n), np.zeros(n, dtype=np.int64), floats)
    assert store.decode_ticks(data) is None
    few = reference_copy(None, np.arange(n), np.zeros(n, dtype=np.int64), floats[np.argsort(floats[:, 4])])
    assert store.decode_ticks(few) is not None  # two runs


def test_decode_ticks_rejects_broken_streams() -> None:
    data = reference_copy(None, np.arange(3), np.arange(3), np.ones((3, 6)))
    with pytest.raises(ValueError, match="not a PostgreSQL binary COPY"):
        store.decode_ticks(b"x" + data[1:])
    with pytest.raises(ValueError, match="trailer"):
        store.decode_ticks(data[:-1])
    with pytest.raises(ValueError, match=r"ends inside a row|does not parse"):
        store.decode_ticks(data[:-10] + data[-2:])
    wrong = reference_copy(b"S", np.arange(3), np.arange(3), np.ones((3, 6)))  # 9 fields
    with pytest.raises(ValueError, match="field count"):
        store.decode_ticks(wrong)


def reference_arrays(
    ts: np.ndarray, seq: np.ndarray, floats: np.ndarray, names: tuple[str, ...] = ("ts", "seq", *FLOATS)
) -> bytes:
    """One COPY row of arrays (``array_agg`` of each column in ``names``), element by
    element from PostgreSQL's array_send: ndim, has-NULL flag, element type
    oid, then per dimension size and lower bound, then each element's length
    (-1 for NULL) and value. No rows: every array_agg is NULL."""
    out = [b"PGCOPY\n\xff\r\n\x00", struct.pack(">ii", 0, 0), struct.pack(">h", len(names))]
    n = len(ts)
    columns = [(1184, [struct.pack(">q", int(v)) for v in ts])]
    if "seq" in names:
        columns.append((20, [struct.pack(">q", int(v)) for v in seq]))
    for k, name in enumerate(FLOATS):
        if name in names:
            columns.append(
                (701, [None if np.isnan(v) else struct.pack(">d", float(v)) for v in floats[:, k]])
            )
    for oid, elems in columns:
        if n == 0:
            out.append(struct.pack(">i", -1))
            continue
        body = struct.pack(">iiiii", 1, int(any(e is None for e in elems)), oid, n, 1)
        body += b"".join(struct.pack(">i", -1) if e is None else struct.pack(">i", 8) + e for e in elems)
        out.append(struct.pack(">i", len(body)) + body)
    out.append(struct.pack(">h", -1))
    return b"".join(out)


@st.composite
def ordered_tick_rows(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ts, seq, floats = draw(tick_rows())
    order = np.lexsort((seq, ts))
    ts, seq, floats = ts[order], seq[order], floats[order]
    keep = np.ones(len(ts), dtype=bool)
    keep[1:] = (ts[1:] != ts[:-1]) | (seq[1:] != seq[:-1])  # keys are unique in the store
    return ts[keep], seq[keep], floats[keep]


@settings(max_examples=100, deadline=None)
@given(ordered_tick_rows())
def test_decode_tick_arrays_inverts_array_agg_pages(rows: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ts, seq, floats = rows
    decoded = store.decode_tick_arrays(reference_arrays(ts, seq, floats))
    nulls = np.isnan(floats)
    if (nulls.any(axis=0) & ~nulls.all(axis=0)).any():
        assert decoded is None  # a column with NULLs on some rows only: asked again with NaN
        return
    assert decoded is not None
    out, first, last = decoded
    assert out.dtype == TICK_DTYPE and len(out) == len(ts)
    np.testing.assert_array_equal(out["ts"], (ts + store.codec.PG_EPOCH_US) * 1000)
    for k, name in enumerate(FLOATS):
        np.testing.assert_array_equal(out[name], floats[:, k], err_msg=name)
    assert first == (None if not len(ts) else (int(ts[0]), int(seq[0])))
    assert last == (None if not len(ts) else (int(ts[-1]), int(seq[-1])))


@settings(max_examples=100, deadline=None)
@given(ordered_tick_rows(), st.booleans(), st.sets(st.sampled_from(FLOATS)))
def test_decode_tick_arrays_of_some_columns(
    rows: tuple[np.ndarray, np.ndarray, np.ndarray], with_seq: bool, floats_read: set[str]
) -> None:
    """Pages of a month in key order read only some columns: those left out
    are NaN; without seq, times must strictly increase."""
    ts, seq, floats = rows
    names = ("ts", *(("seq",) if with_seq else ()), *(c for c in FLOATS if c in floats_read))
    data = reference_arrays(ts, seq, floats, names)
    read = [k for k, c in enumerate(FLOATS) if c in floats_read]
    nulls = np.isnan(floats[:, read])
    if (nulls.any(axis=0) & ~nulls.all(axis=0)).any():
        assert store.decode_tick_arrays(data, names) is None  # asked again with NaN
        return
    if not with_seq and (np.diff(ts) <= 0).any():
        with pytest.raises(KeyOrderError, match="ts is not strictly increasing"):
            store.decode_tick_arrays(data, names)
        return
    decoded = store.decode_tick_arrays(data, names)
    assert decoded is not None
    out, first, last = decoded
    np.testing.assert_array_equal(out["ts"], (ts + store.codec.PG_EPOCH_US) * 1000)
    for k, name in enumerate(FLOATS):
        want = floats[:, k] if name in floats_read else np.full(len(ts), np.nan)
        np.testing.assert_array_equal(out[name], want, err_msg=name)
    if len(ts):
        s0, s1 = (int(seq[0]), int(seq[-1])) if with_seq else (0, 0)
        assert first == (int(ts[0]), s0) and last == (int(ts[-1]), s1)


def test_decode_tick_arrays_rejects_what_is_not_a_page() -> None:
    good = reference_arrays(np.arange(3), np.zeros(3, dtype=np.int64), np.ones((3, 6)))
    assert store.decode_tick_arrays(good) is not None
    with pytest.raises(ValueError, match="not a PostgreSQL binary COPY"):
        store.decode_tick_arrays(b"x" + good[1:])
    with pytest.raises(ValueError, match="trailer"):
        store.decode_tick_arrays(good[:-1])
    with pytest.raises(ValueError, match=r"more than one row|wrong shape|8-byte"):
        store.decode_tick_arrays(good[:-10] + good[-2:])
    with pytest.raises(ValueError, match="strictly increasing"):
        store.decode_tick_arrays(
            reference_arrays(np.array([2, 1, 3]), np.zeros(3, np.int64), np.ones((3, 6)))
        )
    with pytest.raises(ValueError, match="strictly increasing"):  # a repeated key
        store.decode_tick_arrays(reference_arrays(np.array([1, 1]), np.array([4, 4]), np.ones((2, 6))))
    rows = reference_copy(None, np.arange(3), np.arange(3), np.ones((3, 6)))  # one row per tick
    with pytest.raises(ValueError):
        store.decode_tick_arrays(rows)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3)), unique=True, max_size=30),
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3)), unique=True, max_size=30),
)
def test_stored_mask_is_set_membership(stored: list, batch: list) -> None:
    s = np.array(stored, dtype=np.int64).reshape(-1, 2)
    b = np.array(batch, dtype=np.int64).reshape(-1, 2)
    got = store.ticks._stored_mask(b[:, 0], b[:, 1], s[:, 0], s[:, 1])
    assert got.tolist() == [tuple(k) in set(stored) for k in batch]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 5_000), max_size=50), st.booleans())
def test_default_tick_seq_counts_ticks_of_the_same_microsecond(ts: list, in_order: bool) -> None:
    values = np.array(sorted(ts) if in_order else ts, dtype=np.int64)
    seen: dict[int, int] = {}
    expected = []
    for v in values.tolist():  # the index among the ticks of the same µs, in the given order
        us = v // 1000
        expected.append(seen.get(us, 0))
        seen[us] = seen.get(us, 0) + 1
    assert store.default_tick_seq(values).tolist() == expected
