"""The schema on a real TimescaleDB server (see docs/timescaledb.md).

Runs when TICKTAPE_TEST_TIMESCALE_URL is the DSN of a PostgreSQL server with
the timescaledb extension available (and preloaded); each test works in a new
database on that server, dropped afterwards. Skipped otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import numpy as np
import pytest

from ticktape import store, testing
from ticktape.config import with_database
from ticktape.data.importers import Importer, import_to_store
from ticktape.model.batch import DTYPES, TICK_DTYPE
from ticktape.store import tickread

URL = os.environ.get("TICKTAPE_TEST_TIMESCALE_URL")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not URL, reason="TICKTAPE_TEST_TIMESCALE_URL is not set (no TimescaleDB server to test)"
    ),
]

BASE = 1_704_067_200 * 10**9  # 2024-01-01T00:00Z


@pytest.fixture
async def ts_conn() -> AsyncIterator[asyncpg.Connection]:
    assert URL
    admin = await asyncpg.connect(with_database(URL, "postgres"))
    name = f"tt_ts_{uuid.uuid4().hex[:10]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await store.connect(with_database(URL, name))
    try:
        yield conn
    finally:
        await conn.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def quotes(n: int, t0: int = BASE, step_ns: int = 250_000_000, seed: int = 1) -> np.ndarray:
    """Quotes around a random walk from 100, 0.02 wide, on a 1e-6 grid."""
    return testing.quotes(
        n, t0=t0, step_ns=step_ns, bid=99.99, spread=0.02, walk=0.01, size=(1, 50), decimals=6, seed=seed
    )


async def test_migrations_create_hypertables_compression_and_aggregates(ts_conn: asyncpg.Connection) -> None:
    applied = await store.migrate(ts_conn)
    assert applied == [name for _, name, _ in store.migrations()]
    assert await store.has_timescale(ts_conn)
    hyper = {
        r["hypertable_name"]: r["compression_enabled"]
        for r in await ts_conn.fetch(
            "SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables"
        )
    }
    assert hyper["ticks"] is True and hyper["book_events"] is True
    assert {"signals", "orders", "fills", "equity"} <= set(hyper)
    segment = await ts_conn.fetchval(
        "SELECT attname FROM timescaledb_information.compression_settings "
        "WHERE hypertable_name = 'ticks' AND segmentby_column_index = 1"
    )
    assert segment == "symbol"
    caggs = {
        r["view_name"]: r["materialized_only"]
        for r in await ts_conn.fetch(
            "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates"
        )
    }
    assert caggs == {"bars_1s": False, "bars_1m": False, "bars_1h": False}
    jobs = {
        (r["proc_name"], r["hypertable_name"])
        for r in await ts_conn.fetch("SELECT proc_name, hypertable_name FROM timescaledb_information.jobs")
    }
    assert ("policy_compression", "ticks") in jobs
    assert ("policy_refresh_continuous_aggregate", "bars_1m") in jobs
    assert await store.migrate(ts_conn) == []


async def test_round_trip_compressed_reimport_and_bars(ts_conn: asyncpg.Connection) -> None:
    await store.migrate(ts_conn)
    ticks = quotes(3 * 3600 * 4)  # 3 hours of 4 quotes/s, over 1-day chunks
    ticks["last"][::10] = ticks["bid"][::10]
    ticks["last_size"][::10] = 3.0
    assert await store.write_ticks(ts_conn, "TS", ticks) == len(ticks)
    back = np.concatenate([b async for b in store.read_ticks(ts_conn, "TS", batch_size=7_000)])
    for name in TICK_DTYPE.names or ():
        np.testing.assert_array_equal(back[name], ticks[name], err_msg=name)

    # real-time aggregation before any refresh
    rows = await ts_conn.fetch("SELECT * FROM bars_1h WHERE symbol = 'TS' ORDER BY bucket")
    assert len(rows) == 3
    mid = (ticks["bid"] + ticks["ask"]) / 2
    price = np.where(np.isnan(mid), ticks["last"], mid)
    first = rows[0]
    hour = 3600 * 4
    assert first["open"] == pytest.approx(price[0])
    assert first["close"] == pytest.approx(price[hour - 1])
    assert first["high"] == pytest.approx(price[:hour].max())
    assert first["low"] == pytest.approx(price[:hour].min())
    assert first["ticks"] == hour
    assert first["trades"] == hour // 10
    assert first["volume"] == pytest.approx(3.0 * (hour // 10))

    # materialised: same answer
    assert await store.refresh_bars(ts_conn, BASE, BASE + 4 * 3600 * 10**9) == 3
    n_mat = await ts_conn.fetchval(
        "SELECT count(*) FROM _timescaledb_catalog.continuous_agg WHERE user_view_name = 'bars_1m'"
    )
    assert n_mat == 1
    again = await ts_conn.fetch("SELECT * FROM bars_1h WHERE symbol = 'TS' ORDER BY bucket")
    assert [tuple(r) for r in again] == [tuple(r) for r in rows]
    assert await ts_conn.fetchval("SELECT count(*) FROM bars_1m WHERE symbol = 'TS'") == 180
    assert await ts_conn.fetchval("SELECT sum(ticks) FROM bars_1s WHERE symbol = 'TS'") == len(ticks)

    # compress every chunk, then re-import: nothing new, all still readable
    chunks = await ts_conn.fetch("SELECT show_chunks('ticks') AS c")
    for r in chunks:
        await ts_conn.execute("SELECT compress_chunk($1::regclass)", r["c"])
    compressed = await ts_conn.fetchval(
        "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'ticks' AND is_compressed"
    )
    assert compressed == len(chunks) >= 1
    assert await store.write_ticks(ts_conn, "TS", ticks) == 0
    more = quotes(10, t0=int(ticks["ts"][-1]) + 10**9)
    assert await store.write_ticks(ts_conn, "TS", more) == 10
    assert await ts_conn.fetchval("SELECT count(*) FROM ticks WHERE symbol = 'TS'") == len(ticks) + 10
    back = np.concatenate([b async for b in store.read_ticks(ts_conn, "TS")])
    np.testing.assert_array_equal(back["ts"], np.concatenate([ticks["ts"], more["ts"]]))

    cat = await store.tick_catalogue(ts_conn, gap_ns=60 * 10**9)
    assert cat[0]["symbol"] == "TS" and cat[0]["ticks"] == len(ticks) + 10


async def test_book_events_and_instruments(ts_conn: asyncpg.Connection) -> None:
    await store.migrate(ts_conn)
    ev = testing.book_events(
        (BASE, 11, 0, np.nan, np.nan),
        (BASE, 10, 1, 99.5, 3.0),
        (BASE + 5_000, 10, -1, 100.5, 4.0),
        (BASE + 9_000, 1, 1, 99.6, 1.0, 42),
    )
    assert await store.write_book_events(ts_conn, "TS", ev) == 4
    assert await store.write_book_events(ts_conn, "TS", ev) == 0
    rows = await ts_conn.fetch("SELECT kind, side, order_id, level FROM book_events ORDER BY ts, seq")
    assert [tuple(r) for r in rows] == [
        (11, None, None, None),
        (10, 1, None, None),
        (10, -1, None, None),
        (1, 1, 42, None),
    ]
    await store.write_instrument(ts_conn, "TS", tick_size=0.01, currency="USD")
    await store.write_instrument(ts_conn, "TS", lot_size=1.0)
    row = await ts_conn.fetchrow("SELECT * FROM instruments WHERE symbol = 'TS'")
    assert (row["tick_size"], row["lot_size"], row["currency"]) == (0.01, 1.0, "USD")


# -- the read and write paths of 2026-12 (partitions on plain PostgreSQL) -----


async def _second(conn: asyncpg.Connection) -> asyncpg.Connection:
    """Another connection to the database of ``conn``."""
    assert URL
    return await store.connect(with_database(URL, await conn.fetchval("SELECT current_database()")))


async def _read(conn: asyncpg.Connection, symbol: str, **kw) -> np.ndarray:
    parts = [b async for b in store.read_ticks(conn, symbol, **kw)]
    return np.concatenate(parts) if parts else np.empty(0, TICK_DTYPE)


def _assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert len(a) == len(b)
    for name in TICK_DTYPE.names or ():
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


async def test_0030_leaves_the_hypertable_and_tick_writer_reads_and_deletes_work_on_it(
    ts_conn: asyncpg.Connection,
) -> None:
    """0030 changes nothing on TimescaleDB; TickWriter (one or two connections)
    loads the 70 new one-day chunks in bulk, OPEN_CHUNKS at a time; read_ticks on one and on two connections give
    the same ticks, before and after compression; re-imports store nothing;
    delete_ticks deletes rows of compressed chunks."""
    applied = await store.migrate(ts_conn)
    assert "0030_ticks_partitions" in applied
    assert await ts_conn.fetchval("SELECT relkind::text FROM pg_class WHERE oid = 'ticks'::regclass") == "r"
    assert (
        await ts_conn.fetchval(
            "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = 'ticks'"
        )
        == 1
    )
    assert await ts_conn.fetchval("SELECT to_regclass('ticks_0030_old') IS NULL")

    # 70 days of sparse quotes (70 one-day chunks, three UTC months), trades interleaved
    n = 70 * 48
    ticks = quotes(n, t0=BASE + 20 * 86_400 * 10**9, step_ns=1_800 * 10**9)
    ticks["last"] = np.where(np.arange(n) % 3 == 0, ticks["bid"], np.nan)
    ticks["last_size"] = np.where(np.arange(n) % 3 == 0, 2.0, np.nan)
    parts = np.array_split(np.arange(n), 5)
    other = await _second(ts_conn)
    try:
        async with store.TickWriter(ts_conn, second=other) as w:
            for idx in parts:
                await w.write("TW", ticks[idx], seq=np.zeros(len(idx), np.int64))
        assert (w.stored, w.bulk_rows) == (n, n)
        assert (
            await ts_conn.fetchval("SELECT relkind::text FROM pg_class WHERE oid = 'ticks'::regclass") == "r"
        )
        assert await ts_conn.fetchval(
            "SELECT to_regclass($1) IS NULL", store.tick_partition("TW", np.datetime64("2024-02"))
        )

        async def both_ways(**kw) -> np.ndarray:
            one = [b async for b in store.read_ticks(ts_conn, "TW", batch_size=499, **kw)]
            two = [b async for b in store.read_ticks(ts_conn, "TW", batch_size=499, second=other, **kw)]
            assert [len(b) for b in two] == [len(b) for b in one]
            out = np.concatenate(one) if one else np.empty(0, TICK_DTYPE)
            _assert_same(np.concatenate(two) if two else np.empty(0, TICK_DTYPE), out)
            return out

        window = {"start_ns": int(ticks["ts"][1000]) + 1000, "end_ns": int(ticks["ts"][2500])}
        _assert_same(await both_ways(), ticks)
        _assert_same(await both_ways(**window), ticks[1001:2500])

        async with store.TickWriter(ts_conn, second=other) as w:  # again: nothing new
            for idx in parts:
                await w.write("TW", ticks[idx], seq=np.zeros(len(idx), np.int64))
        assert w.stored == 0

        for r in await ts_conn.fetch("SELECT show_chunks('ticks') AS c"):
            await ts_conn.execute("SELECT compress_chunk($1::regclass, if_not_compressed => true)", r["c"])
        assert (
            await ts_conn.fetchval(
                "SELECT count(*) FILTER (WHERE NOT is_compressed) FROM timescaledb_information.chunks "
                "WHERE hypertable_name = 'ticks'"
            )
            == 0
        )
        # array pages (second=) and row pages over compressed chunks
        _assert_same(await both_ways(), ticks)
        _assert_same(await both_ways(**window), ticks[1001:2500])
        more = quotes(
            7, t0=int(ticks["ts"][-1]) - 5 * 10**9, step_ns=10**9
        )  # into the last (compressed) chunk
        async with store.TickWriter(ts_conn, second=other) as w:
            for idx in parts:
                await w.write("TW", ticks[idx], seq=np.zeros(len(idx), np.int64))
            await w.write("TW", more, seq=np.arange(1, 8))
        assert w.stored == 7
        assert await ts_conn.fetchval("SELECT count(*) FROM ticks WHERE symbol = 'TW'") == n + 7

        assert await store.delete_ticks(ts_conn, "TW") == n + 7
        assert await ts_conn.fetchval("SELECT count(*) FROM ticks WHERE symbol = 'TW'") == 0
        assert len(await _read(ts_conn, "TW", second=other)) == 0
    finally:
        await other.close()


async def test_refresh_bars_of_a_short_unaligned_window_shows_ticks_behind_the_watermark(
    ts_conn: asyncpg.Connection,
) -> None:
    """refresh_bars over a few seconds (not whole minutes or hours) refreshes
    the buckets of every aggregate that the window touches (TimescaleDB
    itself rejects a window holding no whole bucket)."""
    await store.migrate(ts_conn)
    day = 86_400 * 10**9
    late = quotes(60, t0=BASE + day)
    assert await store.write_ticks(ts_conn, "RB", late) == 60
    assert await store.refresh_bars(ts_conn) == 3  # the watermarks move past day 2
    early = quotes(8, t0=BASE + 10 * 3_600 * 10**9 + 17 * 60 * 10**9 + 1_500_000_000, step_ns=10**9)
    assert await store.write_ticks(ts_conn, "RB", early) == 8
    lo = int(early["ts"][0])
    count = "SELECT coalesce(sum(ticks), 0) FROM {} WHERE symbol = 'RB' AND bucket < $1"
    cut = store.ns_to_datetime(BASE + day)
    for view in store.BAR_VIEWS:  # behind the watermark: not shown before the refresh
        assert await ts_conn.fetchval(count.format(view), cut) == 0, view
    assert await store.refresh_bars(ts_conn, lo, lo + 3 * 10**9) == 3  # 3 s, not on a second
    mid = (early["bid"] + early["ask"]) / 2
    # bars_1s: the seconds the window touched; bars_1m and bars_1h: all 8 ticks
    assert await ts_conn.fetchval(count.format("bars_1s"), cut) == 4
    for view in ("bars_1m", "bars_1h"):
        row = await ts_conn.fetchrow(
            f"SELECT open, close, ticks FROM {view} WHERE symbol = 'RB' AND bucket < $1", cut
        )
        assert (row["open"], row["close"], row["ticks"]) == (
            pytest.approx(mid[0]),
            pytest.approx(mid[-1]),
            8,
        ), view
    assert await store.refresh_bars(ts_conn, lo, lo) == 3  # an empty window: the bucket of lo


async def test_stream_equity_and_import_on_two_connections(ts_conn: asyncpg.Connection, tmp_path) -> None:
    """stream_fills_and_equity merges the equity hypertable's rows like read_results;
    import_to_store with a second connection stores what one does."""

    await store.migrate(ts_conn)
    run = uuid.uuid4()
    want = {}
    for j, sym in enumerate(["EA", "EB"]):
        rows = np.zeros(300 + 50 * j, dtype=DTYPES["equity"])
        rows["ts"] = BASE + np.arange(len(rows)) * (j + 1) * 7 * 3_600 * 10**9  # over many 7-day chunks
        rng = np.random.default_rng(j)
        for name in rows.dtype.names or ():
            if name != "ts":
                rows[name] = rng.normal(100, 5, len(rows))
        for seq, part in enumerate(np.array_split(rows, 3)):
            assert await store.write_results(ts_conn, run, sym, "equity", seq, part)
        want[sym] = await store.read_results(ts_conn, run, sym, "equity")
    assert (
        await ts_conn.fetchval(
            "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'equity'"
        )
        > 10
    )
    pieces = [p async for _, p in store.stream_fills_and_equity(ts_conn, run, ["EB", "EA"], rows=64)]
    assert [len(p[0]) for p in pieces] == [64] * (650 // 64) + [650 % 64]
    ts, j, eq, pos, px = (np.concatenate(c) for c in zip(*pieces, strict=True))
    assert np.all(np.diff(ts) >= 0)
    for k, sym in enumerate(["EA", "EB"]):
        np.testing.assert_array_equal(ts[j == k], want[sym]["ts"])
        np.testing.assert_array_equal(eq[j == k], want[sym]["equity"])
        np.testing.assert_array_equal(pos[j == k], want[sym]["position"])
        np.testing.assert_array_equal(px[j == k], want[sym]["price"])

    path = tmp_path / "months.csv"
    step = 86_400 * 9  # 40 ticks over a year
    path.write_text(
        "ts,bid,ask\n" + "".join(f"{1_704_186_000 + i * step},{100 + i},{101 + i}\n" for i in range(40))
    )
    other = await _second(ts_conn)
    try:
        one = await import_to_store(ts_conn, Importer(path, "csv", symbol="IA", time_format="s", block=7))
        two = await import_to_store(
            ts_conn, Importer(path, "csv", symbol="IB", time_format="s", block=7), second=other
        )
        assert one.stored == two.stored == 40
        _assert_same(await _read(ts_conn, "IB", second=other), await _read(ts_conn, "IA"))
        again = await import_to_store(
            ts_conn, Importer(path, "csv", symbol="IB", time_format="s", block=7), second=other
        )
        assert again.stored == 0
    finally:
        await other.close()


async def test_read_ticks_plans_at_most_read_chunks_chunks_per_query(
    ts_conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With more chunks than READ_CHUNKS, each page query of read_ticks locks
    at most a window of them (thousands of chunks locked by a few reads at
    once ran the server out of lock slots), and the pages are the same."""
    await store.migrate(ts_conn)
    day = 86_400 * 10**9
    other_sym = quotes(60, t0=BASE, step_ns=day)  # 60 one-day chunks before the symbol's ticks
    assert await store.write_ticks(ts_conn, "OLD", other_sym) == 60
    n = 40 * 24
    ticks = quotes(n, t0=BASE + 60 * day, step_ns=3_600 * 10**9)  # 40 more chunks
    ticks["last"] = np.where(np.arange(n) % 4 == 0, ticks["bid"], np.nan)
    assert await store.write_ticks(ts_conn, "NEW", ticks) == n
    whole = await _read(ts_conn, "NEW", batch_size=100)

    async def chunks_locked_by_first_page(**kw) -> int:
        async with ts_conn.transaction():  # locks are kept until the end of the transaction
            async with contextlib.aclosing(store.read_ticks(ts_conn, "NEW", **kw)) as pages:
                first = await pages.__anext__()
            locked = await ts_conn.fetchval(
                "SELECT count(DISTINCT c.oid) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "JOIN pg_namespace s ON s.oid = c.relnamespace "
                "WHERE l.pid = pg_backend_pid() AND s.nspname = '_timescaledb_internal' "
                "AND c.relkind = 'r' AND c.relname LIKE '\\_hyper\\_%\\_chunk'"
            )
        assert len(first) == kw["batch_size"]
        return int(locked)

    # (from the first tick: windows before it would add their locks to the transaction's)
    start = int(ticks["ts"][0])
    monkeypatch.setattr(tickread, "READ_CHUNKS", 1000)
    assert await chunks_locked_by_first_page(batch_size=10, start_ns=start) == 40  # every chunk after it
    monkeypatch.setattr(tickread, "READ_CHUNKS", 8)
    assert await chunks_locked_by_first_page(batch_size=10, start_ns=start) <= 8
    other = await _second(ts_conn)
    try:
        for bs in (1, 7, 100, 5000):
            pages = [b async for b in store.read_ticks(ts_conn, "NEW", batch_size=bs, second=other)]
            assert all(len(b) == bs for b in pages[:-1]) and 0 < len(pages[-1]) <= bs
            _assert_same(np.concatenate(pages), whole)
        lo, hi = int(ticks["ts"][100]), int(ticks["ts"][700])
        _assert_same(await _read(ts_conn, "NEW", start_ns=lo, end_ns=hi, batch_size=33), whole[100:700])
        assert len(await _read(ts_conn, "NONE", batch_size=10)) == 0
        # the catalogue, one query per window (gaps inside and between windows; > 20 of OLD's)
        windowed = await store.tick_catalogue(ts_conn, gap_ns=2 * 3_600 * 10**9)
        assert await store.tick_symbols(ts_conn) == ["NEW", "OLD"]
        monkeypatch.setattr(tickread, "READ_CHUNKS", 1000)
        whole_cat = await store.tick_catalogue(ts_conn, gap_ns=2 * 3_600 * 10**9)
        assert windowed == whole_cat
        assert [(c["symbol"], c["ticks"], c["n_gaps"], len(c["gaps"])) for c in whole_cat] == [
            ("NEW", n, 0, 0),
            ("OLD", 60, 59, 20),
        ]
        assert await store.tick_catalogue(ts_conn, gap_ns=10**9, symbols=["NEW"]) == [
            c for c in await store.tick_catalogue(ts_conn, gap_ns=10**9) if c["symbol"] == "NEW"
        ]
    finally:
        await other.close()


async def test_bar_policies_refresh_a_day_of_buckets_or_more_per_batch(ts_conn: asyncpg.Connection) -> None:
    """0031: the policies batch a day (bars_1s), a week (bars_1m) or a month
    (bars_1h) of buckets (TimescaleDB >= 2.19; its default of 10 buckets made
    the bars_1s policy run one transaction per 10 seconds of history), and a
    policy run materialises every bar."""
    await store.migrate(ts_conn)
    version = await ts_conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    jobs = {
        r["hypertable_name"]: (r["job_id"], r["config"])
        for r in await ts_conn.fetch(
            "SELECT job_id, hypertable_name, config::text AS config FROM timescaledb_information.jobs "
            "WHERE proc_name = 'policy_refresh_continuous_aggregate'"
        )
    }
    assert set(jobs) == set(store.BAR_VIEWS)
    if tuple(int(x) for x in version.split(".")[:2]) < (2, 19):
        pytest.skip(f"TimescaleDB {version} has no batched policies")

    per_batch = {v: json.loads(c).get("buckets_per_batch") for v, (_, c) in jobs.items()}
    assert per_batch == {"bars_1s": 86_400, "bars_1m": 10_080, "bars_1h": 720}
    for job_id, _ in jobs.values():  # (only the run below)
        await ts_conn.execute("SELECT alter_job($1, scheduled => false)", job_id)
    ticks = quotes(2 * 86_400 // 30, step_ns=30 * 10**9)  # two days, two one-day chunks
    assert await store.write_ticks(ts_conn, "PB", ticks) == len(ticks)
    materialized = {}
    for view in store.BAR_VIEWS:
        await ts_conn.execute(f"CALL run_job({jobs[view][0]})")
        table = await ts_conn.fetchval(
            "SELECT format('%I.%I', h.schema_name, h.table_name) FROM _timescaledb_catalog.continuous_agg a "
            "JOIN _timescaledb_catalog.hypertable h ON h.id = a.mat_hypertable_id WHERE a.user_view_name = $1",
            view,
        )
        materialized[view] = await ts_conn.fetchval(f"SELECT count(*) FROM {table}")
    assert materialized == {"bars_1s": len(ticks), "bars_1m": 2 * 1440, "bars_1h": 48}


async def test_tick_writer_loads_new_chunks_whole_across_symbols_and_the_bars_see_them(
    ts_conn: asyncpg.Connection,
) -> None:
    """Ranges no chunk covers are loaded into new tables (every symbol of the
    stream), keyed and attached as chunks; the continuous aggregates see
    them after a refresh, also behind their watermark; re-imports store
    nothing; a range a chunk covers goes through write_ticks; a key repeated
    in the stream is stored once."""
    await store.migrate(ts_conn)
    day = 86_400 * 10**9
    t0 = BASE + 40 * day
    a = quotes(3 * 480, t0=t0, step_ns=180 * 10**9, seed=1)  # 3 days, one every 3 minutes
    b = quotes(3 * 480, t0=t0 + 7 * 10**9, step_ns=180 * 10**9, seed=2)
    # the bars of those days materialised (empty) first: the import lands behind the watermark
    await store.refresh_bars(ts_conn, t0, t0 + 3 * day)
    async with store.TickWriter(ts_conn) as w:  # symbol after symbol, as files are imported
        for sym, ticks in (("A", a), ("B", b)):
            for part in np.array_split(ticks, 4):
                await w.write(sym, part, seq=np.zeros(len(part), np.int64))
    assert (w.stored, w.bulk_rows) == (len(a) + len(b), len(a) + len(b))
    chunks = await ts_conn.fetch(
        "SELECT chunk_name, range_start FROM timescaledb_information.chunks "
        "WHERE hypertable_name = 'ticks' ORDER BY range_start"
    )
    assert [r["chunk_name"] for r in chunks] == [
        f"ticks_chunk_2024021{k}000000" for k in range(3)
    ]  # whole days: the chunks ticks would have made
    keys = await ts_conn.fetch(
        "SELECT indexrelid::regclass::text AS name, indisunique, indisprimary FROM pg_index "
        "WHERE indrelid = $1::regclass",
        chunks[0]["chunk_name"],
    )
    assert [(k["indisunique"], k["indisprimary"]) for k in keys] == [(True, True)], keys
    _assert_same(await _read(ts_conn, "A"), a)
    _assert_same(await _read(ts_conn, "B", batch_size=333), b)

    await store.refresh_bars(ts_conn, t0, t0 + 3 * day)
    bars = await ts_conn.fetch("SELECT symbol, sum(ticks) AS n FROM bars_1h GROUP BY symbol ORDER BY symbol")
    assert [(r["symbol"], r["n"]) for r in bars] == [("A", len(a)), ("B", len(b))]
    mat = await ts_conn.fetchval(
        "SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name) "
        "FROM timescaledb_information.continuous_aggregates WHERE view_name = 'bars_1h'"
    )
    assert await ts_conn.fetchval(f"SELECT count(*) FROM {mat}") == 2 * 3 * 24  # materialised

    async with store.TickWriter(ts_conn) as w:  # again: into existing chunks, nothing new
        await w.write("A", a, seq=np.zeros(len(a), np.int64))
        more = quotes(5, t0=int(a["ts"][-1]) + 10**9, seed=3)
        await w.write("A", more, seq=np.zeros(5, np.int64))  # the last chunk: by write_ticks
        twice = quotes(4, t0=t0 + 5 * day, seed=4)
        await w.write("C", twice, seq=np.arange(4))
        await w.write("C", twice, seq=np.arange(4))  # a new chunk, its keys twice
    assert (w.stored, w.bulk_rows) == (5 + 4, 4)
    _assert_same(await _read(ts_conn, "A"), np.concatenate([a, more]))
    _assert_same(await _read(ts_conn, "C"), twice)
