"""highest / lowest: the channel of the n values before each position."""

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ticktape.compute.indicators import STREAMS, highest, lowest


def test_by_hand():
    x = np.array([4.0, 3.0, 2.0, 5.0, 1.0])
    # highest(2) at i: max(x[i-2], x[i-1])
    assert highest(x, 2).tolist()[2:] == [4.0, 3.0, 5.0]
    assert lowest(x, 2).tolist()[2:] == [3.0, 2.0, 2.0]
    assert np.isnan(highest(x, 2)[:2]).all()
    assert np.isnan(highest(x, 5)).all()


def _textbook(x, n, fn):
    return np.array([fn(x[i - n : i]) if i >= n else np.nan for i in range(len(x))])


@settings(max_examples=60, deadline=None)
@given(
    x=st.lists(st.floats(-1e6, 1e6, allow_nan=False), max_size=80),
    n=st.integers(1, 12),
    cuts=st.lists(st.integers(0, 80), max_size=5),
    kind=st.sampled_from(["highest", "lowest"]),
)
def test_any_split_equals_the_whole_and_the_textbook(x, n, cuts, kind):
    x = np.array(x, dtype=float)
    whole = STREAMS[kind](n=n).update(x)
    assert np.array_equal(whole, _textbook(x, n, np.max if kind == "highest" else np.min), equal_nan=True)
    stream, parts = STREAMS[kind](n=n), []
    for p in np.split(x, sorted(c for c in cuts if c <= len(x))):
        parts.append(stream.update(p))
        stream = STREAMS[kind].from_state(json.loads(json.dumps(stream.to_state())))
    assert np.array_equal(whole, np.concatenate(parts) if parts else whole, equal_nan=True)
