"""Order book events (L2 level updates, L3 orders) per symbol."""

from __future__ import annotations

import asyncpg
import numpy as np

from ticktape.model.batch import BOOK_EVENT_DTYPE
from ticktape.store.codec import (
    copy_out,
    copy_row_dtype,
    decode_copy,
    encode_copy,
    sql_literal,
    to_pg_us,
    ts_literal,
)

_STAGE_BOOK = "ticktape_stage_book"


async def write_book_events(
    conn: asyncpg.Connection, symbol: str, events: np.ndarray, seq: np.ndarray | int = 0
) -> int:
    """Store book events of one symbol; already stored ``(symbol, ts, seq)`` are skipped.

    ``events``: :data:`BOOK_EVENT_DTYPE`; ``seq`` as in :func:`write_ticks`
    (an int ``s`` numbers the events ``s, s+1, ...``). Returns rows inserted.
    """
    if events.dtype != BOOK_EVENT_DTYPE:
        raise TypeError(f"write_book_events needs BOOK_EVENT_DTYPE, got {events.dtype}")
    n = len(events)
    if n == 0:
        return 0
    if isinstance(seq, (int, np.integer)):
        seq = np.arange(int(seq), int(seq) + n, dtype=np.int64)
    seq = np.asarray(seq)
    if len(seq) != n:
        raise ValueError(f"seq has {len(seq)} values for {n} events")
    columns: list[np.ndarray | bytes] = [
        symbol.encode("utf-8"),
        to_pg_us(events["ts"]).astype(">i8"),
        seq.astype(">i8"),
        events["kind"].astype(">i2"),
        events["side"].astype(">i2"),
        events["price"].astype(">f8"),
        events["size"].astype(">f8"),
        events["order_id"].astype(">i8"),
        events["level"].astype(">i2"),
    ]
    names = ["symbol", "ts", "seq", "kind", "side", "price", "size", "order_id", "level"]
    payload = encode_copy(columns, n)
    async with conn.transaction():
        await conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE_BOOK} (symbol text, ts timestamptz, seq bigint, "
            "kind smallint, side smallint, price float8, size float8, order_id bigint, level smallint) "
            "ON COMMIT DELETE ROWS"
        )
        await conn.execute(f"TRUNCATE {_STAGE_BOOK}")
        await conn.copy_to_table(_STAGE_BOOK, source=payload, columns=names, format="binary")
        status = await conn.execute(
            f"INSERT INTO book_events ({', '.join(names)}) SELECT symbol, ts, seq, kind, "
            "nullif(side, 0), price, size, nullif(order_id, -1), nullif(level, 0) "
            f"FROM {_STAGE_BOOK} ORDER BY ts, seq ON CONFLICT DO NOTHING"
        )
    return int(status.rsplit(" ", 1)[-1])


async def read_book_events(
    conn: asyncpg.Connection, symbol: str, start_ns: int | None = None, end_ns: int | None = None
) -> np.ndarray:
    """A symbol's stored book events in ``[start_ns, end_ns)`` (None: open),
    in ``(ts, seq)`` order, as :data:`BOOK_EVENT_DTYPE` (NULLs as the
    dtype's "not applicable" values: side/level 0, order_id -1, NaN)."""
    where = [f"symbol = {sql_literal(symbol)}"]
    if start_ns is not None:
        where.append(f"ts >= {ts_literal(start_ns)}")
    if end_ns is not None:
        where.append(f"ts < {ts_literal(end_ns)}")
    query = (
        "SELECT ((extract(epoch FROM ts) * 1000000)::int8 * 1000), kind::int8, coalesce(side, 0)::int8, "
        "coalesce(price, 'NaN'::float8), coalesce(size, 'NaN'::float8), coalesce(order_id, -1), "
        f"coalesce(level, 0)::int8 FROM book_events WHERE {' AND '.join(where)} ORDER BY ts, seq"
    )
    raw = decode_copy(
        await copy_out(conn, query), copy_row_dtype([">i8", ">i8", ">i8", ">f8", ">f8", ">i8", ">i8"])
    )
    out = np.empty(len(raw), BOOK_EVENT_DTYPE)
    for k, name in enumerate(BOOK_EVENT_DTYPE.names or ()):
        out[name] = raw[f"v{k}"]
    return out


async def has_book_events(conn: asyncpg.Connection, symbol: str) -> bool:
    """True when the store holds order book events of ``symbol``."""
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM book_events WHERE symbol = $1)", symbol))
