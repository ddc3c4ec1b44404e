"""Strategy stage: ticks + indicator columns -> decisions -> the engine.

Called in memory by the indicators agent; the strategy itself never sees
Faust, Kafka or SQL. A vectorized strategy decides for the whole batch and
the engine (ticktape.agents.execution's state) fills it; a per-tick strategy
alternates with the engine tick by tick (it must see its fills in event
order), which is why decision and execution share this one call.
"""

from __future__ import annotations

import numpy as np

from ticktape.model.spec import RunSpec
from ticktape.native import Engine
from ticktape.stages import StrategyState, new_engine, trade_step
from ticktape.strategy import Columns, Strategy


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
