"""Columnar tick batches, their typed headers and their wire format.

One Kafka message carries one batch of one (run, symbol) stream. The payload
is a small JSON header followed by the raw bytes of numpy structured arrays,
so decoding is zero-copy: :func:`decode` returns views on the message bytes.

Wire layout (little endian)::

    b"TTB4" | u32 header_len | header (UTF-8 JSON) | array bytes
    b"TTB5" | u32 header_len | header (UTF-8 JSON) | LZ4 frame of the array bytes

The JSON header carries ``run_id``, ``symbol``, ``seq`` (batch sequence
number of this (run, symbol) stream, starting at 0), ``eos`` (end of stream
for that (run, symbol)), ``header`` (the message kind's typed header:
``{"kind": "ticks", ...}``, see :class:`TickHeader`, :class:`ResultsHeader`
and :class:`FailureHeader`; fields that are None are left out) and the list
of arrays as ``[kind, length]`` pairs. Each array's dtype is implied by its
kind (see :data:`DTYPES`); the bodies follow the header back to back.
Messages of the format before typed headers (``TTB1``..``TTB3``, whose
header held a ``meta`` dict) are refused with a :class:`BatchDecodeError`
saying so.

A float field that is NaN on every row of an array (the trade columns of a
batch of quotes: 16 of a tick's 56 bytes) is left out of the body: the pair
is then ``[kind, length, [field, ...]]`` with the fields sent, the body
their packed rows, and :func:`decode` gives the array back whole, NaN in the
fields left out (a copy, not a view). Only NaN of ``np.nan``'s bits is left
out, so the round trip stays bit-exact.

Bodies of :data:`COMPRESS_MIN_BYTES` or more (a batch of a few thousand
ticks) are sent as one LZ4 frame (``TTB5``, the header's ``lz4`` giving
their size) when that makes them a tenth smaller or more. The embedded
broker spends its CPU in proportion to the bytes it is sent (about 10 s per
GB produced and consumed, measured 2026-12-03): synthetic quotes shrink from
40 to 16 bytes a tick, which more than halved the broker's CPU per tick and
cost the worker less than it saved in its Kafka client (docs/architecture.md,
"Processes").
"""

from __future__ import annotations

import functools
import json
import struct
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Generic, TypeVar, overload

import numpy as np
import pyarrow as pa

from ticktape.errors import BatchDecodeError

MAGIC = b"TTB4"
#: The magic of a message whose bodies are LZ4-compressed (one LZ4 frame).
MAGIC_LZ4 = b"TTB5"
_MAGICS = (MAGIC, MAGIC_LZ4)
#: Magics of the format before typed headers (a ``meta`` dict), refused by name.
_BEFORE_HEADERS = (b"TTB1", b"TTB2", b"TTB3")
#: Bodies of at least this many bytes are compressed (if that saves a tenth).
COMPRESS_MIN_BYTES = 64 * 1024
_HEADER = struct.Struct("<4sI")
_NAN_BITS = np.array(np.nan).view(np.int64)

#: One L1 market data event: a quote (bid/ask with sizes) and/or a trade
#: (last, last_size). Missing fields are NaN. ``ts`` is int64 ns since the
#: Unix epoch, UTC.
TICK_DTYPE = np.dtype(
    [
        ("ts", "<i8"),
        ("bid", "<f8"),
        ("ask", "<f8"),
        ("bid_size", "<f8"),
        ("ask_size", "<f8"),
        ("last", "<f8"),
        ("last_size", "<f8"),
    ]
)

#: A strategy order fill returned by the native engine.
FILL_DTYPE = np.dtype(
    [
        ("ts", "<i8"),
        ("order_id", "<i8"),
        ("side", "i1"),
        ("price", "<f8"),
        ("qty", "<f8"),
        ("fee", "<f8"),
    ]
)

#: An order lifecycle event (see ticktape.native.OrderEvent for the codes).
ORDER_DTYPE = np.dtype(
    [
        ("ts", "<i8"),
        ("order_id", "<i8"),
        ("side", "i1"),
        ("type", "i1"),
        ("event", "i1"),
        ("price", "<f8"),
        ("qty", "<f8"),
    ]
)

#: An equity sample on the event-time grid.
EQUITY_DTYPE = np.dtype(
    [
        ("ts", "<i8"),
        ("cash", "<f8"),
        ("position", "<f8"),
        ("price", "<f8"),
        ("equity", "<f8"),
    ]
)

#: One explicit order instruction of a strategy to the native engine
#: (``Engine.process(..., orders=)``). ``i`` is the index, in the batch, of
#: the tick at which the strategy decided (non-decreasing); ``action`` 0 NEW,
#: 1 CANCEL, 2 MODIFY (``ticktape.native.OrderAction``); ``order_id`` > 0, for
#: NEW greater than every id used before; ``side`` +1 / -1; ``type`` 0 MARKET,
#: 1 LIMIT, 2 STOP, 3 STOP_LIMIT; ``tif`` 0 GTC, 1 IOC, 2 FOK, 3 POST_ONLY;
#: ``price`` the limit price (NaN for MARKET / STOP), ``stop_price`` (NaN
#: unless STOP / STOP_LIMIT), ``qty`` in units, a whole number of lots (for
#: MODIFY the new total quantity; NaN fields of a MODIFY stay as they are);
#: ``latency_ns`` the order's entry latency, -1 = the engine's. Not a wire
#: kind of :class:`Batch`.
ORDER_INSTR_DTYPE = np.dtype(
    [
        ("i", "<i8"),
        ("action", "i1"),
        ("order_id", "<i8"),
        ("side", "i1"),
        ("type", "i1"),
        ("tif", "i1"),
        ("price", "<f8"),
        ("stop_price", "<f8"),
        ("qty", "<f8"),
        ("latency_ns", "<i8"),
    ]
)

#: One L2 depth diff for ``Engine.process(depth=)``: at tick ``i`` of the
#: batch (non-decreasing), the level ``price`` of ``side`` (+1 bids, -1 asks)
#: now displays ``qty`` units (absolute, not a change; 0 removes the level).
#: Applied in array order as the market data of tick ``i``. Not a wire kind
#: of :class:`Batch`.
DEPTH_DTYPE = np.dtype([("i", "<i8"), ("side", "i1"), ("price", "<f8"), ("qty", "<f8")])

#: An L2 level update in event time, for a backtest fed depth: at ``ts`` the
#: level ``price`` of ``side`` (+1 bids, -1 asks) displays ``qty`` units
#: (absolute; 0 removes it). ``ticktape.stages.depth_at`` turns a batch's
#: updates into ``DEPTH_DTYPE`` diffs. Wire kind ``levels`` (a tick batch of a
#: run with depth carries the updates up to its last tick).
LEVEL_DTYPE = np.dtype([("ts", "<i8"), ("side", "i1"), ("price", "<f8"), ("qty", "<f8")])

#: A change of the strategy's decision (target position) at tick ``ts``.
SIGNAL_DTYPE = np.dtype([("ts", "<i8"), ("value", "<f8")])

#: An OHLC bar of the mid price on the event-time grid; ``ts`` is the bar's
#: start, ``ticks`` the number of ticks in it. Emitted once the bar has closed.
BAR_DTYPE = np.dtype(
    [
        ("ts", "<i8"),
        ("open", "<f8"),
        ("high", "<f8"),
        ("low", "<f8"),
        ("close", "<f8"),
        ("ticks", "<i8"),
    ]
)

#: One order book event (see dbschema/0003_market_data.sql for the codes).
#: ``side``/``level`` 0 and ``order_id`` -1 mean "not applicable" (NULL).
BOOK_EVENT_DTYPE = np.dtype(
    [
        ("ts", "<i8"),
        ("kind", "i2"),
        ("side", "i2"),
        ("price", "<f8"),
        ("size", "<f8"),
        ("order_id", "<i8"),
        ("level", "i2"),
    ]
)


DTYPES: dict[str, np.dtype] = {
    "ticks": TICK_DTYPE,
    "levels": LEVEL_DTYPE,
    "fills": FILL_DTYPE,
    "orders": ORDER_DTYPE,
    "equity": EQUITY_DTYPE,
    "signals": SIGNAL_DTYPE,
    "bars": BAR_DTYPE,
}


def _predicate(hint: Any) -> Callable[[Any], bool]:
    """A test of a value (as JSON gives it back) against the type ``hint``
    (exact types: a bool is not an int, nor is a numpy integer)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        parts = [_predicate(h) for h in typing.get_args(hint)]
        return lambda v: any(p(v) for p in parts)
    if origin is dict:
        key, val = map(_predicate, typing.get_args(hint))
        return lambda v: type(v) is dict and all(key(a) and val(b) for a, b in v.items())
    if hint is type(None):
        return lambda v: v is None
    return lambda v: type(v) is hint


@functools.cache
def _schema(cls: type) -> tuple[tuple[str, Callable[[Any], bool], str], ...]:
    """(name, type test, type as text) of each field of a header class."""
    hints = typing.get_type_hints(cls)
    return tuple(
        (f.name, _predicate(h), h.__name__ if isinstance(h, type) else str(h))
        for f in fields(cls)
        for h in (hints[f.name],)
    )


class _Header:
    """Checks the field types of a header (a writer's mistake, or a damaged
    message, is refused where it is made)."""

    kind: ClassVar[str]

    def __post_init__(self) -> None:
        for name, ok, text in _schema(type(self)):  # type: ignore[arg-type]  # (mypy: a class is unhashable if its instances are)
            if not ok(value := getattr(self, name)):
                raise TypeError(f"{self.kind} header: {name} must be {text}, got {value!r}")

    def to_json(self) -> dict[str, Any]:
        """The header as the wire's JSON object (``kind`` first; None fields left out)."""
        doc: dict[str, Any] = {"kind": self.kind}
        for name, _, _ in _schema(type(self)):  # type: ignore[arg-type]  # (mypy: a class is unhashable if its instances are)
            if (value := getattr(self, name)) is not None:
                doc[name] = value
        return doc


@dataclass(frozen=True, kw_only=True)
class TickHeader(_Header):
    """Header of a tick batch (``kind`` ``"ticks"``): replay or live feed ->
    the hot path, on the ticks topic.

    Parameters
    ----------
    spec
        The run spec as JSON (:meth:`ticktape.model.spec.RunSpec.to_json`):
        what the hot path builds the run's strategy and engine from.
    sent_ns
        Wall-clock time (ns since the epoch) the batch was sent, stamped by
        the sender; the stages' lags are measured from it. None before.
    recv_ns
        Live feed only: wall-clock time its tick was received (the
        tick-to-decision latency is measured from it).
    ticks_in
        End of stream only: the ticks the stream read in all.

    Examples
    --------
    >>> TickHeader(spec="{}", ticks_in=3).to_json()
    {'kind': 'ticks', 'spec': '{}', 'ticks_in': 3}
    """

    kind: ClassVar[str] = "ticks"
    spec: str
    sent_ns: int | None = None
    recv_ns: int | None = None
    ticks_in: int | None = None


@dataclass(frozen=True, kw_only=True)
class ResultsHeader(_Header):
    """Header of a result set (``kind`` ``"results"``): the hot path -> the
    sink, on the results topic, one per tick batch. Counts are cumulative
    over the stream.

    Parameters
    ----------
    decided_ns
        Wall-clock time (ns) the hot path published the result set.
    accepted
        Ticks processed so far.
    rejects
        Ticks rejected so far, by reason (``ticktape.compute.quality.REASONS``).
    last_ts
        Event time (ns) of the last accepted tick; None before the first.
    ticks_in
        End of stream only: the ticks the stream read in all.
    sent_ns, recv_ns
        The tick batch's (:class:`TickHeader`), for the stages' lags and the
        tick-to-decision latency.

    Examples
    --------
    >>> h = ResultsHeader(decided_ns=5, accepted=2, rejects={"crossed": 1}, last_ts=10, sent_ns=3)
    >>> h.hot_lag_s
    2e-09
    """

    kind: ClassVar[str] = "results"
    decided_ns: int
    accepted: int
    rejects: dict[str, int]
    last_ts: int | None = None
    ticks_in: int | None = None
    sent_ns: int | None = None
    recv_ns: int | None = None

    @property
    def hot_lag_s(self) -> float | None:
        """Seconds from the tick batch sent to its results decided (None: not stamped)."""
        return None if self.sent_ns is None else (self.decided_ns - self.sent_ns) / 1e9

    @property
    def latency_ns(self) -> int | None:
        """Live feed: ns from the tick received to its results decided (None in a replay)."""
        return None if self.recv_ns is None else self.decided_ns - self.recv_ns


@dataclass(frozen=True, kw_only=True)
class FailureHeader(_Header):
    """Header of a failure report (``kind`` ``"failure"``), on the results
    topic: the stream failed at this batch and its run fails with ``error``."""

    kind: ClassVar[str] = "failure"
    error: str


@dataclass(frozen=True, kw_only=True)
class SweepHeader(_Header):
    """Header of a pipeline sweep group's progress (``kind`` ``"sweep"``):
    the hot path -> the sink, on the results topic, one per tick batch of
    one symbol; the batch's ``run_id`` is the sweep id. Counts are
    cumulative over the symbol's stream and the same for every set of the
    group (the validation is shared).

    Parameters
    ----------
    decided_ns, accepted, rejects, last_ts, ticks_in, sent_ns
        As :class:`ResultsHeader`, for the symbol of the batch.
    runs
        The group's runs: run id -> the set's index in the sweep.
    metrics
        Once every symbol of the group ended (on the last end of stream):
        each run's metrics, as a single run's ``run_metrics`` (``orders``
        and ``fills`` among them).
    totals
        With ``metrics``: ``ticks_in``, ``ticks_processed`` and
        ``ticks_rejected`` over the symbols.
    all_rejects
        With ``metrics``: the rejected ticks over the symbols, by reason.

    Examples
    --------
    >>> SweepHeader(decided_ns=1, runs={"r": 0}, accepted=5, rejects={}).to_json()["kind"]
    'sweep'
    """

    kind: ClassVar[str] = "sweep"
    decided_ns: int
    runs: dict[str, int]
    accepted: int
    rejects: dict[str, int]
    last_ts: int | None = None
    ticks_in: int | None = None
    sent_ns: int | None = None
    metrics: dict[str, dict[str, float]] | None = None
    totals: dict[str, int] | None = None
    all_rejects: dict[str, int] | None = None

    @property
    def hot_lag_s(self) -> float | None:
        """Seconds from the tick batch sent to the group's progress decided (None: not stamped)."""
        return None if self.sent_ns is None else (self.decided_ns - self.sent_ns) / 1e9


#: Any batch header.
Header = TickHeader | ResultsHeader | FailureHeader | SweepHeader
#: The header class of each wire ``kind``.
HEADERS: dict[str, type[Header]] = {
    h.kind: h for h in (TickHeader, ResultsHeader, FailureHeader, SweepHeader)
}

H = TypeVar("H", bound=Header)


@dataclass(frozen=True, kw_only=True)
class Batch(Generic[H]):
    """One message of one (run, symbol) stream: named columnar arrays and a
    typed header.

    Parameters
    ----------
    run_id, symbol
        The stream this batch belongs to.
    seq
        Sequence number of the batch within the stream, from 0. Stages skip a
        batch whose ``seq`` is not newer than the last one they applied.
    arrays
        Structured arrays by kind (``"ticks"``, ``"fills"``, ...); each must
        have the dtype ``DTYPES[kind]``.
    header
        What the message kind carries besides its arrays (:data:`Header`).
    eos
        True on the last batch of the stream (arrays may be empty); exactly
        the batches whose header has ``ticks_in``.
    """

    run_id: str
    symbol: str
    seq: int
    arrays: dict[str, np.ndarray]
    header: H
    eos: bool = False

    def __post_init__(self) -> None:
        for kind, arr in self.arrays.items():
            expected = DTYPES.get(kind)
            if expected is None:
                raise ValueError(f"unknown array kind {kind!r}; expected one of {sorted(DTYPES)}")
            if arr.dtype != expected:
                raise ValueError(f"array {kind!r} needs dtype {expected}, got {arr.dtype}")
        if self.seq < 0:
            raise ValueError(f"batch seq must be >= 0, got {self.seq}")
        if not isinstance(self.header, _HEADER_TYPES):
            raise TypeError(f"batch header must be one of {sorted(HEADERS)}, got {self.header!r}")
        if self.eos != (getattr(self.header, "ticks_in", None) is not None):
            raise ValueError(
                f"batch {self.seq} of {self.symbol}: the end of stream, and only it, carries"
                f" ticks_in (eos={self.eos}, {self.header!r})"
            )

    @property
    def ticks(self) -> np.ndarray:
        """The tick array (empty when the batch carries none)."""
        arr = self.arrays.get("ticks")
        return arr if arr is not None else empty("ticks")

    def get(self, kind: str) -> np.ndarray:
        """The array of ``kind``, or an empty one."""
        arr = self.arrays.get(kind)
        return arr if arr is not None else empty(kind)


_HEADER_TYPES = tuple(HEADERS.values())


def _words(dtype: np.dtype) -> bool:
    """Every field 8 bytes, back to back: rows are int64 words (fields can be left out)."""
    names = dtype.names or ()
    fields: Mapping[str, tuple[Any, ...]] = dtype.fields or {}
    return dtype.itemsize == 8 * len(names) and all(
        fields[f][0].itemsize == 8 and fields[f][1] == 8 * i for i, f in enumerate(names)
    )


def _body(kind: str, arr: np.ndarray) -> tuple[list, memoryview]:
    """The header entry and body of one array: without its all-NaN float fields."""
    arr = np.ascontiguousarray(arr)
    names = arr.dtype.names or ()
    if len(arr) and _words(arr.dtype):
        words = arr.view(np.int64).reshape(len(arr), len(names))
        left = [
            i
            for i, f in enumerate(names)
            if arr.dtype[f] == np.float64 and words[0, i] == _NAN_BITS and (words[:, i] == _NAN_BITS).all()
        ]
        if left:
            sent = [i for i in range(len(names)) if i not in left]
            body = np.take(words, sent, axis=1)  # C order, unlike words[:, sent]
            return [kind, len(arr), [names[i] for i in sent]], body.data.cast("B")
    return [kind, len(arr)], arr.data.cast("B")


def encode(batch: Batch, compress: bool = True) -> bytes:
    """Serialize a batch to its wire format (one copy of the array bytes;
    bodies of :data:`COMPRESS_MIN_BYTES` or more LZ4-compressed if that saves
    a tenth, unless ``compress`` is false)."""
    parts = [_body(k, a) for k, a in batch.arrays.items()]
    head = {
        "run_id": batch.run_id,
        "symbol": batch.symbol,
        "seq": batch.seq,
        "eos": batch.eos,
        "arrays": [entry for entry, _ in parts],
        "header": batch.header.to_json(),
    }
    bodies = [body for _, body in parts]
    magic = MAGIC
    if compress and sum(map(len, bodies)) >= COMPRESS_MIN_BYTES:
        raw = b"".join(bodies)
        packed = _lz4().compress(raw, asbytes=True)
        if len(packed) <= 0.9 * len(raw):
            head["lz4"] = len(raw)
            bodies, magic = [packed], MAGIC_LZ4
    header = json.dumps(head, separators=(",", ":")).encode()
    header += b" " * (-(_HEADER.size + len(header)) % 8)  # the bodies start 8-byte aligned
    return b"".join((_HEADER.pack(magic, len(header)), header, *bodies))


@functools.cache
def _lz4() -> Any:
    return pa.Codec("lz4")


def _layout(entry: list) -> tuple[str, np.dtype, int, list[int] | None]:
    """(kind, dtype, length, indices of the fields sent or None: all) of one header entry."""
    kind, n, *rest = entry
    dtype = DTYPES[kind]
    if not rest:
        return str(kind), dtype, int(n), None
    (fields,) = rest
    names = list(dtype.names or ())
    sent = sorted({names.index(f) for f in fields})  # ValueError: an unknown field
    if not _words(dtype) or len(sent) != len(fields) or 0 not in sent:
        raise ValueError(f"fields {fields!r} of {kind!r}")
    if any(dtype[f] != np.float64 for i, f in enumerate(names) if i not in sent):
        raise ValueError(f"non-float fields left out of {kind!r}")
    return str(kind), dtype, int(n), sent


@overload
def decode(payload: bytes | bytearray | memoryview, expect: None = None) -> Batch[Header]: ...
@overload
def decode(payload: bytes | bytearray | memoryview, expect: types.UnionType) -> Batch[Any]: ...
@overload
def decode(payload: bytes | bytearray | memoryview, expect: type[H]) -> Batch[H]: ...
def decode(payload: bytes | bytearray | memoryview, expect: Any = None) -> Batch[Any]:
    """Parse a wire message; the returned arrays are read-only views on
    ``payload`` (on the decompressed bodies of a ``TTB5`` message; copies
    where fields were left out).

    ``expect``: the header class the message must have, or a union of
    them (a message of another kind is a :class:`BatchDecodeError`, as is a
    malformed one).
    """
    view = memoryview(payload)
    if len(view) < _HEADER.size:
        raise BatchDecodeError(f"message of {len(view)} bytes is shorter than the batch header")
    magic, hlen = _HEADER.unpack_from(view, 0)
    if magic in _BEFORE_HEADERS:
        raise BatchDecodeError(
            f"a {magic.decode()} message: ticktape's batch format before typed headers (its header"
            f" a 'meta' dict); this version reads {MAGIC.decode()}/{MAGIC_LZ4.decode()} only"
        )
    if magic not in _MAGICS:
        raise BatchDecodeError(f"bad magic {bytes(magic)!r}, expected {MAGIC!r}")
    offset = _HEADER.size + hlen
    if offset > len(view):
        raise BatchDecodeError(f"header length {hlen} runs past the end of a {len(view)}-byte message")
    try:
        head = json.loads(bytes(view[_HEADER.size : offset]))
        layout = [_layout(entry) for entry in head["arrays"]]
        header = _header(head["header"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BatchDecodeError(f"bad batch header: {exc!r}") from exc
    if expect is not None and not isinstance(header, expect):
        kinds = " or ".join(repr(h.kind) for h in _HEADER_TYPES if issubclass(h, expect))
        raise BatchDecodeError(f"a {header.kind!r} batch where {kinds} was expected")
    sizes = [n * (dt.itemsize if sent is None else 8 * len(sent)) for _, dt, n, sent in layout]
    if magic == MAGIC_LZ4:
        view, offset = _decompress(view[offset:], head.get("lz4")), 0
    needed = offset + sum(sizes)
    if needed != len(view):
        raise BatchDecodeError(f"header describes {needed} bytes but the message has {len(view)}")
    arrays: dict[str, np.ndarray] = {}
    for (kind, dtype, n, sent), size in zip(layout, sizes, strict=True):
        if sent is None:
            arrays[kind] = np.frombuffer(view, dtype=dtype, count=n, offset=offset)
        else:  # fields left out: NaN
            width = len(dtype.names or ())
            words = np.empty((n, width), np.int64)
            body = np.frombuffer(view, np.int64, count=n * len(sent), offset=offset).reshape(n, -1)
            for i in range(width):  # column by column: faster than fancy indexing
                words[:, i] = body[:, sent.index(i)] if i in sent else _NAN_BITS
            arrays[kind] = words.view(dtype).reshape(n)
        offset += size
    try:
        return Batch(
            run_id=head["run_id"],
            symbol=head["symbol"],
            seq=int(head["seq"]),
            arrays=arrays,
            header=header,
            eos=bool(head["eos"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise BatchDecodeError(f"bad batch header: {exc}") from exc


def lengths(payload: bytes | bytearray | memoryview) -> dict[str, int]:
    """Rows per array of a wire message, from its header alone (nothing is
    decompressed or copied: for counting, e.g. the worker's metrics).

    >>> lengths(encode(Batch(run_id="r", symbol="S", seq=0, arrays={"ticks": empty("ticks")},
    ...                      header=TickHeader(spec="{}"))))
    {'ticks': 0}
    """
    view = memoryview(payload)
    try:
        magic, hlen = _HEADER.unpack_from(view, 0)
        if magic not in _MAGICS:
            raise ValueError(f"bad magic {bytes(magic)!r}")
        head = json.loads(bytes(view[_HEADER.size : _HEADER.size + hlen]))
        return {str(entry[0]): int(entry[1]) for entry in head["arrays"]}
    except (ValueError, KeyError, TypeError, IndexError, struct.error) as exc:
        raise BatchDecodeError(f"bad batch header: {exc!r}") from None


def _header(doc: dict[str, Any]) -> Header:
    """The typed header of a wire header's ``header`` object."""
    fields_ = dict(doc)
    kind = fields_.pop("kind")
    if kind not in HEADERS:
        raise ValueError(f"unknown header kind {kind!r}; expected one of {sorted(HEADERS)}")
    return HEADERS[kind](**fields_)


def _decompress(body: memoryview, size: Any) -> memoryview:
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BatchDecodeError(f"bad batch header: 'lz4' must be the bodies' size in bytes, got {size!r}")
    try:
        return memoryview(_lz4().decompress(body, decompressed_size=size)).toreadonly()
    except (OSError, ValueError) as exc:  # pyarrow: ArrowIOError / ArrowInvalid
        raise BatchDecodeError(f"LZ4 body of {len(body)} bytes does not decompress: {exc}") from exc


def empty(kind: str) -> np.ndarray:
    """An empty array of the dtype of ``kind``."""
    return np.empty(0, dtype=DTYPES[kind])
