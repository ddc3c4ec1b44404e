"""The SQL box against the real read-only role: writes, DDL and COPY are
refused, a long query is cancelled, rows are capped, and it reads only what
the role may."""

from __future__ import annotations

import time

import pytest

from ticktape import store
from ticktape.dashboards import common, queries
from ticktape.errors import StoreConnectionError
from ticktape.runtime.processes import run_coro

pytestmark = pytest.mark.timeout(120)


async def _counts(dsn: str) -> tuple[int, int]:
    conn = await store.connect(dsn)
    try:
        return await conn.fetchval("SELECT count(*) FROM runs"), await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        )
    finally:
        await conn.close()


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO runs (run_id, status) VALUES (gen_random_uuid(), 'complete')",
        "UPDATE runs SET status = 'failed'",
        "DELETE FROM run_metrics",
        "TRUNCATE fills",
        "CREATE TABLE app_box (a int)",
        "DROP TABLE fills",
        "ALTER TABLE runs ADD COLUMN x int",
        "COPY runs TO '/tmp/ticktape-app-box.csv'",
        "COPY (SELECT 1) TO STDOUT",
        "SELECT 1; DELETE FROM runs",
        "SELECT * FROM pg_authid",
        "SELECT pg_read_file('/etc/hostname')",
        "SET ROLE postgres",
        # leaving the role inside a query: the box logs in as the reader, so
        # there is no more privileged session user to fall back to
        "SELECT set_config('role', 'none', true) UNION ALL SELECT pg_read_file('/etc/hostname')",
        "SELECT set_config('session_authorization', 'postgres', true)",
        # internal tables: the run ledger, migrations, recordings
        "SELECT * FROM sink_batches",
        "SELECT * FROM schema_migrations",
        "SELECT * FROM run_recordings",
        "SELECT * FROM ticks_key_order",
    ],
)
def test_the_box_refuses_anything_but_reading_what_the_role_may(db_url, sql):
    before = run_coro(lambda: _counts(db_url))
    with pytest.raises(common.SHOWN) as err:
        queries.user_sql(db_url, sql)
    assert common.one_line(err.value)
    assert run_coro(lambda: _counts(db_url)) == before


def test_whatever_the_query_sets_it_runs_as_the_reader(db_url):
    rows, _ = queries.user_sql(
        db_url, "SELECT set_config('role', 'none', true) AS r, current_user AS u, session_user AS s"
    )
    assert rows[["u", "s"]].values.tolist() == [["ticktape_reader", "ticktape_reader"]]


def test_a_long_query_is_cancelled_by_the_statement_timeout(db_url):
    t0 = time.monotonic()
    with pytest.raises(common.SHOWN, match="statement timeout"):
        queries.user_sql(db_url, "SELECT pg_sleep(20)", timeout_ms=300)
    assert time.monotonic() - t0 < 10


def test_rows_are_capped_and_the_cut_is_told(db_url):
    rows, cut = queries.user_sql(db_url, "SELECT g FROM generate_series(1, 100) g", limit=10)
    assert rows["g"].tolist() == list(range(1, 11)) and cut
    rows, cut = queries.user_sql(db_url, "SELECT g FROM generate_series(1, 10) g", limit=10)
    assert len(rows) == 10 and not cut


def test_the_box_reads_the_result_tables_with_arguments(db_url):
    rows, _ = queries.user_sql(db_url, "SELECT count(*) AS n FROM runs WHERE status = $1", ("complete",))
    assert rows.columns.tolist() == ["n"]


def test_a_database_that_is_down_is_said_as_such_not_as_a_refused_login():
    down = "postgresql://postgres@127.0.0.1:9/ticktape"
    with pytest.raises(
        StoreConnectionError, match=r"^cannot reach PostgreSQL at postgresql://postgres@127.0.0.1:9/"
    ):
        queries.user_sql(down, "SELECT 1")
