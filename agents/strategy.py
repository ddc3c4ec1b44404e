"""Strategy stage: ticks + indicator columns -> per-tick decisions.

Called in memory by the indicators agent; the strategy itself never sees
Faust, Kafka or SQL. Changes of the decision are recorded as signals.
"""

from __future__ import annotations

import numpy as np

from ticktape.stages import StrategyState, strategy_step
from ticktape.strategy import Strategy


def step(
    strat: Strategy, ticks: np.ndarray, feats: dict[str, np.ndarray], state: StrategyState
) -> tuple[np.ndarray, np.ndarray, StrategyState]:
    """(target per tick, signal changes, new state); see ticktape.stages.strategy_step."""
    return strategy_step(strat, ticks, feats, state)
