"""PostgreSQL binary COPY built and parsed with numpy (no Python object per row), and safe SQL literals.

Time: the engine's int64 nanoseconds become ``timestamptz``, which holds
microseconds; ``ts`` is the nanosecond time floored to the microsecond.
Missing float values (NaN in numpy) are stored as SQL NULL and read back as
NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import numpy as np

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
PG_EPOCH_US = 946_684_800_000_000
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
COPY_TRAILER = b"\xff\xff"

# --------------------------------------------------------------------------
# binary COPY, built and parsed with numpy


def ns_to_datetime(ns: int) -> datetime:
    """int64 ns since the epoch -> aware UTC datetime (floored to the microsecond)."""
    return _EPOCH + timedelta(microseconds=int(ns) // 1000)


def datetime_to_ns(value: datetime) -> int:
    """Aware datetime -> int64 ns since the epoch."""
    return ((value - _EPOCH) // timedelta(microseconds=1)) * 1000


def to_pg_us(ns: np.ndarray) -> np.ndarray:
    """int64 ns since the Unix epoch -> PostgreSQL timestamptz (µs since 2000)."""
    return np.floor_divide(ns.astype(np.int64, copy=False), 1000) - PG_EPOCH_US


def encode_copy(columns: Sequence[np.ndarray | bytes], n: int) -> memoryview:
    """One COPY binary stream of ``n`` rows (a buffer for ``copy_to_table``).

    Each column is a numpy array of length ``n`` in its wire type (``>i8``,
    ``>i2``, ``>f8``...) or a ``bytes`` value repeated on every row (text,
    uuid). NaN in a float column becomes NULL.

    The rows are one numpy structured array filled column by column (no
    Python object per row). When every row has the same NULL fields (quotes
    only, trades only: the usual case) that array is the whole stream;
    otherwise the 8 value bytes of each NULL field are cut out afterwards.

    Examples
    --------
    >>> buf = encode_copy([b"X", np.array([1.5, np.nan], ">f8")], 2)
    >>> bytes(buf[19:21]), len(buf)  # field count of the first row; header + rows + trailer
    (b'\\x00\\x02', 51)
    """
    for i, col in enumerate(columns):
        if not isinstance(col, (bytes, bytearray)) and len(col) != n:
            raise ValueError(f"column {i} has {len(col)} rows, expected {n}")
    masks: dict[int, np.ndarray] = {}
    always_null: set[int] = set()
    for i, col in enumerate(columns):
        if not isinstance(col, (bytes, bytearray)) and col.dtype.kind == "f":
            mask = np.isnan(col)
            if mask.any():
                if mask.all():
                    always_null.add(i)  # NULL on every row: no value bytes at all
                else:
                    masks[i] = mask
    fields: list[tuple[str, Any] | tuple[str, Any, tuple[int, ...]]] = [("nf", ">i2")]
    for i, col in enumerate(columns):
        fields.append((f"l{i}", ">i4"))
        if isinstance(col, (bytes, bytearray)):
            fields.append((f"v{i}", "u1", (len(col),)))
        elif i not in always_null:
            fields.append((f"v{i}", col.dtype))
    dtype = np.dtype(fields)
    # One template row holds everything that is the same on every row (field
    # count, lengths, constant values); broadcast it, then fill the arrays in.
    template = np.zeros((), dtype=dtype)
    template["nf"] = len(columns)
    for i, col in enumerate(columns):
        if isinstance(col, (bytes, bytearray)):
            template[f"l{i}"] = len(col)
            template[f"v{i}"] = np.frombuffer(bytes(col), dtype=np.uint8)
        else:
            template[f"l{i}"] = -1 if i in always_null else col.dtype.itemsize
    size = len(COPY_HEADER) + n * dtype.itemsize + len(COPY_TRAILER)
    buf = np.empty(size, dtype=np.uint8)  # the whole stream, written in place
    buf[: len(COPY_HEADER)] = np.frombuffer(COPY_HEADER, dtype=np.uint8)
    buf[size - len(COPY_TRAILER) :] = np.frombuffer(COPY_TRAILER, dtype=np.uint8)
    body = buf[len(COPY_HEADER) : size - len(COPY_TRAILER)]
    # (a byte-wise broadcast: assigning the structured scalar is ~10x slower)
    body.reshape(n, dtype.itemsize)[...] = np.frombuffer(template.tobytes(), dtype=np.uint8)
    rec = body.view(dtype)
    for i, col in enumerate(columns):
        if isinstance(col, (bytes, bytearray)) or i in always_null:
            continue
        rec[f"v{i}"] = col
        if i in masks:
            rec[f"l{i}"][masks[i]] = -1
    if not masks:
        return memoryview(buf.data)
    # NULLs on some rows only: drop the 8 value bytes of every NULL field
    raw = rec.view(np.uint8).reshape(n, dtype.itemsize)
    keep = np.ones(raw.shape, dtype=bool)
    for i, mask in masks.items():
        offset = dtype.fields[f"v{i}"][1]  # type: ignore[index]
        keep[mask, offset : offset + 8] = False
    return memoryview(b"".join((COPY_HEADER, raw[keep].data, COPY_TRAILER)))


def decode_copy(data: bytes, row_dtype: np.dtype) -> np.ndarray:
    """Parse a COPY binary stream whose rows all have the fixed layout ``row_dtype``."""
    if not data:
        return np.empty(0, dtype=row_dtype)
    if data[:11] != COPY_HEADER[:11]:
        raise ValueError("not a PostgreSQL binary COPY stream")
    ext = int.from_bytes(data[15:19], "big")
    start = 19 + ext
    end = len(data) - 2
    if data[end:] != COPY_TRAILER:
        raise ValueError("binary COPY stream without its trailer")
    if (end - start) % row_dtype.itemsize:
        raise ValueError("binary COPY rows do not match the expected layout (a NULL in the data?)")
    return np.frombuffer(data, dtype=row_dtype, count=(end - start) // row_dtype.itemsize, offset=start)


def copy_row_dtype(kinds: Sequence[str]) -> np.dtype:
    """Fixed row layout of a COPY-out of columns of the given wire types."""
    fields: list[tuple[str, str]] = [("nf", ">i2")]
    for i, kind in enumerate(kinds):
        fields += [(f"l{i}", ">i4"), (f"v{i}", kind)]
    return np.dtype(fields)


def wire_type(kind: str) -> str:
    """numpy field type of a batch dtype -> its COPY wire type."""
    return {"i": ">i8", "f": ">f8"}[kind]


async def copy_out(conn: asyncpg.Connection, query: str) -> bytes:
    """The binary COPY stream of ``query`` as one bytes value."""
    chunks: list[bytes] = []

    async def sink(data: bytes) -> None:
        chunks.append(data)

    await conn.copy_from_query(query, output=sink, format="binary")
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def pg_us_datetime(pg_us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=pg_us + PG_EPOCH_US)


def sql_literal(value: str) -> str:
    """A SQL string literal safe under any standard_conforming_strings."""
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def ts_literal(ns: int) -> str:
    return f"'{ns_to_datetime(ns).isoformat()}'::timestamptz"


def pg_us_iso(pg_us: int) -> str:
    return pg_us_datetime(pg_us).isoformat()


def quote_ident(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'
