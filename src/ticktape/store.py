"""The SQL store: migrations, idempotent batch writes and fast reads (asyncpg).

Bulk data moves as PostgreSQL binary COPY streams that numpy builds and
parses directly (no Python object per row):

* :func:`write_ticks` copies a batch into a session-local staging table and
  inserts it with ``ON CONFLICT DO NOTHING``, so re-importing the same ticks
  stores nothing new.
* :func:`write_results` records ``(run_id, symbol, stream, seq)`` in the
  ``sink_batches`` ledger and copies the rows in the same transaction; a batch
  delivered twice is stored once.
* :func:`read_ticks` pages through one symbol with keyset ``COPY ... TO
  STDOUT (FORMAT binary)`` queries, in ``(ts, seq)`` order.

Time: the engine's int64 nanoseconds become ``timestamptz``, which holds
microseconds; ``ts`` is the nanosecond time floored to the microsecond.
Result tables also store the exact value in ``ts_ns``; ``ticks`` does not,
so ticks read back have ``ts`` in whole microseconds (times a 1000).
Missing float values (NaN in numpy) are stored as SQL NULL and read back as
NaN.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

from ticktape.batch import DTYPES, FILL_DTYPE, TICK_DTYPE
from ticktape.config import dbschema_dir, mask_dsn

__all__ = [
    "RESULT_STREAMS",
    "RUN_STATUSES",
    "MigrationError",
    "StoreConnectionError",
    "TickWriter",
    "connect",
    "create_run",
    "decode_tick_arrays",
    "delete_ticks",
    "finish_run",
    "has_timescale",
    "json_value",
    "list_runs",
    "migrate",
    "migrations",
    "read_book_events",
    "read_results",
    "read_ticks",
    "refresh_bars",
    "result_table",
    "start_run",
    "tick_catalogue",
    "tick_partition",
    "tick_span",
    "update_progress",
    "write_book_events",
    "write_instrument",
    "write_metrics",
    "write_result_set",
    "write_results",
    "write_ticks",
]

log = logging.getLogger(__name__)

RESULT_STREAMS = ("signals", "orders", "fills", "equity", "bars")
#: The table of each result stream (the stream's name unless listed here;
#: a run's event-time bars are `run_bars`, apart from the market-data bars_* views).
_RESULT_TABLES = {"bars": "run_bars"}


def result_table(stream: str) -> str:
    """The SQL table a result stream is stored in."""
    return _RESULT_TABLES.get(stream, stream)


RUN_STATUSES = ("pending", "running", "complete", "failed", "cancelled")
#: A run in one of these may still go on (``paused``: set by its replay, 0010).
UNFINISHED = ("pending", "running", "paused")
#: A run in one of these is over.
ENDED = ("complete", "failed", "cancelled")

#: pg_advisory_lock key serialising concurrent migrate() calls.
MIGRATION_LOCK_KEY = 0x7469636B74617065  # "ticktape"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
_PG_EPOCH_US = 946_684_800_000_000
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_COPY_TRAILER = b"\xff\xff"


class StoreConnectionError(ConnectionError):
    """The database cannot be reached; the message names the (masked) DSN."""


class MigrationError(RuntimeError):
    """The migrations on disk and the ones recorded in the database disagree."""


# --------------------------------------------------------------------------
# connecting


_PERMANENT = (
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidPasswordError,
    asyncpg.InvalidAuthorizationSpecificationError,
)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, FileNotFoundError):
        return "no server socket (is the server running?)"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text


async def connect(dsn: str, *, timeout: float = 10.0, retry_until: float = 0.0) -> asyncpg.Connection:
    """Open a connection; raise :class:`StoreConnectionError` with one clear line.

    Parameters
    ----------
    dsn
        libpq-style URL, e.g. ``postgresql://postgres@/ticktape?host=/sock``.
    timeout
        Seconds for one connection attempt.
    retry_until
        Keep retrying transient failures (refused, starting up) this many
        seconds; 0 tries once.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + retry_until
    while True:
        try:
            return await asyncpg.connect(
                dsn,
                timeout=timeout,
                server_settings={"application_name": "ticktape", "temp_buffers": "64MB"},
            )
        except _PERMANENT as exc:
            raise StoreConnectionError(
                f"cannot reach PostgreSQL at {mask_dsn(dsn)}: {_reason(exc)}"
            ) from None
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if loop.time() + 0.1 >= deadline:
                raise StoreConnectionError(
                    f"cannot reach PostgreSQL at {mask_dsn(dsn)}: {_reason(exc)}"
                ) from None
        await asyncio.sleep(0.1)


# --------------------------------------------------------------------------
# migrations


_MIGRATION_NAME = re.compile(r"^(\d{4})_([A-Za-z0-9_]+)\.sql$")


def migrations(folder: Path | None = None) -> list[tuple[int, str, Path]]:
    """The numbered migrations on disk: (version, name, path), in order.

    ``name`` is the file stem, e.g. ``"0001_core"``.
    """
    folder = dbschema_dir() if folder is None else folder
    found: dict[int, tuple[int, str, Path]] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files must be named NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"two migrations with version {version}: {found[version][2].name}, {path.name}"
            )
        found[version] = (version, path.stem, path)
    return [found[v] for v in sorted(found)]


async def migrate(conn_or_dsn: asyncpg.Connection | str, *, folder: Path | None = None) -> list[str]:
    """Apply the migrations not yet recorded in ``schema_migrations``, in order.

    Each file runs in its own transaction together with its ledger row.
    Concurrent callers (other processes) are serialised by an advisory lock;
    the later one applies nothing. Returns the names applied (``"0001_core"``).
    """
    if isinstance(conn_or_dsn, str):
        conn = await connect(conn_or_dsn)
        try:
            return await migrate(conn, folder=folder)
        finally:
            await conn.close()
    conn = conn_or_dsn
    todo = migrations(folder)
    applied: list[str] = []

    def relay(_conn: object, message: Any) -> None:  # server WARNINGs of the migrations
        if getattr(message, "severity_en", message.severity) == "WARNING":
            log.warning("migration: %s", message.message)

    conn.add_log_listener(relay)
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    int PRIMARY KEY,
                name       text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        done = {
            r["version"]: r["name"] for r in await conn.fetch("SELECT version, name FROM schema_migrations")
        }
        for version, name, path in todo:
            if version in done:
                if done[version] != name:
                    raise MigrationError(
                        f"migration {version} is recorded as {done[version]!r} but the file is {path.name}"
                    )
                continue
            sql = path.read_text(encoding="utf-8")
            try:
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        version,
                        name,
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"migration {path.name} failed: {exc}") from exc
            applied.append(name)
    finally:
        try:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        finally:
            conn.remove_log_listener(relay)
    return applied


# --------------------------------------------------------------------------
# binary COPY, built and parsed with numpy


def ns_to_datetime(ns: int) -> datetime:
    """int64 ns since the epoch -> aware UTC datetime (floored to the microsecond)."""
    return _EPOCH + timedelta(microseconds=int(ns) // 1000)


def datetime_to_ns(value: datetime) -> int:
    """Aware datetime -> int64 ns since the epoch."""
    return ((value - _EPOCH) // timedelta(microseconds=1)) * 1000


def _pg_ts(ns: np.ndarray) -> np.ndarray:
    """int64 ns since the Unix epoch -> PostgreSQL timestamptz (µs since 2000)."""
    return np.floor_divide(ns.astype(np.int64, copy=False), 1000) - _PG_EPOCH_US


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
    size = len(_COPY_HEADER) + n * dtype.itemsize + len(_COPY_TRAILER)
    buf = np.empty(size, dtype=np.uint8)  # the whole stream, written in place
    buf[: len(_COPY_HEADER)] = np.frombuffer(_COPY_HEADER, dtype=np.uint8)
    buf[size - len(_COPY_TRAILER) :] = np.frombuffer(_COPY_TRAILER, dtype=np.uint8)
    body = buf[len(_COPY_HEADER) : size - len(_COPY_TRAILER)]
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
    return memoryview(b"".join((_COPY_HEADER, raw[keep].data, _COPY_TRAILER)))


def decode_copy(data: bytes, row_dtype: np.dtype) -> np.ndarray:
    """Parse a COPY binary stream whose rows all have the fixed layout ``row_dtype``."""
    if not data:
        return np.empty(0, dtype=row_dtype)
    if data[:11] != _COPY_HEADER[:11]:
        raise ValueError("not a PostgreSQL binary COPY stream")
    ext = int.from_bytes(data[15:19], "big")
    start = 19 + ext
    end = len(data) - 2
    if data[end:] != _COPY_TRAILER:
        raise ValueError("binary COPY stream without its trailer")
    if (end - start) % row_dtype.itemsize:
        raise ValueError("binary COPY rows do not match the expected layout (a NULL in the data?)")
    return np.frombuffer(data, dtype=row_dtype, count=(end - start) // row_dtype.itemsize, offset=start)


def _copy_row_dtype(kinds: Sequence[str]) -> np.dtype:
    """Fixed row layout of a COPY-out of columns of the given wire types."""
    fields: list[tuple[str, str]] = [("nf", ">i2")]
    for i, kind in enumerate(kinds):
        fields += [(f"l{i}", ">i4"), (f"v{i}", kind)]
    return np.dtype(fields)


def _wire(kind: str) -> str:
    """numpy field type of a batch dtype -> its COPY wire type."""
    return {"i": ">i8", "f": ">f8"}[kind]


# --------------------------------------------------------------------------
# ticks


_TICK_FLOATS = ("bid", "ask", "bid_size", "ask_size", "last", "last_size")
_STAGE_TICKS = "ticktape_stage_ticks"
_TICK_ROW = _copy_row_dtype([">i8", ">i8"] + [">f8"] * len(_TICK_FLOATS))


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


_TICK_NAMES = ["symbol", "ts", "seq", *_TICK_FLOATS]


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
    pg_ts = _pg_ts(ticks["ts"])
    seq = seq.astype(np.int64, copy=False)
    columns: list[np.ndarray | bytes] = [
        symbol.encode("utf-8"),
        pg_ts.astype(">i8"),
        seq.astype(">i8"),
        *(ticks[name].astype(">f8") for name in _TICK_FLOATS),
    ]
    return columns, pg_ts, seq


def _months(pg_us: np.ndarray) -> np.ndarray:
    """The UTC month (``datetime64[M]``) of each pg µs time."""
    return (np.asarray(pg_us, dtype=np.int64) + _PG_EPOCH_US).astype("datetime64[us]").astype("datetime64[M]")


def tick_partition(symbol: str, month: np.datetime64) -> str:
    """Name of the ``ticks`` partition of ``symbol`` and a UTC month (plain PostgreSQL).

    The same as SQL ``ticktape_tick_partition(symbol, month)`` of
    dbschema/0030_ticks_partitions.sql.

    Examples
    --------
    >>> tick_partition("EURUSD", np.datetime64("2024-01"))
    'ticks_202401_96e913ac4a6a'
    """
    ym = str(np.datetime64(month, "M")).replace("-", "")
    return f"ticks_{ym}_{hashlib.md5(symbol.encode('utf-8')).hexdigest()[:12]}"


def _month_range(symbol: str, month: np.datetime64) -> tuple[str, str, str]:
    """SQL literals of ``symbol`` and of the start and end of ``month``."""
    lo = np.datetime64(month, "M")
    a, b = (f"'{np.datetime_as_string(m.astype('datetime64[s]'))}+00'::timestamptz" for m in (lo, lo + 1))
    return _literal(symbol), a, b


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
    await _unlist_tables(conn, [name for name, _ in _partitions(symbol, months)])


async def _unlist_tables(conn: asyncpg.Connection, names: list[str]) -> None:
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

    On TimescaleDB (``ticks`` is a hypertable) and inside a caller's
    transaction every batch goes through :func:`write_ticks`.
    """

    def __init__(self, conn: asyncpg.Connection, *, second: asyncpg.Connection | None = None) -> None:
        self.conn = conn
        self.stored = 0
        self.bulk_rows = 0  #: rows loaded through bulk months (included in ``stored``)
        self._conns = [conn] if second is None else [conn, second]
        self._bulk: bool | None = None
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
            self._bulk = not self.conn.is_in_transaction() and await _ticks_partitioned(self.conn)
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
                f"ALTER TABLE {name} ALTER COLUMN symbol SET DEFAULT {_literal(symbol)}"
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
                    f"ARRAY[{', '.join(_literal(c) for c in month.null_columns())}]::text[], {int(month.rows)})"
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
        for name in _TICK_FLOATS:
            if name not in self._valued and not np.isnan(ticks[name]).all():
                self._valued.add(name)
        self._last = (int(pg_ts[-1]), int(seq[-1]))

    def null_columns(self) -> list[str]:
        """The float columns NULL on every row loaded."""
        return [name for name in _TICK_FLOATS if name not in self._valued]


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


_KEY_ROW = _copy_row_dtype([">i8", ">i8"])


async def _stored_tick_keys(
    conn: asyncpg.Connection, symbol: str, lo: int, hi: int, limit: int
) -> np.ndarray | None:
    """``(ts, seq)`` (fields ``v0``, ``v1``; pg µs) of the stored ticks of
    ``symbol`` with ``lo <= ts <= hi``; None when there are more than ``limit``."""
    # Literal bounds, not parameters: after five executions a prepared
    # statement may switch to a generic plan, which on TimescaleDB cannot
    # exclude chunks at plan time and locks every chunk of `ticks` (with
    # thousands of chunks: "out of shared memory").
    data = await _copy_out_raw(
        conn,
        f"SELECT ts, seq FROM ticks WHERE symbol = {_literal(symbol)} "
        f"AND ts BETWEEN '{_pg_us_iso(lo)}'::timestamptz AND '{_pg_us_iso(hi)}'::timestamptz "
        f"LIMIT {int(limit) + 1}",
    )
    keys = decode_copy(data, _KEY_ROW)
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


async def _copy_out_raw(conn: asyncpg.Connection, query: str) -> bytes:
    """The binary COPY stream of ``query`` as one bytes value."""
    chunks: list[bytes] = []

    async def sink(data: bytes) -> None:
        chunks.append(data)

    await conn.copy_from_query(query, output=sink, format="binary")
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _pg_us_datetime(pg_us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=pg_us + _PG_EPOCH_US)


def _literal(value: str) -> str:
    """A SQL string literal safe under any standard_conforming_strings."""
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _ts_literal(ns: int) -> str:
    return f"'{ns_to_datetime(ns).isoformat()}'::timestamptz"


async def read_ticks(
    conn: asyncpg.Connection,
    symbol: str,
    start_ns: int | None = None,
    end_ns: int | None = None,
    batch_size: int = 20_000,
    *,
    second: asyncpg.Connection | None = None,
) -> AsyncIterator[np.ndarray]:
    """Yield ``TICK_DTYPE`` batches of one symbol in ``(ts, seq)`` order.

    ``start_ns <= ts < end_ns`` (either bound optional). Each batch is one
    keyset-paged query of at most ``batch_size`` rows; NULL floats come
    back NaN. The connection is free between batches.

    Parameters
    ----------
    second
        Another connection to the same database: pages are then fetched on
        both at once (two server backends), each connection asking for the
        page after the other's. Neither connection is free until the
        iteration ends (or the generator is closed).

    Notes
    -----
    On one connection, a page is a binary ``COPY (SELECT ...) TO STDOUT`` of
    the columns as stored, parsed by :func:`decode_ticks` (one numpy view
    per run of rows with the same NULL fields) once it has arrived; the
    client receives rows while the server is still sending them.

    With ``second``, a page comes back as one row of eight arrays
    (``array_agg`` of each column over the page, in key order), parsed by
    :func:`decode_tick_arrays` as one numpy view per column: the client
    handles a few large messages instead of one COPY message per tick (about
    a fifth of the client CPU), so that two server backends can be kept
    busy. Where page k+1 starts is asked first (the key of page k's last
    row: an index scan of the page's keys), so that page k+1 can be read on
    one connection while page k is still being read on the other. The order
    inside a page is checked on the client (``ValueError`` if it is not
    strictly increasing).

    Either way, a page whose NULLs vary from row to row (trades interleaved
    with quotes) is asked again with NULLs replaced by NaN on the server, as
    are the following pages.

    On plain PostgreSQL, a month that :class:`TickWriter` loaded in key
    order (listed in ``ticks_key_order``, dbschema/0032) is read by ranges
    of its blocks instead (:class:`_BlockPages`: pages of arrays, on both
    connections with ``second``), at about half the server's work; the
    batches are then cut to ``batch_size`` across months. Its order is
    checked as it is read: :class:`KeyOrderError` if it does not hold (the
    month is unlisted, and the next read walks the key).

    On TimescaleDB a query locks every chunk of ``ticks`` it cannot exclude
    at plan time, and ``ts >= <start>`` alone excludes only the chunks
    before it: with thousands of chunks (decades of daily bars in 1-day
    chunks) a few such reads at once ran the server out of lock slots ("out
    of shared memory"). When more than :data:`READ_CHUNKS` chunks overlap
    the range, every page query is also bounded to a window of that many
    chunks (a page is filled from the next windows when one runs out), and
    ``second`` is not used.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    cuts = await _chunk_cuts(conn, start_ns, end_ns)
    plan = None if cuts else await _block_plan(conn, symbol, start_ns, end_ns)
    if plan is None:  # by the key only
        reader = _TickPages(symbol, start_ns, end_ns, int(batch_size))
        reader.cuts = cuts
        async with contextlib.aclosing(reader.batches(conn, second)) as batches:
            async for out in batches:
                yield out
        return
    cut = _Cut(int(batch_size))
    for part in plan:
        if isinstance(part, _BlockPages):
            pieces = part.pages(conn, second, int(batch_size))
        else:
            pieces = _TickPages(symbol, part[0], part[1], int(batch_size)).batches(conn, second)
        async with contextlib.aclosing(pieces) as it:
            async for piece in it:
                for out in cut.add(piece):
                    yield out
    for out in cut.rest():
        yield out


class _Cut:
    """Arrays joined and cut again into pieces of exactly ``size`` rows (the
    last one, from :meth:`rest`, fewer): nothing is copied until a piece is
    full, and then once."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._held: list[np.ndarray] = []
        self._n = 0

    def add(self, rows: np.ndarray) -> list[np.ndarray]:
        """The pieces that ``rows`` completes."""
        if not len(rows):
            return []
        self._held.append(rows)
        self._n += len(rows)
        if self._n < self.size:
            return []
        joined = self._held[0] if len(self._held) == 1 else np.concatenate(self._held)
        full = self._n - self._n % self.size
        self._held = [joined[full:]] if full < self._n else []
        self._n -= full
        return [joined[k : k + self.size] for k in range(0, full, self.size)]

    def rest(self) -> list[np.ndarray]:
        """The last piece, if any rows are left."""
        held, self._held, self._n = self._held, [], 0
        return [held[0] if len(held) == 1 else np.concatenate(held)] if held else []


#: On TimescaleDB, the most chunks of ``ticks`` one page query of
#: :func:`read_ticks` may plan (and lock).
READ_CHUNKS = 64


async def _chunk_cuts(conn: asyncpg.Connection, start_ns: int | None, end_ns: int | None) -> list[str]:
    """Where the read windows of ``[start_ns, end_ns)`` meet (timestamptz
    literals, ascending): the start of every :data:`READ_CHUNKS`-th chunk of
    the ``ticks`` hypertable in that range; none on plain PostgreSQL or when
    the range has at most that many chunks."""
    if not await has_timescale(conn):
        return []
    where = ["hypertable_name = 'ticks'"]
    if start_ns is not None:
        where.append(f"range_end > {_ts_literal(start_ns)}")
    if end_ns is not None:
        where.append(f"range_start < {_ts_literal(end_ns)}")
    starts = await conn.fetchval(
        "SELECT array(SELECT range_start FROM timescaledb_information.chunks "
        f"WHERE {' AND '.join(where)} ORDER BY range_start)"
    )
    return [f"'{t.isoformat()}'::timestamptz" for t in starts[READ_CHUNKS::READ_CHUNKS]]


class _TickPages:
    """The page queries of :func:`read_ticks` for one symbol and time range."""

    def __init__(self, symbol: str, start_ns: int | None, end_ns: int | None, batch_size: int) -> None:
        self.symbol = symbol
        self.start_ns = start_ns
        self.batch_size = batch_size
        self.base = [f"symbol = {_literal(symbol)}"]
        if end_ns is not None:
            self.base.append(f"ts < {_ts_literal(end_ns)}")
        self.mixed = False  # NULLs vary row by row: let the server fill in NaN
        self.cuts: list[str] = []  # read windows (TimescaleDB, many chunks): see _chunk_cuts
        self.window = 0  # queries read ts in [cuts[window - 1], cuts[window])

    async def batches(
        self, conn: asyncpg.Connection, second: asyncpg.Connection | None
    ) -> AsyncIterator[np.ndarray]:
        """All the pages in order: on ``conn``, or on both connections at once."""
        if second is None or self.cuts:
            after: tuple[int, int] | None = None
            while True:
                out, last = await self.rows(conn, after)
                if len(out) == 0:
                    return
                yield out
                if len(out) < self.batch_size:
                    return
                after = last
        else:
            async with contextlib.aclosing(self.pipelined(conn, second)) as pages:
                async for out in pages:
                    yield out

    def where(self, after: tuple[int, int] | None, upto: tuple[int, int] | None) -> str:
        """Rows after the key ``after`` (or from ``start_ns``) up to the key
        ``upto``, inside the current read window."""
        where = list(self.base)
        if self.window > 0:
            where.append(f"ts >= {self.cuts[self.window - 1]}")
        if self.window < len(self.cuts):
            where.append(f"ts < {self.cuts[self.window]}")
        if after is not None:
            when = f"'{_pg_us_iso(after[0])}'::timestamptz"
            # (ts >= ...: partitions before it are pruned; the row comparison alone prunes nothing)
            where.append(f"ts >= {when} AND (ts, seq) > ({when}, {after[1]})")
        elif self.start_ns is not None:
            where.append(f"ts >= {_ts_literal(self.start_ns)}")
        if upto is not None:
            until = f"'{_pg_us_iso(upto[0])}'::timestamptz"
            where.append(f"ts <= {until} AND (ts, seq) <= ({until}, {upto[1]})")
        return " AND ".join(where)

    async def rows(
        self, conn: asyncpg.Connection, after: tuple[int, int] | None
    ) -> tuple[np.ndarray, tuple[int, int] | None]:
        """The ``batch_size`` ticks after ``after``, one COPY row per tick
        (from the following read windows too, when the current one runs out)."""
        out, last = await self._window_rows(conn, after, self.batch_size)
        parts = [out]
        n = len(out)
        while n < self.batch_size and self.window < len(self.cuts):
            self.window += 1
            more, more_last = await self._window_rows(conn, None, self.batch_size - n)
            if len(more):
                parts.append(more)
                n += len(more)
                last = more_last
        return (parts[0] if len(parts) == 1 else np.concatenate(parts)), last

    async def _window_rows(
        self, conn: asyncpg.Connection, after: tuple[int, int] | None, limit: int
    ) -> tuple[np.ndarray, tuple[int, int] | None]:
        """At most ``limit`` ticks after ``after`` in the current read window."""
        where = self.where(after, None)
        for attempt in ("raw", "nan"):
            if attempt == "raw" and self.mixed:
                continue
            if attempt == "nan":
                cols = ", ".join(f"coalesce({name}, 'NaN'::float8)" for name in _TICK_FLOATS)
            else:
                cols = ", ".join(_TICK_FLOATS)
            query = f"SELECT ts, seq, {cols} FROM ticks WHERE {where} ORDER BY ts, seq LIMIT {int(limit)}"
            data = await _copy_out(conn, query)
            if attempt == "nan":
                raw = decode_copy(data, _TICK_ROW)
                out = np.empty(len(raw), dtype=TICK_DTYPE)
                out["ts"] = (raw["v0"].astype(np.int64) + _PG_EPOCH_US) * 1000
                for i, name in enumerate(_TICK_FLOATS, start=2):
                    out[name] = raw[f"v{i}"]
                return out, ((int(raw["v0"][-1]), int(raw["v1"][-1])) if len(raw) else None)
            decoded = decode_ticks(data)
            if decoded is not None:
                return decoded
            self.mixed = True
        raise AssertionError("unreachable: the NaN query has no NULLs")  # pragma: no cover

    async def page(
        self, conn: asyncpg.Connection, after: tuple[int, int] | None, upto: tuple[int, int] | None
    ) -> tuple[np.ndarray, tuple[int, int] | None]:
        """The ticks after ``after`` as one row of arrays: ``batch_size`` of
        them, or those up to the key ``upto``."""
        where = self.where(after, upto)
        limit = "" if upto is not None else f" LIMIT {self.batch_size}"
        aggs = ", ".join(f"array_agg({name})" for name in ("ts", "seq", *_TICK_FLOATS))
        for attempt in ("raw", "nan"):
            if attempt == "raw" and self.mixed:
                continue
            if attempt == "nan":
                cols = ", ".join(f"coalesce({name}, 'NaN'::float8) AS {name}" for name in _TICK_FLOATS)
            else:
                cols = ", ".join(_TICK_FLOATS)
            query = (
                f"SELECT {aggs} FROM (SELECT ts, seq, {cols} FROM ticks WHERE {where} "
                f"ORDER BY ts, seq{limit}) page"
            )
            decoded = decode_tick_arrays(await _copy_out(conn, query))
            if decoded is not None:
                return decoded[0], decoded[2]
            self.mixed = True
        raise AssertionError("unreachable: the NaN query has no NULLs")  # pragma: no cover

    async def page_end(
        self, conn: asyncpg.Connection, after: tuple[int, int] | None
    ) -> tuple[int, int] | None:
        """Key of the last row of the page after ``after``; None if that page is the last."""
        query = (
            f"SELECT ts, seq FROM ticks WHERE {self.where(after, None)} "
            f"ORDER BY ts, seq OFFSET {self.batch_size - 1} LIMIT 2"
        )
        keys = decode_copy(await _copy_out(conn, query), _KEY_ROW)
        if len(keys) < 2:  # no row after this page
            return None
        return int(keys["v0"][0]), int(keys["v1"][0])

    async def pipelined(self, one: asyncpg.Connection, two: asyncpg.Connection) -> AsyncIterator[np.ndarray]:
        """Pages read on two connections at once, yielded in order.

        Page k is read on connection k % 2: first the key where it ends
        (which is where page k + 1 starts, so the other connection can
        begin that one), then the page itself. A connection starts its
        next page only once the page before its last one was taken by the
        consumer: at most three pages are held.
        """
        loop = asyncio.get_running_loop()
        starts: dict[int, asyncio.Future[Any]] = {}  # page -> its start key, or _NO_PAGE
        pages: dict[int, asyncio.Future[np.ndarray]] = {}
        taken: dict[int, asyncio.Event] = {}
        stopping = False

        def start(k: int) -> asyncio.Future[Any]:
            if k not in starts:
                starts[k] = loop.create_future()
            if stopping and not starts[k].done():
                starts[k].set_result(_NO_PAGE)
            return starts[k]

        def page(k: int) -> asyncio.Future[np.ndarray]:
            if k not in pages:
                pages[k] = loop.create_future()
            return pages[k]

        def was_taken(k: int) -> asyncio.Event:
            if k not in taken:
                taken[k] = asyncio.Event()
            return taken[k]

        start(0).set_result(None)

        async def worker(conn: asyncpg.Connection, k: int) -> None:
            while True:
                after = await start(k)
                result = page(k)
                if after is _NO_PAGE:
                    result.set_result(np.empty(0, dtype=TICK_DTYPE))
                    return
                try:
                    end = await self.page_end(conn, after)
                    nxt = start(k + 1)
                    if not nxt.done():
                        nxt.set_result(_NO_PAGE if end is None else end)
                    out, _ = await self.page(conn, after, end)
                except BaseException as exc:
                    if not result.done():
                        result.set_exception(exc)
                    nxt = start(k + 1)
                    if not nxt.done():
                        nxt.set_result(_NO_PAGE)
                    raise
                result.set_result(out)
                if end is None or stopping:
                    return
                if k >= 1:
                    await was_taken(k - 1).wait()
                k += 2

        workers = [asyncio.ensure_future(worker(one, 0)), asyncio.ensure_future(worker(two, 1))]
        try:
            k = 0
            while True:
                out = await page(k)
                was_taken(k).set()
                if not len(out):
                    return
                yield out
                k += 1
        finally:
            # Let the workers finish the query they are in (cancelling one
            # midway would leave its connection busy), then stop them.
            stopping = True
            for fut in starts.values():
                if not fut.done():
                    fut.set_result(_NO_PAGE)
            for event in taken.values():
                event.set()
            for outcome in await asyncio.gather(*workers, return_exceptions=True):
                if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                    raise outcome
            for fut in pages.values():  # (errors not raised to the consumer: it stopped first)
                if fut.done() and not fut.cancelled():
                    fut.exception()


#: The start of the page after the last one.
_NO_PAGE = object()


async def _block_plan(
    conn: asyncpg.Connection, symbol: str, start_ns: int | None, end_ns: int | None
) -> list[_BlockPages | tuple[int | None, int | None]] | None:
    """How :func:`read_ticks` reads ``[start_ns, end_ns)`` of ``symbol``:
    month by month, a partition listed in ``ticks_key_order``
    (dbschema/0032) by ranges of its blocks (:class:`_BlockPages`), the
    months between by the key (``(lo, hi)`` ranges for :class:`_TickPages`).

    None when no month can be read by blocks: ``ticks`` not partitioned
    (TimescaleDB), a server without TID range scans (before PostgreSQL 14),
    no partition of the range listed.
    """
    if conn.get_server_version() < (14, 0):
        return None
    lo = None if start_ns is None else int(start_ns) // 1000 * 1000  # (the store keeps µs)
    hi = None if end_ns is None else int(end_ns) // 1000 * 1000
    months = await _symbol_months(conn, symbol, lo, hi)
    if not any(row["in_order"] for *_, row in months):
        return None
    plan: list[_BlockPages | tuple[int | None, int | None]] = []
    for m0, m1, row in months:
        a = lo if lo is not None and lo > m0 else None
        b = hi if hi is not None and hi < m1 else None
        if row["in_order"]:
            plan.append(_BlockPages(row["name"], a, b, row["ts_unique"], row["null_columns"]))
        elif plan and isinstance(plan[-1], tuple):
            plan[-1] = (plan[-1][0], b if b is not None else m1)
        else:
            plan.append((a if a is not None else m0, b if b is not None else m1))
    return plan


async def _symbol_months(
    conn: asyncpg.Connection, symbol: str, lo: int | None, hi: int | None
) -> list[tuple[int, int, Any]]:
    """``(month start ns, next month ns, row)`` of each ``ticks`` partition
    of ``symbol`` overlapping ``[lo, hi)``, in time order (none when
    ``ticks`` is not partitioned); ``row`` has the partition's ``name`` and
    its ``ticks_key_order`` listing (``in_order``, ``ts_unique``,
    ``null_columns``, ``rows``)."""
    rows = await conn.fetch(
        "SELECT c.relname AS name, o.partition IS NOT NULL AS in_order, o.ts_unique, o.null_columns, "
        "o.rows FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "LEFT JOIN ticks_key_order o ON o.partition = c.oid "
        "WHERE i.inhparent = 'ticks'::regclass AND right(c.relname, 13) = $1 "
        "AND (SELECT relkind FROM pg_class WHERE oid = 'ticks'::regclass) = 'p'",
        "_" + hashlib.md5(symbol.encode("utf-8")).hexdigest()[:12],
    )
    months = []
    for row in rows:
        m = np.datetime64(f"{row['name'][6:10]}-{row['name'][10:12]}", "M")
        m0, m1 = (int(x.astype("datetime64[ns]").astype(np.int64)) for x in (m, m + 1))
        if (hi is None or m0 < hi) and (lo is None or m1 > lo):
            months.append((m0, m1, row))
    months.sort(key=lambda m: m[0])
    return months


async def count_ticks(
    conn: asyncpg.Connection, symbol: str, start_ns: int | None = None, end_ns: int | None = None
) -> int:
    """How many ticks of ``symbol`` are stored with ``start_ns <= ts < end_ns``.

    A whole month listed in ``ticks_key_order`` (dbschema/0032, 0033) with
    its number of rows is not counted again: over years of months loaded by
    ``ticktape data import`` the answer costs a query per partial or
    unlisted month, not a scan of every tick.
    """
    lo = None if start_ns is None else int(start_ns) // 1000 * 1000  # (the store keeps µs)
    hi = None if end_ns is None else int(end_ns) // 1000 * 1000
    months = await _symbol_months(conn, symbol, lo, hi)
    if not months:  # (TimescaleDB, or nothing stored)
        return await _count_range(conn, "ticks", symbol, lo, hi)
    n = 0
    for m0, m1, row in months:
        whole = (lo is None or lo <= m0) and (hi is None or hi >= m1)
        if row["in_order"] and row["rows"] is not None and whole:
            n += int(row["rows"])
        else:
            n += await _count_range(
                conn, row["name"], symbol, lo if not whole else None, hi if not whole else None
            )
    return n


async def _count_range(
    conn: asyncpg.Connection, table: str, symbol: str, lo: int | None, hi: int | None
) -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM {table} WHERE {_range_where(symbol, lo, hi)}"))


def _range_where(symbol: str, start_ns: int | None, end_ns: int | None) -> str:
    """``symbol = ... AND start_ns <= ts < end_ns`` (either bound optional), as SQL."""
    where = [f"symbol = {_literal(symbol)}"]
    if start_ns is not None:
        where.append(f"ts >= {_ts_literal(start_ns)}")
    if end_ns is not None:
        where.append(f"ts < {_ts_literal(end_ns)}")
    return " AND ".join(where)


class KeyOrderError(ValueError):
    """Ticks that should come in ``(ts, seq)`` order did not."""


#: A page of :class:`_BlockPages`: a TID range scan, never a (parallel) scan
#: of the whole table, so rows come in storage order.
_BLOCK_SCAN = "SET LOCAL enable_seqscan = off; SET LOCAL max_parallel_workers_per_gather = 0"

#: Rows per 8 KiB block assumed before the server has counted them.
_ROWS_PER_BLOCK = 60


class _BlockPages:
    """The ticks of one partition stored in key order, read by ranges of blocks.

    Only for partitions listed in ``ticks_key_order`` (dbschema/0032): its
    rows are on disk in ``(ts, seq)`` order, so the rows from ``lo`` to
    ``hi`` are those of the blocks from the first one's to the last one's
    (found through the key), and one TID range scan of about a batch of
    blocks, aggregated to one row of arrays (as in :meth:`_TickPages.page`),
    is a page in order: about half the server's work of a walk of the key.
    The order is still checked (inside each page and from page to page); if
    it does not hold, the partition is taken out of ``ticks_key_order`` and
    :class:`KeyOrderError` raised (reading again goes by the key).
    """

    def __init__(
        self, table: str, lo: int | None, hi: int | None, ts_unique: bool, null_columns: Sequence[str]
    ) -> None:
        self.table, self.lo, self.hi = table, lo, hi
        self.mixed = False  # NULLs vary row by row: let the server fill in NaN
        # what is read: seq only to check the order of rows sharing a time;
        # no column that is NULL on every row of the month
        self.columns = (
            "ts",
            *(() if ts_unique else ("seq",)),
            *(c for c in _TICK_FLOATS if c not in null_columns),
        )

    async def pages(
        self, conn: asyncpg.Connection, second: asyncpg.Connection | None, batch_size: int
    ) -> AsyncIterator[np.ndarray]:
        """The partition's ticks from ``lo`` to ``hi``, a page at a time."""
        try:
            ranges = await self._ranges(conn, batch_size)
            conns = [conn] if second is None else [conn, second]
            last: tuple[int, int] | None = None
            async with contextlib.aclosing(_in_turn(conns, ranges, self._page)) as pages:
                async for out, first, page_last in pages:
                    if first is None:
                        continue
                    if last is not None and first <= last:
                        raise KeyOrderError("a page starts before the end of the one before it")
                    last = page_last
                    yield out
        except KeyOrderError as exc:
            await _unlist_tables(conn, [self.table])
            raise KeyOrderError(
                f"ticks partition {self.table} was listed in ticks_key_order but its rows are not "
                f"in (ts, seq) order on disk ({exc}); it is unlisted now: read again"
            ) from exc

    async def _ranges(self, conn: asyncpg.Connection, batch_size: int) -> list[tuple[int, int | None]]:
        """The blocks ``[a, b)`` of each page (``b`` None: to the end of the table).

        Without ``lo`` the pages start at block 0, without ``hi`` the last
        one runs to the end of the table, so that a month read whole reads
        every row (and any row out of order is seen); the blocks of ``lo``'s
        and ``hi``'s rows are found through the key.
        """
        key = ("symbol", "ts", "seq")
        ends = []
        for bound, op, desc in ((self.lo, ">=", ""), (self.hi, "<", " DESC")):
            where = "" if bound is None else f" WHERE ts {op} {_ts_literal(bound)}"
            order = ", ".join(k + desc for k in key)
            ends.append(
                f"LEFT JOIN LATERAL (SELECT ctid, ts, seq FROM {self.table}{where} ORDER BY {order} LIMIT 1)"
            )
        query = (
            "SELECT f.ctid, f.ts, f.seq, l.ctid, l.ts, l.seq, (SELECT reltuples / relpages FROM pg_class "
            f"WHERE oid = '{self.table}'::regclass AND relpages > 0 AND reltuples > 0), "
            f"pg_relation_size('{self.table}'::regclass) / current_setting('block_size')::int "
            f"FROM (SELECT) one {ends[0]} f ON true {ends[1]} l ON true"
        )
        async with conn.transaction():
            await conn.execute(_INDEX_WALK)
            row = await conn.fetchrow(query)
        first, first_key, last, last_key, per_block, blocks = (
            row[0],
            row[1:3],
            row[3],
            row[4:6],
            row[6],
            row[7],
        )
        # (the first row from lo, the last one before hi: none or in the wrong order, no row between)
        if first is None or last is None or first_key > last_key:
            return []
        if first > last:
            raise KeyOrderError("the range's first row is stored after its last")
        a = 0 if self.lo is None else first[0]
        b = max(blocks, a + 1) if self.hi is None else last[0] + 1
        step = max(1, round(batch_size / (per_block or _ROWS_PER_BLOCK)))
        cuts: list[int | None] = [*range(a, b, step), b]
        if self.hi is None:
            cuts[-1] = None
        return list(itertools.pairwise(cuts))  # type: ignore[arg-type]

    async def _page(
        self, conn: asyncpg.Connection, blocks: tuple[int, int | None]
    ) -> tuple[np.ndarray, tuple[int, int] | None, tuple[int, int] | None]:
        a, b = blocks
        where = [f"ctid >= '({a},0)'::tid"]
        if b is not None:
            where.append(f"ctid < '({b},0)'::tid")
        # (rows outside [lo, hi) can only be in the first and last blocks; one comparison a row)
        if self.lo is not None:
            where.append(f"ts >= {_ts_literal(self.lo)}")
        if self.hi is not None:
            where.append(f"ts < {_ts_literal(self.hi)}")
        for attempt in ("raw", "nan"):
            if attempt == "raw" and self.mixed:
                continue
            cols = (
                f"coalesce({c}, 'NaN'::float8)" if attempt == "nan" and c in _TICK_FLOATS else c
                for c in self.columns
            )
            aggs = ", ".join(f"array_agg({c})" for c in cols)
            query = f"SELECT {aggs} FROM {self.table} WHERE {' AND '.join(where)}"
            decoded = decode_tick_arrays(await _copy_out(conn, query, _BLOCK_SCAN), self.columns)
            if decoded is not None:
                return decoded
            self.mixed = True
        raise AssertionError("unreachable: the NaN query has no NULLs")  # pragma: no cover


async def _in_turn(
    conns: Sequence[asyncpg.Connection], jobs: Sequence[Any], fetch: Any
) -> AsyncIterator[Any]:
    """``await fetch(conn, job)`` of each job, yielded in order.

    Job k runs on ``conns[k % len(conns)]``, no further ahead than the
    number of connections past the last one taken: with two connections,
    both work while the consumer handles the page before. Leaving early lets
    a query in flight finish (cancelling it would leave its connection busy).
    """
    loop = asyncio.get_running_loop()
    results: list[asyncio.Future[Any] | None] = [loop.create_future() for _ in jobs]
    state = {"taken": 0, "stop": False}
    moved = asyncio.Condition()

    async def worker(i: int) -> None:
        for k in range(i, len(jobs), len(conns)):
            async with moved:
                await moved.wait_for(lambda k=k: state["stop"] or k - state["taken"] < len(conns))
            if state["stop"]:
                return
            result = results[k]
            assert result is not None
            try:
                result.set_result(await fetch(conns[i], jobs[k]))
            except Exception as exc:
                result.set_exception(exc)
                return

    workers = [asyncio.ensure_future(worker(i)) for i in range(min(len(conns), len(jobs)))]
    try:
        for k in range(len(results)):
            out = await results[k]  # type: ignore[misc]
            results[k] = None  # (not holding what was taken; the workers are past it)
            async with moved:
                state["taken"] = k + 1
                moved.notify_all()
            yield out
    finally:
        state["stop"] = True
        async with moved:
            moved.notify_all()
        await asyncio.gather(*workers, return_exceptions=True)
        for result in results:  # (errors not raised to the consumer: it stopped first)
            if result is not None and result.done() and not result.cancelled():
                result.exception()


#: Bytes of a one-dimensional array's header in binary form (ndim, flags,
#: element type, size, lower bound).
_ARRAY_HEADER = 20


def decode_tick_arrays(
    data: bytes, columns: Sequence[str] = ("ts", "seq", *_TICK_FLOATS)
) -> tuple[np.ndarray, tuple[int, int] | None, tuple[int, int] | None] | None:
    """Parse the binary COPY of one row ``array_agg(ts), array_agg(seq),
    array_agg(bid) ... array_agg(last_size)`` into ``TICK_DTYPE``.

    Returns the ticks (NULL -> NaN, ``ts`` in ns) and the ``(pg µs, seq)``
    of the first and the last one (None when there are none), or None when a float column
    has NULLs on some rows only (the caller asks again with NaN instead).
    Raises ``ValueError`` on anything else that is not that layout, and
    :class:`KeyOrderError` when ``(ts, seq)`` is not strictly increasing.

    ``columns``: the arrays in the row, ``ts`` first; a float column not
    among them is NaN; without ``seq`` the times must strictly increase
    (and the keys returned have ``seq`` 0).
    """
    if not data:
        return np.empty(0, dtype=TICK_DTYPE), None, None
    if data[:11] != _COPY_HEADER[:11]:
        raise ValueError("not a PostgreSQL binary COPY stream")
    pos = 19 + int.from_bytes(data[15:19], "big")
    end = len(data) - 2
    if data[end:] != _COPY_TRAILER:
        raise ValueError("binary COPY stream without its trailer")
    width = len(columns)
    if int.from_bytes(data[pos : pos + 2], "big", signed=True) != width:
        raise ValueError(f"tick arrays: expected one row of {width} arrays")
    pos += 2
    fields: list[tuple[int, int]] = []  # (offset, length) of each array
    for _ in range(width):
        length = int.from_bytes(data[pos : pos + 4], "big", signed=True)
        fields.append((pos + 4, length))
        pos += 4 + max(length, 0)
    if pos != end:
        raise ValueError("tick arrays: the stream holds more than one row")
    if fields[0][1] == -1:  # array_agg of no rows
        return np.empty(0, dtype=TICK_DTYPE), None, None
    n = -1
    cols: dict[str, np.ndarray | None] = {}
    for i, ((offset, length), name) in enumerate(zip(fields, columns, strict=True)):
        key = name in ("ts", "seq")
        if length < 12:
            raise ValueError(f"tick arrays: column {i} is not an array")
        ndim, has_null = (int.from_bytes(data[offset + k : offset + k + 4], "big") for k in (0, 4))
        size = int.from_bytes(data[offset + 12 : offset + 16], "big") if ndim == 1 else -1
        if ndim != 1 or (n >= 0 and size != n):
            raise ValueError(f"tick arrays: column {i} has the wrong shape")
        n = size
        body = offset + _ARRAY_HEADER
        if has_null and length == _ARRAY_HEADER + 4 * n:
            if key:
                raise ValueError(f"tick arrays: NULL in column {i} ({name})")
            cols[name] = None  # NULL on every row
            continue
        if length != _ARRAY_HEADER + 12 * n:
            if not key and has_null:
                return None  # NULLs on some rows only
            raise ValueError(f"tick arrays: column {i} does not hold 8-byte values")
        elems = np.frombuffer(data, dtype=_ARRAY_ELEM[not key], count=n, offset=body)
        if not (elems["l"] == 8).all():
            raise ValueError(f"tick arrays: column {i} does not hold 8-byte values")
        cols[name] = elems["v"]
    out = np.empty(n, dtype=TICK_DTYPE)
    ts = cols["ts"]
    seq = cols.get("seq")
    assert ts is not None
    if n > 1:
        step = np.diff(ts)
        if seq is None:
            if (step <= 0).any():
                raise KeyOrderError("tick arrays: ts is not strictly increasing")
        elif (step < 0).any() or ((step == 0) & (np.diff(seq) <= 0)).any():
            raise KeyOrderError("tick arrays: (ts, seq) is not strictly increasing")
    out["ts"] = (ts.astype(np.int64) + _PG_EPOCH_US) * 1000
    for name in _TICK_FLOATS:
        col = cols.get(name)
        out[name] = np.nan if col is None else col
    first, last = (0, 0) if seq is None else (int(seq[0]), int(seq[-1]))
    return out, (int(ts[0]), first), (int(ts[-1]), last)


_ARRAY_ELEM = (np.dtype([("l", ">i4"), ("v", ">i8")]), np.dtype([("l", ">i4"), ("v", ">f8")]))


async def _copy_out(conn: asyncpg.Connection, query: str, settings: str | None = None) -> bytes:
    """The binary COPY stream of ``query``, walking indexes in order (or
    under other planner ``settings``)."""
    async with conn.transaction():
        # Walk the primary key in order whatever the statistics say: without
        # them (fresh import, no ANALYZE yet) the planner picks a bitmap scan
        # plus sort of the whole symbol for every page.
        await conn.execute(settings or _INDEX_WALK)
        return await _copy_out_raw(conn, query)


#: Most runs of rows with the same NULL fields :func:`decode_ticks` parses
#: in one page before giving up (one numpy view per run).
MAX_NULL_RUNS = 64


def _tick_run_dtype(nulls: tuple[bool, ...]) -> np.dtype:
    """COPY row layout of ``ts, seq, <6 floats>`` with the given floats NULL."""
    fields: list[tuple[str, str]] = [
        ("nf", ">i2"),
        ("l0", ">i4"),
        ("v0", ">i8"),
        ("l1", ">i4"),
        ("v1", ">i8"),
    ]
    for i, null in enumerate(nulls, start=2):
        fields.append((f"l{i}", ">i4"))
        if not null:
            fields.append((f"v{i}", ">f8"))
    return np.dtype(fields)


def decode_ticks(data: bytes) -> tuple[np.ndarray, tuple[int, int] | None] | None:
    """Parse a binary COPY of ``ts, seq, bid, ask, bid_size, ask_size, last,
    last_size`` (NULLs allowed in the floats) into ``TICK_DTYPE``.

    Returns the ticks (NULL -> NaN, ``ts`` in ns) and the ``(pg µs, seq)`` of
    the last row (None when empty), or None when the NULL fields change more
    than :data:`MAX_NULL_RUNS` times (the caller then asks for NaN instead).

    Each run of rows with the same NULL fields is one numpy view: its row
    layout is read off its first row, and every row of the run has its field
    count and all eight lengths checked against that layout, so the result
    is exactly what a row-by-row parser would give.
    """
    if not data:
        return np.empty(0, dtype=TICK_DTYPE), None
    if data[:11] != _COPY_HEADER[:11]:
        raise ValueError("not a PostgreSQL binary COPY stream")
    start = 19 + int.from_bytes(data[15:19], "big")
    end = len(data) - 2
    if data[end:] != _COPY_TRAILER:
        raise ValueError("binary COPY stream without its trailer")
    width = len(_TICK_FLOATS)
    pieces: list[np.ndarray] = []
    last: tuple[int, int] | None = None
    pos = start
    while pos < end:
        if len(pieces) >= MAX_NULL_RUNS:
            return None
        # the layout of the row at `pos`
        if int.from_bytes(data[pos : pos + 2], "big") != 2 + width:
            raise ValueError(f"COPY row at byte {pos} has the wrong field count")
        p = pos + 2 + 2 * 12
        nulls = []
        for _ in range(width):
            length = int.from_bytes(data[p : p + 4], "big", signed=True)
            nulls.append(length == -1)
            p += 4 if length == -1 else 4 + length
        dtype = _tick_run_dtype(tuple(nulls))
        rows = np.frombuffer(data, dtype=dtype, count=(end - pos) // dtype.itemsize, offset=pos)
        good = (rows["nf"] == 2 + width) & (rows["l0"] == 8) & (rows["l1"] == 8)
        for i, null in enumerate(nulls, start=2):
            good &= rows[f"l{i}"] == (-1 if null else 8)
        k = len(rows) if good.all() else int(np.argmin(good))  # rows up to the first mismatch
        if k == 0:
            raise ValueError(f"COPY row at byte {pos} does not parse as ts, seq and six float8")
        run = rows[:k]
        piece = np.empty(k, dtype=TICK_DTYPE)
        piece["ts"] = (run["v0"].astype(np.int64) + _PG_EPOCH_US) * 1000
        for i, (name, null) in enumerate(zip(_TICK_FLOATS, nulls, strict=True), start=2):
            piece[name] = np.nan if null else run[f"v{i}"]
        pieces.append(piece)
        last = (int(run["v0"][-1]), int(run["v1"][-1]))
        pos += k * dtype.itemsize
    if pos != end:
        raise ValueError("binary COPY stream ends inside a row")
    if not pieces:
        return np.empty(0, dtype=TICK_DTYPE), None
    return (pieces[0] if len(pieces) == 1 else np.concatenate(pieces)), last


def _pg_us_iso(pg_us: int) -> str:
    return _pg_us_datetime(pg_us).isoformat()


_INDEX_WALK = "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off"


async def tick_span(
    conn: asyncpg.Connection, symbol: str, start_ns: int | None = None, end_ns: int | None = None
) -> tuple[int, int] | None:
    """Times (ns) of the first and the last stored tick of ``symbol`` with
    ``start_ns <= ts < end_ns``, or None: a step of the key from each end
    (:func:`count_ticks` says how many there are)."""
    where = _range_where(symbol, start_ns, end_ns)
    row = await conn.fetchrow(
        f"SELECT (SELECT ts FROM ticks WHERE {where} ORDER BY ts LIMIT 1),"
        f" (SELECT ts FROM ticks WHERE {where} ORDER BY ts DESC LIMIT 1)"
    )
    return None if row[0] is None else (datetime_to_ns(row[0]), datetime_to_ns(row[1]))


async def has_timescale(conn: asyncpg.Connection) -> bool:
    """True when the timescaledb extension is installed in this database."""
    return bool(
        await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')")
    )


#: The bar views of 0003 (continuous aggregates on TimescaleDB).
BAR_VIEWS = ("bars_1s", "bars_1m", "bars_1h")
#: Bucket width of each bar view, ns.
_BAR_WIDTH_NS = {"bars_1s": 10**9, "bars_1m": 60 * 10**9, "bars_1h": 3_600 * 10**9}
#: Buckets per refresh batch of each bar aggregate on TimescaleDB: a day, a
#: week, a month (what dbschema/0031 gives the refresh policies). Since 2.19
#: a refresh works in batches of 10 buckets, one transaction each, and a
#: manual refresh too: on 2.28.3, refreshing ``bars_1s`` over the 11.8 days of
#: 1,000 imported ticks took 279 s (101,700 batches), 0.18 s with a day each.
_BAR_BUCKETS_PER_BATCH = {"bars_1s": 86_400, "bars_1m": 10_080, "bars_1h": 720}


async def refresh_bars(
    conn: asyncpg.Connection,
    start_ns: int | None = None,
    end_ns: int | None = None,
    *,
    wait: float = 300.0,
) -> int:
    """Materialise the bar continuous aggregates over ``[start_ns, end_ns)``.

    Call after importing history: with TimescaleDB, ticks older than an
    aggregate's materialisation watermark show in its bars only once that
    range is refreshed (the policies do it within their schedule). No-op on
    plain PostgreSQL (plain views). Must not run inside a transaction.

    Parameters
    ----------
    start_ns, end_ns
        Window in int64 ns since the epoch (UTC); None leaves that side open.
        Each aggregate is refreshed over every one of its buckets that the
        window touches (TimescaleDB refreshes only the buckets wholly
        inside the window it is given, and rejects a window that holds
        none: "refresh window too small"), so a window of two minutes
        refreshes the hour that holds it in ``bars_1h``.
    wait
        Seconds to keep retrying a refresh that TimescaleDB (>= 2.27)
        rejects because its window overlaps one in progress on the same
        aggregate (SQLSTATE 55P03: a refresh policy or another import);
        retried with back-off from 50 ms to 2 s, then the
        ``asyncpg.LockNotAvailableError`` is raised.

    Returns
    -------
    int
        Aggregates refreshed (0 on plain PostgreSQL).
    """
    if not await has_timescale(conn):
        return 0
    batched = await conn.fetchval(  # (TimescaleDB >= 2.19: the refresh takes options)
        "SELECT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'refresh_continuous_aggregate' "
        "AND 'options' = ANY(proargnames))"
    )
    call = "CALL refresh_continuous_aggregate($1::regclass, $2::timestamptz, $3::timestamptz" + (
        ", options => jsonb_build_object('buckets_per_batch', $4::int))" if batched else ")"
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    for view in BAR_VIEWS:
        width = _BAR_WIDTH_NS[view]  # (buckets of at most an hour: aligned to the epoch)
        lo_ns = None if start_ns is None else int(start_ns) // width * width
        hi_ns = None if end_ns is None else -(-int(end_ns) // width) * width
        if lo_ns is not None and hi_ns is not None and hi_ns <= lo_ns:
            hi_ns = lo_ns + width
        lo = None if lo_ns is None else ns_to_datetime(lo_ns)
        hi = None if hi_ns is None else ns_to_datetime(hi_ns)
        pause = 0.05
        while True:
            try:
                await conn.execute(call, view, lo, hi, *([_BAR_BUCKETS_PER_BATCH[view]] if batched else []))
                break
            except asyncpg.LockNotAvailableError:
                if loop.time() + pause > deadline:
                    raise
                await asyncio.sleep(pause)
                pause = min(2 * pause, 2.0)
    return len(BAR_VIEWS)


async def tick_symbols(conn: asyncpg.Connection) -> list[str]:
    """The symbols with stored ticks, sorted (by the database's collation).

    On TimescaleDB with more than :data:`READ_CHUNKS` chunks, one query per
    window of that many chunks (as :func:`read_ticks`).
    """
    cuts = await _chunk_cuts(conn, None, None)
    found: set[str] = set()
    for w in range(len(cuts) + 1):
        conds = []
        if w > 0:
            conds.append(f"ts >= {cuts[w - 1]}")
        if w < len(cuts):
            conds.append(f"ts < {cuts[w]}")
        where = f"WHERE {' AND '.join(conds)}" if conds else ""
        found.update(r["symbol"] for r in await conn.fetch(f"SELECT DISTINCT symbol FROM ticks {where}"))
    return list(
        await conn.fetchval("SELECT array(SELECT s FROM unnest($1::text[]) s ORDER BY s)", list(found))
    )


async def tick_catalogue(
    conn: asyncpg.Connection, *, gap_ns: int = 3_600 * 10**9, symbols: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Per symbol: first_ns, last_ns, ticks, and the gaps longer than ``gap_ns``.

    ``gaps`` is a list of ``(from_ns, to_ns)`` (consecutive ticks further apart
    than ``gap_ns``), at most 20 per symbol, longest first; ``n_gaps`` counts all.

    On TimescaleDB with more than :data:`READ_CHUNKS` chunks, one query per
    window of that many chunks (as :func:`read_ticks`), merged here.
    """
    gap = timedelta(microseconds=gap_ns // 1000)
    args: list[Any] = [gap]
    if symbols is not None:
        args.append(list(symbols))
    cuts = await _chunk_cuts(conn, None, None)
    found: dict[str, dict[str, Any]] = {}
    for w in range(len(cuts) + 1):
        conds = [] if symbols is None else ["symbol = ANY($2::text[])"]
        if w > 0:
            conds.append(f"ts >= {cuts[w - 1]}")
        if w < len(cuts):
            conds.append(f"ts < {cuts[w]}")
        where = f"WHERE {' AND '.join(conds)}" if conds else ""
        rows = await conn.fetch(
            f"""
            WITH t AS (
                SELECT symbol, ts, lag(ts) OVER (PARTITION BY symbol ORDER BY ts, seq) AS prev
                FROM ticks {where}
            ), s AS (
                SELECT symbol, min(ts) AS first, max(ts) AS last, count(*) AS n,
                       count(*) FILTER (WHERE ts - prev > $1) AS n_gaps
                FROM t GROUP BY symbol
            ), g AS (
                SELECT symbol, prev, ts,
                       row_number() OVER (PARTITION BY symbol ORDER BY ts - prev DESC, ts) AS r
                FROM t WHERE ts - prev > $1
            )
            SELECT s.symbol, s.first, s.last, s.n, s.n_gaps,
                   coalesce(array_agg(g.prev ORDER BY g.prev) FILTER (WHERE g.r IS NOT NULL), '{{}}') AS gap_from,
                   coalesce(array_agg(g.ts ORDER BY g.prev) FILTER (WHERE g.r IS NOT NULL), '{{}}') AS gap_to
            FROM s LEFT JOIN g ON g.symbol = s.symbol AND g.r <= 20
            GROUP BY s.symbol, s.first, s.last, s.n, s.n_gaps
            ORDER BY s.symbol
            """,
            *args,
        )
        for r in rows:
            gaps = list(zip(r["gap_from"], r["gap_to"], strict=True))
            cat = found.get(r["symbol"])
            if cat is None:
                found[r["symbol"]] = {
                    "first": r["first"],
                    "last": r["last"],
                    "n": r["n"],
                    "n_gaps": r["n_gaps"],
                    "gaps": gaps,
                }
                continue
            if r["first"] - cat["last"] > gap:  # the gap between two windows
                cat["n_gaps"] += 1
                cat["gaps"].append((cat["last"], r["first"]))
            cat["last"] = r["last"]
            cat["n"] += r["n"]
            cat["n_gaps"] += r["n_gaps"]
            cat["gaps"].extend(gaps)
    order = list(found)  # (one window: the query's order)
    if cuts:
        order = await conn.fetchval("SELECT array(SELECT s FROM unnest($1::text[]) s ORDER BY s)", order)
    out = []
    for symbol in order:
        cat = found[symbol]
        longest = sorted(cat["gaps"], key=lambda g: (-(g[1] - g[0]), g[1]))[:20]
        out.append(
            {
                "symbol": symbol,
                "first_ns": datetime_to_ns(cat["first"]),
                "last_ns": datetime_to_ns(cat["last"]),
                "ticks": int(cat["n"]),
                "n_gaps": int(cat["n_gaps"]),
                "gaps": [(datetime_to_ns(a), datetime_to_ns(b)) for a, b in sorted(longest)],
            }
        )
    return out


async def write_instrument(
    conn: asyncpg.Connection,
    symbol: str,
    *,
    tick_size: float | None = None,
    lot_size: float | None = None,
    currency: str | None = None,
) -> None:
    """Upsert one ``instruments`` row; fields given as None keep their stored value."""
    await conn.execute(
        """
        INSERT INTO instruments (symbol, tick_size, lot_size, currency) VALUES ($1, $2, $3, $4)
        ON CONFLICT (symbol) DO UPDATE SET
            tick_size = coalesce(EXCLUDED.tick_size, instruments.tick_size),
            lot_size = coalesce(EXCLUDED.lot_size, instruments.lot_size),
            currency = coalesce(EXCLUDED.currency, instruments.currency)
        """,
        symbol,
        tick_size,
        lot_size,
        currency,
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
        _pg_ts(events["ts"]).astype(">i8"),
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
    where = [f"symbol = {_literal(symbol)}"]
    if start_ns is not None:
        where.append(f"ts >= {_ts_literal(start_ns)}")
    if end_ns is not None:
        where.append(f"ts < {_ts_literal(end_ns)}")
    query = (
        "SELECT ((extract(epoch FROM ts) * 1000000)::int8 * 1000), kind::int8, coalesce(side, 0)::int8, "
        "coalesce(price, 'NaN'::float8), coalesce(size, 'NaN'::float8), coalesce(order_id, -1), "
        f"coalesce(level, 0)::int8 FROM book_events WHERE {' AND '.join(where)} ORDER BY ts, seq"
    )
    raw = decode_copy(
        await _copy_out_raw(conn, query), _copy_row_dtype([">i8", ">i8", ">i8", ">f8", ">f8", ">i8", ">i8"])
    )
    out = np.empty(len(raw), BOOK_EVENT_DTYPE)
    for k, name in enumerate(BOOK_EVENT_DTYPE.names or ()):
        out[name] = raw[f"v{k}"]
    return out


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
            _pg_ts(rows["ts"]).astype(">i8"),
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
        f"coalesce({_quote(name)}, 'NaN'::float8)" if kind == "f" else f"{_quote(name)}::int8"
        for name, kind in fields
    )
    order = ", ".join(["ts_ns", *(_quote(name) for name, _ in fields)])
    chunks: list[bytes] = []

    async def sink(data: bytes) -> None:
        chunks.append(data)

    query = (
        f"SELECT ts_ns, {select} FROM {result_table(stream)} WHERE run_id = '{uuid.UUID(str(run_id))}'::uuid "
        f"AND symbol = {_literal(symbol)} ORDER BY {order}"
    )
    await conn.copy_from_query(query, output=sink, format="binary")
    row_dtype = _copy_row_dtype([">i8", *(_wire(kind) for _, kind in fields)])
    raw = decode_copy(b"".join(chunks), row_dtype)
    out = np.empty(len(raw), dtype=dtype)
    out["ts"] = raw["v0"]
    for i, (name, _) in enumerate(fields, start=1):
        out[name] = raw[f"v{i}"]
    return out


async def stream_fills_and_equity(
    conn: asyncpg.Connection, run_id: str | uuid.UUID, symbols: Sequence[str], rows: int = 1 << 16
) -> AsyncIterator[tuple[list[np.ndarray], tuple[np.ndarray, ...]]]:
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
        + " ".join(f"WHEN {_literal(s)} THEN {j}" for j, s in enumerate(order))
        + " END)::int8"
    )
    where = f"WHERE run_id = '{uuid.UUID(str(run_id))}'::uuid AND symbol IN ({', '.join(_literal(s) for s in order)})"

    def num(*cols: str) -> str:
        return ", ".join(f"coalesce({c}, 'NaN'::float8)" for c in cols)

    query = (
        f"SELECT ts_ns, 0::int8 AS kind, {index} AS j, order_id::int8 AS a, side::int8 AS b,"
        f" {num('price', 'qty', 'fee')}, 'NaN'::float8 FROM fills {where} UNION ALL "
        f"SELECT ts_ns, 1::int8, {index}, 0::int8, 0::int8, {num('cash', 'position', 'price', 'equity')}"
        f" FROM equity {where} ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9"
    )
    row_dtype = _copy_row_dtype([">i8"] * 5 + [">f8"] * 4)
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
    cut = _Cut(rows)
    try:
        while True:
            item = await queue.get()
            if isinstance(item, BaseException):
                raise item
            done = item is None
            pieces = cut.add(rows_in.finish() if done else rows_in.feed(item))
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
        for name, col in zip(FILL_DTYPE.names, ("v0", "v3", "v4", "v5", "v6", "v7"), strict=True):
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
            if buf[:11] != _COPY_HEADER[:11]:
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
        if self._buf not in (_COPY_TRAILER, b""):
            raise ValueError("binary COPY rows do not match the expected layout (a NULL in the data?)")
        return np.empty(0, self._dtype)


def _quote(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


# --------------------------------------------------------------------------
# runs


def json_value(value: Any) -> Any:
    """A jsonb column value as Python: asyncpg returns jsonb as text unless a
    codec is set, so decode strings and pass anything else through."""
    if isinstance(value, (str, bytes, bytearray)):
        return json.loads(value)
    return value


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def _ts_param(ns: int | None) -> datetime | None:
    return None if ns is None else ns_to_datetime(ns)


async def create_run(
    conn: asyncpg.Connection,
    run_id: str | uuid.UUID,
    strategy: str | None,
    spec: Mapping[str, Any] | None,
    params: Mapping[str, Any] | None,
    symbols: Sequence[str],
    data_start_ns: int | None,
    data_end_ns: int | None,
    *,
    status: str = "pending",
) -> None:
    """Insert the ``runs`` row (``started_at`` = now when ``status`` is running).

    A pending run is started by the replay agent (:func:`start_run`), so the
    run's wall time does not include waiting for a worker.

    Idempotent: a run that exists already is left as it is (a restarted
    worker may call this again).
    """
    if status not in RUN_STATUSES:
        raise ValueError(f"unknown run status {status!r}; expected one of {RUN_STATUSES}")
    await conn.execute(
        """
        INSERT INTO runs (run_id, status, started_at, strategy, spec, params, symbols,
                          data_start, data_end)
        VALUES ($1, $2, CASE WHEN $2 = 'running' THEN now() END, $3,
                $4::text::jsonb, $5::text::jsonb, $6, $7, $8)
        ON CONFLICT (run_id) DO NOTHING
        """,
        uuid.UUID(str(run_id)),
        status,
        strategy,
        _json(dict(spec) if spec is not None else None),
        _json(dict(params) if params is not None else None),
        list(symbols),
        _ts_param(data_start_ns),
        _ts_param(data_end_ns),
    )


async def start_run(conn: asyncpg.Connection, run_id: str | uuid.UUID) -> None:
    """Mark a pending run as running (sets ``started_at`` once)."""
    await conn.execute(
        "UPDATE runs SET status = 'running', started_at = coalesce(started_at, now()) "
        "WHERE run_id = $1 AND status = 'pending'",
        uuid.UUID(str(run_id)),
    )


async def update_progress(
    conn: asyncpg.Connection,
    run_id: str | uuid.UUID,
    symbol: str,
    ticks_processed: int,
    last_ts_ns: int | None,
    done: bool = False,
    *,
    ticks_in: int | None = None,
    ticks_rejected: int | None = None,
    rejects: Mapping[str, int] | None = None,
    hot_lag_s: float | None = None,
    sink_lag_s: float | None = None,
) -> None:
    """Upsert the progress of one (run, symbol); counts are cumulative.

    Never moves backwards: a replayed (older) update keeps the larger counts,
    the later timestamp, ``done`` once set, and the ``rejects`` of the most
    advanced update (by processed + rejected). ``ticks_in`` (ticks read, known
    at the end of the stream) is kept when not given. The stage lags
    (seconds: replay -> hot path's results, results -> stored) are the
    latest given.
    """
    await conn.execute(
        """
        INSERT INTO run_progress (run_id, symbol, ticks_processed, last_ts, done, updated_at,
                                  ticks_in, ticks_rejected, rejects, hot_lag_s, sink_lag_s)
        VALUES ($1, $2, $3, $4, $5, now(), $6, coalesce($7, 0), coalesce($8::text::jsonb, '{}'::jsonb),
                $9, $10)
        ON CONFLICT (run_id, symbol) DO UPDATE SET
            ticks_processed = GREATEST(run_progress.ticks_processed, EXCLUDED.ticks_processed),
            ticks_rejected = GREATEST(run_progress.ticks_rejected, EXCLUDED.ticks_rejected),
            rejects = CASE
                WHEN $8::text IS NOT NULL
                     AND EXCLUDED.ticks_processed + EXCLUDED.ticks_rejected
                         >= run_progress.ticks_processed + run_progress.ticks_rejected
                THEN EXCLUDED.rejects ELSE run_progress.rejects END,
            ticks_in = GREATEST(run_progress.ticks_in, EXCLUDED.ticks_in),
            last_ts = GREATEST(run_progress.last_ts, EXCLUDED.last_ts),
            done = run_progress.done OR EXCLUDED.done,
            hot_lag_s = coalesce(EXCLUDED.hot_lag_s, run_progress.hot_lag_s),
            sink_lag_s = coalesce(EXCLUDED.sink_lag_s, run_progress.sink_lag_s),
            updated_at = now()
        """,
        uuid.UUID(str(run_id)),
        symbol,
        int(ticks_processed),
        _ts_param(last_ts_ns),
        bool(done),
        None if ticks_in is None else int(ticks_in),
        None if ticks_rejected is None else int(ticks_rejected),
        None if rejects is None else _json({str(k): int(v) for k, v in rejects.items()}),
        None if hot_lag_s is None else float(hot_lag_s),
        None if sink_lag_s is None else float(sink_lag_s),
    )


_FINISH_FIELDS = {
    "ticks_in": int,
    "ticks_processed": int,
    "ticks_rejected": int,
    "rejects": dict,
    "orders": int,
    "fills": int,
    "wall_seconds": float,
    "error": str,
}


async def finish_run(conn: asyncpg.Connection, run_id: str | uuid.UUID, status: str, **counts: Any) -> None:
    """Set ``status``, ``finished_at`` = now and the given counts of a run.

    ``counts``: any of ticks_in, ticks_processed, ticks_rejected, rejects
    (dict reason -> count), orders, fills, wall_seconds, error.
    """
    if status not in RUN_STATUSES:
        raise ValueError(f"unknown run status {status!r}; expected one of {RUN_STATUSES}")
    unknown = set(counts) - set(_FINISH_FIELDS)
    if unknown:
        raise TypeError(f"finish_run got unknown fields {sorted(unknown)}; allowed: {sorted(_FINISH_FIELDS)}")
    sets = ["status = $2", "finished_at = now()"]
    args: list[Any] = [uuid.UUID(str(run_id)), status]
    for name, value in counts.items():
        args.append(value)
        if name == "rejects":
            args[-1] = _json(dict(value) if value is not None else {})
            sets.append(f"rejects = ${len(args)}::text::jsonb")
        else:
            if value is not None:
                args[-1] = _FINISH_FIELDS[name](value)
            sets.append(f"{name} = ${len(args)}")
    status_line = await conn.execute(f"UPDATE runs SET {', '.join(sets)} WHERE run_id = $1", *args)
    if status_line.endswith(" 0"):
        raise LookupError(f"no run {run_id} to finish")


async def end_unfinished_runs(
    conn: asyncpg.Connection, run_ids: Sequence[str | uuid.UUID], status: str, error: str
) -> list[str]:
    """Set ``status`` (failed or cancelled) and ``error`` on those of
    ``run_ids`` still pending, running or paused; returns their ids.

    A sink completing a run locks its row and completes it only while it is
    unfinished (agents/sink.py), so the two cannot both end the same run.
    """
    if status not in ("failed", "cancelled"):
        raise ValueError(f"end_unfinished_runs: status must be failed or cancelled, got {status!r}")
    rows = await conn.fetch(
        "UPDATE runs SET status = $2, error = $3, finished_at = now()"
        " WHERE run_id = ANY($1::uuid[]) AND status = ANY($4::text[]) RETURNING run_id",
        [uuid.UUID(str(r)) for r in run_ids],
        status,
        error,
        list(UNFINISHED),
    )
    return [str(r["run_id"]) for r in rows]


async def write_metrics(
    conn: asyncpg.Connection, run_id: str | uuid.UUID, metrics: Mapping[str, float]
) -> None:
    """Upsert ``run_metrics`` rows (name -> value) of a run."""
    if not metrics:
        return
    run = uuid.UUID(str(run_id))
    await conn.executemany(
        "INSERT INTO run_metrics (run_id, name, value) VALUES ($1, $2, $3) "
        "ON CONFLICT (run_id, name) DO UPDATE SET value = EXCLUDED.value",
        [(run, str(name), None if value is None else float(value)) for name, value in metrics.items()],
    )


async def list_runs(conn: asyncpg.Connection, limit: int = 50) -> list[dict[str, Any]]:
    """The latest runs, newest first, as dicts (run_id as str, JSON decoded)."""
    rows = await conn.fetch(
        """
        SELECT run_id, created_at, started_at, finished_at, status, strategy,
               spec::text AS spec, params::text AS params, symbols, data_start, data_end,
               ticks_in, ticks_processed, ticks_rejected, rejects::text AS rejects,
               orders, fills, wall_seconds, error
        FROM runs ORDER BY created_at DESC, run_id LIMIT $1
        """,
        int(limit),
    )
    out = []
    for row in rows:
        item = dict(row)
        item["run_id"] = str(item["run_id"])
        for key in ("spec", "params", "rejects"):
            if item[key] is not None:
                item[key] = json.loads(item[key])
        out.append(item)
    return out
