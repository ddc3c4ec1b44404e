"""The batch wire format round-trips exactly and rejects garbage clearly."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ticktape.errors import BatchDecodeError
from ticktape.model.batch import DTYPES, TICK_DTYPE, Batch, decode, encode


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


def _quotes(n):
    t = np.zeros(n, TICK_DTYPE)
    t["ts"] = np.arange(n)
    t["bid"], t["ask"], t["bid_size"], t["ask_size"] = 99.5, 100.5, 3.0, 4.0
    t["last"] = t["last_size"] = np.nan
    return t


def test_a_field_nan_on_every_row_is_not_sent():
    """Quotes without trades travel as 40 bytes a tick, not 56, and come back whole."""
    quotes = _quotes(1000)
    payload = encode(Batch(run_id="r", symbol="A", seq=0, arrays={"ticks": quotes}))
    assert len(payload) < 1000 * 40 + 200
    d = decode(payload)
    assert d.ticks.dtype == TICK_DTYPE
    assert d.ticks.tobytes() == quotes.tobytes()
    traded = quotes.copy()
    traded["last"][500] = 100.0  # one trade: its column is sent, last_size still not
    d = decode(p := encode(Batch(run_id="r", symbol="A", seq=0, arrays={"ticks": traded})))
    assert d.ticks.tobytes() == traded.tobytes()
    assert 1000 * 48 < len(p) < 1000 * 48 + 200


def test_only_the_canonical_nan_is_left_out():
    """A column of another NaN (sign, payload) is sent as it is: the round trip stays bit-exact."""
    quotes = _quotes(10)
    quotes["last"] = -np.nan
    quotes["last_size"] = np.frombuffer(np.full(10, 0x7FF8000000000001, np.int64).tobytes(), np.float64)
    d = decode(encode(Batch(run_id="r", symbol="A", seq=0, arrays={"ticks": quotes})))
    assert d.ticks.tobytes() == quotes.tobytes()


def test_bodies_are_aligned_for_numpy():
    """The header is padded so that the first array's fields are 8-byte aligned (unaligned
    float columns make every numpy operation on them slower)."""
    for meta in ({}, {"x": "a"}, {"x": "ab"}, {"x": "abc"}):
        payload = encode(
            Batch(run_id="r", symbol="A", seq=0, arrays={"ticks": np.zeros(3, TICK_DTYPE)}, meta=meta)
        )
        d = decode(payload)
        assert d.ticks["bid"].flags.aligned
        assert d.meta == meta


def test_version_1_messages_still_decode():
    """Recorded topics hold TTB1 messages (every field sent, no padding)."""
    import json
    import struct

    ticks = _quotes(5)
    head = json.dumps(
        {"run_id": "r", "symbol": "A", "seq": 3, "eos": False, "arrays": [["ticks", 5]], "meta": {}}
    )
    payload = b"TTB1" + struct.pack("<I", len(head)) + head.encode() + ticks.tobytes()
    d = decode(payload)
    assert (d.seq, d.ticks.tobytes()) == (3, ticks.tobytes())


@pytest.mark.parametrize(
    "fields, message",
    [
        (["bid", "ask"], "fields"),  # no ts
        (["ts", "ts"], "fields"),
        (["ts", "nope"], "not in list"),
        (["ts"], "describes"),  # the body holds more than ts
    ],
)
def test_a_bad_field_list_is_rejected(fields, message):
    import json
    import struct

    body = np.zeros((4, 2), np.int64).tobytes()
    head = json.dumps(
        {"run_id": "r", "symbol": "A", "seq": 0, "eos": False, "arrays": [["ticks", 4, fields]]}
    )
    with pytest.raises(BatchDecodeError, match=message):
        decode(b"TTB2" + struct.pack("<I", len(head)) + head.encode() + body)


def test_non_float_fields_are_never_left_out():
    import json
    import struct

    head = json.dumps(
        {
            "run_id": "r",
            "symbol": "A",
            "seq": 0,
            "eos": False,
            "arrays": [["bars", 2, ["ts", "open", "high", "low", "close"]]],
        }
    )
    body = np.zeros((2, 5), np.int64).tobytes()
    with pytest.raises(BatchDecodeError, match="non-float fields"):
        decode(b"TTB2" + struct.pack("<I", len(head)) + head.encode() + body)


def _compressible(n, seed=0):
    """Quotes of a random walk on a tick grid, some with trades: they compress."""
    rng = np.random.default_rng(seed)
    t = _quotes(n)
    t["ts"] = 1_700_000_000_000_000_000 + np.cumsum(rng.integers(1, 50_000_000, n))
    t["bid"] = 100 + np.cumsum(rng.integers(-1, 2, n)) * 0.01
    t["ask"] = t["bid"] + 0.01
    t["bid_size"] = rng.integers(1, 9, n)
    trades = rng.random(n) < 0.2
    t["last"][trades], t["last_size"][trades] = t["ask"][trades], 1.0
    return t


def test_a_large_batch_travels_compressed_and_comes_back_bit_exact():
    ticks = _compressible(20_000)
    b = Batch(run_id="r", symbol="A", seq=2, arrays={"ticks": ticks, "fills": np.zeros(3, DTYPES["fills"])})
    payload = encode(b)
    assert payload[:4] == b"TTB3"
    assert len(payload) < 0.5 * len(encode(b, compress=False))
    d = decode(payload)
    assert d.ticks.tobytes() == ticks.tobytes()
    assert d.get("fills").tobytes() == b.get("fills").tobytes()
    assert not d.ticks.flags.writeable  # views, as for an uncompressed message


def test_small_or_incompressible_bodies_are_sent_as_they_are():
    small = encode(Batch(run_id="r", symbol="A", seq=0, arrays={"ticks": _compressible(100)}))
    noise = np.frombuffer(np.random.default_rng(1).bytes(2000 * 56), TICK_DTYPE)
    random = encode(Batch(run_id="r", symbol="A", seq=0, arrays={"ticks": noise}))
    assert small[:4] == random[:4] == b"TTB2"
    assert decode(random).ticks.tobytes() == noise.tobytes()


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1000, 6000), seed=st.integers(0, 2**32 - 1), trades=st.booleans())
def test_compressed_round_trip_is_bit_exact(n, seed, trades):
    ticks = _compressible(n, seed)
    if not trades:  # the trade fields are then left out before compressing
        ticks["last"] = ticks["last_size"] = np.nan
    assert decode(encode(Batch(run_id="r", symbol="A", seq=0, arrays={"ticks": ticks}))).ticks.tobytes() == (
        ticks.tobytes()
    )


def test_a_damaged_compressed_body_is_rejected_with_a_reason():
    """(Damage inside the frame's literals would decode to other bytes of the same size:
    the Kafka record's CRC guards the bytes, as for an uncompressed message.)"""
    import struct

    payload = encode(Batch(run_id="r", symbol="A", seq=0, arrays={"ticks": _compressible(20_000)}))
    hlen = int.from_bytes(payload[4:8], "little")
    head, body = payload[8 : 8 + hlen], payload[8 + hlen :]
    damaged = body[:20] + b"\xff" * 40 + body[60:]
    for bad in (damaged, body[:100]):
        with pytest.raises(BatchDecodeError, match="does not decompress"):
            decode(payload[: 8 + hlen] + bad)
    head = head.replace(b'"lz4":', b'"lz4":-')
    with pytest.raises(BatchDecodeError, match="'lz4' must be"):
        decode(struct.pack("<4sI", b"TTB3", len(head)) + head + body)
