"""Strategy stage: ticks + indicator columns -> decisions -> the engine.

Called in memory by the indicators agent; the strategy itself never sees
Faust, Kafka or SQL. A vectorized strategy decides for the whole batch and
the engine (ticktape.agents.execution's state) fills it; a per-tick strategy
alternates with the engine tick by tick (it must see its fills in event
order), which is why decision and execution share this one call.

Pipeline sweeps take a path of their own (:func:`register_sweep`): a worker
takes a group of parameter sets from the sweep-groups topic, reads the
sweep's ticks (each symbol's published once) straight from the broker and
runs every set of the group on each batch (:class:`ticktape.backtest.groups.SetGroup`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import faust
import numpy as np
from aiokafka import TopicPartition

from ticktape import store
from ticktape.agents import execution
from ticktape.backtest.groups import SetGroup
from ticktape.errors import GapNeverFilled, SpecError
from ticktape.model.batch import Batch, TickHeader, decode
from ticktape.model.spec import RunSpec
from ticktape.model.sweep import SweepGroup, ticks_key
from ticktape.native import Engine
from ticktape.pipeline.topicread import TopicReader
from ticktape.pipeline.topics import SWEEP_TICKS, Topics
from ticktape.stages import StrategyState, new_engine, trade_step
from ticktape.store.retry import Reconnecting
from ticktape.strategy import Columns, Strategy

log = logging.getLogger(__name__)


def step(
    spec: RunSpec,
    strat: Strategy,
    engine_state: bytes | None,
    ticks: np.ndarray,
    feats: dict[str, np.ndarray],
    state: StrategyState,
    eos: bool,
    cols: Columns | None = None,
    depth: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray, StrategyState, bytes]:
    """Run one batch: (engine outputs, signal changes, strategy state, engine state).

    The engine is restored from ``engine_state`` (None: a new one for ``spec``);
    ``depth``: the batch's DEPTH_DTYPE diffs (ticktape.stages.depth_for_batch).
    """
    engine = Engine.from_state(engine_state) if engine_state else new_engine(spec, strat)
    out, signals, new = trade_step(strat, engine, ticks, feats, state, eos, cols, depth)
    return out, signals, new, engine.get_state()


#: Seconds without a sweep batch after which a group asks the store whether
#: its runs ended (a cancelled or failed sweep sends no end of stream).
SWEEP_IDLE_S = 5.0


async def sweep_batches(
    item: SweepGroup, kafka_url: str, ended: Callable[[], Awaitable[bool]]
) -> AsyncGenerator[Batch[TickHeader], None]:
    """The sweep's tick batches of every symbol of ``item``, each symbol's in
    order, read straight from the sweep-ticks topic from where the replay
    said they start (batches of other streams in those partitions passed
    over) until every symbol's end of stream; stops early when ``ended()``
    says, after :data:`SWEEP_IDLE_S` without a batch, that the runs ended."""
    keys = {ticks_key(item.sweep_id, s).encode(): s for s in item.spec.symbols}
    want = dict.fromkeys(item.spec.symbols, 0)  # next seq per symbol
    open_ = set(item.spec.symbols)
    tps = {TopicPartition(SWEEP_TICKS, p): off for p, off in item.starts.values()}
    async with TopicReader(kafka_url) as reader:
        consumer = reader.consumer
        consumer.assign(list(tps))
        for tp, off in tps.items():
            consumer.seek(tp, off)
        idle = time.monotonic()
        while open_:
            got = await consumer.getmany(*tps, timeout_ms=500)
            for records in got.values():
                for rec in records:
                    symbol = keys.get(rec.key) if rec.key is not None else None
                    if symbol is None or symbol not in open_:
                        continue
                    b = decode(rec.value, TickHeader)
                    if b.seq < want[symbol]:  # sent twice (a producer retry): applied already
                        continue
                    if b.seq > want[symbol]:
                        raise GapNeverFilled(
                            f"{symbol}: batch {b.seq} of the sweep's ticks follows batch {want[symbol] - 1}"
                            f" in {SWEEP_TICKS}[{rec.partition}] at offset {rec.offset}"
                        )
                    want[symbol] += 1
                    if b.eos:
                        open_.discard(symbol)
                    idle = time.monotonic()
                    yield b
            if open_ and time.monotonic() - idle > SWEEP_IDLE_S:
                if await ended():
                    log.info("sweep %s group %d: its runs ended; group stopped", item.sweep_id, item.group)
                    return
                idle = time.monotonic()


async def run_group(item: SweepGroup, topics: Topics, database_url: str, kafka_url: str) -> None:
    """Evaluate one group of a sweep's parameter sets over the sweep's ticks
    (:class:`ticktape.backtest.groups.SetGroup`), publishing its progress
    per batch and each set's metrics at the end."""
    spec = item.spec
    group = SetGroup(
        spec.strategy, spec.params, [s.params for s in item.sets], spec.engine, spec.symbols, spec.return_grid
    )
    log.info(
        "sweep %s group %d (sets %s) taken by worker pid %d",
        item.sweep_id,
        item.group,
        ",".join(str(s.index) for s in item.sets),
        os.getpid(),
    )
    db = Reconnecting(database_url, f"sweep group {item.group}")
    ids = [s.run_id for s in item.sets]

    async def ended() -> bool:
        statuses = [await db.run(lambda c, r=r: store.run_status(c, r)) for r in ids]  # type: ignore[misc]
        return not any(s in store.UNFINISHED for s in statuses)

    try:
        async for b in sweep_batches(item, kafka_url, ended):
            known = set(group.failed)
            group.add(b.symbol, b.ticks, b.eos)
            for j in sorted(set(group.failed) - known):  # that set's run fails now, the others go on
                log.error("sweep %s set %d failed: %s", item.sweep_id, item.sets[j].index, group.failed[j])
                await execution.report_sweep_failure(topics, item, group.failed[j], [item.sets[j]])
            await execution.publish_sweep(topics, item, b, group)
    finally:
        await db.close()
    if group.finished:
        log.info("sweep %s group %d done by worker pid %d", item.sweep_id, item.group, os.getpid())


def register_sweep(app: faust.App, topics: Topics, database_url: str, kafka_url: str) -> None:
    """The hot path of pipeline sweeps: one group of sets at a time, from the
    sweep-groups topic (the partitions this worker holds)."""

    @app.agent(topics.sweep_groups, name="sweep-groups")
    async def sweep_groups(stream: Any) -> None:
        async for value in stream:
            try:
                item = SweepGroup.from_json(value)
            except SpecError as exc:
                log.error("sweep group skipped: %s", exc)
                continue
            try:
                await run_group(item, topics, database_url, kafka_url)
            except Exception as exc:  # the group's runs fail loudly, the worker lives on
                log.exception("sweep %s group %d failed", item.sweep_id, item.group)
                await execution.report_sweep_failure(topics, item, f"{type(exc).__name__}: {exc}")
