"""Replay agent: a run request in, the run's ticks out.

For each symbol of the run, streams its ticks from the run's source (the
store by default; Parquet, the generator or a recorded topic: see
ticktape.pipeline.sources) in event order as columnar batches (keyed by symbol, sequence-numbered, the run spec in the
header), then an end-of-stream batch carrying the number of ticks read.

Speed: ``spec.speed`` None publishes as fast as the pipeline takes it; a
factor K releases event time t at wall time t0 + (t - t_first) / K, with
batches cut on an event-time grid so a watcher sees smooth progress. Every
batch passes the run's gate, which honours pause / resume / cancel and stops
the replay of a run that ended meanwhile (a lapsed lease) or was deleted.

A pipeline sweep's request (one for all its runs) takes :func:`replay_sweep`:
each symbol's ticks once, to the sweep-ticks topic, after one work item per
group of parameter sets to the sweep-groups topic (docs/sweeps.md, "Over
the pipeline").

A run request that is not a valid spec is logged and its run (when it names
one) failed; the agent goes on. A worker with this stage also fails, every
``store.LEASE_CHECK_S``, the runs whose lease ran out (their command died).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import faust
import numpy as np
from aiokafka import TopicPartition

from ticktape import store
from ticktape.backtest.run import LevelStream
from ticktape.errors import RunCancelled
from ticktape.model.batch import Batch, TickHeader, empty, encode
from ticktape.model.spec import RunSpec, parse_run_id
from ticktape.model.sweep import SweepGroup, SweepRequest, is_sweep_request, ticks_key
from ticktape.pipeline import sources
from ticktape.pipeline.control import RunGate
from ticktape.pipeline.topicread import TopicReader
from ticktape.pipeline.topics import DEFAULT_PARTITIONS, SWEEP_TICKS, Topics
from ticktape.store.retry import TRANSIENT, Reconnecting
from ticktape.strategy.catalog import check_run

log = logging.getLogger(__name__)

#: Batches a symbol may have sent but not yet had acknowledged by the broker.
MAX_IN_FLIGHT = 8
#: Wall-clock width of a paced batch.
PACED_BATCH_S = 0.1


def cut_by_event_time(ticks: np.ndarray, t_first: int, width_ns: int) -> list[np.ndarray]:
    """Split ``ticks`` where they cross a multiple of ``width_ns`` after ``t_first``."""
    if len(ticks) == 0:
        return []
    slot = (ticks["ts"] - t_first) // width_ns
    edges = np.flatnonzero(np.diff(slot)) + 1
    return np.split(ticks, edges)


class Pacer:
    """Releases event time t at wall time ``t0 + (t - t_first) / speed``,
    ``t0`` moving on by the time the run spent paused."""

    def __init__(self, speed: float | None, t_first: int | None, gate: RunGate) -> None:
        self.speed = speed
        self.t_first = t_first  # None: the first tick any symbol publishes
        self.gate = gate
        self.t0 = time.monotonic()

    def split(self, ticks: np.ndarray) -> list[np.ndarray]:
        if self.speed is None:
            return [ticks]
        if self.t_first is None and len(ticks):
            self.t_first = int(ticks["ts"][0])
            self.t0 = time.monotonic()
        return cut_by_event_time(ticks, self.t_first or 0, max(1, int(PACED_BATCH_S * self.speed * 1e9)))

    async def wait_for(self, ts: int) -> None:
        if self.speed is None:
            return
        assert self.t_first is not None  # (split saw the first tick)
        delay = self.t0 + self.gate.paused_s + (ts - self.t_first) / 1e9 / self.speed - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


async def read_resuming(
    db: Reconnecting, spec: RunSpec, symbol: str, done: list[int]
) -> AsyncGenerator[np.ndarray, None]:
    """Yield ``symbol``'s tick batches; after a lost connection, reconnect and
    resume after the ``done[0]`` ticks already consumed (the order is total:
    ``(ts, seq)``)."""
    while True:
        skip = done[0]
        try:
            conn = await db.connection()
            async for arr in store.read_ticks(
                conn, symbol, spec.start_ns, spec.end_ns, batch_size=spec.batch_size
            ):
                db.succeeded()
                if skip >= len(arr):
                    skip -= len(arr)
                    continue
                yield arr[skip:]
                skip = 0
            return
        except TRANSIENT as exc:
            await db.failed(exc)


class DepthReader:
    """A store-source run's L2 level updates of one symbol, read batch by
    batch: ``upto(ts)`` returns the updates after the previous call's time up
    to ``ts`` (book events from the run's start; a snapshot's clear becomes
    zeros for the levels shown then, ticktape.backtest.run.LevelStream)."""

    def __init__(self, db: Reconnecting, spec: RunSpec, symbol: str) -> None:
        self.db, self.symbol = db, symbol
        self.start = spec.start_ns
        self.levels = LevelStream(f"depth of {symbol}")

    async def upto(self, ts: int) -> np.ndarray:
        end = ts // 1000 * 1000 + 1000  # the store keeps microseconds: every event at <= ts
        events = await self.db.run(lambda c: store.read_book_events(c, self.symbol, self.start, end))
        self.start = end
        return self.levels.feed(events)


def ticks_of(
    spec: RunSpec, symbol: str, db: Reconnecting, kafka_url: str | None, done: list[int]
) -> AsyncIterator[np.ndarray]:
    """``symbol``'s tick batches from the run's source, resuming after ``done[0]``."""
    if spec.source["kind"] == "store":
        return read_resuming(db, spec, symbol, done)
    return sources.batches(spec, symbol, kafka_url=kafka_url, done=done)


async def replay_symbol(
    spec: RunSpec,
    symbol: str,
    ticks_topic: Any,
    database_url: str,
    pacer: Pacer,
    gate: RunGate,
    kafka_url: str | None = None,
    key: str | None = None,
    partition: int | None = None,
) -> int:
    """Publish one symbol's ticks (keyed by ``key``, default the symbol; to
    ``partition``, default by key); return how many were read."""
    db = Reconnecting(database_url, f"replay of {symbol}")
    spec_json = spec.to_json()
    seq = 0
    n = [0]  # ticks published so far
    in_flight: deque = deque()

    async def send(batch: Batch[TickHeader]) -> None:
        # the stages' lags are measured from here
        batch = replace(batch, header=replace(batch.header, sent_ns=time.time_ns()))
        # force=True publishes now (not at the request's offset commit); a
        # bounded window of unacknowledged batches is the back-pressure.
        in_flight.append(
            await ticks_topic.send(
                key=(key or symbol).encode(), value=encode(batch), partition=partition, force=True
            )
        )
        while len(in_flight) > MAX_IN_FLIGHT:
            await in_flight.popleft()

    depth = DepthReader(db, spec, symbol) if spec.depth else None
    try:
        async for arr in ticks_of(spec, symbol, db, kafka_url, n):
            levels = await depth.upto(int(arr["ts"][-1])) if depth is not None else None
            for part in pacer.split(arr):
                await gate.wait(symbol, n[0])
                await pacer.wait_for(int(part["ts"][-1]))
                arrays = {"ticks": part}
                if levels is not None:  # the updates up to this part's last tick travel with it
                    k = int(np.searchsorted(levels["ts"], part["ts"][-1], side="right"))
                    arrays["levels"], levels = levels[:k], levels[k:]
                await send(
                    Batch(
                        run_id=spec.run_id,
                        symbol=symbol,
                        seq=seq,
                        arrays=arrays,
                        header=TickHeader(spec=spec_json),
                    )
                )
                seq += 1
                n[0] += len(part)
    finally:
        await db.close()
    gate.read[symbol] = n[0]
    eos = Batch(
        run_id=spec.run_id,
        symbol=symbol,
        seq=seq,
        arrays={"ticks": empty("ticks")},
        eos=True,
        header=TickHeader(spec=spec_json, ticks_in=n[0]),
    )
    await send(eos)
    while in_flight:
        await in_flight.popleft()
    return n[0]


async def first_tick(conn: asyncpg.Connection, spec: RunSpec) -> int | None:
    """Event time of a paced run's first tick (over all its symbols); None
    at speed max (no pacing) or when only reading the source tells (the
    pacer then starts at the first tick published)."""
    if spec.source["kind"] != "store" or spec.speed is None:
        return None
    spans = [await store.tick_span(conn, s, spec.start_ns, spec.end_ns) for s in spec.symbols]
    return min((span[0] for span in spans if span is not None), default=0)


async def replay_run(
    spec: RunSpec, ticks_topic: Any, database_url: str, kafka_url: str | None = None
) -> None:
    """Replay every symbol of ``spec`` (unless the run is over already)."""
    db = Reconnecting(database_url, f"replay of run {spec.run_id}")
    try:
        status = await db.run(lambda c: store.run_status(c, spec.run_id))
        if status not in store.UNFINISHED:
            log.info("run %s is %s; request skipped", spec.run_id, status)
            return
        await db.run(lambda c: store.start_run(c, spec.run_id))
        gate = RunGate(db, spec.run_id)
        pacer = Pacer(spec.speed, await db.run(lambda c: first_tick(c, spec)), gate)
        try:
            async with asyncio.TaskGroup() as tg:  # one symbol failing stops the others
                for s in spec.symbols:
                    tg.create_task(replay_symbol(spec, s, ticks_topic, database_url, pacer, gate, kafka_url))
            await gate.flush()
        except* RunCancelled:
            await gate.flush()
            # (cancelled by request, or ended otherwise: then it stays as it ended)
            await db.run(
                lambda c: store.end_unfinished_runs(c, [spec.run_id], "cancelled", "cancelled by request")
            )
            log.info(
                "run %s ended while replaying (%s): replay stopped",
                spec.run_id,
                await db.run(lambda c: store.run_status(c, spec.run_id)),
            )
        except* Exception as group:  # the run fails loudly, the worker lives on
            exc = group.exceptions[0]
            log.error("replay of run %s failed", spec.run_id, exc_info=exc)
            await fail_run(db, spec.run_id, f"replay: {exc}")
    finally:
        await db.close()


async def replay_sweep(req: SweepRequest, topics: Topics, database_url: str, kafka_url: str) -> None:
    """Replay a pipeline sweep's data once: each symbol's ticks to the
    sweep-ticks topic (partition: the symbol's place in the spec), after one
    work item per group of sets to the sweep-groups topic (partition: the
    group's number) saying where in that topic each symbol starts; a worker's
    hot path takes each group (ticktape.agents.strategy.register_sweep).

    The replay follows the control of the sweep's first run (pause, resume,
    cancel: ``ticktape runs pause RUN``); a cancel, or a failure, ends all
    its runs."""
    spec, ids = req.spec, [s.run_id for s in req.sets]
    db = Reconnecting(database_url, f"replay of sweep {req.sweep_id}")
    try:
        statuses = [await db.run(lambda c, r=r: store.run_status(c, r)) for r in ids]  # type: ignore[misc]
        if not any(s in store.UNFINISHED for s in statuses):
            log.info("sweep %s has ended; request skipped", req.sweep_id)
            return
        for r in ids:
            await db.run(lambda c, r=r: store.start_run(c, r))  # type: ignore[misc]
        n_parts = topics.sweep_ticks.partitions or DEFAULT_PARTITIONS
        where = {s: i % n_parts for i, s in enumerate(spec.symbols)}
        async with TopicReader(kafka_url) as reader:  # the sweep's batches come after these offsets
            _, ends = await reader.bounds(
                [TopicPartition(SWEEP_TICKS, p) for p in sorted(set(where.values()))]
            )
        starts = {s: (p, int(ends[TopicPartition(SWEEP_TICKS, p)])) for s, p in where.items()}
        n_groups = topics.sweep_groups.partitions or DEFAULT_PARTITIONS
        for g in range(req.n_groups):
            item = SweepGroup(spec, g, req.group(g), starts)
            fut = await topics.sweep_groups.send(
                key=item.key.encode(), value=item.to_json().encode(), partition=g % n_groups, force=True
            )
            await fut
        log.info(
            "sweep %s: %d sets in %d groups over %s",
            req.sweep_id,
            len(ids),
            req.n_groups,
            ", ".join(spec.symbols),
        )
        gate = RunGate(db, ids[0])
        pacer = Pacer(spec.speed, await db.run(lambda c: first_tick(c, spec)), gate)
        try:
            async with asyncio.TaskGroup() as tg:
                for s in spec.symbols:
                    tg.create_task(
                        replay_symbol(
                            spec,
                            s,
                            topics.sweep_ticks,
                            database_url,
                            pacer,
                            gate,
                            kafka_url,
                            key=ticks_key(req.sweep_id, s),
                            partition=where[s],
                        )
                    )
            await gate.flush()
        except* RunCancelled:
            await db.run(lambda c: store.end_unfinished_runs(c, ids, "cancelled", "cancelled by request"))
            log.info("sweep %s ended while replaying: replay stopped", req.sweep_id)
        except* Exception as group:
            exc = group.exceptions[0]
            log.error("replay of sweep %s failed", req.sweep_id, exc_info=exc)
            for r in ids:
                await fail_run(db, r, f"replay: {exc}")
    finally:
        await db.close()


async def fail_run(db: Reconnecting, run_id: str, error: str) -> None:
    """Mark ``run_id`` failed with ``error`` unless it ended already (a store
    that cannot be reached is logged: the agent goes on)."""
    try:
        await db.run(lambda c: store.end_unfinished_runs(c, [run_id], "failed", error))
    except Exception:
        log.exception("run %s: could not mark it failed (%s)", run_id, error)


def request_run_id(value: bytes | str) -> str | None:
    """The run id a run request names, if it names a valid one (a request
    that is not a valid spec may still say which run it was for)."""
    try:
        d = json.loads(value)
        return str(parse_run_id(d["run_id"])) if isinstance(d, dict) and "run_id" in d else None
    except (ValueError, TypeError):
        return None


def register(app: faust.App, topics: Topics, database_url: str, kafka_url: str | None = None) -> None:
    replayed: set[str] = set()  # runs this worker replayed to the end
    leases = Reconnecting(database_url, "lease check")

    @app.agent(topics.run_requests, name="replay")
    async def replay(stream: Any) -> None:
        db = Reconnecting(database_url, "run requests")
        try:
            async for value in stream:
                if is_sweep_request(value):  # one replay for all of a sweep's runs
                    await sweep_request(value)
                    continue
                try:
                    spec = check_run(RunSpec.from_json(value))
                except Exception as exc:  # a malformed request: said, its run failed, the agent goes on
                    run_id = request_run_id(value)
                    log.error("malformed run request%s: %s", f" for run {run_id}" if run_id else "", exc)
                    if run_id is not None:
                        await fail_run(db, run_id, f"malformed run request: {exc}")
                    continue
                if spec.run_id in replayed:  # delivered again (after a rebalance): sent already
                    log.info(
                        "run %s was replayed by this worker; request delivered again, skipped", spec.run_id
                    )
                    continue
                try:
                    await replay_run(spec, topics.ticks, database_url, kafka_url)
                except Exception as exc:  # (the store gave up): the run fails if it can, the agent goes on
                    log.exception("run %s: replay failed", spec.run_id)
                    await fail_run(db, spec.run_id, f"replay: {exc}")
                replayed.add(spec.run_id)
        finally:
            await db.close()

    async def sweep_request(value: bytes) -> None:
        db = Reconnecting(database_url, "sweep requests")
        try:
            try:
                req = SweepRequest.from_json(value)
                for s in req.sets:
                    check_run(req.set_spec(s))
            except Exception as exc:  # a malformed request: said, the agent goes on
                log.error("malformed sweep request: %s", exc)
                return
            if req.sweep_id in replayed:  # delivered again (after a rebalance): sent already
                log.info("sweep %s was replayed by this worker; request skipped", req.sweep_id)
                return
            try:
                await replay_sweep(req, topics, database_url, kafka_url or "")
            except Exception as exc:  # (the store or broker gave up): its runs fail, the agent goes on
                log.exception("sweep %s: replay failed", req.sweep_id)
                for s in req.sets:
                    await fail_run(db, s.run_id, f"replay: {exc}")
            replayed.add(req.sweep_id)
        finally:
            await db.close()

    @app.timer(store.LEASE_CHECK_S)
    async def expire_leases() -> None:
        """Fail the runs whose command stopped renewing their lease (nothing else would end them)."""
        try:
            await leases.run(store.expire_leases)
        except Exception:  # the next turn tries again
            log.exception("expiring the leases of runs failed")
