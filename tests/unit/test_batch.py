"""The batch wire format round-trips exactly and rejects garbage clearly."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ticktape.batch import DTYPES, TICK_DTYPE, Batch, BatchDecodeError, decode, encode


def _arrays(kind):
    return hnp.arrays(DTYPES[kind], st.integers(0, 50))


@settings(max_examples=100, deadline=None)
@given(
    ticks=_arrays("ticks"),
    fills=_arrays("fills"),
    seq=st.integers(0, 2**62),
    eos=st.booleans(),
    symbol=st.text(min_size=1, max_size=12),
)
def test_round_trip_is_bit_exact(ticks, fills, seq, eos, symbol):
    b = Batch(
        run_id="r-1", symbol=symbol, seq=seq, arrays={"ticks": ticks, "fills": fills}, eos=eos, meta={"n": 1}
    )
    d = decode(encode(b))
    assert (d.run_id, d.symbol, d.seq, d.eos, d.meta) == ("r-1", symbol, seq, eos, {"n": 1})
    assert d.ticks.tobytes() == ticks.tobytes()
    assert d.get("fills").tobytes() == fills.tobytes()
    assert len(d.get("orders")) == 0


def test_decode_is_zero_copy():
    ticks = np.zeros(1000, TICK_DTYPE)
    payload = encode(Batch(run_id="r", symbol="A", seq=0, arrays={"ticks": ticks}))
    d = decode(payload)
    assert not d.ticks.flags.owndata
    assert not d.ticks.flags.writeable


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"", "shorter than the batch header"),
        (b"XXXX\x00\x00\x00\x00", "bad magic"),
        (b"TTB1\xff\x00\x00\x00{}", "runs past the end"),
        (b"TTB1\x02\x00\x00\x00{}", "bad batch header"),
    ],
)
def test_garbage_is_rejected_with_a_reason(payload, message):
    with pytest.raises(BatchDecodeError, match=message):
        decode(payload)


def test_truncated_body_is_rejected():
    payload = encode(Batch(run_id="r", symbol="A", seq=0, arrays={"ticks": np.zeros(3, TICK_DTYPE)}))
    with pytest.raises(BatchDecodeError, match="describes"):
        decode(payload[:-1])


def test_wrong_dtype_is_refused():
    with pytest.raises(ValueError, match="needs dtype"):
        Batch(run_id="r", symbol="A", seq=0, arrays={"ticks": np.zeros(3)})
