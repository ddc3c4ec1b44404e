"""The schema on a real TimescaleDB server (see docs/timescaledb.md).

Runs when TICKTAPE_TEST_TIMESCALE_URL is the DSN of a PostgreSQL server with
the timescaledb extension available (and preloaded); each test works in a new
database on that server, dropped afterwards. Skipped otherwise.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import numpy as np
import pytest

from ticktape import store
from ticktape.batch import TICK_DTYPE
from ticktape.config import with_database

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
    rng = np.random.default_rng(seed)
    t = np.zeros(n, dtype=TICK_DTYPE)
    t["ts"] = t0 + np.arange(n, dtype=np.int64) * step_ns
    mid = 100 + np.cumsum(rng.normal(0, 0.01, n))
    t["bid"] = np.round(mid - 0.01, 6)
    t["ask"] = np.round(mid + 0.01, 6)
    t["bid_size"] = rng.integers(1, 50, n)
    t["ask_size"] = rng.integers(1, 50, n)
    t["last"] = np.nan
    t["last_size"] = np.nan
    return t


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
    ev = np.zeros(4, dtype=store.BOOK_EVENT_DTYPE)
    ev["ts"] = BASE + np.array([0, 0, 5, 9]) * 1000
    ev["kind"] = [11, 10, 10, 1]
    ev["side"] = [0, 1, -1, 1]
    ev["price"] = [np.nan, 99.5, 100.5, 99.6]
    ev["size"] = [np.nan, 3, 4, 1]
    ev["order_id"] = [-1, -1, -1, 42]
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
