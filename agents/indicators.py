"""Indicators agent: the only consumer of the ticks topic.

Per batch: skip it if its stream already applied it (at-least-once
delivery), validate the ticks and compute the strategy's indicator columns,
then hand the batch in memory to the strategy and execution stages (the
broker carries each tick once). The results are published and acknowledged
by the broker *before* the stream's state is written, so persisted state
always implies persisted results; a batch re-processed after a crash gives
identical results, which the sink stores once. The state write is in turn
acknowledged before the batch's offset may be committed
(ticktape.tables.state.save). A batch that still arrives ahead of a missing
one (Faust can drop messages around a rebalance: docs/architecture.md, "State
and delivery") is held until the gap fills, and the run fails loudly if the
held batches outgrow their bound.
"""

from __future__ import annotations

import logging
import time

import faust

from ticktape.agents import execution, strategy
from ticktape.batch import decode
from ticktape.spec import RunSpec
from ticktape.stages import depth_for_batch, indicators_step
from ticktape.strategy import Strategy, build
from ticktape.tables.state import StateTable, StreamState, key, save

log = logging.getLogger(__name__)

#: Bytes of batches one stream may hold while waiting for a missing one.
MAX_AHEAD_BYTES = 512 * 1024 * 1024


def register(app: faust.App, topics, table: StateTable) -> None:
    runs: dict[str, tuple[RunSpec, Strategy]] = {}

    def run_of(batch) -> tuple[RunSpec, Strategy]:
        if batch.run_id not in runs:
            spec = RunSpec.from_json(batch.meta["spec"])
            runs[batch.run_id] = (spec, build(spec.strategy, spec.params))
        return runs[batch.run_id]

    # Batches that arrived ahead of a missing one, per stream: after a crash
    # the restarted replay re-sends the stream from its start, which fills the
    # gap; they are then applied in order (never out of order, never lost).
    ahead: dict[str, dict[int, bytes]] = {}

    async def apply(batch, k: str, state: StreamState) -> StreamState | None:
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
            extra = {}
            if "recv_ns" in batch.meta:  # live feed: tick received -> decision made and executed
                extra["latency_ns"] = time.time_ns() - int(batch.meta["recv_ns"])
            await execution.publish(topics, batch, {"signals": signals, "bars": bars, **out}, ind, extra)
        except Exception as exc:  # fail the run loudly, keep the worker alive
            log.exception("run %s symbol %s batch %d failed", batch.run_id, batch.symbol, batch.seq)
            await execution.report_failure(topics, batch, f"{type(exc).__name__}: {exc}")
            return None
        new = StreamState(batch.seq, ind, strat_state, engine, carry)
        await save(table, k, new)
        return new

    @app.agent(topics.ticks, name="indicators")
    async def indicators(stream):
        async for value in stream:
            batch = decode(value)
            k = key(batch.run_id, batch.symbol)
            state = StreamState.from_bytes(table.get(k))
            if batch.seq <= state.seq:
                continue  # re-delivered: already applied
            if batch.seq > state.seq + 1:
                held = ahead.setdefault(k, {})
                if sum(map(len, held.values())) + len(value) > MAX_AHEAD_BYTES:
                    await execution.report_failure(
                        topics, batch, f"batches {state.seq + 1}..{min(held) - 1} never arrived"
                    )
                    continue
                held[batch.seq] = bytes(value)
                msg = stream.current_event.message
                log.warning(
                    "%s: batch %d (%s[%d] offset %d) is ahead of %d; held until the gap fills",
                    k,
                    batch.seq,
                    msg.topic,
                    msg.partition,
                    msg.offset,
                    state.seq,
                )
                continue
            while batch is not None and (state := await apply(batch, k, state)) is not None:
                nxt = ahead.get(k, {}).pop(state.seq + 1, None)
                batch = decode(nxt) if nxt is not None else None
            if not ahead.get(k):
                ahead.pop(k, None)
