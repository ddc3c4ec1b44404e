"""Strategy stage: turns ticks + indicator columns into per-tick decisions.

Called in memory by the indicators agent; its state lives in the
``strategy-state`` table. Signal changes go downstream with the results.
"""

from __future__ import annotations

import numpy as np
from ticktape.agents import execution
from ticktape.tables.state import StateTables, key

from ticktape.batch import Batch
from ticktape.spec import RunSpec
from ticktape.stages import IndicatorState, StrategyState, strategy_step
from ticktape.strategy import Strategy


async def handle(
    tables: StateTables,
    topics,
    spec: RunSpec,
    strat: Strategy,
    batch: Batch,
    ticks: np.ndarray,
    feats: dict[str, np.ndarray],
    ind: IndicatorState,
) -> None:
    k = key(batch.run_id, batch.symbol)
    raw = tables.strategy.get(k)
    state = StrategyState.from_bytes(raw) if raw else StrategyState()
    target, signals, state = strategy_step(strat, ticks, feats, state)
    tables.strategy[k] = state.to_bytes()
    await execution.handle(tables, topics, spec, batch, ticks, target, signals, ind)
