"""Sink agent: results topic -> store, idempotently; completes runs.

Each results message is written keyed by (run, symbol, stream, seq), so a
message delivered twice stores nothing new. The cumulative counts of its
header (:class:`~ticktape.model.batch.ResultsHeader`) update the run's
progress; a failure report fails the run. A stream's result sets still
missing when its end of stream arrives (the group consumer skipped them:
docs/architecture.md, "State and delivery") are read again straight from
the broker (ticktape.pipeline.gaps) and written first. When every symbol of
a run has reached its end of stream, the run row is completed with counts,
timings and metrics.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
import faust
import numpy as np

from ticktape import store
from ticktape.errors import BatchDecodeError
from ticktape.model.batch import Batch, FailureHeader, ResultsHeader, SweepHeader, decode
from ticktape.pipeline.gaps import Gaps
from ticktape.pipeline.topics import Topics
from ticktape.store.retry import Reconnecting

log = logging.getLogger(__name__)

STREAMS = ("signals", "orders", "fills", "equity", "bars")

#: What the results topic carries.
Results = Batch[ResultsHeader | FailureHeader]


def register(app: faust.App, topics: Topics, database_url: str, kafka_url: str) -> None:
    gaps = Gaps.from_broker(kafka_url)

    @app.agent(topics.results, name="sink")
    async def sink(stream: Any) -> None:
        db = Reconnecting(database_url, "sink")  # a lost connection is re-opened, the write repeated
        latency = Latency()

        def forget(run_id: str) -> None:
            """Drop what this sink keeps of a run that is over (a failed one's
            streams never reach their ends)."""
            latency.forget(run_id)
            gaps.forget(run_id)

        try:
            async for value in stream:
                msg = stream.current_event.message
                try:
                    b = cast(Results, decode(value, ResultsHeader | FailureHeader | SweepHeader))
                except BatchDecodeError as exc:  # a missing result set fails its run at its end
                    log.error("%s[%d] offset %d skipped: %s", msg.topic, msg.partition, msg.offset, exc)
                    continue
                if isinstance(b.header, SweepHeader):  # a sweep group's progress: no rows, its own path
                    await write_sweep_safely(db, cast(Batch[SweepHeader], b))
                    continue
                latency.add(b)
                gaps.seen(msg, b)
                try:
                    if b.eos:  # first the stream's result sets the group never delivered
                        missing = await db.run(
                            lambda conn, b=b: store.missing_result_sets(conn, b.run_id, b.symbol, b.seq)  # type: ignore[misc]
                        )
                        for again in await gaps.at_end(msg, b, missing):
                            latency.add(again)
                            await db.run(lambda conn, again=again: write(conn, again, latency))  # type: ignore[misc]
                    if await db.run(lambda conn, b=b: write(conn, b, latency)):  # type: ignore[misc]
                        forget(b.run_id)
                except Exception as exc:  # retries exhausted or not retryable: the run fails loudly
                    log.exception("run %s: storing %s batch %d failed", b.run_id, b.symbol, b.seq)
                    error = f"sink: storing {b.symbol} batch {b.seq} failed: {type(exc).__name__}: {exc}"
                    await db.run(
                        lambda conn, b=b, error=error: store.finish_run(conn, b.run_id, "failed", error=error)  # type: ignore[misc]
                    )
                    forget(b.run_id)
        finally:
            await db.close()


class Latency:
    """Tick-to-decision latencies of live runs (received -> decided), per run.

    Counted in a log-scale histogram (bins 1% wide from 1 µs to 1,000 s), so
    a paper-trading run that goes on for days, one tick a batch, holds 16 kB
    here instead of a number per tick; percentiles are the bins' geometric
    middles, within 0.5%.
    """

    LOW_NS = 1_000
    RATIO = 1.01
    BINS = 2 + math.ceil(math.log(1e12 / LOW_NS) / math.log(RATIO))

    def __init__(self) -> None:
        self.counts: dict[str, np.ndarray] = {}

    def add(self, b: Results) -> None:
        """Count the latency of result set ``b`` (live runs only)."""
        if isinstance(b.header, ResultsHeader) and (ns := b.header.latency_ns) is not None:
            counts = self.counts.get(b.run_id)
            if counts is None:
                counts = self.counts[b.run_id] = np.zeros(self.BINS, np.int64)
            counts[self._bin(ns)] += 1

    def _bin(self, ns: int) -> int:
        if ns < self.LOW_NS:
            return 0
        return min(self.BINS - 1, 1 + int(math.log(ns / self.LOW_NS) / math.log(self.RATIO)))

    def metrics(self, run_id: str) -> dict[str, float]:
        counts = self.counts.get(run_id)
        if counts is None:
            return {}
        cum = np.cumsum(counts)
        # nearest rank: the first bin holding the q-th of the n samples
        i50, i99 = np.searchsorted(cum, [0.5 * cum[-1], 0.99 * cum[-1]])
        ms = [self.LOW_NS * self.RATIO ** (max(i, 1) - 0.5) / 1e6 for i in (i50, i99)]
        return {"tick_to_decision_p50_ms": ms[0], "tick_to_decision_p99_ms": ms[1]}

    def forget(self, run_id: str) -> None:
        self.counts.pop(run_id, None)


async def write(conn: asyncpg.Connection, b: Results, latency: Latency | None = None) -> bool:
    """Store one results message (idempotent: safe to repeat); True if the
    run is over now (it failed, or this completed it)."""
    h = b.header
    if isinstance(h, FailureHeader):
        await store.finish_run(conn, b.run_id, "failed", error=h.error)
        return True
    await store.write_result_set(conn, b.run_id, b.symbol, b.seq, {kind: b.get(kind) for kind in STREAMS})
    await store.update_progress(
        conn,
        b.run_id,
        b.symbol,
        ticks_processed=h.accepted,
        last_ts_ns=h.last_ts,
        done=b.eos,
        ticks_in=h.ticks_in,
        ticks_rejected=sum(h.rejects.values()),
        rejects=h.rejects,
        hot_lag_s=h.hot_lag_s,
        sink_lag_s=(time.time_ns() - h.decided_ns) / 1e9,
    )
    if b.eos:
        return await store.complete_if_done(conn, b.run_id, latency.metrics(b.run_id) if latency else None)
    return False


async def write_sweep(conn: asyncpg.Connection, b: Batch[SweepHeader]) -> None:
    """Store a sweep group's progress message (idempotent: safe to repeat):
    every run's progress for the batch's symbol; on the last, each run's
    metrics and counts, completing it (a run that ended meanwhile is left
    as it ended)."""
    h = b.header
    sink_lag = (time.time_ns() - h.decided_ns) / 1e9
    for run_id in h.runs:
        await store.update_progress(
            conn,
            run_id,
            b.symbol,
            ticks_processed=h.accepted,
            last_ts_ns=h.last_ts,
            done=b.eos,
            ticks_in=h.ticks_in,
            ticks_rejected=sum(h.rejects.values()),
            rejects=h.rejects,
            hot_lag_s=h.hot_lag_s,
            sink_lag_s=sink_lag,
        )
    if h.metrics is None or h.totals is None:
        return
    t = h.totals
    lost = t["ticks_in"] - t["ticks_processed"] - t["ticks_rejected"]
    for run_id, metrics in h.metrics.items():
        async with conn.transaction():
            run = await store.find_run(conn, run_id)
            if run["status"] not in store.UNFINISHED:
                continue
            await store.write_metrics(conn, run_id, metrics)
            started = run["started_at"]
            await store.finish_run(
                conn,
                run_id,
                "failed" if lost else "complete",
                ticks_in=t["ticks_in"],
                ticks_processed=t["ticks_processed"],
                ticks_rejected=t["ticks_rejected"],
                rejects=h.all_rejects or {},
                orders=int(metrics.get("orders", 0)),
                fills=int(metrics.get("fills", 0)),
                wall_seconds=(datetime.now(UTC) - started).total_seconds() if started else 0.0,
                error=f"{lost} ticks read but neither processed nor rejected" if lost else None,
            )
        log.info("run %s of sweep %s stored", run_id, b.run_id)


async def write_sweep_safely(db: Reconnecting, b: Batch[SweepHeader]) -> None:
    """:func:`write_sweep`, retried on a lost connection; when it cannot be
    stored, the group's runs fail loudly."""
    try:
        await db.run(lambda conn: write_sweep(conn, b))
    except Exception as exc:
        log.exception("sweep %s: storing %s batch %d failed", b.run_id, b.symbol, b.seq)
        error = (
            f"sink: storing sweep progress of {b.symbol} batch {b.seq} failed: {type(exc).__name__}: {exc}"
        )
        for run_id in b.header.runs:
            await db.run(lambda conn, r=run_id: store.finish_run(conn, r, "failed", error=error))  # type: ignore[misc]
