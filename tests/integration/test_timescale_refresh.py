"""Concurrent bar refreshes on a real TimescaleDB server (see docs/timescaledb.md).

TimescaleDB >= 2.27 rejects a continuous aggregate refresh whose window
overlaps one in progress (SQLSTATE 55P03) instead of waiting; two imports, or
an import and a refresh policy, then collide. ``store.refresh_bars`` retries.

Runs when TICKTAPE_TEST_TIMESCALE_URL is the DSN of a PostgreSQL server with
the timescaledb extension preloaded; each test works in a new database on
that server, dropped afterwards. Skipped otherwise.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import numpy as np
import pytest

from ticktape import store
from ticktape.config import with_database
from ticktape.testing import quotes

URL = os.environ.get("TICKTAPE_TEST_TIMESCALE_URL")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not URL, reason="TICKTAPE_TEST_TIMESCALE_URL is not set (no TimescaleDB server to test)"
    ),
]

BASE = 1_704_067_200 * 10**9  # 2024-01-01T00:00Z


@pytest.fixture
async def dsn() -> AsyncIterator[str]:
    assert URL
    admin = await asyncpg.connect(with_database(URL, "postgres"))
    name = f"tt_tsr_{uuid.uuid4().hex[:10]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(URL, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def migrate_without_policies(conn: asyncpg.Connection) -> None:
    """Migrate, then pause the refresh policies: only the test's refreshes run
    (the policies would race with its checks)."""
    await store.migrate(conn)
    await conn.execute(
        "SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs "
        "WHERE proc_name = 'policy_refresh_continuous_aggregate'"
    )


def materialised(view: str) -> str:
    """SQL condition: the bucket is below ``view``'s watermark (materialised, not real-time)."""
    return (
        "bucket < _timescaledb_functions.to_timestamp(_timescaledb_functions.cagg_watermark("
        "(SELECT mat_hypertable_id FROM _timescaledb_catalog.continuous_agg "
        f"WHERE user_view_name = '{view}')))"
    )


async def test_overlapping_refreshes_both_complete(dsn: str) -> None:
    a = await store.connect(dsn)
    b = await store.connect(dsn)
    try:
        await migrate_without_policies(a)
        n = 400_000  # 100 ticks/s over 66 minutes: a refresh takes long enough to overlap
        t = quotes(n, t0=BASE, step_ns=10_000_000, spread=0.02)
        assert await store.write_ticks(a, "R", t) == n
        lo, hi = BASE - 3_600 * 10**9, int(t["ts"][-1]) + 3_600 * 10**9
        # both start on the same invalidated range at once: on TimescaleDB
        # >= 2.27 one of them meets the other's window (55P03) and must retry
        results = await asyncio.gather(store.refresh_bars(a, lo, hi), store.refresh_bars(b, lo, hi))
        assert results == [3, 3]
        for view in store.BAR_VIEWS:
            total = await a.fetchval(f"SELECT sum(ticks) FROM {view} WHERE symbol = 'R'")
            assert total == n, view
        # materialised, not real-time: the watermark is past the data
        mat = await a.fetchval(
            f"SELECT count(*) FROM bars_1m WHERE symbol = 'R' AND {materialised('bars_1m')}"
        )
        assert mat == 67
    finally:
        await a.close()
        await b.close()


async def test_refreshing_days_of_sparse_ticks_materialises_every_bar(dsn: str) -> None:
    """A refresh over many days of buckets (a week of sparse ticks: 604,800
    one-second buckets) materialises every bar of every view. Before
    refresh_bars gave TimescaleDB its batch size, such a refresh ran 10
    buckets per transaction: minutes for this window."""
    conn = await store.connect(dsn)
    try:
        await migrate_without_policies(conn)
        n = 1_000
        ts = BASE + np.arange(n, dtype=np.int64) * 604 * 10**9 + 250_000_000  # one every ~10 min
        t = quotes(ts=ts, bid=100.0 + np.arange(n) % 7, spread=0.02)
        assert await store.write_ticks(conn, "W", t) == n
        assert await store.refresh_bars(conn, int(t["ts"][0]), int(t["ts"][-1]) + 1) == 3
        for view, width in (("bars_1s", 1), ("bars_1m", 60), ("bars_1h", 3_600)):
            # materialised (below the watermark), one bar per bucket holding ticks, every tick counted
            rows = await conn.fetch(
                f"SELECT bucket, ticks, open FROM {view} WHERE symbol = 'W' AND {materialised(view)} ORDER BY bucket"
            )
            buckets = (t["ts"] // (width * 10**9)).astype(np.int64)
            assert len(rows) == len(np.unique(buckets)), view
            assert sum(r["ticks"] for r in rows) == n, view
            first = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
            np.testing.assert_allclose([r["open"] for r in rows], (t["bid"][first] + t["ask"][first]) / 2)
    finally:
        await conn.close()
