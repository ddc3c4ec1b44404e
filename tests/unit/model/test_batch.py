"""The batch wire format round-trips exactly and rejects garbage clearly."""

import json
import re
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ticktape import testing
from ticktape.errors import BatchDecodeError
from ticktape.model.batch import (
    DTYPES,
    HEADERS,
    TICK_DTYPE,
    Batch,
    FailureHeader,
    ResultsHeader,
    TickHeader,
    decode,
    encode,
)

H = TickHeader(spec="{}")


def _batch(arrays, seq=0, header=H, **kw):
    return Batch(run_id="r", symbol="A", seq=seq, arrays=arrays, header=header, **kw)


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
    header = TickHeader(spec='{"x": 1}', sent_ns=seq, ticks_in=7 if eos else None)
    b = Batch(
        run_id="r-1", symbol=symbol, seq=seq, arrays={"ticks": ticks, "fills": fills}, header=header, eos=eos
    )
    d = decode(encode(b))
    assert (d.run_id, d.symbol, d.seq, d.eos, d.header) == ("r-1", symbol, seq, eos, header)
    assert d.ticks.tobytes() == ticks.tobytes()
    assert d.get("fills").tobytes() == fills.tobytes()
    assert len(d.get("orders")) == 0


def test_decode_is_zero_copy():
    ticks = np.zeros(1000, TICK_DTYPE)
    payload = encode(_batch({"ticks": ticks}))
    d = decode(payload)
    assert not d.ticks.flags.owndata
    assert not d.ticks.flags.writeable


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"", "shorter than the batch header"),
        (b"XXXX\x00\x00\x00\x00", "bad magic"),
        (b"TTB4\xff\x00\x00\x00{}", "runs past the end"),
        (b"TTB4\x02\x00\x00\x00{}", "bad batch header"),
    ],
)
def test_garbage_is_rejected_with_a_reason(payload, message):
    with pytest.raises(BatchDecodeError, match=message):
        decode(payload)


def test_truncated_body_is_rejected():
    payload = encode(_batch({"ticks": np.zeros(3, TICK_DTYPE)}))
    with pytest.raises(BatchDecodeError, match="describes"):
        decode(payload[:-1])


def test_wrong_dtype_is_refused():
    with pytest.raises(ValueError, match="needs dtype"):
        _batch({"ticks": np.zeros(3)})


def _quotes(n):
    """n quotes at 0, 1, 2, ... ns: 99.5 / 100.5 (3 / 4 shown), no trades."""
    return testing.quotes(n, t0=0, step_ns=1, bid=99.5, spread=1.0, bid_size=3.0, ask_size=4.0)


def test_a_field_nan_on_every_row_is_not_sent():
    """Quotes without trades travel as 40 bytes a tick, not 56, and come back whole."""
    quotes = _quotes(1000)
    payload = encode(_batch({"ticks": quotes}))
    assert len(payload) < 1000 * 40 + 200
    d = decode(payload)
    assert d.ticks.dtype == TICK_DTYPE
    assert d.ticks.tobytes() == quotes.tobytes()
    traded = quotes.copy()
    traded["last"][500] = 100.0  # one trade: its column is sent, last_size still not
    d = decode(p := encode(_batch({"ticks": traded})))
    assert d.ticks.tobytes() == traded.tobytes()
    assert 1000 * 48 < len(p) < 1000 * 48 + 200


def test_only_the_canonical_nan_is_left_out():
    """A column of another NaN (sign, payload) is sent as it is: the round trip stays bit-exact."""
    quotes = _quotes(10)
    quotes["last"] = -np.nan
    quotes["last_size"] = np.frombuffer(np.full(10, 0x7FF8000000000001, np.int64).tobytes(), np.float64)
    d = decode(encode(_batch({"ticks": quotes})))
    assert d.ticks.tobytes() == quotes.tobytes()


def test_bodies_are_aligned_for_numpy():
    """The header is padded so that the first array's fields are 8-byte aligned (unaligned
    float columns make every numpy operation on them slower)."""
    for spec in ("", "a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg"):
        payload = encode(_batch({"ticks": np.zeros(3, TICK_DTYPE)}, header=TickHeader(spec=spec)))
        d = decode(payload)
        assert d.ticks["bid"].flags.aligned
        assert d.header.spec == spec


@pytest.mark.parametrize("magic", [b"TTB1", b"TTB2", b"TTB3"])
def test_a_message_of_the_format_before_typed_headers_is_refused_by_name(magic):
    """Messages whose header held a ``meta`` dict (TTB1..TTB3) are not read as
    anything else: the error says what they are."""
    head = json.dumps(
        {"run_id": "r", "symbol": "A", "seq": 3, "eos": False, "arrays": [["ticks", 1]], "meta": {}}
    ).encode()
    payload = magic + struct.pack("<I", len(head)) + head + np.zeros(1, TICK_DTYPE).tobytes()
    with pytest.raises(BatchDecodeError, match=f"a {magic.decode()} message: .* before typed headers"):
        decode(payload)


def _wire(head: dict, body: bytes = b"") -> bytes:
    raw = json.dumps(head).encode()
    return b"TTB4" + struct.pack("<I", len(raw)) + raw + body


_HEAD = {"run_id": "r", "symbol": "A", "seq": 0, "eos": False, "arrays": []}


@pytest.mark.parametrize(
    "header, message",
    [
        (None, "KeyError"),  # no header
        ({"spec": "{}"}, "KeyError"),  # no kind
        ({"kind": "quotes"}, "unknown header kind 'quotes'"),
        ({"kind": "ticks"}, "spec"),  # a required field missing
        ({"kind": "ticks", "spec": "{}", "seen": 1}, "seen"),  # a field it does not have
        ({"kind": "ticks", "spec": "{}", "sent_ns": 1.5}, re.escape("sent_ns must be int | None, got 1.5")),
        ({"kind": "results", "decided_ns": 1, "accepted": True, "rejects": {}}, "accepted must be int"),
        ({"kind": "results", "decided_ns": 1, "accepted": 1, "rejects": {"x": "1"}}, "rejects must be"),
        ({"kind": "failure", "error": None}, "error must be str"),
    ],
)
def test_a_bad_typed_header_is_refused_naming_the_field(header, message):
    head = dict(_HEAD) if header is None else {**_HEAD, "header": header}
    with pytest.raises(BatchDecodeError, match=message):
        decode(_wire(head))


def test_the_end_of_stream_and_only_it_carries_the_ticks_read():
    with pytest.raises(ValueError, match="carries ticks_in"):
        _batch({}, eos=True)
    with pytest.raises(ValueError, match="carries ticks_in"):
        _batch({}, header=TickHeader(spec="{}", ticks_in=5))
    with pytest.raises(BatchDecodeError, match="carries ticks_in"):
        decode(_wire({**_HEAD, "eos": True, "header": {"kind": "ticks", "spec": "{}"}}))
    with pytest.raises(ValueError, match="carries ticks_in"):
        _batch({}, header=FailureHeader(error="x"), eos=True)


def test_a_writer_passing_a_wrong_type_is_stopped_where_it_writes():
    with pytest.raises(
        TypeError, match=re.escape("results header: last_ts must be int | None, got np.float64(1.0)")
    ):
        ResultsHeader(decided_ns=1, accepted=0, rejects={}, last_ts=np.float64(1.0))
    with pytest.raises(TypeError, match=re.escape("accepted must be int, got np.int64(3)")):
        ResultsHeader(decided_ns=1, accepted=np.int64(3), rejects={})  # not JSON-able
    with pytest.raises(TypeError, match="batch header must be one of"):
        _batch({}, header={"spec": "{}"})


_headers = st.one_of(
    st.builds(
        TickHeader,
        spec=st.text(),
        sent_ns=st.none() | st.integers(0, 2**63 - 1),
        recv_ns=st.none() | st.integers(0, 2**63 - 1),
    ),
    st.builds(
        ResultsHeader,
        decided_ns=st.integers(0, 2**63 - 1),
        accepted=st.integers(0, 2**40),
        rejects=st.dictionaries(st.text(max_size=12), st.integers(0, 2**40), max_size=5),
        last_ts=st.none() | st.integers(-(2**63), 2**63 - 1),
        sent_ns=st.none() | st.integers(0, 2**63 - 1),
        recv_ns=st.none() | st.integers(0, 2**63 - 1),
    ),
    st.builds(FailureHeader, error=st.text()),
)


@settings(max_examples=200, deadline=None)
@given(header=_headers)
def test_every_header_round_trips_and_can_be_asked_for_by_its_kind(header):
    d = decode(encode(_batch({}, header=header)), type(header))
    assert d.header == header and type(d.header) is type(header)
    for other in set(HEADERS.values()) - {type(header)}:
        with pytest.raises(BatchDecodeError, match=f"a '{header.kind}' batch where '{other.kind}'"):
            decode(encode(_batch({}, header=header)), other)
    assert (
        decode(encode(_batch({}, header=header)), ResultsHeader | FailureHeader | TickHeader).header == header
    )


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
    body = np.zeros((4, 2), np.int64).tobytes()
    with pytest.raises(BatchDecodeError, match=message):
        decode(_wire({**_HEAD, "arrays": [["ticks", 4, fields]], "header": H.to_json()}, body))


def test_non_float_fields_are_never_left_out():
    arrays = [["bars", 2, ["ts", "open", "high", "low", "close"]]]
    body = np.zeros((2, 5), np.int64).tobytes()
    with pytest.raises(BatchDecodeError, match="non-float fields"):
        decode(_wire({**_HEAD, "arrays": arrays, "header": H.to_json()}, body))


def _compressible(n, seed=0):
    """Quotes of a random walk on a tick grid, every fifth also a trade at the ask: they compress."""
    t = testing.quotes(
        n,
        t0=1_700_000_000_000_000_000,
        step_ns=(1, 50_000_000),
        walk=0.01,
        decimals=2,
        bid_size=(1, 9),
        seed=seed,
    )
    return testing.with_trades(t, every=5, at="ask", size=1.0)


def test_a_large_batch_travels_compressed_and_comes_back_bit_exact():
    ticks = _compressible(20_000)
    b = _batch({"ticks": ticks, "fills": np.zeros(3, DTYPES["fills"])}, seq=2)
    payload = encode(b)
    assert payload[:4] == b"TTB5"
    assert len(payload) < 0.5 * len(encode(b, compress=False))
    d = decode(payload)
    assert d.ticks.tobytes() == ticks.tobytes()
    assert d.get("fills").tobytes() == b.get("fills").tobytes()
    assert not d.ticks.flags.writeable  # views, as for an uncompressed message


def test_small_or_incompressible_bodies_are_sent_as_they_are():
    small = encode(_batch({"ticks": _compressible(100)}))
    noise = np.frombuffer(np.random.default_rng(1).bytes(2000 * 56), TICK_DTYPE)
    random = encode(_batch({"ticks": noise}))
    assert small[:4] == random[:4] == b"TTB4"
    assert decode(random).ticks.tobytes() == noise.tobytes()


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1000, 6000), seed=st.integers(0, 2**32 - 1), trades=st.booleans())
def test_compressed_round_trip_is_bit_exact(n, seed, trades):
    ticks = _compressible(n, seed)
    if not trades:  # the trade fields are then left out before compressing
        ticks["last"] = ticks["last_size"] = np.nan
    assert decode(encode(_batch({"ticks": ticks}))).ticks.tobytes() == ticks.tobytes()


def test_a_damaged_compressed_body_is_rejected_with_a_reason():
    """(Damage inside the frame's literals would decode to other bytes of the same size:
    the Kafka record's CRC guards the bytes, as for an uncompressed message.)"""
    payload = encode(_batch({"ticks": _compressible(20_000)}))
    hlen = int.from_bytes(payload[4:8], "little")
    head, body = payload[8 : 8 + hlen], payload[8 + hlen :]
    damaged = body[:20] + b"\xff" * 40 + body[60:]
    for bad in (damaged, body[:100]):
        with pytest.raises(BatchDecodeError, match="does not decompress"):
            decode(payload[: 8 + hlen] + bad)
    head = head.replace(b'"lz4":', b'"lz4":-')
    with pytest.raises(BatchDecodeError, match="'lz4' must be"):
        decode(struct.pack("<4sI", b"TTB5", len(head)) + head + body)
