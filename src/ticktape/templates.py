"""Strategy templates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ticktape.strategy import Feature, Strategy, register


@dataclass(frozen=True, kw_only=True)
class SmaCrossoverConfig:
    """Moving-average crossover on the mid price.

    Parameters
    ----------
    fast, slow
        Window lengths in ticks (fast < slow).
    size
        Position in units held while a trend is on.
    long_only
        Go flat instead of short when fast < slow.
    """

    fast: int = 50
    slow: int = 200
    size: float = 100.0
    long_only: bool = False

    def __post_init__(self) -> None:
        if self.fast < 1:
            raise ValueError(f"fast must be >= 1, got {self.fast}")
        if self.slow <= self.fast:
            raise ValueError(f"slow must be > fast, got fast={self.fast} slow={self.slow}")
        if not self.size > 0:
            raise ValueError(f"size must be > 0, got {self.size}")


@register
class SmaCrossover(Strategy):
    """Long ``size`` while SMA(fast) > SMA(slow) of the mid, short (or flat if
    ``long_only``) while it is below; no decision during warm-up or on a tie.
    """

    name = "sma_crossover"
    Config = SmaCrossoverConfig

    def features(self) -> list[Feature]:
        c = self.config
        return [Feature("sma_fast", "sma", c.fast), Feature("sma_slow", "sma", c.slow)]

    def on_batch(
        self, ticks: np.ndarray, features: dict[str, np.ndarray], state: dict[str, Any]
    ) -> tuple[np.ndarray, dict[str, Any]]:
        c = self.config
        fast, slow = features["sma_fast"], features["sma_slow"]
        short = 0.0 if c.long_only else -c.size
        with np.errstate(invalid="ignore"):
            target = np.where(fast > slow, c.size, np.where(fast < slow, short, np.nan))
        return target, state
