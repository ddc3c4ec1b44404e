"""Replay agent: a run request in, the run's ticks out.

For each symbol of the run, streams its ticks from the store in event order
as columnar batches (keyed by symbol, sequence-numbered, the run spec in the
header) at maximum speed, then an end-of-stream batch carrying the number of
ticks read.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

import faust

from ticktape import store
from ticktape.batch import Batch, empty, encode
from ticktape.spec import RunSpec

log = logging.getLogger(__name__)

#: Batches a symbol may have sent but not yet had acknowledged by the broker.
MAX_IN_FLIGHT = 8


async def replay_symbol(spec: RunSpec, symbol: str, ticks_topic, database_url: str) -> int:
    """Publish one symbol's ticks; return how many were read."""
    conn = await store.connect(database_url)
    spec_json = spec.to_json()
    seq = 0
    n = 0
    in_flight: deque = deque()

    async def send(batch: Batch) -> None:
        # force=True publishes now (not at the request's offset commit); a
        # bounded window of unacknowledged batches is the back-pressure.
        in_flight.append(await ticks_topic.send(key=symbol.encode(), value=encode(batch), force=True))
        while len(in_flight) > MAX_IN_FLIGHT:
            await in_flight.popleft()

    try:
        async for arr in store.read_ticks(
            conn, symbol, spec.start_ns, spec.end_ns, batch_size=spec.batch_size
        ):
            batch = Batch(
                run_id=spec.run_id, symbol=symbol, seq=seq, arrays={"ticks": arr}, meta={"spec": spec_json}
            )
            await send(batch)
            seq += 1
            n += len(arr)
    finally:
        await conn.close()
    eos = Batch(
        run_id=spec.run_id,
        symbol=symbol,
        seq=seq,
        arrays={"ticks": empty("ticks")},
        eos=True,
        meta={"spec": spec_json, "ticks_in": n},
    )
    await send(eos)
    while in_flight:
        await in_flight.popleft()
    return n


def register(app: faust.App, topics, database_url: str) -> None:
    @app.agent(topics.run_requests, name="replay")
    async def replay(stream):
        async for value in stream:
            spec = RunSpec.from_json(value)
            conn = await store.connect(database_url)
            try:
                status = await conn.fetchval("SELECT status FROM runs WHERE run_id = $1", spec.run_id)
                if status not in ("pending", "running"):
                    log.info("run %s is %s; request skipped", spec.run_id, status)
                    continue
                await store.start_run(conn, spec.run_id)
                try:
                    await asyncio.gather(
                        *(replay_symbol(spec, s, topics.ticks, database_url) for s in spec.symbols)
                    )
                except Exception as exc:  # the run fails loudly, the worker lives on
                    log.exception("replay of run %s failed", spec.run_id)
                    await store.finish_run(conn, spec.run_id, "failed", error=f"replay: {exc}")
            finally:
                await conn.close()
