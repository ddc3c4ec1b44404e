"""Indicators agent: the only consumer of the ticks topic.

Per batch: skip it if its stream already applied it (at-least-once
delivery), validate the ticks and compute the strategy's indicator columns,
then hand the batch in memory to the strategy and execution stages (the
broker carries each tick once): :func:`process`. The results are published
and acknowledged by the broker *before* the stream's state is written, so
persisted state always implies persisted results; a batch re-processed
after a crash gives identical results, which the sink stores once. The
state write is in turn acknowledged before the batch's offset may be
committed (ticktape.tables.state.save). A batch that arrives ahead of a
missing one (Faust can skip messages around a rebalance, and a restarted
worker may resume past them: docs/architecture.md, "State and delivery") is
held and the gap read again from the broker (ticktape.pipeline.gaps); the
run fails loudly if the held batches outgrow their bound.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import faust
import numpy as np

from ticktape.agents import execution, strategy
from ticktape.errors import BatchDecodeError, GapNeverFilled
from ticktape.model.batch import Batch, TickHeader, decode
from ticktape.model.spec import RunSpec
from ticktape.pipeline.gaps import Gaps
from ticktape.pipeline.topics import Topics
from ticktape.stages import depth_for_batch, indicators_step
from ticktape.strategy import Strategy, build
from ticktape.tables.state import StateTable, StreamState, key, save

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=256)
def run_of(spec_json: str) -> tuple[RunSpec, Strategy]:
    """The run spec and strategy of a tick header's ``spec`` (built once per run)."""
    spec = RunSpec.from_json(spec_json)
    return spec, build(spec.strategy, spec.params)


def process(
    batch: Batch[TickHeader], state: StreamState, offset: int
) -> tuple[dict[str, np.ndarray], StreamState]:
    """One tick batch through the hot path (indicators, strategy, native
    engine) from its stream's ``state``: (the result set's arrays, the
    stream's new state, ``offset`` the batch's in the ticks topic)."""
    spec, strat = run_of(batch.header.spec)
    good, cols, feats, bars, ind = indicators_step(
        strat, batch.ticks, state.indicators, spec.bar_ns, batch.eos
    )
    diffs, carry = None, state.depth_carry
    if spec.depth:  # the updates carried from before, then this batch's
        diffs, rest = depth_for_batch(good["ts"], state.carry(), batch.get("levels"))
        carry = rest.tolist()
    out, signals, strat_state, engine = strategy.step(
        spec, strat, state.engine, good, feats, state.strategy, batch.eos, cols, diffs
    )
    new = StreamState(batch.seq, ind, strat_state, engine, carry, offset)
    return {"signals": signals, "bars": bars, **out}, new


def register(app: faust.App, topics: Topics, table: StateTable, kafka_url: str) -> None:
    gaps = Gaps.from_broker(kafka_url)

    @app.agent(topics.ticks, name="indicators")
    async def indicators(stream: Any) -> None:
        async for value in stream:
            msg = stream.current_event.message
            try:
                batch = decode(value, TickHeader)
            except BatchDecodeError as exc:  # not a tick batch of this version: not a run's
                log.error("%s[%d] offset %d skipped: %s", msg.topic, msg.partition, msg.offset, exc)
                continue
            k = key(batch.run_id, batch.symbol)
            state = StreamState.from_bytes(table.get(k))
            try:
                ready = await gaps.in_order(msg, batch, value, (state.seq, state.offset))
            except GapNeverFilled as exc:
                await execution.report_failure(topics, batch, str(exc))
                continue
            for offset, b in ready:
                try:
                    out, new = process(b, state, offset)
                    await execution.publish(topics, b, out, new.indicators)
                except Exception as exc:  # fail the run loudly, keep the worker alive
                    log.exception("run %s symbol %s batch %d failed", b.run_id, b.symbol, b.seq)
                    await execution.report_failure(topics, b, f"{type(exc).__name__}: {exc}")
                    break
                await save(table, k, new)
                state = new
