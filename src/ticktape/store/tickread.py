"""Reading ticks: one symbol in ``(ts, seq)`` order, paged with keyset binary COPY queries."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import itertools
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import asyncpg
import numpy as np

from ticktape.errors import KeyOrderError
from ticktape.model.batch import TICK_DTYPE
from ticktape.store.codec import (
    COPY_HEADER,
    COPY_TRAILER,
    PG_EPOCH_US,
    copy_out,
    datetime_to_ns,
    decode_copy,
    pg_us_iso,
    sql_literal,
    ts_literal,
)
from ticktape.store.connection import has_timescale
from ticktape.store.ticks import KEY_ROW, TICK_FLOATS, TICK_ROW, unlist_tables


async def read_ticks(
    conn: asyncpg.Connection,
    symbol: str,
    start_ns: int | None = None,
    end_ns: int | None = None,
    batch_size: int = 20_000,
    *,
    second: asyncpg.Connection | None = None,
) -> AsyncGenerator[np.ndarray, None]:
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
    cuts = await chunk_cuts(conn, start_ns, end_ns)
    plan = None if cuts else await _block_plan(conn, symbol, start_ns, end_ns)
    if plan is None:  # by the key only
        reader = _TickPages(symbol, start_ns, end_ns, int(batch_size))
        reader.cuts = cuts
        async with contextlib.aclosing(reader.batches(conn, second)) as batches:
            async for out in batches:
                yield out
        return
    cut = Cut(int(batch_size))
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


class Cut:
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


async def chunk_cuts(conn: asyncpg.Connection, start_ns: int | None, end_ns: int | None) -> list[str]:
    """Where the read windows of ``[start_ns, end_ns)`` meet (timestamptz
    literals, ascending): the start of every :data:`READ_CHUNKS`-th chunk of
    the ``ticks`` hypertable in that range; none on plain PostgreSQL or when
    the range has at most that many chunks."""
    if not await has_timescale(conn):
        return []
    where = ["hypertable_name = 'ticks'"]
    if start_ns is not None:
        where.append(f"range_end > {ts_literal(start_ns)}")
    if end_ns is not None:
        where.append(f"range_start < {ts_literal(end_ns)}")
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
        self.base = [f"symbol = {sql_literal(symbol)}"]
        if end_ns is not None:
            self.base.append(f"ts < {ts_literal(end_ns)}")
        self.mixed = False  # NULLs vary row by row: let the server fill in NaN
        self.cuts: list[str] = []  # read windows (TimescaleDB, many chunks): see chunk_cuts
        self.window = 0  # queries read ts in [cuts[window - 1], cuts[window])

    async def batches(
        self, conn: asyncpg.Connection, second: asyncpg.Connection | None
    ) -> AsyncGenerator[np.ndarray, None]:
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
            when = f"'{pg_us_iso(after[0])}'::timestamptz"
            # (ts >= ...: partitions before it are pruned; the row comparison alone prunes nothing)
            where.append(f"ts >= {when} AND (ts, seq) > ({when}, {after[1]})")
        elif self.start_ns is not None:
            where.append(f"ts >= {ts_literal(self.start_ns)}")
        if upto is not None:
            until = f"'{pg_us_iso(upto[0])}'::timestamptz"
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
                cols = ", ".join(f"coalesce({name}, 'NaN'::float8)" for name in TICK_FLOATS)
            else:
                cols = ", ".join(TICK_FLOATS)
            query = f"SELECT ts, seq, {cols} FROM ticks WHERE {where} ORDER BY ts, seq LIMIT {int(limit)}"
            data = await _copy_out(conn, query)
            if attempt == "nan":
                raw = decode_copy(data, TICK_ROW)
                out = np.empty(len(raw), dtype=TICK_DTYPE)
                out["ts"] = (raw["v0"].astype(np.int64) + PG_EPOCH_US) * 1000
                for i, name in enumerate(TICK_FLOATS, start=2):
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
        aggs = ", ".join(f"array_agg({name})" for name in ("ts", "seq", *TICK_FLOATS))
        for attempt in ("raw", "nan"):
            if attempt == "raw" and self.mixed:
                continue
            if attempt == "nan":
                cols = ", ".join(f"coalesce({name}, 'NaN'::float8) AS {name}" for name in TICK_FLOATS)
            else:
                cols = ", ".join(TICK_FLOATS)
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
        keys = decode_copy(await _copy_out(conn, query), KEY_ROW)
        if len(keys) < 2:  # no row after this page
            return None
        return int(keys["v0"][0]), int(keys["v1"][0])

    async def pipelined(
        self, one: asyncpg.Connection, two: asyncpg.Connection
    ) -> AsyncGenerator[np.ndarray, None]:
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
    where = [f"symbol = {sql_literal(symbol)}"]
    if start_ns is not None:
        where.append(f"ts >= {ts_literal(start_ns)}")
    if end_ns is not None:
        where.append(f"ts < {ts_literal(end_ns)}")
    return " AND ".join(where)


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
            *(c for c in TICK_FLOATS if c not in null_columns),
        )

    async def pages(
        self, conn: asyncpg.Connection, second: asyncpg.Connection | None, batch_size: int
    ) -> AsyncGenerator[np.ndarray, None]:
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
            await unlist_tables(conn, [self.table])
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
            where = "" if bound is None else f" WHERE ts {op} {ts_literal(bound)}"
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
            where.append(f"ts >= {ts_literal(self.lo)}")
        if self.hi is not None:
            where.append(f"ts < {ts_literal(self.hi)}")
        for attempt in ("raw", "nan"):
            if attempt == "raw" and self.mixed:
                continue
            cols = (
                f"coalesce({c}, 'NaN'::float8)" if attempt == "nan" and c in TICK_FLOATS else c
                for c in self.columns
            )
            aggs = ", ".join(f"array_agg({c})" for c in cols)
            query = f"SELECT {aggs} FROM {self.table} WHERE {' AND '.join(where)}"
            decoded = decode_tick_arrays(await _copy_out(conn, query, _BLOCK_SCAN), self.columns)
            if decoded is not None:
                return decoded
            self.mixed = True
        raise AssertionError("unreachable: the NaN query has no NULLs")  # pragma: no cover


def _my_turn(state: dict[str, Any], k: int, n_conns: int) -> bool:
    return bool(state["stop"] or k - state["taken"] < n_conns)


async def _in_turn(
    conns: Sequence[asyncpg.Connection], jobs: Sequence[Any], fetch: Any
) -> AsyncGenerator[Any, None]:
    """``await fetch(conn, job)`` of each job, yielded in order.

    Job k runs on ``conns[k % len(conns)]``, no further ahead than the
    number of connections past the last one taken: with two connections,
    both work while the consumer handles the page before. Leaving early lets
    a query in flight finish (cancelling it would leave its connection busy).
    """
    loop = asyncio.get_running_loop()
    results: list[asyncio.Future[Any] | None] = [loop.create_future() for _ in jobs]
    state: dict[str, Any] = {"taken": 0, "stop": False}
    moved = asyncio.Condition()

    async def worker(i: int) -> None:
        for k in range(i, len(jobs), len(conns)):
            async with moved:
                await moved.wait_for(functools.partial(_my_turn, state, k, len(conns)))
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
    data: bytes, columns: Sequence[str] = ("ts", "seq", *TICK_FLOATS)
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
    if data[:11] != COPY_HEADER[:11]:
        raise ValueError("not a PostgreSQL binary COPY stream")
    pos = 19 + int.from_bytes(data[15:19], "big")
    end = len(data) - 2
    if data[end:] != COPY_TRAILER:
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
    out["ts"] = (ts.astype(np.int64) + PG_EPOCH_US) * 1000
    for name in TICK_FLOATS:
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
        return await copy_out(conn, query)


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
    if data[:11] != COPY_HEADER[:11]:
        raise ValueError("not a PostgreSQL binary COPY stream")
    start = 19 + int.from_bytes(data[15:19], "big")
    end = len(data) - 2
    if data[end:] != COPY_TRAILER:
        raise ValueError("binary COPY stream without its trailer")
    width = len(TICK_FLOATS)
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
        piece["ts"] = (run["v0"].astype(np.int64) + PG_EPOCH_US) * 1000
        for i, (name, null) in enumerate(zip(TICK_FLOATS, nulls, strict=True), start=2):
            piece[name] = np.nan if null else run[f"v{i}"]
        pieces.append(piece)
        last = (int(run["v0"][-1]), int(run["v1"][-1]))
        pos += k * dtype.itemsize
    if pos != end:
        raise ValueError("binary COPY stream ends inside a row")
    if not pieces:
        return np.empty(0, dtype=TICK_DTYPE), None
    return (pieces[0] if len(pieces) == 1 else np.concatenate(pieces)), last


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
