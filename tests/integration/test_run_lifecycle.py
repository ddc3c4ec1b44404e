"""Run lifecycle in the store: a reused run id, leases, cancel, delete, and
the read-only role (issue 22, items 3, 4 and 6)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
import numpy as np
import pytest

from ticktape import store
from ticktape.config import Settings, with_user
from ticktape.errors import SpecError, SqlRefused, StoreError
from ticktape.model.batch import DTYPES
from ticktape.store import montecarlo, session
from ticktape.testing import quotes

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000_000_000


async def _status(conn: asyncpg.Connection, run_id: str) -> asyncpg.Record:
    return await conn.fetchrow(
        "SELECT status, error, finished_at FROM runs WHERE run_id = $1", uuid.UUID(run_id)
    )


# -- a reused run id ----------------------------------------------------------


async def test_a_reused_run_id_is_refused_naming_the_run_and_its_status(conn: asyncpg.Connection) -> None:
    run = str(uuid.uuid4())
    await store.create_run(conn, run, "sma_crossover", {}, {"fast": 5}, ["A"], None, None)
    await store.finish_run(conn, run, "complete")
    with pytest.raises(SpecError, match=rf"run_id: run {run} exists already \(complete,"):
        await store.create_run(conn, run, "sma_crossover", {}, {"fast": 9}, ["B"], None, None)
    row = await conn.fetchrow("SELECT params::text, symbols FROM runs WHERE run_id = $1", uuid.UUID(run))
    assert row["symbols"] == ["A"] and '"fast": 5' in row["params"]  # the old run is left as it was


# -- leases ---------------------------------------------------------------------


async def test_a_run_whose_lease_ran_out_is_failed_naming_its_owner(conn: asyncpg.Connection) -> None:
    lapsing, renewed, unleased = (str(uuid.uuid4()) for _ in range(3))
    owner = "ticktape run (pid 4242 on testhost)"
    await store.create_run(conn, lapsing, "s", {}, {}, ["A"], None, None, owner=owner, lease_s=0.3)
    await store.create_run(conn, renewed, "s", {}, {}, ["A"], None, None, owner=owner, lease_s=0.3)
    await store.create_run(conn, unleased, "s", {}, {}, ["A"], None, None)  # no owner: never expires
    await store.start_run(conn, lapsing)
    await asyncio.sleep(0.1)
    assert await store.renew_leases(conn, [renewed, lapsing], lease_s=30) == 2
    await conn.execute(
        "UPDATE runs SET lease_until = now() - interval '1 s' WHERE run_id = $1", uuid.UUID(lapsing)
    )
    expired = await store.expire_leases(conn)
    assert [e["run_id"] for e in expired if e["run_id"] in (lapsing, renewed, unleased)] == [lapsing]
    row = await _status(conn, lapsing)
    assert row["status"] == "failed" and row["finished_at"] is not None
    assert "the command that started it stopped (ticktape run (pid 4242 on testhost))" in row["error"]
    assert "lease ran out" in row["error"]
    assert (await _status(conn, renewed))["status"] == "pending"
    assert (await _status(conn, unleased))["status"] == "pending"
    assert await store.renew_leases(conn, [lapsing], lease_s=30) == 0  # an ended run stays ended
    assert lapsing not in [e["run_id"] for e in await store.expire_leases(conn)]  # once


# -- cancel -------------------------------------------------------------------


async def test_cancel_of_a_running_run_ends_it_at_once(conn: asyncpg.Connection) -> None:
    # (no replay may be serving it: the request used to stay in runs.control forever)
    run = str(uuid.uuid4())
    await store.create_run(conn, run, "s", {}, {}, ["A"], None, None)
    await store.start_run(conn, run)
    assert await store.request_control(conn, run, "cancel") == "cancelled"
    row = await _status(conn, run)
    assert row["status"] == "cancelled" and row["finished_at"] is not None
    assert row["error"] == "cancelled by request"
    with pytest.raises(SpecError, match="already cancelled"):
        await store.request_control(conn, run, "cancel")
    # a replay still going sees the cancel at its next poll
    assert await store.read_control(conn, uuid.UUID(run)) == "cancel"


async def test_a_replay_gate_stops_for_a_run_that_ended_or_is_gone(conn: asyncpg.Connection) -> None:
    run = str(uuid.uuid4())
    await store.create_run(conn, run, "s", {}, {}, ["A"], None, None)
    await store.start_run(conn, run)
    assert await store.read_control(conn, uuid.UUID(run)) is None
    await store.end_unfinished_runs(conn, [run], "failed", "its command stopped")
    assert await store.read_control(conn, uuid.UUID(run)) == "cancel"
    assert await store.read_control(conn, uuid.uuid4()) == "cancel"  # deleted (or never there)


# -- delete -------------------------------------------------------------------


def _results(n: int) -> dict[str, np.ndarray]:
    out = {}
    for kind in ("signals", "orders", "fills", "equity", "bars"):
        rows = np.zeros(n, DTYPES[kind])
        rows["ts"] = T0 + np.arange(n) * 1_000_000_000
        out[kind] = rows
    return out


async def _seed_run(conn: asyncpg.Connection, symbol: str, *, status: str = "complete") -> str:
    run = str(uuid.uuid4())
    await store.create_run(conn, run, "s", {}, {}, [symbol], None, None)
    await store.write_result_set(conn, run, symbol, 0, _results(3))
    await store.write_result_set(conn, run, symbol, 1, _results(2))
    await store.update_progress(conn, run, symbol, 5, T0, done=True)
    await store.write_metrics(conn, run, {"final_pnl": 1.0, "fills": 5})
    await montecarlo.insert_study(conn, uuid.uuid4(), run, "trades", 1, 0, None, {}, {}, {})
    if status != "pending":
        await store.start_run(conn, run)
    if status in store.ENDED:
        await store.finish_run(conn, run, status)
    return run


async def _rows_of(conn: asyncpg.Connection, run: str) -> dict[str, int]:
    rid = uuid.UUID(run)
    return {
        table: await conn.fetchval(f"SELECT count(*) FROM {table} WHERE run_id = $1", rid)
        for table in store.RUN_TABLES
    }


async def test_delete_a_run_removes_its_results_and_recorded_ticks_in_one_go(
    conn: asyncpg.Connection,
) -> None:
    sym = f"DEL{uuid.uuid4().hex[:6]}"
    run, other = await _seed_run(conn, sym), await _seed_run(conn, sym)
    # ticks `ticktape record` stored for the run (and ticks of the symbol outside the recording)
    ticks = quotes(10, t0=T0, step_ns=1_000_000, bid=1.0, ask=1.1)
    await store.write_ticks(conn, "REC" + sym, ticks, 0)
    await store.record_recording(conn, run, "REC" + sym, int(ticks["ts"][2]), int(ticks["ts"][7]))
    before, other_before = await _rows_of(conn, run), await _rows_of(conn, other)
    assert all(n > 0 for n in before.values()), before

    deleted = await store.delete_runs(conn, [run])

    assert deleted.runs == [(run, "complete")]
    assert deleted.rows["runs"] == 1 and deleted.rows["fills"] == 5 and deleted.rows["sink_batches"] == 2
    assert deleted.rows["ticks"] == 6  # the recorded range, inclusive
    assert all(n == 0 for n in (await _rows_of(conn, run)).values())
    assert await store.count_ticks(conn, "REC" + sym) == 4
    assert await _rows_of(conn, other) == other_before  # another run's rows stay


async def test_delete_refuses_an_unfinished_run_unless_forced(conn: asyncpg.Connection) -> None:
    run = await _seed_run(conn, f"DEL{uuid.uuid4().hex[:6]}", status="running")
    with pytest.raises(SpecError, match=rf"run {run} is running.*--force"):
        await store.delete_runs(conn, [run])
    assert (await _status(conn, run))["status"] == "running"  # nothing deleted
    assert (await _rows_of(conn, run))["fills"] == 5
    deleted = await store.delete_runs(conn, [run], force=True)
    assert deleted.runs == [(run, "running")]
    assert all(n == 0 for n in (await _rows_of(conn, run)).values())
    with pytest.raises(SpecError, match=f"no run {run}"):
        await store.delete_runs(conn, [run])


async def test_delete_older_than(conn: asyncpg.Connection) -> None:
    old, new = [await _seed_run(conn, f"DEL{uuid.uuid4().hex[:6]}") for _ in range(2)]
    await conn.execute(
        "UPDATE runs SET created_at = now() - interval '40 days' WHERE run_id = $1", uuid.UUID(old)
    )
    deleted = await store.delete_runs(conn, older_than=timedelta(days=30))
    ids = [r for r, _ in deleted.runs]
    assert old in ids and new not in ids
    assert (await _rows_of(conn, new))["runs"] == 1


# -- the read-only role ---------------------------------------------------------


def test_a_read_only_session_reads_but_the_server_refuses_writes(db_url: str) -> None:
    n = session.run(lambda c: c.fetchval("SELECT count(*) FROM runs"), dsn=db_url, readonly=True)
    assert n >= 0
    who = session.run(lambda c: c.fetchval("SELECT current_user"), dsn=db_url, readonly=True)
    assert who == session.READER_ROLE
    for sql in (
        "DELETE FROM runs",
        "UPDATE runs SET status = 'failed'",
        "CREATE TABLE tt_nope (x int)",
        "WITH d AS (DELETE FROM run_metrics RETURNING 1) SELECT count(*) FROM d",
    ):
        with pytest.raises(StoreError, match="read-only transaction"):
            session.run(lambda c, sql=sql: c.fetch(sql), dsn=db_url, readonly=True)
    # turning the transaction read-write is refused too, and the role keeps no superuser rights
    with pytest.raises(StoreError):
        session.run(
            lambda c: c.fetch("SELECT set_config('transaction_read_only', 'off', false)"),
            dsn=db_url,
            readonly=True,
        )
    for sql in ("SELECT pg_read_file('PG_VERSION')", "COPY (SELECT 1) TO PROGRAM 'true'"):
        with pytest.raises(StoreError, match="permission denied"):
            session.run(lambda c, sql=sql: c.fetch(sql), dsn=db_url, readonly=True)
    # a statement that changes only its session changes nothing after it
    for sql in ("RESET ROLE", "SET TRANSACTION READ WRITE", "COMMIT"):
        session.run(lambda c, sql=sql: c.fetch(sql), dsn=db_url, readonly=True)
        assert (
            session.run(lambda c: c.fetchval("SELECT current_user"), dsn=db_url, readonly=True)
            == session.READER_ROLE
        )


def test_without_the_readers_login_the_app_falls_back_and_typed_sql_is_refused(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # a deployment where the reader may not log in (no password given, no
    # TICKTAPE_READER_URL) and whose user may not SET ROLE ticktape_reader
    role = f"nomember_{uuid.uuid4().hex[:8]}"
    nologin = f"nologin_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        c = await store.connect(db_url)
        try:
            await c.execute(sql)
        finally:
            await c.close()

    asyncio.run(
        admin(f"CREATE ROLE {role} LOGIN; GRANT SELECT ON runs TO {role}; CREATE ROLE {nologin} NOLOGIN")
    )
    url = with_user(db_url, role)
    settings = Settings(home=Path("/nonexistent"), reader_url=with_user(db_url, nologin))
    try:
        with caplog.at_level("WARNING", logger="ticktape.store.session"):
            count = session.run(
                lambda c: c.fetchval("SELECT count(*) FROM runs"), dsn=url, settings=settings, readonly=True
            )
            assert count >= 0
        assert nologin in caplog.text and "read-only transactions only" in caplog.text
        assert session.readonly_note(url) is not None
        with pytest.raises(StoreError, match=r"read-only transaction|permission denied"):
            session.run(lambda c: c.fetch("DELETE FROM runs"), dsn=url, settings=settings, readonly=True)
        with pytest.raises(SqlRefused, match=rf"{nologin}.*TICKTAPE_READER_URL"):
            session.run(lambda c: c.fetch("SELECT 1"), dsn=url, settings=settings, readonly=True, typed=True)
    finally:
        asyncio.run(admin(f"REVOKE ALL ON runs FROM {role}; DROP ROLE {role}; DROP ROLE {nologin}"))
