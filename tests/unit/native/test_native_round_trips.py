"""The native round-trip pass (ticktape._native.round_trips, behind
ticktape.compute.accounting.RoundTrips) equals its pure-Python specification
(ticktape.reference.round_trips) bit for bit."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticktape import _native, reference
from ticktape.compute.accounting import RoundTrips, _fill_arrays
from ticktape.model.batch import FILL_DTYPE
from ticktape.reference import OPEN_EXIT_TS, QTY_RTOL

#: quantities that add up to exact closes, flips, partial reductions and
#: near-misses around the exact-close tolerance
_QTYS = [1.0, 2.0, 3.0, 0.1, 0.2, 0.3, 1.0 + 1e-10, 1.0 - 1e-10, 1.0 + 1e-8, 2.5, 1e6, 1e-6]


@st.composite
def fills(draw: st.DrawFn) -> np.ndarray:
    n = draw(st.integers(0, 120))
    f = np.zeros(n, FILL_DTYPE)
    f["ts"] = np.cumsum(draw(st.lists(st.sampled_from([0, 1, 1000]), min_size=n, max_size=n)), dtype=np.int64)
    f["order_id"] = np.arange(1, n + 1)
    f["side"] = draw(st.lists(st.sampled_from([1, -1]), min_size=n, max_size=n))
    f["price"] = draw(
        st.lists(st.floats(0.01, 1e5, allow_nan=False, allow_infinity=False), min_size=n, max_size=n)
    )
    f["qty"] = draw(st.lists(st.sampled_from(_QTYS) | st.floats(1e-3, 1e3), min_size=n, max_size=n))
    f["fee"] = draw(
        st.lists(
            st.sampled_from([0.0, -0.0, 0.5]) | st.floats(-5.0, 5.0, allow_nan=False), min_size=n, max_size=n
        )
    )
    return f


@st.composite
def extreme_fills(draw: st.DrawFn) -> np.ndarray:
    """Valid fills whose products and sums overflow: inf and NaN (inf / inf,
    inf - inf) then reach the running values and Python's min / max."""
    n = draw(st.integers(1, 40))
    f = np.zeros(n, FILL_DTYPE)
    f["ts"] = np.arange(n)
    f["side"] = draw(st.lists(st.sampled_from([1, -1]), min_size=n, max_size=n))
    big = st.sampled_from([1e300, 1e308, 1.7976931348623157e308, 5e-324, 1.0])
    f["price"] = draw(st.lists(big | st.floats(1e-300, 1e300), min_size=n, max_size=n))
    f["qty"] = draw(st.lists(big | st.floats(1e-300, 1e308), min_size=n, max_size=n))
    f["fee"] = draw(
        st.lists(st.sampled_from([0.0, 1e308, -1e308]) | st.floats(-1e300, 1e300), min_size=n, max_size=n)
    )
    return f


def _bits(x: object) -> bytes:
    a = np.asarray(x)
    return a.astype(np.float64).tobytes() if a.dtype.kind == "f" else a.astype(np.int64).tobytes()


@settings(max_examples=300, deadline=None)
@given(f=fills())
def test_native_round_trips_equal_the_reference_bit_for_bit(f: np.ndarray) -> None:
    cols = _fill_arrays(f)
    want = reference.round_trips(*cols)
    got = _native.round_trips(*cols, QTY_RTOL, OPEN_EXIT_TS)
    assert set(got) == set(want)
    for name in want:
        assert _bits(got[name]) == _bits(want[name]), name
    assert struct.pack("<d", got["avg"]) == struct.pack("<d", want["avg"])


def _carry(r: dict) -> dict | None:
    """The open trade a pass ended with, as the next pass's carry (None when flat)."""
    if not len(r["exit_ts"]) or r["exit_ts"][-1] != OPEN_EXIT_TS:
        return None
    names = ("entry_ts", "side", "n_fills", "size", "entry_notional", "exit_qty", "exit_notional")
    c = {n: r[n][-1] for n in (*names, "pnl", "fees", "notional", "lo", "hi")}
    return {**c, "pos": r["pos"], "avg": r["avg"]}


@settings(max_examples=300, deadline=None)
@given(f=fills(), cut=st.integers(0, 120))
def test_a_pass_continued_from_its_carry_equals_the_reference_and_the_whole_pass(f, cut) -> None:
    """Fills in two passes, the second carrying the first one's open trade:
    native equals the reference bit for bit, and the trades are those of one pass."""
    cols = _fill_arrays(f)
    head, tail = [c[:cut] for c in cols], [c[cut:] for c in cols]
    first = reference.round_trips(*head)
    carry = _carry(first)
    want = reference.round_trips(*tail, carry)
    got = _native.round_trips(*tail, QTY_RTOL, OPEN_EXIT_TS, carry)
    assert set(got) == set(want)
    for name in want:
        assert _bits(got[name]) == _bits(want[name]), name
    whole = reference.round_trips(*cols)
    keep = len(first["pnl"]) - (carry is not None)
    for name in ("entry_ts", "exit_ts", "side", "n_fills", "size", "pnl", "fees", "notional", "lo", "hi"):
        joined = np.concatenate((first[name][:keep], want[name]))
        assert _bits(joined) == _bits(whole[name]), name
    assert _bits(want["st_pos"]) == _bits(whole["st_pos"][cut:])
    assert struct.pack("<d", want["avg"]) == struct.pack("<d", whole["avg"])


def test_round_trips_of_many_fills_is_one_pass_in_cpp() -> None:
    """150,000 fills (the end of a 10M-tick streaming run): trades as the reference gives them."""
    rng = np.random.default_rng(3)
    n = 150_000
    f = np.zeros(n, FILL_DTYPE)
    f["ts"] = np.arange(n)
    f["side"] = rng.choice([-1, 1], n)
    f["price"] = 150.0 + rng.normal(size=n).cumsum() * 0.01
    f["qty"] = rng.choice([50.0, 100.0, 200.0], n)
    f["fee"] = 0.1
    got = RoundTrips(f).frame()
    want = reference.round_trips(*_fill_arrays(f))
    assert len(got) == len(want["pnl"]) > 0
    closed = ~got["open"].to_numpy()  # (an open trade is valued at the last fill)
    assert got["pnl"].to_numpy()[closed].tobytes() == want["pnl"][closed].tobytes()
    assert (got["n_fills"].sum(), got["size"].sum()) == (want["n_fills"].sum(), want["size"].sum())


def test_mismatched_columns_are_refused() -> None:
    z = np.zeros(3)
    with pytest.raises(ValueError, match="same length"):
        _native.round_trips(np.zeros(3, np.int64), np.ones(2, np.int8), z, z, z, QTY_RTOL, OPEN_EXIT_TS)


@settings(max_examples=50, deadline=None)
@given(f=fills())
def test_fields_of_a_fill_array_are_read_in_place(f: np.ndarray) -> None:
    """Strided, unaligned columns (fields of FILL_DTYPE, side before price) read as they are."""
    want = reference.round_trips(*_fill_arrays(f))
    got = _native.round_trips(f["ts"], f["side"], f["price"], f["qty"], f["fee"], QTY_RTOL, OPEN_EXIT_TS)
    for name in want:
        assert _bits(got[name]) == _bits(want[name]), name


@settings(max_examples=200, deadline=None)
@given(f=extreme_fills())
def test_overflow_to_inf_and_nan_matches_the_reference(f: np.ndarray) -> None:
    """Overflow to inf and NaN (e.g. two buys of 1e308: the average is
    inf / inf) gives the reference's bits in every column, pos and avg."""
    cols = _fill_arrays(f)
    want = reference.round_trips(*cols)
    got = _native.round_trips(*cols, QTY_RTOL, OPEN_EXIT_TS)
    for name in want:
        assert _bits(got[name]) == _bits(want[name]), name
    assert struct.pack("<d", got["pos"]) == struct.pack("<d", want["pos"])
    assert struct.pack("<d", got["avg"]) == struct.pack("<d", want["avg"])


def test_nan_running_value_leaves_lo_and_hi_as_python_min_max_do() -> None:
    """A NaN running value reaches min / max; lo and hi start at 0.0 and
    Python's min(lo, nan) / max(hi, nan) keep them."""
    f = np.zeros(3, FILL_DTYPE)
    f["ts"], f["side"] = [1, 2, 3], [1, 1, -1]
    f["price"], f["qty"] = [10.0, 10.0, 1e300], [1e308, 1e308, 1e300]
    got = _native.round_trips(*_fill_arrays(f), QTY_RTOL, OPEN_EXIT_TS)
    assert np.isnan(got["st_avg"][1])  # (1e308 * 10 + 1e308 * 10) / (1e308 + 1e308) = inf / inf
    assert got["lo"].tolist() == [0.0] and got["hi"].tolist() == [0.0]
