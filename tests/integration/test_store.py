"""The SQL store against the real (embedded) PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator

import asyncpg
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ticktape import store
from ticktape.compute.metrics import RunMetrics, run_metrics
from ticktape.errors import SpecError, StoreConnectionError
from ticktape.model.batch import DTYPES, TICK_DTYPE
from ticktape.store.runs import run_progress
from ticktape.testing import quotes, with_trades

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_123_456_789  # ns, not a whole microsecond


def make_ticks(n: int, seed: int = 0) -> np.ndarray:
    """Quotes at times that repeat (gaps of 0-3 ms), a trade at the mid every third tick."""
    ticks = quotes(
        n, t0=T0, step_ns=(0, 3_000_000), bid=99.99, spread=0.02, walk=0.01, size=(1, 100), seed=seed
    )
    return with_trades(ticks, at="mid", size=2.0)


def as_stored(ticks: np.ndarray) -> np.ndarray:
    """What comes back: ts floored to whole microseconds."""
    out = ticks.copy()
    out["ts"] = out["ts"] // 1000 * 1000
    return out


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype
    assert len(a) == len(b)
    for name in a.dtype.names or ():
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


async def collect(it: AsyncIterator[np.ndarray]) -> list[np.ndarray]:
    return [batch async for batch in it]


def symbol() -> str:
    return f"T{uuid.uuid4().hex[:8]}"


# -- migrations -------------------------------------------------------------


async def test_migrate_empty_db_then_rerun_applies_nothing(fresh_db: str) -> None:
    names = [name for _, name, _ in store.migrations()]
    assert names[0] == "0001_core"
    c = await store.connect(fresh_db)
    try:
        assert await store.migrate(c) == names
        assert await store.migrate(c) == []
        rows = await c.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [(r["version"], r["name"]) for r in rows] == [(int(n[:4]), n) for n in names]
        tables = {
            r["tablename"]
            for r in await c.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        assert {
            "ticks",
            "runs",
            "run_progress",
            "sink_batches",
            "signals",
            "orders",
            "fills",
            "equity",
            "run_metrics",
            "run_recordings",
            "schema_migrations",
        } <= tables
        # every table keyed by run id is one a run's deletion covers
        keyed = {
            r["table_name"]
            for r in await c.fetch(
                "SELECT table_name FROM information_schema.columns"
                " WHERE table_schema = 'public' AND column_name = 'run_id'"
                " AND table_name IN (SELECT tablename FROM pg_tables WHERE schemaname = 'public')"
            )
        }
        assert keyed == set(store.RUN_TABLES)
        # time_bucket works on plain PostgreSQL too, with a Monday origin
        monday = await c.fetchval("SELECT time_bucket(INTERVAL '7 days', TIMESTAMPTZ '2024-01-10 12:00+00')")
        assert monday.isoformat() == "2024-01-08T00:00:00+00:00"
        assert await c.fetchval("SELECT count(*) FROM bars_1m") == 0
    finally:
        await c.close()
    # a DSN works as well, and still applies nothing
    assert await store.migrate(fresh_db) == []


async def test_concurrent_migrations_apply_each_file_once(fresh_db: str) -> None:
    conns = [await store.connect(fresh_db) for _ in range(3)]
    try:
        results = await asyncio.gather(*(store.migrate(c) for c in conns))
    finally:
        for c in conns:
            await c.close()
    applied = [name for result in results for name in result]
    assert sorted(applied) == [name for _, name, _ in store.migrations()]


async def test_connect_unreachable_names_the_dsn_without_password() -> None:
    dsn = "postgresql://someone:hunter2@127.0.0.1:1/nothing"
    with pytest.raises(StoreConnectionError) as info:
        await store.connect(dsn, timeout=2)
    message = str(info.value)
    assert "\n" not in message
    assert "hunter2" not in message
    assert "127.0.0.1:1" in message and "connection refused" in message


# -- ticks ------------------------------------------------------------------


async def test_write_ticks_round_trip_and_reimport(conn: asyncpg.Connection) -> None:
    sym = symbol()
    ticks = make_ticks(5_000)
    assert await store.write_ticks(conn, sym, ticks[:3_000]) == 3_000
    assert await store.write_ticks(conn, sym, ticks[3_000:]) == 2_000
    batches = await collect(store.read_ticks(conn, sym, batch_size=1_000))
    assert [len(b) for b in batches] == [1_000] * 5
    assert_same(np.concatenate(batches), as_stored(ticks))
    # re-import stores nothing new, whatever the batching
    assert await store.write_ticks(conn, sym, ticks) == 0
    assert await store.write_ticks(conn, sym, ticks[1_000:4_000]) == 0
    assert await conn.fetchval("SELECT count(*) FROM ticks WHERE symbol = $1", sym) == 5_000
    # missing values are SQL NULLs
    nulls = await conn.fetchval("SELECT count(*) FROM ticks WHERE symbol = $1 AND last IS NULL", sym)
    assert nulls == int(np.isnan(ticks["last"]).sum())


async def test_write_ticks_partial_overlap_inserts_only_new_rows(conn: asyncpg.Connection) -> None:
    sym = symbol()
    ticks = make_ticks(2_000, seed=3)
    seq = np.arange(2_000)
    assert await store.write_ticks(conn, sym, ticks[:1_200], seq[:1_200]) == 1_200
    assert await store.write_ticks(conn, sym, ticks[800:], seq[800:]) == 800
    got = np.concatenate(await collect(store.read_ticks(conn, sym)))
    assert_same(got, as_stored(ticks))


async def test_write_ticks_inside_an_outer_transaction(conn: asyncpg.Connection) -> None:
    sym = symbol()
    ticks = make_ticks(100, seed=4)
    async with conn.transaction():
        assert await store.write_ticks(conn, sym, ticks[:50]) == 50
        assert await store.write_ticks(conn, sym, ticks[:60]) == 10  # staging path, emptied in between
    assert await conn.fetchval("SELECT count(*) FROM ticks WHERE symbol = $1", sym) == 60


async def test_read_ticks_bounds_and_tick_span(conn: asyncpg.Connection) -> None:
    sym = symbol()
    ticks = make_ticks(1_000, seed=1)
    await store.write_ticks(conn, sym, ticks)
    stored = as_stored(ticks)
    lo, hi = int(stored["ts"][200]), int(stored["ts"][700])
    got = np.concatenate(await collect(store.read_ticks(conn, sym, start_ns=lo, end_ns=hi, batch_size=64)))
    expected = stored[(stored["ts"] >= lo) & (stored["ts"] < hi)]
    assert_same(got, expected)
    assert await store.tick_span(conn, sym) == (int(stored["ts"][0]), int(stored["ts"][-1]))
    assert await store.count_ticks(conn, sym) == 1_000
    assert await store.tick_span(conn, symbol()) is None
    assert await collect(store.read_ticks(conn, symbol())) == []


async def test_bars_1m_view(conn: asyncpg.Connection) -> None:
    sym = symbol()
    minute = 60 * 10**9
    base = 1_704_067_200 * 10**9  # 2024-01-01T00:00Z
    ts = [base + 1, base + 2 * 10**9, base + 30 * 10**9, base + minute + 5]
    ticks = quotes(ts=ts, bid=[10.0, 12.0, 8.0, 20.0], spread=2.0)
    await store.write_ticks(conn, sym, ticks)
    # on TimescaleDB, rows behind the aggregate's watermark show once their range is refreshed
    await store.refresh_bars(conn, base, base + 2 * minute)
    rows = await conn.fetch("SELECT * FROM bars_1m WHERE symbol = $1 ORDER BY bucket", sym)
    assert [(r["open"], r["high"], r["low"], r["close"], r["ticks"]) for r in rows] == [
        (11.0, 13.0, 9.0, 9.0, 3),
        (21.0, 21.0, 21.0, 21.0, 1),
    ]


# -- results ----------------------------------------------------------------


def make_rows(stream: str, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = np.zeros(n, dtype=DTYPES[stream])
    rows["ts"] = T0 + np.arange(n) * 1_000_001
    for name in rows.dtype.names or ():
        if name == "ts":
            continue
        kind = rows.dtype[name].kind
        if kind == "f":
            values = rng.normal(100, 5, n)
            values[rng.random(n) < 0.1] = np.nan
            rows[name] = values
        elif rows.dtype[name].itemsize == 1:
            rows[name] = rng.choice([-1, 1], n)
        else:
            rows[name] = np.arange(n) + 7
    return rows


@pytest.mark.parametrize("stream", store.RESULT_STREAMS)
async def test_write_results_is_idempotent(conn: asyncpg.Connection, stream: str) -> None:
    run, sym = uuid.uuid4(), symbol()
    first, second = make_rows(stream, 300, seed=1), make_rows(stream, 200, seed=2)
    second["ts"] += 10**12
    assert await store.write_results(conn, run, sym, stream, 0, first) is True
    assert await store.write_results(conn, str(run), sym, stream, 0, first) is False
    assert await store.write_results(conn, run, sym, stream, 1, second) is True
    assert await store.write_results(conn, run, sym, stream, 1, second[:5]) is False
    got = await store.read_results(conn, run, sym, stream)
    assert_same(got, np.concatenate([first, second]))
    table = store.result_table(stream)
    count = await conn.fetchval(f"SELECT count(*) FROM {table} WHERE run_id = $1", run)
    assert count == 500
    ledger = await conn.fetchval("SELECT count(*) FROM sink_batches WHERE run_id = $1", run)
    assert ledger == 2
    # ts is the µs-floored ns time; ts_ns keeps the exact value
    row = await conn.fetchrow(
        f"SELECT (extract(epoch FROM ts) * 1000000)::int8 AS us, ts_ns FROM {table} "
        "WHERE run_id = $1 ORDER BY ts_ns LIMIT 1",
        run,
    )
    assert row["ts_ns"] == T0 and row["us"] == T0 // 1000


async def test_write_results_empty_batch_is_recorded(conn: asyncpg.Connection) -> None:
    run, sym = uuid.uuid4(), symbol()
    assert await store.write_results(conn, run, sym, "fills", 0, np.empty(0, DTYPES["fills"])) is True
    assert await store.write_results(conn, run, sym, "fills", 0, np.empty(0, DTYPES["fills"])) is False


async def test_concurrent_duplicate_batches_store_once(db_url: str) -> None:
    run, sym = uuid.uuid4(), symbol()
    rows = make_rows("equity", 1_000)
    conns = [await store.connect(db_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(store.write_results(c, run, sym, "equity", 5, rows) for c in conns))
        assert sorted(results) == [False, False, False, True]
        assert await conns[0].fetchval("SELECT count(*) FROM equity WHERE run_id = $1", run) == 1_000
    finally:
        for c in conns:
            await c.close()


async def test_write_results_rejects_bad_input(conn: asyncpg.Connection) -> None:
    with pytest.raises(ValueError, match="unknown result stream"):
        await store.write_results(conn, uuid.uuid4(), "X", "ticks", 0, np.empty(0, TICK_DTYPE))
    with pytest.raises(TypeError, match="fills rows need dtype"):
        await store.write_results(conn, uuid.uuid4(), "X", "fills", 0, np.empty(0, DTYPES["orders"]))


# -- runs -------------------------------------------------------------------


async def test_run_lifecycle(conn: asyncpg.Connection) -> None:
    run = str(uuid.uuid4())
    spec = {"strategy": "ema_cross", "fast": 10, "slow": 30}
    await store.create_run(conn, run, "ema_cross", spec, {"fast": 10}, ["AAA", "BBB"], T0, T0 + 10**12)
    with pytest.raises(SpecError, match="exists already"):  # a run id is never reused
        await store.create_run(conn, run, "other", {}, {}, [], None, None)
    pending = await conn.fetchrow("SELECT status, started_at FROM runs WHERE run_id = $1", uuid.UUID(run))
    assert (pending["status"], pending["started_at"]) == ("pending", None)  # no worker yet
    await store.start_run(conn, run)
    await store.update_progress(conn, run, "AAA", 500, T0 + 10**9)
    await store.update_progress(conn, run, "AAA", 400, T0, done=False)  # replayed, older: ignored
    await store.update_progress(conn, run, "AAA", 1_000, T0 + 2 * 10**9, done=True)
    progress = await conn.fetchrow("SELECT * FROM run_progress WHERE run_id = $1", uuid.UUID(run))
    assert progress["ticks_processed"] == 1_000 and progress["done"] is True
    await store.write_metrics(conn, run, {"sharpe": 1.5, "max_drawdown": -0.1})
    await store.write_metrics(conn, run, {"sharpe": 1.7})
    await store.finish_run(
        conn,
        run,
        "complete",
        ticks_in=1_010,
        ticks_processed=1_000,
        ticks_rejected=10,
        rejects={"crossed": 10},
        orders=4,
        fills=3,
        wall_seconds=1.25,
    )
    runs = {r["run_id"]: r for r in await store.list_runs(conn, limit=1_000)}
    got = runs[run]
    assert got["status"] == "complete" and got["strategy"] == "ema_cross"
    assert got["spec"] == spec and got["params"] == {"fast": 10}
    assert got["symbols"] == ["AAA", "BBB"]
    assert got["rejects"] == {"crossed": 10}
    assert (got["ticks_in"], got["ticks_processed"], got["ticks_rejected"]) == (1_010, 1_000, 10)
    assert (got["orders"], got["fills"], got["wall_seconds"]) == (4, 3, 1.25)
    assert got["started_at"] is not None and got["finished_at"] >= got["started_at"]
    assert store.datetime_to_ns(got["data_start"]) == T0 // 1000 * 1000
    metrics = dict(await conn.fetch("SELECT name, value FROM run_metrics WHERE run_id = $1", uuid.UUID(run)))
    assert metrics == {"sharpe": 1.7, "max_drawdown": -0.1}
    with pytest.raises(TypeError, match="unknown fields"):
        await store.finish_run(conn, run, "failed", bogus=1)
    with pytest.raises(LookupError):
        await store.finish_run(conn, str(uuid.uuid4()), "failed", error="boom")


@pytest.mark.parametrize("ended", ["cancelled", "failed", "complete"])
async def test_finishing_an_ended_run_changes_nothing(conn: asyncpg.Connection, ended: str) -> None:
    """A sink failing a run after it was cancelled, or failed by its lease,
    leaves the first ending as it was (status, error, finished_at, counts)."""
    run = str(uuid.uuid4())
    await store.create_run(conn, run, "s", {}, {}, ["X"], None, None)
    await store.start_run(conn, run)
    assert await store.finish_run(conn, run, ended, error="the first ending", fills=3) is True
    first = await conn.fetchrow("SELECT * FROM runs WHERE run_id = $1", uuid.UUID(run))
    for status in ("failed", "complete", "cancelled"):
        assert await store.finish_run(conn, run, status, error="a later one", fills=9) is False
    assert await conn.fetchrow("SELECT * FROM runs WHERE run_id = $1", uuid.UUID(run)) == first


async def test_pending_run_then_start(conn: asyncpg.Connection) -> None:
    run = uuid.uuid4()
    await store.create_run(conn, run, "s", {}, {}, ["X"], None, None, status="pending")
    row = await conn.fetchrow("SELECT status, started_at FROM runs WHERE run_id = $1", run)
    assert row["status"] == "pending" and row["started_at"] is None
    await store.start_run(conn, run)
    row = await conn.fetchrow("SELECT status, started_at FROM runs WHERE run_id = $1", run)
    assert row["status"] == "running" and row["started_at"] is not None


# -- the COPY codec (no database) ---------------------------------------------


def test_encode_copy_nulls_and_constants() -> None:
    ints = np.array([1, 2], dtype=">i8")
    floats = np.array([1.5, np.nan], dtype=">f8")
    payload = store.encode_copy([b"ab", ints, floats], 2)
    header = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
    row1 = b"\x00\x03" + b"\x00\x00\x00\x02ab" + b"\x00\x00\x00\x08" + ints[:1].tobytes()
    row1 += b"\x00\x00\x00\x08" + floats[:1].tobytes()
    row2 = b"\x00\x03" + b"\x00\x00\x00\x02ab" + b"\x00\x00\x00\x08" + ints[1:].tobytes()
    row2 += b"\xff\xff\xff\xff"
    assert payload == header + row1 + row2 + b"\xff\xff"


def test_default_tick_seq_counts_within_a_microsecond() -> None:
    ts = np.array([5_000, 5_999, 7_000, 5_500, 7_001], dtype=np.int64)
    assert store.default_tick_seq(ts).tolist() == [0, 1, 0, 2, 1]


async def test_progress_counts_and_seq_offset(conn: asyncpg.Connection) -> None:
    run, sym = uuid.uuid4(), symbol()
    await store.update_progress(conn, run, sym, 90, T0, ticks_rejected=10, rejects={"crossed": 10})
    await store.update_progress(conn, run, sym, 50, T0, ticks_rejected=5, rejects={"crossed": 5})  # older
    await store.update_progress(
        conn, run, sym, 190, T0 + 1, True, ticks_in=205, ticks_rejected=15, rejects={"crossed": 15}
    )
    row = await conn.fetchrow("SELECT * FROM run_progress WHERE run_id = $1", run)
    assert (row["ticks_processed"], row["ticks_rejected"], row["ticks_in"], row["done"]) == (
        190,
        15,
        205,
        True,
    )
    assert store.json_value(row["rejects"]) == {"crossed": 15}
    # write_ticks with an int seq: the running index of the batch's first tick
    ticks = make_ticks(10, seed=9)
    assert await store.write_ticks(conn, sym, ticks, 100) == 10
    seqs = [
        r["seq"] for r in await conn.fetch("SELECT seq FROM ticks WHERE symbol = $1 ORDER BY ts, seq", sym)
    ]
    assert seqs == list(range(100, 110))


async def test_migration_warnings_reach_the_log(
    fresh_db: str, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "0001_warn.sql").write_text(
        "DO $$ BEGIN RAISE WARNING 'no timescaledb here'; END $$; CREATE TABLE t (x int);"
    )
    with caplog.at_level("WARNING", logger="ticktape.store"):
        assert await store.migrate(fresh_db, folder=tmp_path) == ["0001_warn"]
        await asyncio.sleep(0.05)  # listeners are called soon, not inline
    assert "no timescaledb here" in caplog.text


async def test_result_set_is_written_once_in_one_transaction(conn: asyncpg.Connection) -> None:
    run = uuid.uuid4()
    fills = np.zeros(3, DTYPES["fills"])
    fills["ts"] = [T0, T0 + 1000, T0 + 2000]
    fills["qty"] = [1, 2, 3]
    equity = np.zeros(2, DTYPES["equity"])
    equity["ts"] = [T0, T0 + 5000]
    sets = {"fills": fills, "equity": equity, "orders": np.empty(0, DTYPES["orders"])}
    assert await store.write_result_set(conn, run, "X", 0, sets) is True
    assert await store.write_result_set(conn, run, "X", 0, sets) is False  # redelivered
    assert await conn.fetchval("SELECT count(*) FROM fills WHERE run_id = $1", run) == 3
    assert await conn.fetchval("SELECT count(*) FROM equity WHERE run_id = $1", run) == 2
    got = await store.read_results(conn, run, "X", "fills")
    assert got["qty"].tolist() == [1, 2, 3]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    per_us=st.lists(st.integers(1, 5), min_size=2, max_size=3),
    n=st.integers(1, 300),
    rows=st.integers(1, 64),
)
def test_stream_equity_order_does_not_depend_on_the_piece_size(
    db_url: str, per_us: list[int], n: int, rows: int
) -> None:
    """Samples sharing a microsecond (and a ns time) across and within symbols
    come out in one global order whatever the piece size (and so the number
    of windows): the same as one sort of everything by (ts, symbol, value)."""

    async def go() -> None:
        conn = await store.connect(db_url)
        try:
            run = uuid.uuid4()
            syms = sorted(symbol() for _ in per_us)
            want = []
            for j, (sym, k) in enumerate(zip(syms, per_us, strict=True)):
                r = make_rows("equity", n, seed=j)
                r["ts"] = T0 + (np.arange(n) // k) * 1_000 + (np.arange(n) % 2) * 7  # ties in µs and in ns
                r["equity"] = np.round(np.random.default_rng(j).normal(0, 3, n))  # ties in value too
                r["cash"], r["position"], r["price"] = 1.0, 1.0, 100.0
                await store.write_results(conn, run, sym, "equity", 0, r)
                want.extend((int(t), j, float(e)) for t, e in zip(r["ts"], r["equity"], strict=True))
            pieces = [p async for _, p in store.stream_fills_and_equity(conn, run, syms, rows=rows)]
            assert all(len(p[0]) == rows for p in pieces[:-1]) and 0 < len(pieces[-1][0]) <= rows
            got = [
                (int(t), int(j), float(e)) for p in pieces for t, j, e in zip(p[0], p[1], p[2], strict=True)
            ]
            assert got == sorted(want)
        finally:
            await conn.close()

    asyncio.run(go())


async def test_stream_fills_and_equity_merges_symbols_in_pieces_like_the_whole_read(
    conn: asyncpg.Connection,
) -> None:
    run = uuid.uuid4()
    syms = sorted([symbol(), symbol(), symbol()])
    equity, fills = {}, {}
    for j, sym in enumerate(syms):
        rows = make_rows("equity", 500 + 100 * j, seed=j)
        rows["ts"] = T0 + np.arange(len(rows)) * 1_000 * (j + 1)  # shared and distinct times
        rows["equity"] = 1e6 + np.cumsum(np.random.default_rng(j).normal(0, 10, len(rows)))
        rows["position"] = np.arange(len(rows)) % 3 - 1.0
        for seq, part in enumerate(np.array_split(rows, 3)):  # several sink batches
            await store.write_results(conn, run, sym, "equity", seq, part)
        f = make_rows("fills", 20, seed=10 + j)
        f["ts"] = np.sort(rows["ts"][:: len(rows) // 20][:20])
        f["side"] = np.where(np.arange(20) % 2, 1, -1)
        f["qty"], f["price"], f["fee"] = 1.0, 100.0 + np.arange(20), 0.0
        await store.write_results(conn, run, sym, "fills", 0, f)
        equity[sym] = await store.read_results(conn, run, sym, "equity")
        fills[sym] = await store.read_results(conn, run, sym, "fills")
    merged = [p async for p in store.stream_fills_and_equity(conn, run, list(reversed(syms)), rows=97)]
    total = 1800 + 3 * 20  # samples and fills
    assert [len(p[0]) + sum(map(len, f)) for f, p in merged] == [97] * (total // 97) + [total % 97]
    for j, sym in enumerate(syms):  # each symbol's fills, in read_results' order, before later samples
        np.testing.assert_array_equal(np.concatenate([f[j] for f, _ in merged]), fills[sym])
    for (_, before), (later, _) in itertools.pairwise(merged):  # a time's fills come before its samples
        assert all(not len(f) or not len(before[0]) or f["ts"][0] > before[0][-1] for f in later)
    pieces = [p for _, p in merged]
    ts, sym_index, eq, pos, px = (np.concatenate(c) for c in zip(*pieces, strict=True))
    assert np.all(np.diff(ts) >= 0)
    for j, sym in enumerate(syms):  # each symbol's samples, in read_results' order
        mine = sym_index == j
        np.testing.assert_array_equal(ts[mine], equity[sym]["ts"])
        np.testing.assert_array_equal(eq[mine], equity[sym]["equity"])
        np.testing.assert_array_equal(pos[mine], equity[sym]["position"])
        np.testing.assert_array_equal(px[mine], equity[sym]["price"])
    acc = RunMetrics(syms, 1e6)
    async for fills_of, piece in store.stream_fills_and_equity(conn, run, syms, rows=50):
        for sym, f in zip(syms, fills_of, strict=True):
            acc.add_fills(sym, f)
        acc.add(*piece)
    streamed, streamed_trades = acc.result()
    whole, whole_trades = run_metrics(equity, fills, 1e6)
    assert streamed.keys() == whole.keys()
    for k in whole:
        assert streamed[k] == whole[k] or (np.isnan(streamed[k]) and np.isnan(whole[k])), k
    assert streamed_trades.equals(whole_trades)
    assert [p async for p in store.stream_fills_and_equity(conn, uuid.uuid4(), syms)] == []


async def test_progress_never_shows_fewer_ticks_read_than_through(conn: asyncpg.Connection) -> None:
    """The replay records its read count every 0.25 s, the sink what is through
    as it stores it: between the two, what is through was read all the same."""

    run = str(uuid.uuid4())
    await store.create_run(conn, run, "ema_cross", {}, {}, ["AAA"], T0, T0 + 10**12)
    await store.start_run(conn, run)
    await conn.execute(
        "INSERT INTO run_progress (run_id, symbol, ticks_read) VALUES ($1, 'AAA', 300)", uuid.UUID(run)
    )
    await store.update_progress(conn, run, "AAA", 450, T0 + 10**9, ticks_rejected=50)
    (row,) = (await run_progress(conn, run))["symbols"]
    assert (row["read"], row["processed"], row["rejected"], row["lag"]) == (500, 450, 50, 0)
    await conn.execute("UPDATE run_progress SET ticks_read = 800 WHERE run_id = $1", uuid.UUID(run))
    (row,) = (await run_progress(conn, run))["symbols"]
    assert (row["read"], row["lag"]) == (800, 300)
