"""Streaming indicators equal whole-array indicators for any split."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ticktape.indicators import SmaStream, sma


def test_sma_hand_computed():
    x = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    np.testing.assert_array_equal(sma(x, 3), [np.nan, np.nan, 2.0, 3.0, 17 / 3])
    np.testing.assert_array_equal(sma(x, 1), x)
    assert np.isnan(sma(x, 6)).all()


@settings(max_examples=200, deadline=None)
@given(
    x=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=0, max_size=300),
    n=st.integers(1, 40),
    cuts=st.lists(st.integers(0, 300), max_size=8),
)
def test_streaming_equals_whole_array_bit_for_bit(x, n, cuts):
    x = np.array(x, dtype=float)
    whole = sma(x, n)
    stream = SmaStream(n)
    parts = []
    for piece in np.split(x, sorted(c for c in cuts if c <= len(x))):
        stream = SmaStream.from_state(stream.to_state())  # state survives serialization
        parts.append(stream.update(piece))
    got = np.concatenate(parts) if parts else np.empty(0)
    assert got.tobytes() == whole.tobytes()


@settings(max_examples=100, deadline=None)
@given(x=st.lists(st.floats(1, 1000, allow_nan=False), min_size=1, max_size=200), n=st.integers(1, 30))
def test_sma_matches_the_definition(x, n):
    x = np.array(x)
    got = sma(x, n)
    for i in range(len(x)):
        if i < n - 1:
            assert np.isnan(got[i])
        else:
            assert abs(got[i] - x[i - n + 1 : i + 1].mean()) <= 1e-9 * max(1.0, abs(x).max())


def test_bars_hand_computed_and_closed_by_event_time_only():
    from ticktape.indicators import BarStream

    s = BarStream(10)
    assert len(s.update(np.array([0, 5]), np.array([1.0, 3.0]))) == 0  # bar [0, 10) still open
    closed = s.update(np.array([12, 31]), np.array([2.0, 4.0]))
    assert closed[["ts", "open", "high", "low", "close", "ticks"]].tolist() == [
        (0, 1.0, 3.0, 1.0, 3.0, 2),
        (10, 2.0, 2.0, 2.0, 2.0, 1),
    ]
    assert s.close()[["ts", "close", "ticks"]].tolist() == [(30, 4.0, 1)]


@settings(max_examples=150, deadline=None)
@given(
    gaps=st.lists(st.integers(0, 40), min_size=0, max_size=200),
    prices=st.data(),
    width=st.integers(1, 50),
    cuts=st.lists(st.integers(0, 200), max_size=6),
)
def test_streaming_bars_equal_whole_series_bars_for_any_split(gaps, prices, width, cuts):
    from ticktape.indicators import BarStream, bars

    ts = np.cumsum(np.array(gaps, dtype=np.int64)) - 1_000  # also before the epoch
    px = np.array(prices.draw(st.lists(st.floats(1, 100), min_size=len(ts), max_size=len(ts))), dtype=float)
    whole = bars(ts, px, width)
    stream, parts = BarStream(width), []
    for idx in np.split(np.arange(len(ts)), sorted(c for c in cuts if c <= len(ts))):
        stream = BarStream.from_state(stream.to_state())
        parts.append(stream.update(ts[idx], px[idx]))
    parts.append(stream.close())
    got = np.concatenate(parts)
    assert got.tobytes() == whole.tobytes()
    assert got["ticks"].sum() == len(ts)
    assert (np.diff(got["ts"]) > 0).all() and (got["ts"] % width == 0).all()
