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
