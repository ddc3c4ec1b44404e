"""Indicators agent: the only consumer of the ticks topic.

Per batch: skip it if its stream already applied it (at-least-once
delivery), validate the ticks and compute the strategy's indicator columns,
then hand the batch in memory to the strategy and execution stages (the
broker carries each tick once). The results are published and acknowledged
by the broker *before* the stream's state is written, so persisted state
always implies persisted results; a batch re-processed after a crash gives
identical results, which the sink stores once. The state write is in turn
acknowledged before the batch's offset may be committed
(ticktape.tables.state.save). A batch that arrives ahead of a missing one
(Faust can skip messages around a rebalance, and a restarted worker may
resume past them: docs/architecture.md, "State and delivery") is held, and
the partition is read again straight from the broker between the stream's
last applied batch and this one; the missing batches found there are applied
in order, then the held ones. The run fails loudly if the held batches
outgrow their bound.
"""

from __future__ import annotations

import logging

import faust

from ticktape.agents import execution, strategy
from ticktape.model.batch import TickHeader, decode
from ticktape.model.spec import RunSpec
from ticktape.pipeline import topicread
from ticktape.pipeline.topics import Topics
from ticktape.stages import depth_for_batch, indicators_step
from ticktape.strategy import Strategy, build
from ticktape.tables.state import StateTable, StreamState, key, save

log = logging.getLogger(__name__)

#: Bytes of batches one stream may hold while waiting for a missing one.
MAX_AHEAD_BYTES = 512 * 1024 * 1024


def register(app: faust.App, topics: Topics, table: StateTable, kafka_url: str) -> None:
    runs: dict[str, tuple[RunSpec, Strategy]] = {}

    def run_of(batch) -> tuple[RunSpec, Strategy]:
        if batch.run_id not in runs:
            spec = RunSpec.from_json(batch.header.spec)
            runs[batch.run_id] = (spec, build(spec.strategy, spec.params))
        return runs[batch.run_id]

    # Batches that arrived ahead of a missing one, per stream: seq -> (offset, message).
    ahead: dict[str, dict[int, tuple[int, bytes]]] = {}
    # Per stream with held batches: (its seq then, the offset up to which its
    # partition has been read again), so each offset is read again once per gap.
    reread: dict[str, tuple[int, int]] = {}

    async def apply(batch, k: str, state: StreamState, offset: int) -> StreamState | None:
        try:
            spec, strat = run_of(batch)
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
            await execution.publish(topics, batch, {"signals": signals, "bars": bars, **out}, ind)
        except Exception as exc:  # fail the run loudly, keep the worker alive
            log.exception("run %s symbol %s batch %d failed", batch.run_id, batch.symbol, batch.seq)
            await execution.report_failure(topics, batch, f"{type(exc).__name__}: {exc}")
            return None
        new = StreamState(batch.seq, ind, strat_state, engine, carry, offset)
        await save(table, k, new)
        return new

    async def read_again(k: str, batch, msg, state: StreamState) -> None:
        """Hold the stream's batches missing before ``batch`` that its
        partition has between the last applied batch and ``msg``, read straight
        from the broker (they were skipped, or committed by a worker that
        died before applying them)."""
        seq, done = reread.get(k, (state.seq, -1))
        start = None if state.offset < 0 else state.offset + 1  # unknown: from the partition's start
        if seq == state.seq and done >= 0:
            start = max(start or 0, done)
        if start is not None and start >= msg.offset:
            return
        reread[k] = (state.seq, msg.offset)
        held = ahead[k]
        found = await topicread.read_again(
            kafka_url,
            msg,
            start,
            batch.run_id,
            batch.symbol,
            lambda seq: state.seq < seq < batch.seq and seq not in held,
        )
        held.update(found)
        log.warning(
            "%s: read %s[%d] offsets %s..%d again from the broker: %d of the missing batches there",
            k,
            msg.topic,
            msg.partition,
            "start" if start is None else start,
            msg.offset - 1,
            len(found),
        )

    @app.agent(topics.ticks, name="indicators")
    async def indicators(stream):
        async for value in stream:
            batch = decode(value, TickHeader)
            k = key(batch.run_id, batch.symbol)
            state = StreamState.from_bytes(table.get(k))
            if batch.seq <= state.seq:
                continue  # re-delivered: already applied
            msg = stream.current_event.message
            offset = msg.offset
            if batch.seq > state.seq + 1:
                held = ahead.setdefault(k, {})
                if sum(len(v) for _, v in held.values()) + len(value) > MAX_AHEAD_BYTES:
                    await execution.report_failure(
                        topics,
                        batch,
                        f"batches {state.seq + 1}..{min(held, default=batch.seq) - 1} never arrived",
                    )
                    continue
                held[batch.seq] = (offset, bytes(value))
                log.warning(
                    "%s: batch %d (%s[%d] offset %d) is ahead of %d; held until the gap fills",
                    k,
                    batch.seq,
                    msg.topic,
                    msg.partition,
                    offset,
                    state.seq,
                )
                await read_again(k, batch, msg, state)
                batch = None
            while (nxt := ahead.get(k, {}).pop(state.seq + 1, None)) is not None or batch is not None:
                if nxt is not None:
                    offset, batch = nxt[0], decode(nxt[1], TickHeader)
                if (state := await apply(batch, k, state, offset)) is None:
                    break
                batch = None
            if not ahead.get(k):
                ahead.pop(k, None)
                reread.pop(k, None)
