"""The sink against the real (embedded) PostgreSQL: a run completes only with
every result batch stored; a batch that cannot be stored fails the run."""

from __future__ import annotations

import time
import uuid

import asyncpg
import numpy as np
import pytest

from ticktape import store
from ticktape.agents import sink
from ticktape.model.batch import DTYPES, Batch, ResultsHeader
from ticktape.model.spec import RunSpec

pytestmark = pytest.mark.integration


async def _run(conn: asyncpg.Connection, symbol: str) -> RunSpec:
    spec = RunSpec(strategy="sma_crossover", symbols=(symbol,))
    d = spec.engine.__dict__
    await store.create_run(
        conn,
        spec.run_id,
        spec.strategy,
        {"engine": d},
        spec.params,
        spec.symbols,
        None,
        None,
        status="running",
    )
    return spec


def _batch(spec: RunSpec, seq: int, accepted: int, eos: bool = False) -> Batch:
    header = ResultsHeader(
        decided_ns=time.time_ns(),
        accepted=accepted,
        rejects={},
        last_ts=10**18 + seq,
        ticks_in=accepted if eos else None,
    )
    return Batch(run_id=spec.run_id, symbol=spec.symbols[0], seq=seq, arrays={}, header=header, eos=eos)


async def _status(conn: asyncpg.Connection, spec: RunSpec) -> tuple[str, str | None]:
    row = await conn.fetchrow("SELECT status, error FROM runs WHERE run_id = $1", uuid.UUID(spec.run_id))
    return row["status"], row["error"]


async def test_a_run_with_a_result_batch_missing_fails_instead_of_completing(conn) -> None:
    sym = f"SK{uuid.uuid4().hex[:6]}"
    spec = await _run(conn, sym)
    assert not await sink.write(conn, _batch(spec, 0, 100))
    # batch 1 never stored (its write failed); the counts in the headers are cumulative
    assert await sink.write(conn, _batch(spec, 2, 300, eos=True))  # the run is over
    assert await _status(conn, spec) == ("failed", f"result batches missing: {sym} 1")


async def test_a_run_with_every_batch_completes(conn, documented_metrics) -> None:
    spec = await _run(conn, f"SK{uuid.uuid4().hex[:6]}")
    over = [await sink.write(conn, _batch(spec, seq, 100 * (seq + 1), eos=seq == 2)) for seq in range(3)]
    assert over == [False, False, True]
    assert await _status(conn, spec) == ("complete", None)
    # what the completion stores is in docs/metrics.md
    names = {
        r["name"] for r in await conn.fetch("SELECT name FROM run_metrics WHERE run_id = $1", spec.run_id)
    }
    assert {"orders", "fills"} <= names <= documented_metrics["performance"] | documented_metrics["stored"]


async def test_fills_that_cannot_be_valued_fail_the_completion_and_leave_the_connection_usable(conn) -> None:
    """The end-of-run metrics stream the run's fills and equity in one COPY:
    an error while folding them is raised with the field named, the
    completing transaction rolls back and the connection takes the next
    statement (no COPY left running on it)."""

    sym = f"SK{uuid.uuid4().hex[:6]}"
    spec = await _run(conn, sym)
    equity = np.zeros(3, DTYPES["equity"])
    equity["ts"] = 10**18 + np.arange(3)
    equity["equity"] = equity["cash"] = 1e6
    await store.write_results(conn, spec.run_id, sym, "equity", 0, equity)
    fills = np.zeros(1, DTYPES["fills"])
    fills["ts"], fills["side"], fills["price"], fills["qty"] = 10**18 + 1, 1, np.nan, 1.0
    await store.write_results(conn, spec.run_id, sym, "fills", 0, fills)
    with pytest.raises(ValueError, match=r"fills.price\[0\] = nan must be finite and > 0"):
        await sink.write(conn, _batch(spec, 0, 100, eos=True))
    assert await conn.fetchval("SELECT 1") == 1
    assert await _status(conn, spec) == ("running", None)
