"""Run results (signals, orders, fills, equity, bars), written once per (run, symbol, stream, seq).

:func:`write_results` records ``(run_id, symbol, stream, seq)`` in the
``sink_batches`` ledger and copies the rows in the same transaction; a batch
delivered twice is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence

import asyncpg
import numpy as np

from ticktape.model.batch import DTYPES, FILL_DTYPE
from ticktape.model.spec import UNFINISHED
from ticktape.store.codec import (
    COPY_HEADER,
    COPY_TRAILER,
    copy_row_dtype,
    decode_copy,
    encode_copy,
    quote_ident,
    sql_literal,
    to_pg_us,
    wire_type,
)
from ticktape.store.tickread import Cut

RESULT_STREAMS = ("signals", "orders", "fills", "equity", "bars")
#: The table of each result stream (the stream's name unless listed here;
#: a run's event-time bars are `run_bars`, apart from the market-data bars_* views).
_RESULT_TABLES = {"bars": "run_bars"}


def result_table(stream: str) -> str:
    """The SQL table a result stream is stored in."""
    return _RESULT_TABLES.get(stream, stream)


# --------------------------------------------------------------------------
# results


def _result_columns(stream: str) -> list[tuple[str, str]]:
    """(column, batch field kind) of a result table after run_id, symbol, ts, ts_ns."""
    dtype = DTYPES[stream]
    return [(name, dtype[name].kind) for name in dtype.names if name != "ts"]  # type: ignore[union-attr]


def _wire_column(values: np.ndarray) -> np.ndarray:
    """A batch field as its COPY wire type (i1 -> smallint, i8 -> bigint, f8)."""
    if values.dtype.kind == "f":
        return values.astype(">f8")
    if values.dtype.itemsize <= 2:
        return values.astype(">i2")
    return values.astype(">i8")


async def write_results(
    conn: asyncpg.Connection,
    run_id: str | uuid.UUID,
    symbol: str,
    stream: str,
    seq: int,
    rows: np.ndarray,
) -> bool:
    """Store one result batch exactly once.

    In one transaction: record ``(run_id, symbol, stream, seq)`` in
    ``sink_batches``; if it was already there write nothing and return False,
    else COPY ``rows`` (``DTYPES[stream]``) into the ``stream`` table and
    return True. An empty batch is recorded too.
    """
    return await _write_once(conn, run_id, symbol, stream, seq, {stream: rows})


async def write_result_set(
    conn: asyncpg.Connection,
    run_id: str | uuid.UUID,
    symbol: str,
    seq: int,
    streams: Mapping[str, np.ndarray],
) -> bool:
    """Store all result streams of one batch exactly once, in one transaction.

    Like :func:`write_results`, with one ledger entry (stream ``"results"``)
    for the whole set: the sink's path, one round trip per stream with rows.
    """
    return await _write_once(conn, run_id, symbol, "results", seq, streams)


async def missing_result_sets(
    conn: asyncpg.Connection, run_id: str | uuid.UUID, symbol: str, upto: int
) -> list[int]:
    """Sequence numbers below ``upto`` of ``symbol``'s result sets not stored
    yet, while the run is unfinished (an ended run gets nothing more)."""
    rows = await conn.fetch(
        "SELECT s.seq FROM runs r CROSS JOIN generate_series(0, $3 - 1) AS s(seq)"
        " WHERE r.run_id = $1 AND r.status = ANY($4::text[]) AND NOT EXISTS ("
        "  SELECT 1 FROM sink_batches b WHERE b.run_id = $1 AND b.symbol = $2"
        "  AND b.stream = 'results' AND b.seq = s.seq)"
        " ORDER BY s.seq",
        uuid.UUID(str(run_id)),
        symbol,
        int(upto),
        list(UNFINISHED),
    )
    return [r["seq"] for r in rows]


async def _write_once(
    conn: asyncpg.Connection,
    run_id: str | uuid.UUID,
    symbol: str,
    ledger: str,
    seq: int,
    streams: Mapping[str, np.ndarray],
) -> bool:
    run = uuid.UUID(str(run_id))
    payloads = []
    for stream, rows in streams.items():
        if stream not in RESULT_STREAMS:
            raise ValueError(f"unknown result stream {stream!r}; expected one of {RESULT_STREAMS}")
        if rows.dtype != DTYPES[stream]:
            raise TypeError(f"{stream} rows need dtype {DTYPES[stream]}, got {rows.dtype}")
        if not len(rows):
            continue
        fields = _result_columns(stream)
        columns: list[np.ndarray | bytes] = [
            run.bytes,
            symbol.encode("utf-8"),
            to_pg_us(rows["ts"]).astype(">i8"),
            rows["ts"].astype(">i8"),
            *(_wire_column(rows[name]) for name, _ in fields),
        ]
        payloads.append((stream, [name for name, _ in fields], encode_copy(columns, len(rows))))
    async with conn.transaction():
        fresh = await conn.fetchval(
            "INSERT INTO sink_batches (run_id, symbol, stream, seq) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT DO NOTHING RETURNING true",
            run,
            symbol,
            ledger,
            int(seq),
        )
        if not fresh:
            return False
        for stream, names, payload in payloads:
            await conn.copy_to_table(
                result_table(stream),
                source=payload,
                columns=["run_id", "symbol", "ts", "ts_ns", *names],
                format="binary",
            )
    return True


async def read_results(
    conn: asyncpg.Connection, run_id: str | uuid.UUID, symbol: str, stream: str
) -> np.ndarray:
    """All rows of one result stream of one (run, symbol) as ``DTYPES[stream]``.

    Ordered by ``ts_ns`` then the remaining columns, so the result does not
    depend on the order batches were written in. NULL floats come back NaN.
    """
    if stream not in RESULT_STREAMS:
        raise ValueError(f"unknown result stream {stream!r}; expected one of {RESULT_STREAMS}")
    dtype = DTYPES[stream]
    fields = _result_columns(stream)
    select = ", ".join(
        f"coalesce({quote_ident(name)}, 'NaN'::float8)" if kind == "f" else f"{quote_ident(name)}::int8"
        for name, kind in fields
    )
    order = ", ".join(["ts_ns", *(quote_ident(name) for name, _ in fields)])
    chunks: list[bytes] = []

    async def sink(data: bytes) -> None:
        chunks.append(data)

    query = (
        f"SELECT ts_ns, {select} FROM {result_table(stream)} WHERE run_id = '{uuid.UUID(str(run_id))}'::uuid "
        f"AND symbol = {sql_literal(symbol)} ORDER BY {order}"
    )
    await conn.copy_from_query(query, output=sink, format="binary")
    row_dtype = copy_row_dtype([">i8", *(wire_type(kind) for _, kind in fields)])
    raw = decode_copy(b"".join(chunks), row_dtype)
    out = np.empty(len(raw), dtype=dtype)
    out["ts"] = raw["v0"]
    for i, (name, _) in enumerate(fields, start=1):
        out[name] = raw[f"v{i}"]
    return out


async def stream_fills_and_equity(
    conn: asyncpg.Connection, run_id: str | uuid.UUID, symbols: Sequence[str], rows: int = 1 << 16
) -> AsyncGenerator[tuple[list[np.ndarray], tuple[np.ndarray, ...]], None]:
    """The fills and equity samples of a run's symbols merged in time order, in pieces.

    Yields ``(fills, samples)`` for every ``rows`` rows of the merge (the
    last piece fewer): ``fills[j]`` the piece's fills of the j-th of
    ``sorted(symbols)`` (FILL_DTYPE, in the order of :func:`read_results`),
    ``samples`` = ``(ts, sym, equity, position, price)`` arrays of its
    equity samples (``sym`` indexes ``sorted(symbols)``), ordered by time,
    then symbol, then the remaining columns. At one time the fills come
    before the samples, so a piece's samples never precede a fill of their
    time in a later piece. One COPY whose rows are decoded as they arrive:
    the client holds one piece at a time whatever the run's length.
    """
    order = sorted(symbols)
    if not order:
        return
    index = (
        "(CASE symbol "
        + " ".join(f"WHEN {sql_literal(s)} THEN {j}" for j, s in enumerate(order))
        + " END)::int8"
    )
    where = f"WHERE run_id = '{uuid.UUID(str(run_id))}'::uuid AND symbol IN ({', '.join(sql_literal(s) for s in order)})"

    def num(*cols: str) -> str:
        return ", ".join(f"coalesce({c}, 'NaN'::float8)" for c in cols)

    query = (
        f"SELECT ts_ns, 0::int8 AS kind, {index} AS j, order_id::int8 AS a, side::int8 AS b,"
        f" {num('price', 'qty', 'fee')}, 'NaN'::float8 FROM fills {where} UNION ALL "
        f"SELECT ts_ns, 1::int8, {index}, 0::int8, 0::int8, {num('cash', 'position', 'price', 'equity')}"
        f" FROM equity {where} ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9"
    )
    row_dtype = copy_row_dtype([">i8"] * 5 + [">f8"] * 4)
    queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(maxsize=8)

    async def sink(data: bytes) -> None:  # awaiting here holds the COPY back: bounded memory
        await queue.put(data)

    async def produce() -> None:
        try:
            await conn.copy_from_query(query, output=sink, format="binary")
            await queue.put(None)
        except BaseException as exc:  # handed to the consumer, raised there
            await queue.put(exc)

    task = asyncio.ensure_future(produce())
    rows_in = _CopyRows(row_dtype)
    cut = Cut(rows)
    try:
        while True:
            item = await queue.get()
            if isinstance(item, BaseException):
                raise item
            done = item is None
            pieces = cut.add(rows_in.finish() if item is None else rows_in.feed(item))
            for raw in pieces + cut.rest() if done else pieces:
                yield _fills_and_samples(raw, len(order))
            if done:
                return
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


def _fills_and_samples(raw: np.ndarray, n_symbols: int) -> tuple[list[np.ndarray], tuple[np.ndarray, ...]]:
    """A piece of :func:`stream_fills_and_equity`'s rows split into each
    symbol's fills and the equity samples."""
    is_fill = raw["v1"] == 0
    f, e = raw[is_fill], raw[~is_fill]
    fills = []
    for j in range(n_symbols):
        mine = f[f["v2"] == j]
        out = np.empty(len(mine), FILL_DTYPE)
        for name, col in zip(FILL_DTYPE.names or (), ("v0", "v3", "v4", "v5", "v6", "v7"), strict=True):
            out[name] = mine[col]
        fills.append(out)
    samples = (
        e["v0"].astype(np.int64),
        e["v2"].astype(np.int64),
        *(e[f"v{i}"].astype(np.float64) for i in (8, 6, 7)),
    )
    return fills, samples


class _CopyRows:
    """Incremental parser of a binary COPY stream of fixed-layout rows."""

    def __init__(self, row_dtype: np.dtype) -> None:
        self._dtype = row_dtype
        self._buf = b""
        self._header = False

    def feed(self, data: bytes) -> np.ndarray:
        """The complete rows so far (the rest waits for more data)."""
        buf = self._buf + data
        start = 0
        if not self._header:
            if len(buf) < 19:
                self._buf = buf
                return np.empty(0, self._dtype)
            if buf[:11] != COPY_HEADER[:11]:
                raise ValueError("not a PostgreSQL binary COPY stream")
            start = 19 + int.from_bytes(buf[15:19], "big")
            if len(buf) < start:
                self._buf = buf
                return np.empty(0, self._dtype)
            self._header = True
        n = (len(buf) - start) // self._dtype.itemsize
        end = start + n * self._dtype.itemsize
        self._buf = buf[end:]
        return np.frombuffer(buf, dtype=self._dtype, count=n, offset=start).copy()

    def finish(self) -> np.ndarray:
        """Check the trailer at the end of the stream (an empty result has no header at all)."""
        if self._buf not in (COPY_TRAILER, b""):
            raise ValueError("binary COPY rows do not match the expected layout (a NULL in the data?)")
        return np.empty(0, self._dtype)
