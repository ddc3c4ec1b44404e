"""Indicators agent: the only consumer of the ticks topic.

Per batch: skip it if already applied (at-least-once delivery), validate the
ticks, compute the strategy's indicator columns with carry state from the
``indicator-state`` table, then hand the batch to the strategy stage in
memory (the broker carries each tick once).
"""

from __future__ import annotations

import logging

import faust
from ticktape.agents import execution, strategy
from ticktape.tables.state import StateTables, key

from ticktape.batch import decode
from ticktape.spec import RunSpec
from ticktape.stages import IndicatorState, indicators_step
from ticktape.strategy import Strategy, build

log = logging.getLogger(__name__)


def register(app: faust.App, topics, tables: StateTables) -> None:
    runs: dict[str, tuple[RunSpec, Strategy]] = {}

    def run_of(batch) -> tuple[RunSpec, Strategy]:
        if batch.run_id not in runs:
            spec = RunSpec.from_json(batch.meta["spec"])
            runs[batch.run_id] = (spec, build(spec.strategy, spec.params))
        return runs[batch.run_id]

    @app.agent(topics.ticks, name="indicators")
    async def indicators(stream):
        async for value in stream:
            batch = decode(value)
            k = key(batch.run_id, batch.symbol)
            if execution.already_applied(tables, k, batch.seq):
                continue
            try:
                spec, strat = run_of(batch)
                raw = tables.indicators.get(k)
                state = IndicatorState.from_bytes(raw) if raw else IndicatorState()
                good, feats, state = indicators_step(strat, batch.ticks, state)
                tables.indicators[k] = state.to_bytes()
                await strategy.handle(tables, topics, spec, strat, batch, good, feats, state)
            except Exception as exc:  # fail the run loudly, keep the worker alive
                log.exception("run %s symbol %s batch %d failed", batch.run_id, batch.symbol, batch.seq)
                await execution.report_failure(topics, batch, f"{type(exc).__name__}: {exc}")
