"""Writing ticks: monthly partitions per symbol, staged binary COPY, stored once.

:func:`write_ticks` and :class:`TickWriter` copy batches into a session-local
staging table and insert them with ``ON CONFLICT DO NOTHING``, so re-importing
the same ticks stores nothing new.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import Any

import asyncpg
import numpy as np

from ticktape.model.batch import TICK_DTYPE
from ticktape.store.codec import (
    PG_EPOCH_US,
    copy_out,
    copy_row_dtype,
    decode_copy,
    encode_copy,
    pg_us_iso,
    sql_literal,
    to_pg_us,
)

# --------------------------------------------------------------------------
# ticks


TICK_FLOATS = ("bid", "ask", "bid_size", "ask_size", "last", "last_size")
_STAGE_TICKS = "ticktape_stage_ticks"
TICK_ROW = copy_row_dtype([">i8", ">i8"] + [">f8"] * len(TICK_FLOATS))


def default_tick_seq(ts: np.ndarray) -> np.ndarray:
    """0, 1, 2... among the ticks that share a timestamp (after flooring to µs).

    The default ``seq`` of :func:`write_ticks`, in the ticks' given order. It
    is stable across re-imports as long as ticks sharing a microsecond arrive
    in the same batch and the same order.
    """
    n = len(ts)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    us = np.floor_divide(np.asarray(ts, dtype=np.int64), 1000)
    in_order = bool(np.all(us[1:] >= us[:-1]))
    order = None if in_order else np.argsort(us, kind="stable")  # (time order: no sort needed)
    sorted_us = us if order is None else us[order]
    idx = np.arange(n, dtype=np.int64)
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = sorted_us[1:] != sorted_us[:-1]
    group_start = np.maximum.accumulate(np.where(new_group, idx, 0))
    if order is None:
        return idx - group_start
    out = np.empty(n, dtype=np.int64)
    out[order] = idx - group_start
    return out


async def write_ticks(
    conn: asyncpg.Connection,
    symbol: str,
    ticks: np.ndarray,
    seq: np.ndarray | int | None = None,
) -> int:
    """Store ticks of one symbol; already stored ``(symbol, ts, seq)`` are skipped.

    Parameters
    ----------
    ticks
        ``TICK_DTYPE`` array. ``ts`` is floored to microseconds; NaN fields
        are stored as NULL.
    seq
        int64 per tick, the tie-breaker of ticks with the same timestamp (e.g.
        the tick's index in its source file); an int ``s`` means
        ``s, s+1, ...`` (the running index of the first tick of the batch).
        Default: :func:`default_tick_seq`. ``(symbol, ts, seq)`` must be unique.

    Returns
    -------
    int
        Rows inserted (0 when the batch was stored before).

    Notes
    -----
    One transaction. The ``(ts, seq)`` keys already stored for ``symbol`` in
    the batch's time range are read first (one index range scan, binary
    COPY; nothing on a fresh import) and the batch's keys compared with them
    in numpy: only the new ticks are COPYed, straight into ``ticks``, and a
    batch stored before writes nothing. If that COPY still meets a duplicate
    (another writer got there in between, or ``seq`` repeats inside the
    batch), or the range holds more than ``max(4 n, 100,000)`` stored ticks,
    the ticks go through a temporary staging table and ``INSERT ... ON
    CONFLICT DO NOTHING`` instead (about twice the server time per tick).

    On plain PostgreSQL ``ticks`` is partitioned by symbol and month
    (dbschema/0030); the partitions the batch needs are created first (an
    empty table, attached). For long imports :class:`TickWriter` is faster:
    it loads months not stored yet without maintaining the key row by row.
    """
    columns, pg_ts, seq = _tick_columns(symbol, ticks, seq, "write_ticks")
    n = len(pg_ts)
    if n == 0:
        return 0
    names = _TICK_NAMES
    lo, hi = int(pg_ts.min()), int(pg_ts.max())
    nested = conn.is_in_transaction()
    async with conn.transaction():
        months = _months(pg_ts)
        partitioned = await _ensure_tick_partitions(conn, symbol, months)
        stored = await _stored_tick_keys(conn, symbol, lo, hi, limit=max(4 * n, 100_000))
        if stored is not None:
            if len(stored):
                fresh = ~_stored_mask(pg_ts, seq, stored["v0"], stored["v1"])
                k = int(np.count_nonzero(fresh))
                if k == 0:
                    return 0
                if k < n:
                    columns = [c if isinstance(c, bytes) else c[fresh] for c in columns]
                    n = k
            # a memoryview: a bytes source would be taken for a path
            payload = encode_copy(columns, n)
            if partitioned:
                await _unlist_key_order(conn, symbol, months)
            try:
                async with conn.transaction():  # savepoint: a duplicate falls back below
                    status = await conn.copy_to_table("ticks", source=payload, columns=names, format="binary")
                return int(status.rsplit(" ", 1)[-1])
            except asyncpg.UniqueViolationError:
                pass
        else:
            payload = encode_copy(columns, n)
        await conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE_TICKS} ("
            "symbol text, ts timestamptz, seq bigint, bid float8, ask float8, bid_size float8, "
            "ask_size float8, last float8, last_size float8) ON COMMIT DELETE ROWS"
        )
        if nested:  # ON COMMIT has not emptied it if an outer transaction is open
            await conn.execute(f"TRUNCATE {_STAGE_TICKS}")
        if partitioned:
            await _unlist_key_order(conn, symbol, months)
        await conn.copy_to_table(_STAGE_TICKS, source=payload, columns=names, format="binary")
        status = await conn.execute(
            f"INSERT INTO ticks ({', '.join(names)}) SELECT {', '.join(names)} FROM {_STAGE_TICKS} "
            "ORDER BY ts, seq ON CONFLICT DO NOTHING"
        )
    return int(status.rsplit(" ", 1)[-1])


_TICK_NAMES = ["symbol", "ts", "seq", *TICK_FLOATS]


def _tick_columns(
    symbol: str, ticks: np.ndarray, seq: np.ndarray | int | None, caller: str
) -> tuple[list[np.ndarray | bytes], np.ndarray, np.ndarray]:
    """COPY columns of ``_TICK_NAMES`` for a batch, its pg µs times and int64 seq."""
    if ticks.dtype != TICK_DTYPE:
        raise TypeError(f"{caller} needs TICK_DTYPE, got {ticks.dtype}")
    n = len(ticks)
    if seq is None:
        seq = default_tick_seq(ticks["ts"])
    elif isinstance(seq, (int, np.integer)):
        seq = np.arange(int(seq), int(seq) + n, dtype=np.int64)
    else:
        seq = np.asarray(seq)
    if len(seq) != n:
        raise ValueError(f"seq has {len(seq)} values for {n} ticks")
    pg_ts = to_pg_us(ticks["ts"])
    seq = seq.astype(np.int64, copy=False)
    columns: list[np.ndarray | bytes] = [
        symbol.encode("utf-8"),
        pg_ts.astype(">i8"),
        seq.astype(">i8"),
        *(ticks[name].astype(">f8") for name in TICK_FLOATS),
    ]
    return columns, pg_ts, seq


def _months(pg_us: np.ndarray) -> np.ndarray:
    """The UTC month (``datetime64[M]``) of each pg µs time."""
    return (np.asarray(pg_us, dtype=np.int64) + PG_EPOCH_US).astype("datetime64[us]").astype("datetime64[M]")


def tick_partition(symbol: str, month: np.datetime64) -> str:
    """Name of the ``ticks`` partition of ``symbol`` and a UTC month (plain PostgreSQL).

    The same as SQL ``ticktape_tick_partition(symbol, month)`` of
    dbschema/0030_ticks_partitions.sql.

    Examples
    --------
    >>> tick_partition("EURUSD", np.datetime64("2024-01"))
    'ticks_202401_96e913ac4a6a'
    """
    ym = str(month.astype("datetime64[M]")).replace("-", "")
    return f"ticks_{ym}_{hashlib.md5(symbol.encode('utf-8')).hexdigest()[:12]}"


def _month_range(symbol: str, month: np.datetime64) -> tuple[str, str, str]:
    """SQL literals of ``symbol`` and of the start and end of ``month``."""
    lo = month.astype("datetime64[M]")
    a, b = (f"'{np.datetime_as_string(m.astype('datetime64[s]'))}+00'::timestamptz" for m in (lo, lo + 1))
    return sql_literal(symbol), a, b


def _month_bounds(symbol: str, month: np.datetime64) -> str:
    """``FOR VALUES`` of the partition of ``symbol`` and ``month``."""
    sym, a, b = _month_range(symbol, month)
    return f"FOR VALUES FROM ({sym}, {a}) TO ({sym}, {b})"


#: Name of the CHECK a bulk-loaded month has until it is attached (TickWriter).
_MONTH_CHECK = "ticktape_month_bounds"


def _month_check(symbol: str, month: np.datetime64) -> str:
    """A CHECK constraint that holds exactly the rows :func:`_month_bounds` admits."""
    sym, a, b = _month_range(symbol, month)
    return f"CONSTRAINT {_MONTH_CHECK} CHECK (symbol = {sym} AND ts >= {a} AND ts < {b})"


async def _ticks_partitioned(conn: asyncpg.Connection) -> bool:
    """True when ``ticks`` is partitioned by (symbol, ts) (plain PostgreSQL after 0030)."""
    return bool(await conn.fetchval("SELECT relkind = 'p' FROM pg_class WHERE oid = 'ticks'::regclass"))


#: What CREATE TABLE of a partition raises when another transaction created
#: it first (and has committed since): the name; its row type, when the
#: other committed between the name's check and the type's creation ('type
#: "ticks_..." already exists', seen once in a full test run); or, when both
#: were creating it at once, the unique index of that type in pg_type.
_CREATED_MEANWHILE = (asyncpg.DuplicateTableError, asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError)


async def _unlist_key_order(conn: asyncpg.Connection, symbol: str, months: np.ndarray) -> None:
    """Take the ``ticks`` partitions of ``symbol`` for ``months`` out of
    ``ticks_key_order`` (dbschema/0032) before rows are written into them
    (inside the writing transaction): where the new rows land on disk is not
    known. Their row trigger, which would do the same for every row, is
    disabled (``SHARE ROW EXCLUSIVE`` on the partition: readers go on)."""
    await unlist_tables(conn, [name for name, _ in _partitions(symbol, months)])


async def unlist_tables(conn: asyncpg.Connection, names: list[str]) -> None:
    """Take the partitions ``names`` out of ``ticks_key_order`` and disable
    their triggers (also those of a partition a trigger unlisted already:
    they would keep firing on every row written)."""
    enabled = await conn.fetch(
        "WITH parts AS (SELECT to_regclass(n) AS oid FROM unnest($1::text[]) n), "
        "gone AS (DELETE FROM ticks_key_order WHERE partition IN (SELECT oid FROM parts)) "
        "SELECT tgrelid::regclass::text AS name, tgname FROM pg_trigger "
        "WHERE tgrelid IN (SELECT oid FROM parts) AND tgenabled <> 'D' "
        "AND tgname IN ('ticks_key_order_lost', 'ticks_key_order_truncated')",
        names,
    )
    for row in enabled:
        await conn.execute(f"ALTER TABLE {row['name']} DISABLE TRIGGER {row['tgname']}")


def _partitions(symbol: str, months: np.ndarray) -> list[tuple[str, np.datetime64]]:
    """``(partition name, month)`` of each distinct month in ``months``."""
    uniq = months[:1] if (months == months[0]).all() else np.unique(months)
    return [(tick_partition(symbol, m), m) for m in uniq]


async def _ensure_tick_partitions(conn: asyncpg.Connection, symbol: str, months: np.ndarray) -> bool:
    """Create the missing ``ticks`` partitions of ``symbol`` for ``months`` (inside a transaction).

    Each is an empty table attached to ``ticks`` (``ATTACH PARTITION`` takes
    SHARE UPDATE EXCLUSIVE on ``ticks``; ``CREATE TABLE ... PARTITION OF``
    would take ACCESS EXCLUSIVE and wait for every reader). A partition
    another writer is creating at the same time makes ``CREATE TABLE`` wait
    for that writer's commit and fail: it exists then, and is used. All
    tables are created before any is attached, so a writer never waits for
    a name while holding the lock on ``ticks``. Returns whether ``ticks`` is
    partitioned.
    """
    if not len(months):
        return await _ticks_partitioned(conn)
    parts = _partitions(symbol, months)
    names = [name for name, _ in parts]
    row = await conn.fetchrow(
        "SELECT (SELECT relkind = 'p' FROM pg_class WHERE oid = 'ticks'::regclass) AS partitioned, "
        "array(SELECT n FROM unnest($1::text[]) n WHERE to_regclass(n) IS NULL) AS missing",
        names,
    )
    if not row["partitioned"] or not row["missing"]:
        return bool(row["partitioned"])
    missing = set(row["missing"])
    created = []
    for name, month in parts:
        if name not in missing:
            continue
        try:
            async with conn.transaction():
                await conn.execute(f"CREATE TABLE {name} (LIKE ticks INCLUDING DEFAULTS)")
        except _CREATED_MEANWHILE:
            continue  # created (and attached) by another writer meanwhile
        created.append((name, month))
    for name, month in created:
        await conn.execute(f"ALTER TABLE ticks ATTACH PARTITION {name} {_month_bounds(symbol, month)}")
    return True


class TickWriter:
    """Write a long stream of ticks, loading months not stored yet in bulk.

    Use it for imports (``import_to_store`` does); :func:`write_ticks` is
    the one-batch form. Same guarantees: ``(symbol, ts, seq)`` already
    stored are skipped, so a re-import stores nothing new.

    Parameters
    ----------
    conn
        The connection to write on (not inside a transaction, for the bulk
        path).
    second
        Another connection to the same database: when the stream moves on
        to a new month, the finished month's key is built and attached on
        one connection while the new month is loaded on the other.
    atomic
        ``conn`` is inside the caller's transaction, which holds the whole
        stream: months not stored yet are still loaded in bulk, each in a
        savepoint, and nothing is stored until the caller commits (a strict
        import). Without it, a caller's transaction means batch by batch.

    Examples
    --------
    ``async with TickWriter(conn) as w: await w.write("EURUSD", ticks, seq)``,
    then ``w.stored`` is the number of rows inserted.

    Notes
    -----
    On plain PostgreSQL ``ticks`` has one partition per (symbol, UTC month)
    (dbschema/0030). When a batch starts a month of a symbol that has no
    partition yet, the writer opens a transaction, creates the partition as
    a plain table without any index and COPYs (``FREEZE``) this and the
    following batches of that month into it; when the stream leaves the
    month (another month or symbol, or the end) it builds the primary key in
    one sort, attaches the table to ``ticks`` and commits. (A CHECK of the
    month's bounds, made with the empty table and dropped once it is
    attached, spares ``ATTACH PARTITION`` a scan of every row.) Nobody else can
    have stored ticks of a month without its partition, so nothing has to
    be compared with the store; keys repeated inside the stream are dropped
    before the key is built (the first one is kept, as ``ON CONFLICT DO
    NOTHING`` would). A month that exists already is written batch by batch
    with :func:`write_ticks`. The ticks of an open month become visible when
    it is attached; if the writer fails or is left by an exception, the open
    month is rolled back (import again: it stores exactly what is missing).
    A month whose rows came in strictly increasing ``(ts, seq)`` order is
    stored in that order on disk: it is listed in ``ticks_key_order``
    (dbschema/0032) and :func:`read_ticks` reads it by ranges of blocks.

    Into an open month, :meth:`write` returns once its COPY is sent, not
    when the server has stored it: the next batch is prepared (in a worker
    thread) while the server ingests this one, and an error of that COPY is
    raised by the next call (:meth:`write`, :meth:`close`). Don't use the
    connections for anything else until :meth:`close`.

    On TimescaleDB (``ticks`` is a hypertable) the unit is a chunk of
    ``ticks`` (a time range of every symbol, 1 day by default) instead of a
    month of one symbol: the ticks of a range that no chunk covers yet go
    by COPY (``FREEZE``) into a new table without any index, kept open
    across symbols (a day of several symbols imported one after the other
    is still one load), at most :data:`OPEN_CHUNKS` at a time; when the
    writer closes (or has that many open) it builds each table's primary
    key in one sort, attaches it as a chunk (``attach_chunk``, TimescaleDB
    2.21+: the table's key becomes the chunk's primary key), rewrites
    its first and last row in place so that the continuous aggregates
    (``bars_*``) log its range as changed, and commits them all at once.
    A range some chunk covers already is written batch by batch with
    :func:`write_ticks`, inside the same transaction. ``second`` is not
    used there.

    Inside a caller's transaction (unless ``atomic``) every batch goes
    through :func:`write_ticks`.
    """

    def __init__(
        self, conn: asyncpg.Connection, *, second: asyncpg.Connection | None = None, atomic: bool = False
    ) -> None:
        if atomic and second is not None:
            raise ValueError("TickWriter: atomic writes are on one connection (no second)")
        self.conn = conn
        self.atomic = atomic
        self.stored = 0
        self.bulk_rows = 0  #: rows loaded through bulk months (included in ``stored``)
        self._conns = [conn] if second is None else [conn, second]
        self._bulk: bool | None = None
        self._chunk_us: int | None = None  # TimescaleDB: the time interval of a chunk of `ticks`
        self._chunks: dict[int, _OpenChunk] = {}  # TimescaleDB: chunks being loaded, by start
        self._chunk_tx: Any = None  # ... and the transaction that holds them
        self._open: _OpenMonth | None = None
        self._inflight: asyncio.Future[Any] | None = None  # the COPY into the open month
        self._finishing: asyncio.Future[None] | None = None  # a month's key and attach, on _conns[1]

    async def __aenter__(self) -> TickWriter:
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            await self.close()
        else:
            await self.abort()

    async def write(self, symbol: str, ticks: np.ndarray, seq: np.ndarray | int | None = None) -> None:
        """Store ``ticks`` of ``symbol`` (``seq`` as in :func:`write_ticks`)."""
        if self._bulk is None:
            free = self.atomic or not self.conn.is_in_transaction()
            self._chunk_us = await bulk_chunk_interval(self.conn) if free else None
            self._bulk = free and self._chunk_us is None and await _ticks_partitioned(self.conn)
        if self._chunk_us is not None:
            await self._write_chunks(symbol, ticks, seq)
            return
        if not self._bulk:
            added = await write_ticks(self.conn, symbol, ticks, seq)
            self.stored += added  # (not `+= await`: a month finishing meanwhile adds to it too)
            return
        # (in a thread: the event loop keeps sending the COPY in flight meanwhile)
        columns, pg_ts, seq_ = await asyncio.to_thread(_tick_columns, symbol, ticks, seq, "TickWriter.write")
        if not len(pg_ts):
            return
        months = _months(pg_ts)
        if months[0] == months[-1] and (months[0] == months).all():
            parts = [(months[0], None)]
        else:
            parts = [(m, months == m) for m in np.unique(months)]
        for month, mask in parts:
            cols = columns if mask is None else [c if isinstance(c, bytes) else c[mask] for c in columns]
            part_ticks = ticks if mask is None else ticks[mask]
            part_seq = seq_ if mask is None else seq_[mask]
            part_ts = pg_ts if mask is None else pg_ts[mask]
            await self._write_month(symbol, month, cols, part_ticks, part_seq, part_ts)

    async def _write_month(
        self,
        symbol: str,
        month: np.datetime64,
        columns: list[np.ndarray | bytes],
        ticks: np.ndarray,
        seq: np.ndarray,
        pg_ts: np.ndarray,
    ) -> None:
        n = len(ticks)
        if self._open is not None and self._open.symbol == symbol and self._open.month == month:
            self._open.follow(pg_ts, seq, ticks)
            await self._copy(columns, n)
            return
        await self._leave_month()
        conn = self._conns[0]
        name = tick_partition(symbol, month)
        if not await conn.fetchval("SELECT to_regclass($1) IS NULL", name):
            added = await write_ticks(conn, symbol, ticks, seq)
            self.stored += added  # (not `+= await`: a month finishing meanwhile adds to it too)
            return
        tx = conn.transaction()
        await tx.start()
        try:
            # (the symbol is the column's default while loading: not sent nor parsed row by row;
            # the CHECK spares ATTACH PARTITION its scan of every row: it proves the bounds)
            await conn.execute(
                f"CREATE TABLE {name} (LIKE ticks INCLUDING DEFAULTS, {_month_check(symbol, month)}); "
                f"ALTER TABLE {name} ALTER COLUMN symbol SET DEFAULT {sql_literal(symbol)}"
            )
        except _CREATED_MEANWHILE:  # another writer made it meanwhile: it is there now
            await tx.rollback()
            added = await write_ticks(conn, symbol, ticks, seq)
            self.stored += added  # (not `+= await`: a month finishing meanwhile adds to it too)
            return
        except BaseException:
            await tx.rollback()
            raise
        self._open = _OpenMonth(symbol, month, name, tx, conn)
        self._open.follow(pg_ts, seq, ticks)
        await self._copy(columns, n)

    async def _copy(self, columns: list[np.ndarray | bytes], n: int) -> None:
        assert self._open is not None
        try:
            payload = await asyncio.to_thread(encode_copy, columns[1:], n)  # (symbol: the default)
            await self._drain()
            self._inflight = asyncio.ensure_future(
                self._open.conn.copy_to_table(
                    self._open.table, source=payload, columns=_TICK_NAMES[1:], format="binary", freeze=True
                )
            )
        except BaseException:
            await self.abort()
            raise
        self._open.rows += n

    async def _write_chunks(self, symbol: str, ticks: np.ndarray, seq: np.ndarray | int | None) -> None:
        """TimescaleDB: load the ticks of chunks that do not exist yet into
        new tables (attached by :meth:`_finish_chunks`), the rest with
        :func:`write_ticks`."""
        assert self._chunk_us is not None
        columns, pg_ts, seq_ = await asyncio.to_thread(_tick_columns, symbol, ticks, seq, "TickWriter.write")
        if not len(pg_ts):
            return
        step = self._chunk_us
        starts = (pg_ts + PG_EPOCH_US) // step * step
        if starts[0] == starts[-1] and (starts == starts[0]).all():
            parts: list[tuple[int, np.ndarray | None]] = [(int(starts[0]), None)]
        else:
            parts = [(int(lo), starts == lo) for lo in np.unique(starts)]
        for lo, mask in parts:
            cols = columns if mask is None else [c if isinstance(c, bytes) else c[mask] for c in columns]
            part_seq = seq_ if mask is None else seq_[mask]
            part_ts = pg_ts if mask is None else pg_ts[mask]
            chunk = self._chunks.get(lo)
            if chunk is None:
                chunk = await self._open_chunk(lo, lo + step)
            if chunk is None:  # a chunk of `ticks` holds this range already
                await self._drain()
                added = await write_ticks(self.conn, symbol, ticks if mask is None else ticks[mask], part_seq)
                self.stored += added
                continue
            chunk.follow(symbol, part_ts, part_seq)
            try:
                payload = await asyncio.to_thread(encode_copy, cols, len(part_ts))
                await self._drain()
                self._inflight = asyncio.ensure_future(
                    self.conn.copy_to_table(
                        chunk.table, source=payload, columns=_TICK_NAMES, format="binary", freeze=True
                    )
                )
            except BaseException:
                await self.abort()
                raise
            chunk.rows += len(part_ts)

    async def _open_chunk(self, lo: int, hi: int) -> _OpenChunk | None:
        """A new table for the chunk ``[lo, hi)`` (Unix µs) of ``ticks``, or
        None when a chunk of ``ticks`` overlaps that range already."""
        conn = self.conn
        await self._drain()
        if len(self._chunks) >= OPEN_CHUNKS:
            await self._finish_chunks()
        a, b = (f"'{pg_us_iso(t - PG_EPOCH_US)}'::timestamptz" for t in (lo, hi))
        if await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM timescaledb_information.chunks WHERE hypertable_name = 'ticks' "
            f"AND range_start < {b} AND range_end > {a})"
        ):
            return None
        if self._chunk_tx is None:
            self._chunk_tx = conn.transaction()
            await self._chunk_tx.start()
        name = f"ticks_chunk_{np.datetime64(lo, 'us').astype('datetime64[s]').astype(str).translate(_DIGITS)}"
        try:
            async with conn.transaction():
                await conn.execute(f"CREATE TABLE {name} (LIKE ticks INCLUDING DEFAULTS)")
        except _CREATED_MEANWHILE:  # another writer is loading it: its rows, by the key
            return None
        except BaseException:
            await self.abort()
            raise
        chunk = self._chunks[lo] = _OpenChunk(name, a, b)
        return chunk

    async def _finish_chunks(self) -> None:
        """Build the key of each open chunk table, attach it to ``ticks``
        (TimescaleDB's ``attach_chunk``), log the range for the continuous
        aggregates, commit."""
        await self._drain()
        chunks, self._chunks = self._chunks, {}
        tx, self._chunk_tx = self._chunk_tx, None
        if tx is None:
            return
        conn = self.conn
        try:
            rows = 0
            for chunk in chunks.values():
                if chunk.repeats:  # a key repeated in the stream: keep its first row
                    status = await conn.execute(
                        f"DELETE FROM {chunk.table} WHERE ctid IN (SELECT ctid FROM (SELECT ctid, "
                        "row_number() OVER (PARTITION BY symbol, ts, seq ORDER BY ctid) AS k "
                        f"FROM {chunk.table}) d WHERE k > 1)"
                    )
                    chunk.rows -= int(status.rsplit(" ", 1)[-1])
                await conn.execute(f"ALTER TABLE {chunk.table} ADD PRIMARY KEY (symbol, ts, seq)")
                await conn.execute(
                    f"CALL attach_chunk('ticks', '{chunk.table}', "
                    f"jsonb_build_object('ts', jsonb_build_array({chunk.lo}, {chunk.hi})))"
                )
                # attaching logs nothing for the continuous aggregates (bars_*): rewriting
                # the first and the last row does, for the range between them
                if chunk.edges:
                    keys = ", ".join(
                        f"({sql_literal(sym)}, '{pg_us_iso(ts)}'::timestamptz, {sq})"
                        for ts, sym, sq in chunk.edges
                    )
                    await conn.execute(f"UPDATE ticks SET seq = seq WHERE (symbol, ts, seq) IN ({keys})")
                rows += chunk.rows
            await tx.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                await tx.rollback()
            raise
        self.stored += rows
        self.bulk_rows += rows

    async def _drain(self) -> None:
        """Wait for the COPY in flight; raise its error."""
        task, self._inflight = self._inflight, None
        if task is not None:
            await task

    async def _leave_month(self) -> None:
        """Finish the open month: at once with one connection; with two, in
        the background on its connection while the other one takes over."""
        if self._open is None:
            return
        try:
            await self._drain()
        except BaseException:
            await self.abort()
            raise
        month, self._open = self._open, None
        if len(self._conns) == 1:
            await self._finish(month)
            return
        previous, self._finishing = self._finishing, asyncio.ensure_future(self._finish(month))
        self._conns.reverse()  # the next month goes on the other connection
        if previous is not None:
            await previous  # (that connection is free once its month is attached)

    async def _finish(self, month: _OpenMonth) -> None:
        """Build the month's key, attach it to ``ticks``, commit."""
        conn = month.conn
        try:
            try:
                async with conn.transaction():
                    await conn.execute(f"ALTER TABLE {month.table} ADD PRIMARY KEY (symbol, ts, seq)")
            except asyncpg.UniqueViolationError:  # a key repeated in the stream: keep its first row
                status = await conn.execute(
                    f"DELETE FROM {month.table} WHERE ctid IN (SELECT ctid FROM (SELECT ctid, row_number() "
                    f"OVER (PARTITION BY ts, seq ORDER BY ctid) AS k FROM {month.table}) d WHERE k > 1)"
                )
                month.rows -= int(status.rsplit(" ", 1)[-1])
                await conn.execute(f"ALTER TABLE {month.table} ADD PRIMARY KEY (symbol, ts, seq)")
            await conn.execute(f"ALTER TABLE {month.table} ALTER COLUMN symbol DROP DEFAULT")
            if month.in_order:  # (so no repeated key) stored in key order: readable by blocks (0032)
                await conn.execute(
                    f"CREATE TRIGGER ticks_key_order_lost AFTER INSERT OR UPDATE OR DELETE ON {month.table} "
                    "FOR EACH ROW EXECUTE FUNCTION ticktape_ticks_key_order_lost(); "
                    f"CREATE TRIGGER ticks_key_order_truncated AFTER TRUNCATE ON {month.table} "
                    "FOR EACH STATEMENT EXECUTE FUNCTION ticktape_ticks_key_order_lost(); "
                    "INSERT INTO ticks_key_order (partition, ts_unique, null_columns, rows) "
                    f"VALUES ('{month.table}'::regclass, {month.ts_unique}, "
                    f"ARRAY[{', '.join(sql_literal(c) for c in month.null_columns())}]::text[], {int(month.rows)})"
                )
            await conn.execute(
                f"ALTER TABLE ticks ATTACH PARTITION {month.table} {_month_bounds(month.symbol, month.month)}; "
                f"ALTER TABLE {month.table} DROP CONSTRAINT {_MONTH_CHECK}"
            )
            await month.tx.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                await month.tx.rollback()
            raise
        self.stored += month.rows
        self.bulk_rows += month.rows

    async def close(self) -> None:
        """Finish the open month (build its key, attach it, commit) and any
        month still being finished on the other connection."""
        try:
            await self._finish_chunks()
            await self._leave_month()
        finally:
            task, self._finishing = self._finishing, None
            if task is not None:
                await task

    async def abort(self) -> None:
        """Roll the open month back (nothing of it is stored); a month being
        finished on the other connection is finished."""
        task, self._inflight = self._inflight, None
        if task is not None:
            if not task.done():
                task.cancel()
            with contextlib.suppress(BaseException):
                await task
        month, self._open = self._open, None
        if month is not None:
            with contextlib.suppress(Exception):
                await month.tx.rollback()
        tx, self._chunk_tx, self._chunks = self._chunk_tx, None, {}
        if tx is not None:
            with contextlib.suppress(Exception):
                await tx.rollback()
        task, self._finishing = self._finishing, None
        if task is not None:
            with contextlib.suppress(Exception):
                await task


class _OpenMonth:
    """A month partition being bulk-loaded by a :class:`TickWriter`."""

    def __init__(
        self, symbol: str, month: np.datetime64, table: str, tx: Any, conn: asyncpg.Connection
    ) -> None:
        self.symbol, self.month, self.table, self.tx, self.conn = symbol, month, table, tx, conn
        self.rows = 0
        self.in_order = True  #: every key so far came after the one before it
        self.ts_unique = True  #: every time so far came after the one before it
        self._valued: set[str] = set()  # float columns with a value on some row so far
        self._last: tuple[int, int] | None = None  # (pg µs, seq) of the last row so far

    def follow(self, pg_ts: np.ndarray, seq: np.ndarray, ticks: np.ndarray) -> None:
        """Note the next rows loaded (in the order they are loaded): their
        keys, and which float columns have values."""
        if not self.in_order or not len(pg_ts):
            return
        if self._last is not None and (int(pg_ts[0]), int(seq[0])) <= self._last:
            self.in_order = False
            return
        if self._last is not None and int(pg_ts[0]) == self._last[0]:
            self.ts_unique = False
        if len(pg_ts) > 1:
            step = np.diff(pg_ts)
            ties = step == 0
            self.in_order = not ((step < 0).any() or (ties & (np.diff(seq) <= 0)).any())
            self.ts_unique = self.ts_unique and not ties.any()
        for name in TICK_FLOATS:
            if name not in self._valued and not np.isnan(ticks[name]).all():
                self._valued.add(name)
        self._last = (int(pg_ts[-1]), int(seq[-1]))

    def null_columns(self) -> list[str]:
        """The float columns NULL on every row loaded."""
        return [name for name in TICK_FLOATS if name not in self._valued]


#: The most chunk tables a :class:`TickWriter` loads before attaching them
#: (TimescaleDB): each holds locks until the writer commits.
OPEN_CHUNKS = 8

_DIGITS = str.maketrans("", "", "-:T")


async def bulk_chunk_interval(conn: asyncpg.Connection) -> int | None:
    """The time interval (µs) of the chunks of the ``ticks`` hypertable when
    :class:`TickWriter` can load whole chunks into it: TimescaleDB with
    ``attach_chunk`` (2.21+), ``ticks`` partitioned by ``ts`` alone in a
    fixed interval, and owned by the current role (attaching a chunk takes
    the owner). None otherwise (plain PostgreSQL among them)."""
    if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"):
        return None
    row = await conn.fetchrow(
        "SELECT to_regprocedure('attach_chunk(regclass, regclass, jsonb)') IS NOT NULL AS attach, "
        "pg_has_role((SELECT relowner FROM pg_class WHERE oid = 'ticks'::regclass), 'USAGE') AS owner, "
        "array(SELECT (extract(epoch FROM time_interval) * 1000000)::bigint "
        "FROM timescaledb_information.dimensions WHERE hypertable_name = 'ticks') AS steps"
    )
    steps = list(row["steps"])
    if not (row["attach"] and row["owner"]) or len(steps) != 1 or not steps[0]:
        return None
    return int(steps[0])


class _OpenChunk:
    """A chunk of the ``ticks`` hypertable being loaded by a :class:`TickWriter` (TimescaleDB)."""

    def __init__(self, table: str, lo: str, hi: str) -> None:
        self.table, self.lo, self.hi = table, lo, hi  # (lo, hi: timestamptz literals)
        self.rows = 0
        self.repeats = False  #: some symbol's keys did not come in increasing order: one may repeat
        self._last: dict[str, tuple[int, int]] = {}  # symbol -> its last (pg µs, seq) so far
        self._first: tuple[int, str, int] | None = None  # (pg µs, symbol, seq) of the earliest row
        self._final: tuple[int, str, int] | None = None  # ... and of the latest

    @property
    def edges(self) -> list[tuple[int, str, int]]:
        """Keys ``(pg µs, symbol, seq)`` of the earliest and the latest row loaded."""
        return [e for e in dict.fromkeys((self._first, self._final)) if e is not None]

    def follow(self, symbol: str, pg_ts: np.ndarray, seq: np.ndarray) -> None:
        """Note the next rows of ``symbol`` loaded, in the order they are loaded."""
        n = len(pg_ts)
        if not n:
            return
        last = self._last.get(symbol)
        if not self.repeats:
            if last is not None and (int(pg_ts[0]), int(seq[0])) <= last:
                self.repeats = True
            elif n > 1:
                step = np.diff(pg_ts)
                self.repeats = bool((step < 0).any() or ((step == 0) & (np.diff(seq) <= 0)).any())
        self._last[symbol] = (int(pg_ts[-1]), int(seq[-1]))
        i, j = int(np.argmin(pg_ts)), int(np.argmax(pg_ts))
        lo, hi = (int(pg_ts[i]), symbol, int(seq[i])), (int(pg_ts[j]), symbol, int(seq[j]))
        if self._first is None or lo[0] < self._first[0]:
            self._first = lo
        if self._final is None or hi[0] > self._final[0]:
            self._final = hi


async def delete_ticks(conn: asyncpg.Connection, symbol: str) -> int:
    """Remove every stored tick of ``symbol``; returns how many there were.

    On plain PostgreSQL the symbol's partitions are dropped (so a later
    import of those months is a bulk load again); elsewhere the rows are
    deleted.
    """
    async with conn.transaction():
        n = int(await conn.fetchval("SELECT count(*) FROM ticks WHERE symbol = $1", symbol))
        if await _ticks_partitioned(conn):
            parts = await conn.fetch(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'ticks'::regclass AND right(c.relname, 13) = $1",
                "_" + hashlib.md5(symbol.encode("utf-8")).hexdigest()[:12],
            )
            for part in parts:
                await conn.execute(
                    f"DELETE FROM ticks_key_order WHERE partition = '{part['relname']}'::regclass; "
                    f"DROP TABLE {part['relname']}"
                )
        else:
            await conn.execute("DELETE FROM ticks WHERE symbol = $1", symbol)
    return n


KEY_ROW = copy_row_dtype([">i8", ">i8"])


async def _stored_tick_keys(
    conn: asyncpg.Connection, symbol: str, lo: int, hi: int, limit: int
) -> np.ndarray | None:
    """``(ts, seq)`` (fields ``v0``, ``v1``; pg µs) of the stored ticks of
    ``symbol`` with ``lo <= ts <= hi``; None when there are more than ``limit``."""
    # Literal bounds, not parameters: after five executions a prepared
    # statement may switch to a generic plan, which on TimescaleDB cannot
    # exclude chunks at plan time and locks every chunk of `ticks` (with
    # thousands of chunks: "out of shared memory").
    data = await copy_out(
        conn,
        f"SELECT ts, seq FROM ticks WHERE symbol = {sql_literal(symbol)} "
        f"AND ts BETWEEN '{pg_us_iso(lo)}'::timestamptz AND '{pg_us_iso(hi)}'::timestamptz "
        f"LIMIT {int(limit) + 1}",
    )
    keys = decode_copy(data, KEY_ROW)
    return None if len(keys) > limit else keys


def _stored_mask(
    ts: np.ndarray, seq: np.ndarray, stored_ts: np.ndarray, stored_seq: np.ndarray
) -> np.ndarray:
    """True where ``(ts[i], seq[i])`` is one of the (unique) stored keys.

    One lexicographic sort of both key sets, stored keys first among equals:
    a tick is stored when the key just before it in that order is a stored
    one equal to it. (A key repeated inside the batch is marked once at most;
    the store's unique index then rejects the repeat.)
    """
    m = len(stored_ts)
    all_ts = np.concatenate([stored_ts.astype(np.int64), ts])
    all_seq = np.concatenate([stored_seq.astype(np.int64), seq])
    tag = np.concatenate([np.zeros(m, dtype=np.int8), np.ones(len(ts), dtype=np.int8)])
    order = np.lexsort((tag, all_seq, all_ts))
    o_ts, o_seq, o_tag = all_ts[order], all_seq[order], tag[order]
    hit = np.zeros(len(order), dtype=bool)
    hit[1:] = (o_ts[1:] == o_ts[:-1]) & (o_seq[1:] == o_seq[:-1]) & (o_tag[:-1] == 0) & (o_tag[1:] == 1)
    out = np.zeros(len(ts), dtype=bool)
    out[order[hit] - m] = True
    return out
