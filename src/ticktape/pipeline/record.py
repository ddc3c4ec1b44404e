"""Recording: copy the ticks of a live or replayed run from the ticks topic
into the store (the topic keeps them), so a recorded session can be replayed
later, time-compressed, like any stored history.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer

from ticktape import store
from ticktape.model.batch import decode
from ticktape.model.spec import parse_run_id
from ticktape.pipeline.topics import APP_ID, MAX_MESSAGE_BYTES


@dataclass
class Recording:
    """What was recorded, per symbol (stored under ``prefix + symbol``)."""

    ticks: dict[str, int] = field(default_factory=dict)
    stored: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0  # batches seen twice in the topic (at-least-once), skipped
    complete: bool = False  # every symbol's end of stream was seen


async def record(
    kafka_url: str, dsn: str, run_id: str, prefix: str = "", idle_timeout: float = 10.0
) -> Recording:
    """Copy run ``run_id``'s ticks into the store until every symbol of the run
    reached its end of stream (or nothing arrived for ``idle_timeout`` s).

    Ticks keep their event time (floored to microseconds by the store) and are
    numbered per symbol in stream order, so recording twice stores nothing new.
    The time range recorded per symbol is noted with the run
    (``store.record_recording``): ``ticktape runs delete`` deletes the ticks
    with it. SpecError naming ``run_id`` if there is no such run.
    """
    run_id = str(parse_run_id(run_id))
    conn = await store.connect(dsn)
    try:
        symbols = list((await store.find_run(conn, run_id))["symbols"] or [])
    except BaseException:
        await conn.close()
        raise
    consumer = AIOKafkaConsumer(
        f"{APP_ID}.ticks",
        bootstrap_servers=kafka_url,
        group_id=None,  # a reader, not a member of the pipeline's group
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        fetch_max_bytes=4 * MAX_MESSAGE_BYTES,
    )
    out = Recording()
    next_seq: dict[str, int] = {}
    ended: set[str] = set()
    await consumer.start()
    try:
        last = time.monotonic()
        while time.monotonic() - last < idle_timeout:
            got = await consumer.getmany(timeout_ms=200)
            for records in got.values():
                for rec in records:
                    b = decode(rec.value)
                    if b.run_id != run_id:
                        continue
                    last = time.monotonic()
                    expected = next_seq.get(b.symbol, 0)
                    if b.seq < expected:
                        out.duplicates += 1
                        continue
                    next_seq[b.symbol] = b.seq + 1
                    ticks = b.ticks
                    first = out.ticks.get(b.symbol, 0)
                    if len(ticks):  # noted first: a crash between leaves no tick it does not cover
                        await store.record_recording(
                            conn, run_id, prefix + b.symbol, int(ticks["ts"].min()), int(ticks["ts"].max())
                        )
                        n = await store.write_ticks(conn, prefix + b.symbol, ticks, first)
                        out.stored[b.symbol] = out.stored.get(b.symbol, 0) + n
                    out.ticks[b.symbol] = first + len(ticks)
                    if b.eos:
                        ended.add(b.symbol)
            if symbols and ended >= set(symbols):
                out.complete = True
                break
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
        await conn.close()
    return out
